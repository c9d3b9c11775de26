"""The etcd liveness setting: its defaults (README states them) and its serve/dev flag."""

from __future__ import annotations

import pytest

from configsvc.cli.main import build_parser
from configsvc.cli.options import config_from_args
from configsvc.server.config import ServerConfig
from configsvc.store.mirror import MirrorLiveness


def test_defaults_are_the_figures_the_readme_gives() -> None:
    # README: "probes etcd every second ... lost after 3 s without a completed probe".
    assert MirrorLiveness() == MirrorLiveness(interval=1.0, grace=3.0)
    assert ServerConfig().mirror_liveness == MirrorLiveness()


@pytest.mark.parametrize("command", ["serve", "dev"])
def test_flag_sets_the_grace(command: str) -> None:
    args = build_parser().parse_args([command, "--etcd-liveness-grace", "7.5"])
    assert config_from_args(args).mirror_liveness == MirrorLiveness(interval=1.0, grace=7.5)
    default = build_parser().parse_args([command])
    assert config_from_args(default).mirror_liveness.grace == 3.0


@pytest.mark.parametrize("bad", ["0", "-1", "soon", "nan", "inf"])
def test_flag_refuses_what_is_not_a_positive_duration(
    bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["serve", "--etcd-liveness-grace", bad])
    assert exc.value.code == 2
    assert "--etcd-liveness-grace" in capsys.readouterr().err
