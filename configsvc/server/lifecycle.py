"""The start-up components of one server process, each an async context manager.

``ConfigServer.start`` enters them in order on one ``contextlib.AsyncExitStack``
(aiohttp's ``CleanupContext`` is the model): each starts its part on entry and stops
it on exit, so shutdown is the exact reverse of start-up and a start-up that fails
half-way stops exactly what had started. The order (see ``ConfigServer.start``) puts
what must stop first (health NOT_SERVING, watch streams ended with "resume
elsewhere", the publisher's lease revoked) on top, then the gRPC server with its
grace period, then what the in-flight RPCs still use (secrets, auth, the mirror,
etcd).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from configsvc.api.interceptor import AuthInterceptor
from configsvc.auth.runtime import AuthRuntime
from configsvc.flags.pool import reflection_pool
from configsvc.http.ofrep import Admit, OfrepServer
from configsvc.http.settings import HttpSettings
from configsvc.rpc.registry import GenericOnly
from configsvc.server.flags import FlagFeature
from configsvc.server.services import Registration, register_all, service_names
from configsvc.store.mirror import Mirror

#: Health entry of the change-event publisher: NOT_SERVING while this replica leads
#: and cannot publish (Pulsar down: a backlog builds). The server itself stays SERVING.
PUBLISHER_HEALTH = "configsvc.events.Publisher"

SERVER_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # Any number of early pings is answered, never with GOAWAY "too_many_pings": the Python
    # flagd provider's default keepalive (0) pings every millisecond, and a GOAWAY cut its
    # EventStream until its reconnect backoff ran out, losing the changes made meanwhile
    # (tests/integration/watch/test_keepalive_pings.py). grpc clients still send at most
    # two pings between their own data frames (max_pings_without_data).
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.max_receive_message_length", 4 * 1024 * 1024),
]

log = logging.getLogger(__name__)


class PortInUseError(RuntimeError):
    """A listen address (gRPC or OFREP) could not be bound."""


class Health:
    """The health servicer's entries: "" and every served service follow the mirror's
    sync; ``PUBLISHER_HEALTH`` follows the publisher."""

    def __init__(self) -> None:
        self.servicer = health.aio.HealthServicer()
        self._names: tuple[str, ...] = ("",)
        self._tasks: set[asyncio.Task[None]] = set()

    async def set(self, serving: bool, names: Sequence[str] | None = None) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in self._names if names is None else names:
            await self.servicer.set(name, status)

    def soon(self, serving: bool, names: Sequence[str] | None = None) -> None:
        """Set health from a synchronous listener (the setter is a coroutine)."""
        task = asyncio.get_running_loop().create_task(self.set(serving, names))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def on_sync(self, synced: bool) -> None:
        self.soon(synced)

    def on_publisher(self, healthy: bool) -> None:
        self.soon(healthy, (PUBLISHER_HEALTH,))

    @contextlib.asynccontextmanager
    async def following(self, mirror: Mirror, names: Sequence[str]) -> AsyncIterator[None]:
        """NOT_SERVING for ``names`` until the mirror syncs (the port may already be
        open: probes then keep traffic away); pending updates are dropped on exit."""
        self._names = ("", *names)
        await self.set(False)
        mirror.add_sync_listener(self.on_sync)
        try:
            yield
        finally:
            for task in list(self._tasks):
                task.cancel()

    @contextlib.asynccontextmanager
    async def draining(self) -> AsyncIterator[None]:
        """On exit, first of all: every entry NOT_SERVING, so balancers move away."""
        try:
            yield
        finally:
            await self.servicer.enter_graceful_shutdown()


@contextlib.asynccontextmanager
async def running(
    start: Callable[[], object], stop: Callable[[], Awaitable[object]]
) -> AsyncIterator[None]:
    """A background part: ``start()`` on entry, ``await stop()`` on exit."""
    start()
    try:
        yield
    finally:
        await stop()


@contextlib.asynccontextmanager
async def closing(close: Callable[[], Awaitable[object]]) -> AsyncIterator[None]:
    """Nothing on entry (the part runs already, or on demand); ``await close()`` on exit."""
    try:
        yield
    finally:
        await close()


def auth_interceptors(auth: AuthRuntime) -> list[grpc.aio.ServerInterceptor]:
    """The gRPC face of ``auth.admission`` (none with auth off); the interceptor's own
    streams are ended with the others when a caller loses its grants or credential."""
    if not auth.enabled:
        log.warning("authentication is OFF: every caller may do everything")
        return []
    interceptor = AuthInterceptor(auth.admission, auth.streams)
    auth.stream_resetters.append(interceptor.end_streams_where)
    return [interceptor]


@contextlib.asynccontextmanager
async def grpc_server(
    registrations: Sequence[Registration],
    health_: Health,
    interceptors: Sequence[grpc.aio.ServerInterceptor],
    credentials: grpc.ServerCredentials | None,
    listen: str,
    reuse_port: bool,
    grace: Callable[[], float],
    on_serving: Callable[[grpc.aio.Server, int], None],
) -> AsyncIterator[grpc.aio.Server]:
    """Register every service, health and reflection, bind ``listen`` and serve; on
    exit stop with ``grace()`` seconds for in-flight RPCs."""
    # One process per port unless --workers asks for sharing: a busy port must fail loudly.
    options = [*SERVER_OPTIONS, ("grpc.so_reuseport", 1 if reuse_port else 0)]
    server = grpc.aio.server(options=options, interceptors=list(interceptors))
    register_all(server, registrations)
    health_pb2_grpc.add_HealthServicer_to_server(health_.servicer, GenericOnly(server))
    reflected = (
        *service_names(registrations),
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        reflection.SERVICE_NAME,
    )
    # What enable_server_reflection does for an aio server, minus the registered methods.
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
        reflection.aio.ReflectionServicer(reflected, pool=reflection_pool(reflected)),
        GenericOnly(server),
    )
    try:
        port = (
            server.add_secure_port(listen, credentials)
            if credentials is not None
            else server.add_insecure_port(listen)
        )
    except RuntimeError as exc:
        raise PortInUseError(
            f"cannot listen on {listen}: the port is in use or the address is "
            "not local; choose another with --listen (or --grpc-port for dev)"
        ) from exc
    await server.start()
    on_serving(server, port)
    try:
        yield server
    finally:
        await server.stop(grace())


@contextlib.asynccontextmanager
async def ofrep_listener(
    flags: FlagFeature, listen: str, admit: Admit | None, settings: HttpSettings
) -> AsyncIterator[None]:
    """The OFREP HTTP listener beside the gRPC port; nothing when ``listen`` is ''."""
    if not listen:
        yield
        return
    ofrep = OfrepServer(flags.core, admit, settings)
    try:
        await ofrep.start(listen)
    except (OSError, ValueError) as exc:
        raise PortInUseError(
            f"cannot serve OFREP on {listen}: {exc}; choose another address with --ofrep-listen"
        ) from exc
    flags.ofrep = ofrep
    try:
        yield
    finally:
        flags.ofrep = None
        await ofrep.stop()
