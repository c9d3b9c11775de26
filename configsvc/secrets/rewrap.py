"""Rewrapping stored transit ciphertexts after a transit key rotation.

Vault's ``rewrap`` re-encrypts a ciphertext under the newest key version
without revealing the plaintext to configsvc. Each entry holding a
ciphertext older than its key's newest version is written again as a new
version, compare-and-swap on the revision it was read at, so a concurrent
change is never overwritten (ABORTED; re-run, entries done are skipped).
History copies keep the ciphertext of their time: keep old key versions
decryptable (transit ``min_decryption_version``) as long as history matters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from configsvc.model.keys import ConfigKey
from configsvc.resolve.jsonvalue import JsonValue, canonical_json, parse_value
from configsvc.secrets.refs import ENCRYPTED, Ciphertext, SecretRef, substitute, walk
from configsvc.secrets.sealing import rewrap_webhooks
from configsvc.secrets.vault import KeyVersions, VaultClient
from configsvc.store.keyspace import Keyspace
from configsvc.store.mirror import Mirror
from configsvc.store.writer import WriteOptions, Writer

REASON = "transit rewrap"


@dataclass
class RewrapReport:
    """What one run changed."""

    rewrapped: list[ConfigKey] = field(default_factory=list)
    unchanged: int = 0
    revision: int = 0
    webhooks: list[str] = field(default_factory=list)
    """Ids of webhooks whose sealed signing secrets were rewrapped."""


async def rewrap_tenant(
    vault: VaultClient,
    mirror: Mirror,
    writer: Writer,
    tenant: str,
    *,
    actor: str,
    timeout: float,
    trace_id: str = "",
    keyspace: Keyspace | None = None,
) -> RewrapReport:
    """Rewrap the tenant's config values, then (given ``keyspace``) its webhook secrets.

    ``trace_id`` is the caller's W3C trace id (``rpc.requests.trace_id``): every audit
    record (and so every change event) the run writes carries it, as a Put's does.
    """
    report = RewrapReport()
    versions = KeyVersions(vault, timeout)
    for item in list(mirror.items(mirror.scope_prefix(tenant))):
        text = item.entry.value
        if ENCRYPTED not in text and "\\u" not in text:
            continue
        value = parse_value(text)
        ciphers = [f for _, f in walk(value) if isinstance(f, Ciphertext)]
        if not ciphers:
            continue
        stale = {c for c in ciphers if await versions.stale(c)}
        if not stale:
            report.unchanged += 1
            continue
        fresh = {c: await vault.rewrap(c, timeout) for c in stale}

        def replace(
            found: SecretRef | Ciphertext,
            form: JsonValue,
            fresh: dict[Ciphertext, Ciphertext] = fresh,
        ) -> JsonValue:
            return fresh[found].form() if isinstance(found, Ciphertext) and found in fresh else form

        result = await writer.put(
            item.key,
            canonical_json(substitute(value, replace)),
            WriteOptions(
                expected_revision=item.entry.mod_revision,
                reason=REASON,
                actor=actor,
                timeout=timeout,
                trace_id=trace_id,
            ),
        )
        report.rewrapped.append(item.key)
        report.revision = max(report.revision, result.revision)
    if keyspace is not None:
        report.webhooks, revision = await rewrap_webhooks(
            vault,
            mirror,
            writer,
            keyspace,
            tenant,
            versions,
            actor=actor,
            timeout=timeout,
            trace_id=trace_id,
        )
        report.revision = max(report.revision, revision)
    return report
