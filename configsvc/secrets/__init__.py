"""Secrets: Vault KV v2 references and transit-encrypted fields in config values.

Modules: ``refs`` (the JSON forms and walking values), ``vault`` (async
facade over hvac), ``cache`` (TTL cache), ``access`` (read permission and
audited accesses), ``gateway`` (what the API calls on writes and resolving
reads), ``rotation`` (version poller), ``stream`` (resolving watch streams),
``rewrap`` (transit rewrap; its RPC is ``configsvc.api.secret_service``),
``sealing`` (webhook signing secrets as transit ciphertext at rest; events
imports it, secrets never imports events).
``SecretsRuntime`` wires them for one server process.
"""

from __future__ import annotations

from configsvc.secrets.access import AccessAuditor, AccessPolicy, ReaderList
from configsvc.secrets.cache import SecretCache
from configsvc.secrets.gateway import SecretGateway, SensitiveFields
from configsvc.secrets.rotation import RotationPoller
from configsvc.secrets.settings import SecretSettings, VaultAuth, VaultSettings
from configsvc.secrets.stream import ResolvingStream
from configsvc.secrets.vault import VaultClient
from configsvc.store.keyspace import Keyspace
from configsvc.store.ports import MirrorPort, WriterPort

__all__ = ["SecretSettings", "SecretsRuntime", "VaultAuth", "VaultSettings"]


class SecretsRuntime:
    """The secret machinery of one server process; ``vault`` is None without Vault."""

    def __init__(
        self,
        settings: SecretSettings,
        mirror: MirrorPort,
        writer: WriterPort,
        keyspace: Keyspace,
        sensitive: SensitiveFields | None = None,
        policy: AccessPolicy | None = None,
    ) -> None:
        self.settings = settings
        self._mirror = mirror
        self.vault = VaultClient(settings.vault) if settings.vault is not None else None
        self.cache = SecretCache(settings.cache_ttl)
        self.auditor = AccessAuditor(writer, keyspace, batch=settings.audit_batch)
        # ``policy`` replaces the --secret-readers list (role bindings when auth is on).
        self.gateway = SecretGateway(
            self.vault, policy or ReaderList(settings.readers), self.auditor, self.cache, sensitive
        )
        self.poller: RotationPoller | None = None
        if settings.vault is not None and self.vault is not None:
            self.poller = RotationPoller(
                self.vault, self.cache, settings.poll_interval, timeout=settings.vault.timeout
            )
            self.gateway.on_fetch.append(self.poller.seen)

    @property
    def stream_timeout(self) -> float:
        """Budget for resolving one watch message (Vault reads plus the audit commit)."""
        return 2 * (self.settings.vault.timeout if self.settings.vault else 5.0) + 5.0

    def stream(self, actor: str) -> ResolvingStream:
        return ResolvingStream(self.gateway, self.poller, self._mirror, actor, self.stream_timeout)

    def start(self) -> None:
        if self.poller is not None:
            self.poller.start()

    async def stop(self) -> None:
        if self.poller is not None:
            await self.poller.stop()
        if self.vault is not None:
            self.vault.close()
