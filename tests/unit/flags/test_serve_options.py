"""The flag options of ``configsvc serve`` reach ServerConfig."""

from __future__ import annotations

import pytest

from configsvc.cli.flags import parse_ref, parse_weights
from configsvc.cli.main import build_parser
from configsvc.cli.options import config_from_args


def test_flag_options_reach_the_server_config() -> None:
    args = build_parser().parse_args(
        [
            "serve",
            "--flags-default-selector",
            "acme/prod",
            "--ofrep-listen",
            "127.0.0.1:8016",
            "--flags-context-value",
            "region=eu",
            "--flags-context-value",
            "empty=",
        ]
    )
    config = config_from_args(args)
    assert config.flags_default_selector == "acme/prod"
    assert config.ofrep_listen == "127.0.0.1:8016"
    assert config.flags_context == (("region", "eu"), ("empty", ""))


def test_a_bad_context_value_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        build_parser().parse_args(["serve", "--flags-context-value", "=x"])
    assert raised.value.code == 2
    assert "is not KEY=VALUE" in capsys.readouterr().err


def test_cli_parsers() -> None:
    assert parse_ref("acme/prod").environment == "prod"
    assert [(w.variant, w.weight) for w in parse_weights(["on=10", "off=90"])] == [
        ("on", 10),
        ("off", 90),
    ]
