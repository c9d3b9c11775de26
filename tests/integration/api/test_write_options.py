"""Every write is built from one ``WriteOptions``: tenants and records carry the trace id too.

Put/Delete/Rollback always recorded the caller's W3C trace id; tenant creation and record
writes (environments, webhooks, ...) built their audit records by hand and left it out.
Now ``WriteOptions.of_call`` takes actor, trace id and time budget from every call the
same way. Read back from etcd itself (the audit keys, not an API view of them).
"""

from __future__ import annotations

import os

from configsvc.v1 import audit_pb2, config_pb2, environment_pb2, environment_pb2_grpc, tenant_pb2
from tests.helpers import Stack, ckey

TRACE = "5e0c63257de34c92bf9efcd03927272e"
TRACEPARENT = (("traceparent", f"00-{TRACE}-00f067aa0ba902b7-01"),)


async def _audits(stack: Stack, tenant: str) -> list[audit_pb2.AuditRecord]:
    server = stack.server
    kvs = await server.writer.scan(server.keyspace.audit_prefix(tenant), timeout=10)
    return [audit_pb2.AuditRecord.FromString(kv.value) for kv in kvs]


async def test_tenant_record_and_config_writes_all_record_the_trace_id(stack: Stack) -> None:
    tenant = f"traced-{os.getpid()}"
    await stack.tenants.CreateTenant(
        tenant_pb2.CreateTenantRequest(name=tenant), metadata=TRACEPARENT
    )
    await environment_pb2_grpc.EnvironmentServiceStub(stack.channel).CreateEnvironment(
        environment_pb2.CreateEnvironmentRequest(tenant=tenant, name="prod"), metadata=TRACEPARENT
    )
    await stack.config.Put(
        config_pb2.PutRequest(key=ckey(tenant, "k"), value="1", reason="first"),
        metadata=TRACEPARENT,
    )
    found = {(a.kind or "config"): a for a in await _audits(stack, tenant)}
    assert set(found) == {"tenant", "environment", "config"}
    assert {kind: a.trace_id for kind, a in found.items()} == dict.fromkeys(found, TRACE)
    assert found["config"].reason == "first"
    assert all(a.actor for a in found.values())
