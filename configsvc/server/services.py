"""Every gRPC service of one server process, built in one place from explicit parts.

Like etcd's ``v3rpc/grpc.go``: one function (``build_services``) constructs each
servicer from the parts it needs and returns the registrations; the server registers
exactly that list, and the names reflection and health report are derived from it
(``service_names``), so a new service cannot be served yet missing from either.
A new RPC service goes here: its servicer in ``configsvc/api/``, one
``Registration`` below.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from configsvc.api.audit_service import AuditService
from configsvc.api.auth_service import AuthService
from configsvc.api.config_service import ConfigService, ServiceLimits
from configsvc.api.environment_service import EnvironmentService
from configsvc.api.event_service import EventService
from configsvc.api.flag_service import FlagManagementService
from configsvc.api.flagd_service import EvaluationService, SyncService
from configsvc.api.hierarchy_service import HierarchyService
from configsvc.api.secret_service import SecretService
from configsvc.api.template_service import TemplateService
from configsvc.api.tenant_service import TenantService
from configsvc.api.validation_service import ValidationService
from configsvc.api.watch_service import WatchService
from configsvc.api.webhook_service import WebhookService
from configsvc.auth.runtime import AuthRuntime
from configsvc.events.publisher import Publisher
from configsvc.flags._gen.flagd.evaluation.v1 import evaluation_pb2
from configsvc.flags._gen.flagd.evaluation.v2 import evaluation_pb2 as evaluation_v2_pb2
from configsvc.flags._gen.flagd.sync.v1 import sync_pb2
from configsvc.hier.guard import WriteGuard
from configsvc.hier.watching import ResolvedViews
from configsvc.rpc.registry import register_service
from configsvc.secrets import SecretsRuntime
from configsvc.server.config import ServerConfig
from configsvc.server.flags import FlagFeature
from configsvc.store.etcd import EtcdClient
from configsvc.store.keyspace import Keyspace
from configsvc.store.mirror import Mirror
from configsvc.store.writer import Writer
from configsvc.v1 import (
    audit_query_pb2,
    auth_pb2,
    config_pb2,
    environment_pb2,
    events_pb2,
    flags_pb2,
    hierarchy_pb2,
    secrets_pb2,
    template_pb2,
    tenant_pb2,
    validation_pb2,
    watch_pb2,
    webhooks_pb2,
)
from configsvc.watch.hub import WatchHub

#: The flagd services (private descriptor pool; reflection serves them from
#: ``configsvc.flags.pool.reflection_pool``).
FLAGD_SERVICES: tuple[ServiceDescriptor, ...] = (
    evaluation_pb2.DESCRIPTOR.services_by_name["Service"],
    evaluation_v2_pb2.DESCRIPTOR.services_by_name["Service"],
    sync_pb2.DESCRIPTOR.services_by_name["FlagSyncService"],
)


@dataclass(frozen=True)
class ServerParts:
    """What the services are built from: the long-lived parts of one server process.

    Each servicer takes the few of these it needs; nothing gets the server itself.
    """

    config: ServerConfig
    keyspace: Keyspace
    etcd: EtcdClient
    mirror: Mirror
    writer: Writer
    hub: WatchHub
    guard: WriteGuard
    resolved_views: ResolvedViews
    auth: AuthRuntime
    secrets: SecretsRuntime
    flags: FlagFeature
    publisher: Publisher | None


@dataclass(frozen=True)
class Registration:
    """One service to serve: its descriptor, its servicer and how ``register_service``
    treats its methods (pre-encoded answers, raw requests, registered-method fast path)."""

    descriptor: ServiceDescriptor
    servicer: Any
    raw_responses: frozenset[str] = frozenset()
    raw_requests: frozenset[str] = frozenset()
    registered: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        return str(self.descriptor.full_name)


def _service(module: Any, name: str) -> ServiceDescriptor:
    descriptor: ServiceDescriptor = module.DESCRIPTOR.services_by_name[name]
    return descriptor


def build_services(parts: ServerParts) -> tuple[Registration, ...]:
    """Every service this process serves, in registration order."""
    config, mirror, writer, keyspace = parts.config, parts.mirror, parts.writer, parts.keyspace
    timeout = config.request_timeout
    gateway = parts.secrets.gateway
    hier = (mirror, writer, keyspace, parts.guard)
    flags = parts.flags
    evaluation, evaluation_v2, sync = FLAGD_SERVICES
    return (
        Registration(
            _service(config_pb2, "ConfigService"),
            ConfigService(
                mirror,
                writer,
                keyspace,
                ServiceLimits(request_timeout=timeout),
                secrets=gateway,
                guard=parts.guard,
            ),
            raw_responses=frozenset({"Get", "Resolve", "Put"}),
            registered=frozenset({"Get"}),
        ),
        Registration(_service(tenant_pb2, "TenantService"), TenantService(mirror, writer, timeout)),
        Registration(
            _service(watch_pb2, "WatchService"),
            WatchService(mirror, parts.hub, secrets=parts.secrets, resolved=parts.resolved_views),
            raw_responses=frozenset({"Watch"}),
            raw_requests=frozenset({"Watch"}),
        ),
        Registration(
            _service(secrets_pb2, "SecretService"),
            SecretService(gateway, mirror, writer, timeout, keyspace=keyspace),
        ),
        Registration(
            _service(events_pb2, "EventService"), EventService(mirror, keyspace, parts.publisher)
        ),
        Registration(
            _service(audit_query_pb2, "AuditService"),
            AuditService(mirror, parts.etcd, keyspace, timeout),
        ),
        Registration(
            _service(webhooks_pb2, "WebhookService"),
            WebhookService(
                mirror,
                writer,
                parts.etcd,
                keyspace,
                config.webhooks,
                timeout,
                vault=parts.secrets.vault,
            ),
        ),
        Registration(
            _service(validation_pb2, "ValidationService"), ValidationService(*hier, timeout)
        ),
        Registration(
            _service(environment_pb2, "EnvironmentService"), EnvironmentService(*hier, timeout)
        ),
        Registration(_service(template_pb2, "TemplateService"), TemplateService(*hier, timeout)),
        Registration(
            _service(hierarchy_pb2, "HierarchyService"),
            HierarchyService(*hier, parts.etcd, timeout, secrets=gateway),
        ),
        Registration(
            _service(auth_pb2, "AuthService"), AuthService(mirror, parts.auth.admin, timeout)
        ),
        Registration(evaluation, EvaluationService(flags.core, flags.events)),
        Registration(evaluation_v2, EvaluationService(flags.core, flags.events, evaluation_v2_pb2)),
        Registration(sync, SyncService(flags.core, flags.events)),
        Registration(
            _service(flags_pb2, "FlagService"),
            FlagManagementService(flags.store, flags.analytics, timeout),
        ),
    )


def service_names(registrations: Iterable[Registration]) -> tuple[str, ...]:
    """The full names of the registered services (what reflection and health list)."""
    return tuple(registration.name for registration in registrations)


def register_all(server: grpc.aio.Server, registrations: Sequence[Registration]) -> None:
    for registration in registrations:
        register_service(
            server,
            registration.descriptor,
            registration.servicer,
            raw_responses=registration.raw_responses,
            raw_requests=registration.raw_requests,
            registered=registration.registered,
        )
