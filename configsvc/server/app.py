"""Assembles and runs one configsvc server process.

``ConfigServer`` constructs the long-lived parts, ``configsvc.server.services``
builds every servicer from them and ``configsvc.server.lifecycle`` runs them.
Start order matters: the mirror starts and the port opens at once, but health
reports NOT_SERVING until the mirror is synced, so load balancers and Kubernetes
probes only send traffic to a replica that can answer. Shutdown is the exact
reverse: health goes NOT_SERVING, streams end, the server stops accepting and gives
in-flight RPCs the grace period, then the mirror and etcd channel close.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Awaitable, Callable

import grpc

from configsvc.auth.rules import SCOPE_FLAGD_SELECTOR
from configsvc.auth.runtime import AuthRuntime
from configsvc.events.publisher import Publisher
from configsvc.events.webhooks.dispatch import webhook_dispatcher
from configsvc.hier.guard import WriteGuard
from configsvc.hier.sensitive import RegisteredSensitiveFields
from configsvc.hier.state import StateCache
from configsvc.hier.watching import ResolvedViews
from configsvc.secrets import SecretsRuntime
from configsvc.server.config import ServerConfig
from configsvc.server.flags import FlagFeature
from configsvc.server.lifecycle import (
    PUBLISHER_HEALTH,
    Health,
    PortInUseError,
    auth_interceptors,
    closing,
    grpc_server,
    ofrep_listener,
    running,
)
from configsvc.server.services import Registration, ServerParts, build_services, service_names
from configsvc.server.tls import ReloadingCredentials
from configsvc.store.etcd import EtcdClient
from configsvc.store.keyspace import Keyspace
from configsvc.store.mirror import Mirror
from configsvc.store.writer import Writer
from configsvc.watch.hub import WatchHub

__all__ = ["PUBLISHER_HEALTH", "ConfigServer", "PortInUseError", "run", "tune_gc"]

log = logging.getLogger(__name__)


class ConfigServer:
    """One server process: etcd client, mirror, writer, gRPC services."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.keyspace = Keyspace(config.root_prefix)
        self.etcd = EtcdClient(
            config.etcd_endpoints, tls=config.etcd_tls, timeout=config.etcd_timeout
        )
        self.mirror = Mirror(
            self.etcd,
            self.keyspace,
            backoff_min=config.mirror_backoff[0],
            backoff_max=config.mirror_backoff[1],
            liveness=config.mirror_liveness,
        )
        self.writer = Writer(self.etcd, self.keyspace, self.mirror)
        self.hub = WatchHub(self.mirror, config.watch)
        self.guard = WriteGuard(self.mirror, self.keyspace, StateCache(self.mirror, self.keyspace))
        self.resolved_views = ResolvedViews(
            self.mirror, self.keyspace, self.guard.states, config.watch.lost_etcd_grace
        )
        self.auth = AuthRuntime(
            config.auth, config.tls, self.mirror, self.keyspace, self.writer, self.hub
        )
        # With auth on, role bindings (secret-reader) decide who reads secret plaintext;
        # the --secret-readers list only applies with --auth off.
        self.secrets = SecretsRuntime(
            config.secrets,
            self.mirror,
            self.writer,
            self.keyspace,
            sensitive=RegisteredSensitiveFields(self.guard.states),
            policy=self.auth.secret_policy if self.auth.enabled else None,
        )
        self.auth.stream_resetters.append(self.resolved_views.reset_where)
        self.interceptors = auth_interceptors(self.auth)
        #: The gRPC server's TLS (certificates re-read when their files change), if any.
        self.tls = ReloadingCredentials(config.tls) if config.tls is not None else None
        self.flags = FlagFeature(config, self.mirror, self.writer, self.etcd, self.keyspace)
        # The flagd RPCs name their flag set in a header, read by this scope reader;
        # OFREP (HTTP, outside the interceptor) admits through admit_http.
        self.auth.add_scoper(SCOPE_FLAGD_SELECTOR, self.flags.selector_scopes)
        self.health = Health()
        self.port = 0
        self.publisher = (
            Publisher(self.etcd, self.keyspace, config.events, on_health=self.health.on_publisher)
            if config.events.enabled
            else None
        )
        self.webhooks = (
            webhook_dispatcher(
                self.etcd, self.keyspace, self.mirror, config.webhooks, self.secrets.vault
            )
            if config.webhooks.enabled
            else None
        )
        self._server: grpc.aio.Server | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._grace = config.grace_period

    def parts(self) -> ServerParts:
        """The parts every service is built from (``configsvc.server.services``)."""
        return ServerParts(
            config=self.config,
            keyspace=self.keyspace,
            etcd=self.etcd,
            mirror=self.mirror,
            writer=self.writer,
            hub=self.hub,
            guard=self.guard,
            resolved_views=self.resolved_views,
            auth=self.auth,
            secrets=self.secrets,
            flags=self.flags,
            publisher=self.publisher,
        )

    async def start(self) -> int:
        """Bind, start serving and start the mirror; returns the bound port.

        Every component enters one exit stack; ``stop`` (or a component that fails to
        start) unwinds it in exactly the reverse order.
        """
        registrations = build_services(self.parts())
        stack = contextlib.AsyncExitStack()
        try:
            await self._enter(stack, registrations)
        except BaseException:
            await stack.aclose()
            self._server = None
            raise
        self._stack = stack
        log.info(
            "configsvc listening",
            extra={
                "listen": self.config.listen,
                "port": self.port,
                "root_prefix": self.config.root_prefix,
            },
        )
        return self.port

    async def _enter(
        self, stack: contextlib.AsyncExitStack, registrations: tuple[Registration, ...]
    ) -> None:
        """Start the components, lowest first; each stops when the stack unwinds."""
        enter = stack.enter_async_context
        config = self.config
        await enter(closing(self.etcd.close))
        # Health says NOT_SERVING until the mirror has synced, even once the port is open.
        await enter(self.health.following(self.mirror, service_names(registrations)))
        await enter(running(self.mirror.start, self.mirror.stop))
        await enter(running(self.auth.start, self.auth.stop))
        await enter(running(self.secrets.start, self.secrets.stop))
        await enter(
            grpc_server(
                registrations,
                self.health,
                self.interceptors,
                self.tls.credentials() if self.tls is not None else None,
                config.listen,
                config.reuse_port,
                lambda: self._grace,
                self._serving,
            )
        )
        await enter(
            ofrep_listener(
                self.flags,
                config.ofrep_listen,
                self.auth.admit_http if self.auth.enabled else None,
                config.http,
            )
        )
        await enter(closing(self._shutdown_views))
        if self.webhooks is not None:
            await enter(running(self.webhooks.start, self.webhooks.stop))
        if self.publisher is not None:
            await self.health.set(True, (PUBLISHER_HEALTH,))
            # Its exit revokes the lease: a successor replica takes over at once.
            await enter(running(self.publisher.start, self.publisher.stop))
        # Its exit ends every stream with UNAVAILABLE: "resume elsewhere".
        await enter(running(self.hub.start, self.hub.shutdown))
        await enter(self.health.draining())

    def _serving(self, server: grpc.aio.Server, port: int) -> None:
        self._server = server
        self.port = port

    async def _shutdown_views(self) -> None:
        self.resolved_views.shutdown()

    async def stop(self, grace: float | None = None) -> None:
        """Drain and stop; safe to call twice."""
        if self._stack is None:
            return
        stack, self._stack = self._stack, None
        self._server = None
        self._grace = self.config.grace_period if grace is None else grace
        await stack.aclose()
        log.info("configsvc stopped")

    async def wait_for_termination(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()


def tune_gc() -> None:
    """Process-wide GC settings for a long-running server (not applied in tests).

    With thousands of streams, profiles showed a third of the server's CPU in
    the cyclic collector walking long-lived futures and frames: start-up
    objects are frozen out of collection, and young collections run less
    often (the default threshold, 700 allocations, is tuned for scripts).
    """
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


async def run(
    config: ServerConfig,
    *,
    on_ready: Callable[[ConfigServer], Awaitable[None]] | None = None,
) -> None:
    """Run until SIGINT or SIGTERM, then shut down gracefully."""
    server = ConfigServer(config)
    await server.start()
    tune_gc()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if on_ready is not None:
            await on_ready(server)
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        log.info("shutting down")
        await server.stop()
