"""TLS to Pulsar: flags -> settings -> pulsar.Client options, and refusing mixed settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from configsvc.cli.main import build_parser
from configsvc.cli.options import config_from_args
from configsvc.devstack.ports import free_port
from configsvc.errors import BackendUnavailableError
from configsvc.events.settings import EventSettings, PulsarTLS
from configsvc.events.sink import PulsarSink


def _config(*argv: str) -> EventSettings:
    args = build_parser().parse_args(["serve", "--auth", "off", *argv])
    return config_from_args(args).events  # type: ignore[arg-type]


def test_flags_build_the_tls_settings() -> None:
    events = _config(
        "--pulsar-url",
        "pulsar+ssl://broker:6651",
        "--pulsar-ca-file",
        "ca.pem",
        "--pulsar-cert-file",
        "c.pem",
        "--pulsar-key-file",
        "k.pem",
    )
    assert events.tls == PulsarTLS(ca_file="ca.pem", cert_file="c.pem", key_file="k.pem")
    assert events.tls.client_options() == {
        "tls_validate_hostname": True,
        "tls_allow_insecure_connection": False,
        "tls_trust_certs_file_path": "ca.pem",
    }
    assert _config().tls == PulsarTLS()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--pulsar-url", "pulsar+ssl://b:6651", "--pulsar-cert-file", "c.pem"), "both"),
        (("--pulsar-url", "pulsar://b:6650", "--pulsar-ca-file", "ca.pem"), "pulsar\\+ssl://"),
    ],
)
def test_inconsistent_tls_settings_are_refused(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _config(*argv)


async def test_a_tls_broker_that_is_not_there_is_unavailable_naming_pulsar(tmp_path: Path) -> None:
    """The real client with TLS options and TLS authentication fails cleanly, not with a hang."""
    for name in ("ca.pem", "c.pem", "k.pem"):
        (tmp_path / name).write_text("")
    tls = PulsarTLS(
        ca_file=str(tmp_path / "ca.pem"),
        cert_file=str(tmp_path / "c.pem"),
        key_file=str(tmp_path / "k.pem"),
    )
    sink = PulsarSink(
        f"pulsar+ssl://127.0.0.1:{free_port()}",
        "persistent://public/default/t",
        send_timeout=1.0,
        max_pending=8,
        tls=tls,
    )
    with pytest.raises(BackendUnavailableError) as raised:
        await sink.open()
    assert "pulsar" in str(raised.value)
