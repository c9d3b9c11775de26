"""Reader list, TTL cache, server flags for Vault (pure)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from configsvc.cli.main import build_parser
from configsvc.cli.options.secrets import secret_settings_from_args
from configsvc.secrets.access import DENIED, Access, ReaderList
from configsvc.secrets.cache import SecretCache
from configsvc.secrets.refs import Ciphertext
from configsvc.secrets.settings import VaultAuth
from configsvc.secrets.vault import SecretVersion, key_version
from configsvc.v1 import config_pb2


def test_reader_list_matches_identity_and_tenant_scope() -> None:
    readers = ReaderList(("alice", "bob@acme", "*@public"))
    assert readers.allows("alice", "acme") and readers.allows("alice", "other")
    assert readers.allows("bob", "acme") and not readers.allows("bob", "other")
    assert readers.allows("anyone", "public") and not readers.allows("anyone", "acme")
    assert ReaderList(("*",)).allows("x", "y")
    assert not ReaderList(()).allows("alice", "acme")


def test_access_record_holds_the_reference_never_a_value() -> None:
    record = Access("acme", "mallory", "secret/db#pw", DENIED, "acme/prod/api/db", "Get").record()
    assert (record.kind, record.tenant, record.name, record.actor) == (
        "secret",
        "acme",
        "secret/db#pw",
        "mallory",
    )
    assert record.operation == config_pb2.OPERATION_ACCESS
    assert dict(record.attributes) == {
        "ref": "secret/db#pw",
        "decision": "denied",
        "config_key": "acme/prod/api/db",
        "method": "Get",
    }


def test_cache_serves_inside_the_ttl_only() -> None:
    now = [100.0]
    cache = SecretCache(10.0, limit=2, clock=lambda: now[0])
    one = SecretVersion(1, {"pw": "x"})
    cache.put(("secret", "a", None), one)
    assert cache.get(("secret", "a", None)) is one
    now[0] += 10.5
    assert cache.get(("secret", "a", None)) is None
    cache.put(("secret", "a", None), one)
    cache.put(("secret", "b", 1), one)
    cache.put(("secret", "c", None), one)  # evicts the oldest
    assert len(cache) == 2 and cache.get(("secret", "a", None)) is None
    cache.drop("secret", "c")
    assert cache.get(("secret", "c", None)) is None and cache.get(("secret", "b", 1)) is one
    off = SecretCache(0.0)
    off.put(("secret", "a", None), one)
    assert len(off) == 0
    assert "x" not in repr(one)


def test_ciphertext_key_version() -> None:
    assert key_version(Ciphertext("k", "vault:v12:abc")) == 12
    assert key_version(Ciphertext("k", "garbage")) == 0


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["serve", *argv])


def test_flags_build_the_vault_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    monkeypatch.delenv("CONFIGSVC_VAULT_TOKEN", raising=False)
    assert secret_settings_from_args(_args()).vault is None
    token = tmp_path / "token"
    token.write_text("s.token\n")
    settings = secret_settings_from_args(
        _args(
            "--vault-addr",
            "https://vault:8200",
            "--vault-token-file",
            str(token),
            "--vault-ca-file",
            "/ca.pem",
            "--secret-readers",
            "alice, bob@acme",
            "--secret-cache-ttl",
            "5",
            "--secret-poll-interval",
            "2",
        )
    )
    assert settings.vault is not None
    assert settings.vault.auth == VaultAuth(token="s.token")
    assert settings.vault.ca_file == Path("/ca.pem")
    assert (settings.readers, settings.cache_ttl, settings.poll_interval) == (
        ("alice", "bob@acme"),
        5.0,
        2.0,
    )
    assert "s.token" not in repr(settings)

    secret_id = tmp_path / "sid"
    secret_id.write_text("sid-1")
    approle = secret_settings_from_args(
        _args(
            "--vault-addr",
            "http://v",
            "--vault-approle-role-id",
            "rid",
            "--vault-approle-secret-id-file",
            str(secret_id),
        )
    )
    assert approle.vault is not None and approle.vault.auth.method == "approle"
    assert approle.vault.auth.approle_secret_id == "sid-1"
    assert "sid-1" not in repr(approle)
    k8s = secret_settings_from_args(
        _args("--vault-addr", "http://v", "--vault-kubernetes-role", "configsvc")
    )
    assert k8s.vault is not None and k8s.vault.auth.method == "kubernetes"
    monkeypatch.setenv("VAULT_TOKEN", "from-env")
    env = secret_settings_from_args(_args("--vault-addr", "http://v"))
    assert env.vault is not None and env.vault.auth.token == "from-env"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--vault-addr", "http://v"), "needs a login"),
        (("--vault-addr", "http://v", "--vault-approle-role-id", "r"), "secret-id-file"),
        (("--vault-addr", "http://v", "--vault-token-file", "/nonexistent/t"), "cannot read"),
        (
            (
                "--vault-addr",
                "http://v",
                "--vault-kubernetes-role",
                "r",
                "--vault-client-cert-file",
                "c.pem",
            ),
            "both --vault-client-cert-file",
        ),
        (("--secret-poll-interval", "0"), "--secret-poll-interval"),
    ],
)
def test_inconsistent_flags_are_refused(
    argv: tuple[str, ...], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    monkeypatch.delenv("CONFIGSVC_VAULT_TOKEN", raising=False)
    with pytest.raises(ValueError, match=message):
        secret_settings_from_args(_args(*argv))
