"""Acceptance: every RPC the server registers, for every role, on its own scope, another
environment and another tenant, and without credentials: the exact status code.

The methods come from the running server (reflection + descriptors), so an RPC
added without a row in ``EXPECT`` (and a rule in ``configsvc.auth.rules``)
fails here. Roles are bound on (tenant A, environment prod); ``root`` is the
bootstrap admin (tenant ``*``). Write methods get their precondition (an
existing entry) restored by root before each call, so OK is exact.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from configsvc.auth.rules import METHOD_RULES
from configsvc.flags.pool import POOL, reflection_pool
from configsvc.v1 import (
    auth_pb2,
    config_pb2,
    tenant_pb2,
    watch_pb2,
)
from tests.helpers import ADMIN_KEY, Stack, ckey
from tests.integration.auth import flag_requests as flag_rows
from tests.integration.auth import merged_requests as merged
from tests.integration.auth.support import admin, channel_for, principal, unique
from tests.integration.hier.support import Hier, hier_stubs

OK, DENIED, UNAUTH = (
    grpc.StatusCode.OK,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
)
ROLES = {
    "viewer": auth_pb2.ROLE_VIEWER,
    "editor": auth_pb2.ROLE_EDITOR,
    "admin": auth_pb2.ROLE_ADMIN,
    "secret-reader": auth_pb2.ROLE_SECRET_READER,
    "auditor": auth_pb2.ROLE_AUDITOR,
}
EVERYONE = {"viewer", "editor", "admin", "secret-reader", "auditor", "root"}
READERS = {"viewer", "editor", "admin", "auditor", "root"}
WRITERS = {"editor", "admin", "root"}
ROOT = {"root"}
TARGETS = ("own", "other-env", "other-tenant")
PUBLIC = "public"
#: What public methods answer when not OK: the aio HealthServicer of
#: grpcio-health-checking 1.85 does not implement List.
PUBLIC_CODES = {"/grpc.health.v1.Health/List": grpc.StatusCode.UNIMPLEMENTED}

_C, _T, _W, _A = (
    "/configsvc.v1.ConfigService/",
    "/configsvc.v1.TenantService/",
    "/configsvc.v1.WatchService/",
    "/configsvc.v1.AuthService/",
)

#: Who gets OK per target; everyone else PERMISSION_DENIED, no credential UNAUTHENTICATED.
#: One target ("own") for installation-wide methods. Tenant-level methods (GetTenant,
#: GetTenantQuota) need a binding on every environment, which only root has here.
EXPECT: dict[str, dict[str, set[str]] | str] = {
    _C + "Get": {"own": READERS, "other-env": ROOT, "other-tenant": ROOT},
    _C + "BatchGet": {"own": READERS, "other-env": ROOT, "other-tenant": ROOT},
    _C + "List": {"own": READERS, "other-env": ROOT, "other-tenant": ROOT},
    _C + "Resolve": {"own": READERS, "other-env": ROOT, "other-tenant": ROOT},
    _C + "History": {"own": READERS, "other-env": ROOT, "other-tenant": ROOT},
    _C + "Put": {"own": WRITERS, "other-env": ROOT, "other-tenant": ROOT},
    _C + "Delete": {"own": WRITERS, "other-env": ROOT, "other-tenant": ROOT},
    _C + "Rollback": {"own": WRITERS, "other-env": ROOT, "other-tenant": ROOT},
    _W + "Watch": {"own": READERS, "other-env": ROOT, "other-tenant": ROOT},
    _T + "GetTenant": {"own": ROOT, "other-tenant": ROOT},
    _T + "ListTenants": {"own": ROOT},
    _T + "CreateTenant": {"own": ROOT},
    _A + "CreateApiKey": {"own": ROOT},
    _A + "ListApiKeys": {"own": ROOT},
    _A + "RevokeApiKey": {"own": ROOT},
    _A + "CreateRoleBinding": {"own": ROOT},
    _A + "ListRoleBindings": {"own": ROOT},
    _A + "DeleteRoleBinding": {"own": ROOT},
    _A + "SetTenantQuota": {"own": ROOT},
    _A + "GetTenantQuota": {"own": ROOT, "other-tenant": ROOT},
    _A + "WhoAmI": {"own": EVERYONE},
    "/grpc.health.v1.Health/Check": PUBLIC,
    "/grpc.health.v1.Health/Watch": PUBLIC,
    "/grpc.health.v1.Health/List": PUBLIC,
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": PUBLIC,
    **merged.EXPECT,
    **flag_rows.EXPECT,
}


class World:
    """Two tenants with entries in prod and staging, and the root stub to prepare."""

    def __init__(self, stack: Stack, own: str, other: str) -> None:
        self.stack = stack
        self.tenants = {"own": own, "other-env": own, "other-tenant": other}
        self.envs = {"own": "prod", "other-env": "staging", "other-tenant": "prod"}
        self.stubs: Hier = hier_stubs(stack)

    def key(self, target: str) -> config_pb2.ConfigKey:
        return ckey(self.tenants[target], "k", env=self.envs[target])

    async def put(self, target: str) -> None:
        await self.stack.config.Put(config_pb2.PutRequest(key=self.key(target), value="1"))


Build = Callable[[World, str], Awaitable[Any]]


async def _request(world: World, method: str, target: str) -> Any:
    """A request for ``method`` on ``target`` that succeeds for an authorized caller."""
    if method in merged.EXPECT:
        return await merged.request(world, method, target)
    if method in flag_rows.EXPECT:
        return await flag_rows.request(world, method, target)
    t, env, key = world.tenants[target], world.envs[target], world.key(target)
    name = method.rsplit("/", 1)[1]
    root = admin(world.stack)
    if name in ("Delete", "Rollback", "History", "Get", "BatchGet"):
        await world.put(target)
    match name:
        case "Get":
            return config_pb2.GetRequest(key=key)
        case "BatchGet":
            return config_pb2.BatchGetRequest(keys=[key])
        case "List":
            return config_pb2.ListRequest(tenant=t, environment=env)
        case "Resolve":
            return config_pb2.ResolveRequest(tenant=t, environment=env, service="api")
        case "History":
            return config_pb2.HistoryRequest(key=key)
        case "Put":
            return config_pb2.PutRequest(key=key, value="2")
        case "Delete":
            return config_pb2.DeleteRequest(key=key)
        case "Rollback":
            return config_pb2.RollbackRequest(key=key, to_version=1)
        case "Watch":
            return watch_pb2.WatchRequest(
                selectors=[watch_pb2.WatchSelector(tenant=t, environment=env)], send_snapshot=True
            )
        case "GetTenant":
            return tenant_pb2.GetTenantRequest(name=t)
        case "ListTenants":
            return tenant_pb2.ListTenantsRequest()
        case "CreateTenant":
            return tenant_pb2.CreateTenantRequest(name=unique("made"))
        case "CreateApiKey":
            return auth_pb2.CreateApiKeyRequest(name=unique("k"))
        case "ListApiKeys":
            return auth_pb2.ListApiKeysRequest()
        case "RevokeApiKey":
            made = await root.CreateApiKey(auth_pb2.CreateApiKeyRequest(name=unique("r")))
            return auth_pb2.RevokeApiKeyRequest(id=made.api_key.id)
        case "CreateRoleBinding":
            return auth_pb2.CreateRoleBindingRequest(
                binding=auth_pb2.RoleBinding(
                    subject="key:nobody", role=auth_pb2.ROLE_VIEWER, tenant=t
                )
            )
        case "ListRoleBindings":
            return auth_pb2.ListRoleBindingsRequest()
        case "DeleteRoleBinding":
            made_binding = await root.CreateRoleBinding(
                auth_pb2.CreateRoleBindingRequest(
                    binding=auth_pb2.RoleBinding(
                        subject="key:nobody", role=auth_pb2.ROLE_VIEWER, tenant=t
                    )
                )
            )
            return auth_pb2.DeleteRoleBindingRequest(id=made_binding.binding.id)
        case "SetTenantQuota":
            return auth_pb2.SetTenantQuotaRequest(quota=auth_pb2.TenantQuota(tenant=t))
        case "GetTenantQuota":
            return auth_pb2.GetTenantQuotaRequest(tenant=t)
        case "WhoAmI":
            return auth_pb2.WhoAmIRequest()
        case "Check" | "Watch":
            return health_pb2.HealthCheckRequest()
        case "List":
            return health_pb2.HealthListRequest()
        case "ServerReflectionInfo":
            return reflection_pb2.ServerReflectionRequest(list_services="")
    raise AssertionError(f"no request for {method}: add one")


async def _code(channel: grpc.aio.Channel, method: str, request: Any) -> grpc.StatusCode:
    """The status of one call; ``request`` may be (request, metadata)."""
    request, metadata = request if isinstance(request, tuple) else (request, None)
    service, name = method.lstrip("/").rsplit("/", 1)
    pool = POOL if method in flag_rows.FLAGD_METHODS else descriptor_pool.Default()
    described = pool.FindServiceByName(service).methods_by_name[name]
    response = GetMessageClass(described.output_type)
    try:
        if described.client_streaming:
            call = channel.stream_stream(
                method,
                request_serializer=type(request).SerializeToString,
                response_deserializer=response.FromString,
            )(iter([request]), timeout=10)
            await call.read()
            call.cancel()
        elif described.server_streaming:
            call = channel.unary_stream(
                method,
                request_serializer=type(request).SerializeToString,
                response_deserializer=response.FromString,
            )(request, timeout=10, metadata=metadata)
            await call.read()  # first message, or the error
            call.cancel()
        else:
            await channel.unary_unary(
                method,
                request_serializer=type(request).SerializeToString,
                response_deserializer=response.FromString,
            )(request, timeout=10, metadata=metadata)
    except grpc.aio.AioRpcError as err:
        return err.code()
    return OK


async def served_methods(stack: Stack) -> set[str]:
    """Every method of every service the running server lists by reflection (the flagd
    services included, though their descriptors live in a private pool)."""
    stub = reflection_pb2_grpc.ServerReflectionStub(stack.channel)  # type: ignore[no-untyped-call]
    call = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    reply = await call.read()
    call.cancel()
    names = [s.name for s in reply.list_services_response.service]
    pool = reflection_pool(names)
    return {f"/{name}/{m.name}" for name in names for m in pool.FindServiceByName(name).methods}


async def test_every_served_method_has_a_rule_and_a_row(stack: Stack) -> None:
    methods = await served_methods(stack)
    assert "/configsvc.v1.ConfigService/Get" in methods
    assert methods == set(EXPECT), "add the method to EXPECT here and to auth/rules.py"
    assert methods == set(METHOD_RULES), "configsvc.auth.rules must name exactly these"


@pytest.fixture
async def world(stack: Stack, tenant: str) -> World:
    other = unique("other")
    await stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name=other))
    made = World(stack, tenant, other)
    for target in TARGETS:
        await made.put(target)
    await merged.prepare(made)
    return made


async def test_every_rpc_for_every_role_and_scope(stack: Stack, world: World) -> None:
    own = world.tenants["own"]
    keys: dict[str, str | None] = {"root": ADMIN_KEY, "anonymous": None}
    for role, value in ROLES.items():
        keys[role] = (await principal(stack, value, own, "prod"))[1]
    channels = {who: channel_for(stack, key) for who, key in keys.items()}
    failures = []
    try:
        for method in sorted(await served_methods(stack)):
            expected = EXPECT[method]
            for who, channel in channels.items():
                targets = ("own",) if expected == PUBLIC else tuple(expected)
                for target in targets:
                    request = await _request(world, method, target)
                    if expected == PUBLIC:
                        want = PUBLIC_CODES.get(method, OK)
                    elif who == "anonymous":
                        want = UNAUTH
                    else:
                        assert isinstance(expected, dict)
                        want = (
                            merged.ADMITTED_CODES.get(method, OK)
                            if who in expected[target]
                            else DENIED
                        )
                    got = await _code(channel, method, request)
                    if got != want:
                        failures.append(
                            f"{method} as {who} on {target}: {got.name}, expected {want.name}"
                        )
    finally:
        for channel in channels.values():
            await channel.close()
    assert not failures, "\n".join(failures)
