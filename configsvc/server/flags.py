"""The flag feature of one server process: store, events, analytics and evaluation core.

Built from the parts it needs (not the whole server); its servicers are registered
with every other service in ``configsvc.server.services`` and its OFREP listener runs
as one component of the server's start-up stack (``configsvc.server.lifecycle``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from configsvc.flags.analytics import FlagAnalytics
from configsvc.flags.core import FlagsCore, FlagsSettings
from configsvc.flags.events import FlagEvents
from configsvc.flags.store import FlagStore
from configsvc.http.ofrep import OfrepServer
from configsvc.model.grants import Scope
from configsvc.server.config import ServerConfig
from configsvc.store.etcd import EtcdClient
from configsvc.store.keyspace import Keyspace
from configsvc.store.mirror import Mirror
from configsvc.store.writer import Writer


class FlagFeature:
    """The flag machinery shared by the flagd servicers, FlagService and OFREP."""

    def __init__(
        self,
        config: ServerConfig,
        mirror: Mirror,
        writer: Writer,
        etcd: EtcdClient,
        keyspace: Keyspace,
    ) -> None:
        self.store = FlagStore(mirror, writer, etcd, keyspace)
        self.events = FlagEvents(self.store)
        self.analytics = FlagAnalytics()
        self.core = FlagsCore(
            self.store,
            self.analytics,
            FlagsSettings(
                default_selector=config.flags_default_selector,
                static_context=dict(config.flags_context),
            ),
        )
        #: The OFREP listener while it runs (set by its start-up component).
        self.ofrep: OfrepServer | None = None
        mirror.add_record_listener(self.events.on_records)

    def selector_scopes(
        self, request: Any, metadata: Iterable[tuple[str, Any]] | None
    ) -> list[Scope]:
        """The flag set a flagd call selects, as an auth scope; [] when the call selects
        none (the servicer answers: INVALID_ARGUMENT, or empty GetMetadata)."""
        ref = self.core.selection(metadata, getattr(request, "selector", ""))
        return [] if ref is None else [Scope(ref.tenant, ref.environment)]

    @property
    def ofrep_port(self) -> int:
        """The OFREP listener's bound port; 0 while it does not run."""
        return self.ofrep.port if self.ofrep is not None else 0
