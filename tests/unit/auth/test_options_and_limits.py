"""Server flags for auth and TLS, key format, token buckets and stream caps (pure units)."""

from __future__ import annotations

from pathlib import Path

import pytest

from configsvc.auth import apikeys
from configsvc.auth.limits import StreamCaps, TokenBuckets
from configsvc.cli.auth import parse_duration
from configsvc.cli.main import build_parser
from configsvc.cli.options import config_from_args
from configsvc.cli.toolkit import UsageError
from configsvc.errors import RateLimitedError


def serve_args(*argv: str) -> object:
    return build_parser().parse_args(["serve", *argv])


def test_auth_flags_build_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONFIGSVC_BOOTSTRAP_ADMIN_KEY", raising=False)
    key = apikeys.new_key()[1]
    (tmp_path / "admin.key").write_text(key + "\n")
    config = config_from_args(
        serve_args(  # type: ignore[arg-type]
            "--bootstrap-admin-key-file",
            str(tmp_path / "admin.key"),
            "--rate-per-identity",
            "5",
            "--max-streams-per-identity",
            "3",
            "--tls-cert-file",
            "c.pem",
            "--tls-key-file",
            "k.pem",
            "--tls-client-ca-file",
            "ca.pem",
            "--jwt-issuer",
            "https://i",
            "--jwt-jwks-file",
            "jwks.json",
            "--jwt-audience",
            "cs",
        )
    )
    assert config.auth.bootstrap_admin_key == key and config.auth.mode == "required"
    assert config.auth.rate_per_identity == 5 and config.auth.max_streams_per_identity == 3
    assert config.auth.jwt.enabled and config.auth.jwt.audience == "cs"
    assert config.tls is not None and config.tls.client_ca_file == Path("ca.pem")
    monkeypatch.setenv("CONFIGSVC_BOOTSTRAP_ADMIN_KEY", "not-a-key")
    with pytest.raises(ValueError, match="not an API key"):
        config_from_args(serve_args())  # type: ignore[arg-type]
    monkeypatch.delenv("CONFIGSVC_BOOTSTRAP_ADMIN_KEY")
    for bad, message in (
        (("--tls-cert-file", "c.pem"), "both"),
        (("--tls-client-ca-file", "ca.pem"), "needs --tls-cert-file"),
        (("--jwt-jwks-file", "j.json"), "--jwt-issuer"),
        (("--bootstrap-admin-key-file", str(tmp_path / "missing")), "No such"),
    ):
        with pytest.raises(ValueError, match=message):
            config_from_args(serve_args(*bad))  # type: ignore[arg-type]
    assert config_from_args(serve_args("--auth", "off")).auth.mode == "off"  # type: ignore[arg-type]


def test_key_format() -> None:
    key_id, key = apikeys.new_key()
    assert apikeys.key_id_of(key) == key_id and len(key_id) == 16
    for bad in (
        "",
        "cs_",
        "cs_abc_x",
        "cs_0123456789abcdeg_x",
        "cs_0123456789abcdef_",
        "xx_0123456789abcdef_x",
    ):
        assert apikeys.key_id_of(bad) is None, bad
    salt = b"s" * 16
    assert apikeys.hash_secret(salt, key) != apikeys.hash_secret(b"t" * 16, key)


def test_token_bucket_and_stream_caps() -> None:
    buckets = TokenBuckets(rate=0.001, burst=2)
    buckets.take("a")
    buckets.take("a")
    with pytest.raises(RateLimitedError) as err:
        buckets.take("a")
    assert err.value.retry_after > 0 and err.value.reason == "RATE_LIMITED"
    buckets.take("b")
    TokenBuckets(rate=0, burst=0).take("anyone")  # disabled

    caps = StreamCaps(1)
    caps.acquire("a")
    with pytest.raises(RateLimitedError):
        caps.acquire("a")
    caps.release("a")
    caps.acquire("a")
    assert caps.open_streams() == 1
    caps.release("a")
    caps.release("a")  # over-release is harmless
    assert caps.open_streams() == 0
    StreamCaps(0).acquire("x")


def test_durations() -> None:
    assert parse_duration("90s") == 90 and parse_duration("2d") == 172_800
    for bad in ("0s", "5", "1w", "-1h"):
        with pytest.raises(UsageError):
            parse_duration(bad)
