"""SecretOpener's memory: one decrypt per stored ciphertext, stale plaintexts dropped.

A pure unit: a counting stand-in for Vault's decrypt and a dict for the mirror's records
(the real Vault path is covered by tests/integration/events/test_webhook_secrets.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest

from configsvc.errors import BackendUnavailableError
from configsvc.secrets.refs import Ciphertext
from configsvc.secrets.sealing import SecretOpener, sealed
from configsvc.secrets.settings import VaultSettings
from configsvc.store.items import Record
from configsvc.v1 import webhooks_pb2


class _Vault:
    settings = VaultSettings(address="http://vault.invalid")

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def decrypt(self, ciphertext: Ciphertext, timeout: float) -> bytes:
        self.calls.append(ciphertext.ciphertext)
        return f"plain-of-{ciphertext.ciphertext}".encode()


class _Mirror:
    """A ``RecordReader`` (store.ports) over a dict."""

    def __init__(self) -> None:
        self.held: dict[bytes, Record] = {}

    def record(self, raw: bytes) -> Record | None:
        return self.held.get(raw)

    def records(self, prefix: bytes) -> Iterator[tuple[bytes, Record]]:
        return iter(sorted((k, r) for k, r in self.held.items() if k.startswith(prefix)))


def _hook(ciphertext: str) -> webhooks_pb2.Webhook:
    return webhooks_pb2.Webhook(
        tenant="t",
        id=ciphertext[-4:],
        sealed_secret=(webhooks_pb2.SealedSecret(transit_key="k", ciphertext=ciphertext)),
    )


def _store(mirror: _Mirror, key: bytes, hook: webhooks_pb2.Webhook) -> webhooks_pb2.Webhook:
    mirror.held[key] = Record(hook.SerializeToString(), 0, 0)
    return hook


async def test_decrypts_once_per_ciphertext_and_forgets_stale_ones() -> None:
    vault, mirror = _Vault(), _Mirror()
    opener = SecretOpener(cast(Any, vault), mirror)  # Vault: not a store part
    first = _store(mirror, b"h1", _hook("vault:v1:aaaa"))
    assert await opener.secret(b"h1", first) == "plain-of-vault:v1:aaaa"
    assert await opener.secret(b"h1", first) == "plain-of-vault:v1:aaaa"
    assert vault.calls == ["vault:v1:aaaa"]

    # Rewrapped (a new ciphertext for the same webhook): decrypted again.
    second = _store(mirror, b"h1", _hook("vault:v2:bbbb"))
    assert await opener.secret(b"h1", second) == "plain-of-vault:v2:bbbb"
    assert vault.calls == ["vault:v1:aaaa", "vault:v2:bbbb"]

    # A deleted webhook's plaintext is dropped when the next one is decrypted.
    del mirror.held[b"h1"]
    other = _store(mirror, b"h2", _hook("vault:v1:cccc"))
    await opener.secret(b"h2", other)
    assert list(opener._plain) == [b"h2"]

    # Plaintext-stored webhooks need no Vault.
    plain = webhooks_pb2.Webhook(secret="stored as plaintext")
    assert sealed(plain) is None
    assert await SecretOpener(None, mirror).secret(b"h3", plain) == ("stored as plaintext")


async def test_sealed_secret_without_vault_is_unavailable() -> None:
    opener = SecretOpener(None, _Mirror())
    with pytest.raises(BackendUnavailableError) as err:
        await opener.secret(b"h1", _hook("vault:v1:aaaa"))
    assert err.value.backend == "Vault" and "no Vault configured" in str(err.value)
