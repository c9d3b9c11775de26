"""Assembles the flag feature inside one ``ConfigServer``: store, events, analytics, servicers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc

from configsvc.auth.rules import SCOPE_FLAGD_SELECTOR
from configsvc.flags._gen.flagd.evaluation.v1 import evaluation_pb2
from configsvc.flags._gen.flagd.evaluation.v2 import evaluation_pb2 as evaluation_v2_pb2
from configsvc.flags._gen.flagd.sync.v1 import sync_pb2
from configsvc.flags.analytics import FlagAnalytics
from configsvc.flags.api import EvaluationService, FlagsCore, FlagsSettings, SyncService
from configsvc.flags.api_manage import FlagManagementService
from configsvc.flags.events import FlagEvents
from configsvc.flags.ofrep import OfrepServer
from configsvc.flags.selector import HEADER, header
from configsvc.flags.store import FlagStore
from configsvc.model.grants import Scope
from configsvc.rpc.registry import register_service
from configsvc.v1 import flags_pb2

if TYPE_CHECKING:
    from configsvc.server.app import ConfigServer

_EVALUATION = evaluation_pb2.DESCRIPTOR.services_by_name["Service"]
_EVALUATION_V2 = evaluation_v2_pb2.DESCRIPTOR.services_by_name["Service"]
_SYNC = sync_pb2.DESCRIPTOR.services_by_name["FlagSyncService"]
_MANAGE = flags_pb2.DESCRIPTOR.services_by_name["FlagService"]
#: The flagd services (private descriptor pool; reflection serves them from
#: ``configsvc.flags.pool.reflection_pool``).
FLAGD_SERVICES = (_EVALUATION, _EVALUATION_V2, _SYNC)


class FlagServices:
    """The flag services of one server process."""

    def __init__(self, server: ConfigServer) -> None:
        config = server.config
        self.store = FlagStore(server.mirror, server.writer, server.etcd, server.keyspace)
        self.events = FlagEvents(self.store)
        self.analytics = FlagAnalytics()
        self.core = FlagsCore(self.store, self.analytics,
                              FlagsSettings(default_selector=config.flags_default_selector,
                                            static_context=dict(config.flags_context)))
        self.request_timeout = config.request_timeout
        self.ofrep_listen = config.ofrep_listen
        self.http_settings = config.http
        self.ofrep: OfrepServer | None = None
        server.mirror.add_record_listener(self.events.on_records)
        # Auth: the flagd RPCs name their flag set in a header, read by this scope
        # reader; OFREP (HTTP, outside the interceptor) admits through admit_http.
        self._admit = server.auth.admit_http if server.auth.enabled else None
        server.auth.interceptor.scopers[SCOPE_FLAGD_SELECTOR] = self.selector_scopes

    def selector_scopes(self, request: Any, metadata: Any) -> list[Scope]:
        """The flag set a flagd call selects, as an auth scope; [] when the call selects
        none (the servicer answers: INVALID_ARGUMENT, or empty GetMetadata)."""
        request_selector = getattr(request, "selector", "")
        if not (header(metadata, HEADER) or request_selector
                or self.core.settings.default_selector):
            return []
        ref = self.core.select(metadata, request_selector)
        return [Scope(ref.tenant, ref.environment)]

    @property
    def service_names(self) -> tuple[str, ...]:
        """The services server reflection lists (the flagd ones from their private pool)."""
        return (_MANAGE.full_name, *(service.full_name for service in FLAGD_SERVICES))

    def register(self, server: grpc.aio.Server) -> None:
        register_service(server, _EVALUATION, EvaluationService(self.core, self.events))
        register_service(server, _EVALUATION_V2, EvaluationService(
            self.core, self.events, evaluation_v2_pb2))
        register_service(server, _SYNC, SyncService(self.core, self.events))
        register_service(server, _MANAGE, FlagManagementService(
            self.store, self.analytics, self.request_timeout))

    @property
    def ofrep_port(self) -> int:
        return self.ofrep.port if self.ofrep is not None else 0

    async def start(self) -> None:
        """Start what runs beside the gRPC port (the OFREP listener when configured)."""
        if self.ofrep_listen:
            from configsvc.server.app import PortInUseError  # noqa: PLC0415 - import cycle

            self.ofrep = OfrepServer(self.core, self._admit, self.http_settings)
            try:
                await self.ofrep.start(self.ofrep_listen)
            except (OSError, ValueError) as exc:
                raise PortInUseError(
                    f"cannot serve OFREP on {self.ofrep_listen}: {exc}; choose another "
                    "address with --ofrep-listen") from exc

    async def stop(self) -> None:
        """Stop the OFREP listener, if any."""
        if self.ofrep is not None:
            await self.ofrep.stop()
            self.ofrep = None
