"""Every RPC that names a missing tenant answers NOT_FOUND with the same actionable message.

Before: config reads and record RPCs said how to create the tenant, while GetTenant,
GetTenantQuota, ListAudit, webhooks, Watch and the writer's own check said only
"tenant 'x' not found". One check (``configsvc.store.tenants``) now words them all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest

from configsvc.v1 import (
    audit_query_pb2,
    audit_query_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    config_pb2,
    environment_pb2,
    environment_pb2_grpc,
    tenant_pb2,
    watch_pb2,
    watch_pb2_grpc,
)
from tests.helpers import Stack, ckey

MISSING = "no-such-tenant"
MESSAGE = (
    f"tenant '{MISSING}' does not exist; create it first (CLI: configsvc tenant create {MISSING})"
)


def _calls(stack: Stack) -> dict[str, Callable[[], Any]]:
    key = ckey(MISSING, "k")
    channel = stack.channel
    return {
        "Get": lambda: stack.config.Get(config_pb2.GetRequest(key=key)),
        "Put": lambda: stack.config.Put(config_pb2.PutRequest(key=key, value="1")),
        "Delete": lambda: stack.config.Delete(config_pb2.DeleteRequest(key=key)),
        "GetTenant": lambda: stack.tenants.GetTenant(tenant_pb2.GetTenantRequest(name=MISSING)),
        "GetTenantQuota": lambda: auth_pb2_grpc.AuthServiceStub(channel).GetTenantQuota(
            auth_pb2.GetTenantQuotaRequest(tenant=MISSING)
        ),
        "ListAudit": lambda: audit_query_pb2_grpc.AuditServiceStub(channel).ListAudit(
            audit_query_pb2.ListAuditRequest(filter=audit_query_pb2.AuditFilter(tenant=MISSING))
        ),
        "ListEnvironments": lambda: environment_pb2_grpc.EnvironmentServiceStub(
            channel
        ).ListEnvironments(environment_pb2.ListEnvironmentsRequest(tenant=MISSING)),
    }


@pytest.mark.parametrize(
    "method",
    ["Get", "Put", "Delete", "GetTenant", "GetTenantQuota", "ListAudit", "ListEnvironments"],
)
async def test_a_missing_tenant_is_named_with_how_to_create_it(stack: Stack, method: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _calls(stack)[method]()
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert err.value.details() == MESSAGE


async def test_a_watch_of_a_missing_tenant_says_the_same(stack: Stack) -> None:
    call = watch_pb2_grpc.WatchServiceStub(stack.channel).Watch(
        watch_pb2.WatchRequest(selectors=[watch_pb2.WatchSelector(tenant=MISSING)])
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call.read()
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert err.value.details() == MESSAGE
