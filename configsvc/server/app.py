"""Assembles and runs one configsvc server process.

Start order matters: the mirror starts first and the port opens at once, but
health reports NOT_SERVING until the mirror is synced, so load balancers and
Kubernetes probes only send traffic to a replica that can answer. Shutdown is
the reverse: health goes NOT_SERVING, the server stops accepting and gives
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
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from configsvc.api.audit_service import AuditService
from configsvc.api.auth_service import AuthService
from configsvc.api.config_service import ConfigService, ServiceLimits
from configsvc.api.event_service import EventService
from configsvc.api.tenant_service import TenantService
from configsvc.api.watch_service import WatchService
from configsvc.api.webhook_service import WebhookService
from configsvc.auth.runtime import AuthRuntime
from configsvc.events.publisher import Publisher
from configsvc.events.webhooks.dispatch import webhook_dispatcher
from configsvc.flags.pool import reflection_pool
from configsvc.flags.service import FlagServices
from configsvc.hier.guard import WriteGuard
from configsvc.hier.sensitive import RegisteredSensitiveFields
from configsvc.hier.services import HIERARCHY_SERVICE_NAMES, hierarchy_services
from configsvc.hier.state import StateCache
from configsvc.hier.watching import ResolvedViews
from configsvc.rpc.registry import GenericOnly, register_service
from configsvc.secrets import SecretsRuntime
from configsvc.secrets.service import SecretService
from configsvc.server.config import ServerConfig
from configsvc.store.etcd import EtcdClient
from configsvc.store.keyspace import Keyspace
from configsvc.store.mirror import Mirror
from configsvc.store.writer import Writer
from configsvc.v1 import (
    audit_query_pb2,
    auth_pb2,
    config_pb2,
    events_pb2,
    secrets_pb2,
    tenant_pb2,
    watch_pb2,
    webhooks_pb2,
)
from configsvc.watch.hub import WatchHub

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    config_pb2.DESCRIPTOR.services_by_name["ConfigService"].full_name,
    tenant_pb2.DESCRIPTOR.services_by_name["TenantService"].full_name,
    watch_pb2.DESCRIPTOR.services_by_name["WatchService"].full_name,
    secrets_pb2.DESCRIPTOR.services_by_name["SecretService"].full_name,
    events_pb2.DESCRIPTOR.services_by_name["EventService"].full_name,
    audit_query_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name,
    webhooks_pb2.DESCRIPTOR.services_by_name["WebhookService"].full_name,
    *HIERARCHY_SERVICE_NAMES,
    auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name,
)
#: Health entry of the change-event publisher: NOT_SERVING while this replica leads
#: and cannot publish (Pulsar down: a backlog builds). The server itself stays SERVING.
PUBLISHER_HEALTH = "configsvc.events.Publisher"

_SERVER_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_receive_message_length", 4 * 1024 * 1024),
]


class PortInUseError(RuntimeError):
    """The listen address could not be bound."""


class ConfigServer:
    """One server process: etcd client, mirror, writer, gRPC services."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.keyspace = Keyspace(config.root_prefix)
        self.etcd = EtcdClient(config.etcd_endpoints, tls=config.etcd_tls,
                               timeout=config.etcd_timeout)
        self.mirror = Mirror(self.etcd, self.keyspace, backoff_min=config.mirror_backoff[0],
                             backoff_max=config.mirror_backoff[1],
                             liveness=config.mirror_liveness)
        self.writer = Writer(self.etcd, self.keyspace, self.mirror)
        self.hub = WatchHub(self.mirror, config.watch)
        self.guard = WriteGuard(self.mirror, self.keyspace, StateCache(self.mirror, self.keyspace))
        self.resolved_views = ResolvedViews(self.mirror, self.keyspace, self.guard.states,
                                            config.watch.lost_etcd_grace)
        self.auth = AuthRuntime(config.auth, config.tls, self.mirror, self.keyspace,
                                self.writer, self.hub)
        # With auth on, role bindings (secret-reader) decide who reads secret plaintext;
        # the --secret-readers list only applies with --auth off.
        self.secrets = SecretsRuntime(config.secrets, self.mirror, self.writer, self.keyspace,
                                      sensitive=RegisteredSensitiveFields(self.guard.states),
                                      policy=self.auth.secret_policy if self.auth.enabled
                                      else None)
        self.auth.stream_resetters.append(self.resolved_views.reset_where)
        self.flags = FlagServices(self)
        self.health = health.aio.HealthServicer()
        self._server: grpc.aio.Server | None = None
        self._health_tasks: set[asyncio.Task[None]] = set()
        self.port = 0
        self.publisher = (Publisher(self.etcd, self.keyspace, config.events,
                                    on_health=self._on_publisher_health)
                          if config.events.enabled else None)
        self.webhooks = (webhook_dispatcher(self.etcd, self.keyspace, self.mirror,
                                            config.webhooks, self.secrets.vault)
                         if config.webhooks.enabled else None)

    async def start(self) -> int:
        """Bind, start serving and start the mirror; returns the bound port."""
        # One process per port unless --workers asks for sharing: a busy port must fail loudly.
        options = [*_SERVER_OPTIONS, ("grpc.so_reuseport", 1 if self.config.reuse_port else 0)]
        server = grpc.aio.server(options=options, interceptors=self.auth.interceptors())
        limits = ServiceLimits(request_timeout=self.config.request_timeout)
        register_service(server, config_pb2.DESCRIPTOR.services_by_name["ConfigService"],
                         ConfigService(self.mirror, self.writer, self.keyspace, limits,
                                       secrets=self.secrets.gateway, guard=self.guard),
                         raw_responses={"Get", "Resolve", "Put"}, registered={"Get"})
        register_service(server, tenant_pb2.DESCRIPTOR.services_by_name["TenantService"],
                         TenantService(self.mirror, self.writer, self.config.request_timeout))
        register_service(server, watch_pb2.DESCRIPTOR.services_by_name["WatchService"],
                         WatchService(self.mirror, self.hub, secrets=self.secrets,
                                      resolved=self.resolved_views),
                         raw_responses={"Watch"}, raw_requests={"Watch"})
        register_service(server, secrets_pb2.DESCRIPTOR.services_by_name["SecretService"],
                         SecretService(self.secrets.gateway, self.mirror, self.writer,
                                       self.config.request_timeout, keyspace=self.keyspace))
        register_service(server, events_pb2.DESCRIPTOR.services_by_name["EventService"],
                         EventService(self.mirror, self.keyspace, self.publisher))
        register_service(server, audit_query_pb2.DESCRIPTOR.services_by_name["AuditService"],
                         AuditService(self.mirror, self.etcd, self.keyspace,
                                      self.config.request_timeout))
        register_service(server, webhooks_pb2.DESCRIPTOR.services_by_name["WebhookService"],
                         WebhookService(self.mirror, self.writer, self.etcd, self.keyspace,
                                        self.config.webhooks, self.config.request_timeout,
                                        vault=self.secrets.vault))
        for descriptor, servicer in hierarchy_services(self, limits):
            register_service(server, descriptor, servicer)
        register_service(server, auth_pb2.DESCRIPTOR.services_by_name["AuthService"],
                         AuthService(self.mirror, self.auth.admin, self.config.request_timeout))
        self.flags.register(server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, GenericOnly(server))
        reflected = (*SERVICE_NAMES, *self.flags.service_names,
                     health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                     reflection.SERVICE_NAME)
        # What enable_server_reflection does for an aio server, minus the registered methods.
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
            reflection.aio.ReflectionServicer(reflected, pool=reflection_pool(reflected)),
            GenericOnly(server))
        try:
            self.port = (server.add_secure_port(self.config.listen, self.auth.tls.credentials())
                         if self.auth.tls is not None
                         else server.add_insecure_port(self.config.listen))
        except RuntimeError as exc:
            raise PortInUseError(
                f"cannot listen on {self.config.listen}: the port is in use or the address is "
                "not local; choose another with --listen (or --grpc-port for dev)"
            ) from exc
        await self.flags.start()  # binds the OFREP port, if any, before anything runs
        await self._set_health(False)
        self.mirror.add_sync_listener(self._on_sync)
        await server.start()
        self._server = server
        self.mirror.start()
        self.hub.start()
        self.secrets.start()
        if self.publisher is not None:
            await self._set_health(True, (PUBLISHER_HEALTH,))
            self.publisher.start()
        if self.webhooks is not None:
            self.webhooks.start()
        self.auth.start()
        log.info("configsvc listening", extra={"listen": self.config.listen, "port": self.port,
                                               "root_prefix": self.config.root_prefix})
        return self.port

    def _on_sync(self, synced: bool) -> None:
        self._health_soon(synced, ("", *SERVICE_NAMES))

    def _on_publisher_health(self, healthy: bool) -> None:
        self._health_soon(healthy, (PUBLISHER_HEALTH,))

    def _health_soon(self, serving: bool, names: tuple[str, ...]) -> None:
        """Set health from a synchronous listener (the setter is a coroutine)."""
        task = asyncio.get_running_loop().create_task(self._set_health(serving, names))
        self._health_tasks.add(task)
        task.add_done_callback(self._health_tasks.discard)

    async def _set_health(self, serving: bool,
                          names: tuple[str, ...] = ("", *SERVICE_NAMES)) -> None:
        status = (health_pb2.HealthCheckResponse.SERVING if serving
                  else health_pb2.HealthCheckResponse.NOT_SERVING)
        for name in names:
            await self.health.set(name, status)

    async def stop(self, grace: float | None = None) -> None:
        """Drain and stop; safe to call twice."""
        if self._server is None:
            return
        server, self._server = self._server, None
        await self.health.enter_graceful_shutdown()
        await self.hub.shutdown()  # streams end with UNAVAILABLE: "resume elsewhere"
        if self.publisher is not None:
            await self.publisher.stop()  # revokes the lease: a successor takes over at once
        if self.webhooks is not None:
            await self.webhooks.stop()
        self.resolved_views.shutdown()
        await self.flags.stop()
        await server.stop(self.config.grace_period if grace is None else grace)
        await self.secrets.stop()
        await self.auth.stop()
        await self.mirror.stop()
        for task in list(self._health_tasks):
            task.cancel()
        await self.etcd.close()
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
