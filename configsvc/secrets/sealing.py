"""Webhook signing secrets at rest: Vault transit ciphertext in etcd, plaintext in memory only.

Anyone who can read etcd (backups, snapshots, operators) could forge
signatures with a stored secret, so a server with Vault stores the secret
only as transit ciphertext, in the server-internal ``Webhook.sealed_secret``
field, and leaves ``secret`` empty. Decision: a separate field rather than a
marked form inside ``secret`` (``vault:v1:...``), so no secret a user chooses
can ever be mistaken for ciphertext; requests that set the field are refused.

Without Vault (development) the secret stays plaintext in ``secret``, as
before sealing existed; both forms are read, so webhooks stored earlier keep
being delivered.

Sealing is a secrets concern that events uses (``events.webhooks`` imports
this module, never the other way round), so the rewrap of ``configsvc
secrets rewrap`` can cover webhook secrets without secrets importing events.
"""

from __future__ import annotations

import logging

from configsvc.errors import BackendUnavailableError
from configsvc.secrets.refs import Ciphertext
from configsvc.secrets.vault import BACKEND, KeyVersions, VaultClient
from configsvc.store.keyspace import Keyspace
from configsvc.store.ports import MirrorPort, RecordReader, WriterPort
from configsvc.store.writer import RecordChange
from configsvc.v1 import audit_pb2, config_pb2, webhooks_pb2

log = logging.getLogger(__name__)

#: The tenant record kind webhooks are stored under. ``events.webhooks.store`` builds
#: its keys from this name too: it is defined here, below events, so rewrap can find
#: the webhooks without importing events.
WEBHOOK_RECORDS = "webhooks"

NO_VAULT_WARNING = (
    "webhooks are enabled without Vault (--vault-addr): webhook signing "
    "secrets are stored in etcd as plaintext; configure Vault transit in "
    "production"
)


def sealed(hook: webhooks_pb2.Webhook) -> Ciphertext | None:
    """The stored ciphertext of ``hook``'s secret; None when it is stored as plaintext."""
    if not hook.HasField("sealed_secret"):
        return None
    return Ciphertext(hook.sealed_secret.transit_key, hook.sealed_secret.ciphertext)


async def seal(hook: webhooks_pb2.Webhook, vault: VaultClient | None, timeout: float) -> None:
    """Replace ``hook.secret`` by its transit ciphertext (in place); a no-op without Vault.

    Raises UNAVAILABLE naming Vault when it cannot be reached: the caller has
    stored nothing yet, so nothing is stored.
    """
    if vault is None:
        return
    cipher = await vault.encrypt(hook.secret.encode(), timeout)
    hook.sealed_secret.CopyFrom(
        webhooks_pb2.SealedSecret(transit_key=cipher.key, ciphertext=cipher.ciphertext)
    )
    hook.ClearField("secret")


class SecretOpener:
    """Signing secrets for the delivery worker: one Vault decrypt per stored ciphertext.

    Plaintexts are kept in this process only, per webhook and valid for the
    ciphertext they came from, so a changed or rewrapped secret is decrypted
    again; entries of webhooks that are gone or changed are dropped whenever
    a new one is decrypted.
    """

    def __init__(self, vault: VaultClient | None, mirror: RecordReader) -> None:
        self._vault = vault
        self._mirror = mirror
        #: webhook key -> (ciphertext, plaintext)
        self._plain: dict[bytes, tuple[Ciphertext, str]] = {}

    async def secret(self, key: bytes, hook: webhooks_pb2.Webhook) -> str:
        """The signing secret of ``hook`` (stored at ``key``), decrypted when sealed.

        BackendUnavailableError naming Vault when it is down, or when this
        server has no Vault to open a sealed secret with.
        """
        cipher = sealed(hook)
        if cipher is None:
            return hook.secret
        known = self._plain.get(key)
        if known is not None and known[0] == cipher:
            return known[1]
        if self._vault is None:
            raise BackendUnavailableError(
                BACKEND,
                f"webhook {hook.tenant}/{hook.id} has a sealed secret (transit key "
                f"{cipher.key}) but this server has no Vault configured (--vault-addr)",
            )
        plain = (await self._vault.decrypt(cipher, self._vault.settings.timeout)).decode()
        self._forget_stale()
        self._plain[key] = (cipher, plain)
        return plain

    def _forget_stale(self) -> None:
        for key, (cipher, _) in list(self._plain.items()):
            record = self._mirror.record(key)
            if record is None or sealed(webhooks_pb2.Webhook.FromString(record.value)) != cipher:
                del self._plain[key]


async def rewrap_webhooks(
    vault: VaultClient,
    mirror: MirrorPort,
    writer: WriterPort,
    keyspace: Keyspace,
    tenant: str,
    versions: KeyVersions,
    *,
    actor: str,
    timeout: float,
    trace_id: str = "",
) -> tuple[list[str], int]:
    """Rewrap the tenant's sealed secrets older than their key's newest version, and seal
    those stored as plaintext (registered before the server had Vault).

    Part of ``configsvc secrets rewrap``: each webhook is written again in one
    Txn with its audit record, compare-and-swap on the revision it was read at
    (ABORTED on a concurrent change; re-run). ``versions`` is the run's cache of
    transit key versions; ``trace_id`` (the caller's W3C trace id) goes into each audit
    record. Returns the ids rewrapped and the highest revision.
    """
    done: list[str] = []
    revision = 0
    for raw, record in list(mirror.records(keyspace.record_prefix(tenant, WEBHOOK_RECORDS))):
        hook = webhooks_pb2.Webhook.FromString(record.value)
        cipher = sealed(hook)
        if cipher is None and not hook.secret:
            continue
        if cipher is None:
            await seal(hook, vault, timeout)
        else:
            if not await versions.stale(cipher):
                continue
            hook.sealed_secret.ciphertext = (await vault.rewrap(cipher, timeout)).ciphertext
        audit = audit_pb2.AuditRecord(
            kind="webhook",
            tenant=tenant,
            name=hook.id,
            operation=config_pb2.OPERATION_PUT,
            actor=actor,
            trace_id=trace_id,
            attributes={"url": hook.url, "action": "rewrap"},
        )
        revision = max(
            revision,
            await writer.commit_records(
                tenant,
                [
                    RecordChange(
                        raw, hook.SerializeToString(), record.mod_revision, f"webhook {hook.id}"
                    )
                ],
                [audit],
                timeout=timeout,
            ),
        )
        done.append(hook.id)
    return done, revision
