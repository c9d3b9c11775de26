"""The publisher against real etcd and pulsar-lite: events, order, outages."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from configsvc.devstack.etcd import EtcdServer
from configsvc.devstack.pulsar import PulsarLite
from configsvc.server.app import PUBLISHER_HEALTH
from configsvc.v1 import config_pb2, events_pb2, events_pb2_grpc
from tests.conftest import ckey
from tests.helpers import Stack, close_stack, open_stack
from tests.integration.events.support import Collector, event_settings, new_topic

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
async def publishing(
    etcd: EtcdServer, pulsar_broker: PulsarLite, tmp_path: Path
) -> AsyncIterator[tuple[Stack, Collector]]:
    topic = new_topic()
    collector = Collector(pulsar_broker.url, topic)
    stack = await open_stack(
        etcd.endpoint, f"/events-{tmp_path.name}", events=event_settings(pulsar_broker.url, topic)
    )
    try:
        yield stack, collector
    finally:
        await close_stack(stack)
        collector.close()


async def _tenant(stack: Stack, name: str = "acme") -> str:
    from configsvc.v1 import tenant_pb2  # noqa: PLC0415

    await stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name=name))
    return name


async def test_put_delete_rollback_become_events(publishing: tuple[Stack, Collector]) -> None:
    stack, collector = publishing
    tenant = await _tenant(stack)
    key = ckey(tenant, "db.pool")
    first = await stack.config.Put(
        config_pb2.PutRequest(key=key, value='{"max": 10}', reason="initial"),
        metadata=(("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),),
    )
    second = await stack.config.Put(config_pb2.PutRequest(key=key, value='{"max": 20}'))
    rollback = await stack.config.Rollback(
        config_pb2.RollbackRequest(key=key, to_version=1, reason="revert")
    )
    delete = await stack.config.Delete(config_pb2.DeleteRequest(key=key))
    revisions = [first.revision, second.revision, rollback.revision, delete.revision]

    assert await collector.wait_for(revisions) == set()
    by_revision = {e.revision: (k, e, p) for k, e, p in collector.received.events}
    partition, put1, properties = by_revision[first.revision]
    assert partition == f"{tenant}/prod/api/db.pool"
    assert properties["revision"] == str(first.revision)
    assert properties["event_id"] == f"{first.revision}-0"
    assert put1.change_type == config_pb2.OPERATION_PUT
    assert put1.new_value == '{"max": 10}'
    assert (put1.old_version, put1.new_version, put1.old_revision) == (0, 1, 0)
    assert put1.scope == "prod/api" and put1.reason == "initial" and put1.kind == "config"
    assert put1.trace_id == "0af7651916cd43dd8448eb211c80319c"
    put2 = by_revision[second.revision][1]
    assert (put2.old_version, put2.new_version, put2.old_revision) == (1, 2, first.revision)
    assert put2.old_digest == put1.new_digest and put2.new_value == '{"max": 20}'
    back = by_revision[rollback.revision][1]
    assert back.change_type == config_pb2.OPERATION_ROLLBACK and back.rolled_back_to == 1
    assert back.new_value == '{"max": 10}'
    gone = by_revision[delete.revision][1]
    assert gone.change_type == config_pb2.OPERATION_DELETE
    assert not gone.HasField("new_value") and gone.new_digest == ""
    assert gone.old_revision == rollback.revision

    # The cursor is written shortly after the acknowledgement.
    status = await _until(stack, lambda s: s.backlog_revisions == 0)
    assert status.is_leader and status.healthy and status.topic
    assert status.cursor_revision >= delete.revision and status.published_events >= 4


async def _until(
    stack: Stack,
    predicate: Callable[[events_pb2.GetPublisherStatusResponse], bool],
    rounds: int = 1200,
) -> events_pb2.GetPublisherStatusResponse:
    """Poll the publisher status until ``predicate`` holds (bounded)."""
    stub = events_pb2_grpc.EventServiceStub(stack.channel)
    for _ in range(rounds):
        status = await stub.GetPublisherStatus(events_pb2.GetPublisherStatusRequest())
        if predicate(status):
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"publisher status never matched; last: {status}")


async def _until_degraded(stack: Stack) -> events_pb2.GetPublisherStatusResponse:
    return await _until(stack, lambda s: not s.healthy)


async def test_thousand_writes_with_pulsar_stopped_midway(
    etcd: EtcdServer,
    private_pulsar: PulsarLite,
    tmp_path: Path,
) -> None:
    """Acceptance: 1,000 writes over 50 keys, pulsar-lite down for part of the run."""
    topic = new_topic()
    stack = await open_stack(
        etcd.endpoint, f"/events-{tmp_path.name}", events=event_settings(private_pulsar.url, topic)
    )
    collector = Collector(private_pulsar.url, topic)
    try:
        tenant = await _tenant(stack)
        keys = [ckey(tenant, f"k{i:02d}") for i in range(50)]
        written: dict[int, str] = {}
        rng = random.Random(7)

        async def write(count: int) -> None:
            async def one(n: int) -> None:
                key = keys[rng.randrange(len(keys))]
                response = await stack.config.Put(
                    config_pb2.PutRequest(key=key, value=json.dumps({"n": n}))
                )
                written[response.revision] = f"{tenant}/prod/api/{key.key}"

            for start in range(0, count, 20):
                await asyncio.gather(*(one(start + i) for i in range(20)))

        await write(300)
        private_pulsar.stop()
        await write(400)  # writes commit while the broker is down
        degraded = await _until_degraded(stack)
        assert degraded.backlog_revisions > 0 and degraded.is_leader
        assert "pulsar" in degraded.reason
        health = health_pb2_grpc.HealthStub(stack.channel)
        assert (
            await health.Check(health_pb2.HealthCheckRequest(service=PUBLISHER_HEALTH))
        ).status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert (await health.Check(health_pb2.HealthCheckRequest())).status == (
            health_pb2.HealthCheckResponse.SERVING
        )  # degraded, not failing
        private_pulsar.start(timeout=60)
        await write(300)
        assert len(written) == 1000

        missing = await collector.wait_for(written)
        assert missing == set(), f"{len(missing)} revisions never arrived"
        received = collector.received
        for key, order in received.first_arrivals_per_key().items():
            assert order == sorted(order), f"{key}: revisions out of order"
            if key.startswith(("tenant:", "api-key:", "role-binding:")):
                continue  # creating the tenant (and auth's bootstrap) are events too,
                # keyed kind:tenant/name
            assert set(order) == {r for r, k in written.items() if k == key}
        print(
            f"{received.summary()}; backlog seen while down: {degraded.backlog_revisions} revisions"
        )
        recovered = await _until(stack, lambda s: s.healthy and s.backlog_revisions == 0)
        assert recovered.cursor_revision >= max(written)
        assert (
            await health.Check(health_pb2.HealthCheckRequest(service=PUBLISHER_HEALTH))
        ).status == health_pb2.HealthCheckResponse.SERVING
    finally:
        await close_stack(stack)
        collector.close()
