"""The caller's W3C trace id reaches the audit records and events of every write path.

Put/Delete/Rollback carry it already (test_publisher); Promote and the transit rewrap
(config values and sealed webhook secrets) wrote their records without it. Real etcd,
real OpenBao (a private one: this test rotates its transit key), real pulsar-lite.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import hvac
import pytest

from configsvc.devstack.etcd import EtcdServer
from configsvc.devstack.openbao import OpenBaoDevServer
from configsvc.devstack.pulsar import PulsarLite
from configsvc.events.settings import WebhookSettings
from configsvc.v1 import (
    audit_pb2,
    config_pb2,
    hierarchy_pb2,
    hierarchy_pb2_grpc,
    secrets_pb2,
    secrets_pb2_grpc,
    tenant_pb2,
    webhooks_pb2,
    webhooks_pb2_grpc,
)
from tests.helpers import Stack, ckey, close_stack, open_stack, secret_settings
from tests.integration.events.support import Collector, event_settings, new_topic

pytestmark = pytest.mark.timeout(300)

TRANSIT_KEY = "configsvc"
PROMOTE_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
REWRAP_TRACE = "0af7651916cd43dd8448eb211c80319c"
#: Deliveries go nowhere (port 9 refuses); they are not what this test is about.
WEBHOOKS = WebhookSettings(
    allowed_hosts=("127.0.0.1",),
    max_attempts=1,
    retry_base=0.05,
    retry_max=0.2,
    poll_interval=0.05,
    lease_ttl=2,
    timeout=1.0,
)


def _traceparent(trace: str) -> tuple[tuple[str, str], ...]:
    return (("traceparent", f"00-{trace}-b7ad6b7169203331-01"),)


@pytest.fixture
async def traced(
    etcd: EtcdServer, pulsar_broker: PulsarLite, own_bao: OpenBaoDevServer, tmp_path: Path
) -> AsyncIterator[tuple[Stack, Collector, hvac.Client]]:
    topic = new_topic()
    collector = Collector(pulsar_broker.url, topic)
    stack = await open_stack(
        etcd.endpoint,
        f"/trace-{tmp_path.name}",
        events=event_settings(pulsar_broker.url, topic),
        webhooks=WEBHOOKS,
        secrets=secret_settings(own_bao),
    )
    bao = hvac.Client(url=own_bao.address, token=own_bao.token)
    try:
        yield stack, collector, bao
    finally:
        await close_stack(stack)
        collector.close()
        bao.adapter.close()


async def _audits(stack: Stack, tenant: str) -> list[tuple[int, audit_pb2.AuditRecord]]:
    """Every audit record of ``tenant`` with the revision it was written at."""
    kvs = await stack.server.etcd.range_all(stack.server.keyspace.audit_prefix(tenant))
    return [(int(kv.mod_revision), audit_pb2.AuditRecord.FromString(kv.value)) for kv in kvs]


async def test_promote_and_rewrap_records_and_events_carry_the_trace_id(
    traced: tuple[Stack, Collector, hvac.Client],
) -> None:
    stack, collector, bao = traced
    tenant = "acme"
    await stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name=tenant))
    # A value to promote, a value holding a transit ciphertext and a sealed webhook secret
    # (both made with key version 1).
    await stack.config.Put(
        config_pb2.PutRequest(key=ckey(tenant, "db.pool", env="staging"), value='{"max": 10}')
    )
    encrypted = bao.secrets.transit.encrypt_data(
        name=TRANSIT_KEY, plaintext=base64.b64encode(b"tk-7731").decode()
    )
    cipher = {"$encrypted": {"key": TRANSIT_KEY, "ciphertext": encrypted["data"]["ciphertext"]}}
    await stack.config.Put(
        config_pb2.PutRequest(key=ckey(tenant, "creds"), value=json.dumps({"token": cipher}))
    )
    hook = await webhooks_pb2_grpc.WebhookServiceStub(stack.channel).CreateWebhook(
        webhooks_pb2.CreateWebhookRequest(
            webhook=webhooks_pb2.Webhook(
                tenant=tenant, url="http://127.0.0.1:9/hook", secret="s3cret-signing-key"
            )
        )
    )

    promoted = await hierarchy_pb2_grpc.HierarchyServiceStub(stack.channel).Promote(
        hierarchy_pb2.PromoteRequest(
            tenant=tenant, service="api", source_environment="staging", target_environment="prod"
        ),
        metadata=_traceparent(PROMOTE_TRACE),
    )
    assert list(promoted.keys) == ["db.pool"]
    bao.secrets.transit.rotate_key(name=TRANSIT_KEY)
    rewrapped = await secrets_pb2_grpc.SecretServiceStub(stack.channel).RewrapCiphertexts(
        secrets_pb2.RewrapCiphertextsRequest(tenant=tenant), metadata=_traceparent(REWRAP_TRACE)
    )
    assert [k.key for k in rewrapped.rewrapped] == ["creds"]
    assert list(rewrapped.rewrapped_webhooks) == [hook.webhook.id]

    audits = await _audits(stack, tenant)
    promote_records = [(rev, a) for rev, a in audits if a.attributes.get("promoted_from")]
    rewrap_records = [
        (rev, a)
        for rev, a in audits
        if a.reason == "transit rewrap" or a.attributes.get("action") == "rewrap"
    ]
    assert [a.key.key for _, a in promote_records] == ["db.pool"]
    assert sorted(a.kind or "config" for _, a in rewrap_records) == ["config", "webhook"]
    assert {a.trace_id for _, a in promote_records} == {PROMOTE_TRACE}
    assert {a.trace_id for _, a in rewrap_records} == {REWRAP_TRACE}

    expected = {rev: PROMOTE_TRACE for rev, _ in promote_records}
    expected.update({rev: REWRAP_TRACE for rev, _ in rewrap_records})
    assert await collector.wait_for(expected) == set()
    events = {e.revision: e for _, e, _ in collector.received.events}
    assert {rev: events[rev].trace_id for rev in expected} == expected
