"""Two `configsvc serve` processes publish to one topic; the publishing one is SIGKILLed.

The survivor must take over after the leader's lease ends, and the consumer
must end up with every revision written, before and after the kill.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from pathlib import Path

import grpc

from configsvc.devstack import EtcdServer, free_port
from configsvc.devstack.pulsar import PulsarLite
from configsvc.v1 import (
    config_pb2,
    config_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    tenant_pb2,
    tenant_pb2_grpc,
)
from tests.helpers import ADMIN_KEY, auth_channel, serve_argv
from tests.integration.events.support import Collector, new_topic

ROOT = Path(__file__).resolve().parents[3]
WRITES = 300
LEASE_TTL = 2


def serve(
    etcd: EtcdServer, port: int, root: str, pulsar_url: str, topic: str
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        serve_argv(
            etcd.endpoint,
            root,
            port,
            "--pulsar-url",
            pulsar_url,
            "--events-topic",
            topic,
            "--publisher-lease-ttl",
            str(LEASE_TTL),
        ),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "CONFIGSVC_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY},
    )  # auth on, as deployed


async def status(address: str) -> events_pb2.GetPublisherStatusResponse | None:
    async with auth_channel(address) as channel:
        try:
            return await events_pb2_grpc.EventServiceStub(channel).GetPublisherStatus(
                events_pb2.GetPublisherStatusRequest(), timeout=2
            )
        except grpc.aio.AioRpcError:
            return None


async def wait_answering(address: str, rounds: int = 600) -> None:
    for _ in range(rounds):
        if await status(address) is not None:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{address} never answered")


async def find_leader(addresses: list[str], rounds: int = 600) -> str:
    """The address whose server reports it leads (bounded polling)."""
    for _ in range(rounds):
        for address in addresses:
            answer = await status(address)
            if answer is not None and answer.is_leader:
                return address
        await asyncio.sleep(0.1)
    raise AssertionError(f"no publisher elected among {addresses}")


async def test_kill_the_publishing_server_mid_stream(
    etcd: EtcdServer,
    pulsar_broker: PulsarLite,
) -> None:
    root = f"/events-failover-{os.getpid()}"
    topic = new_topic()
    ports = {f"127.0.0.1:{p}": p for p in (free_port(), free_port())}
    processes = {
        address: serve(etcd, port, root, pulsar_broker.url, topic)
        for address, port in ports.items()
    }
    collector = Collector(pulsar_broker.url, topic)
    try:
        for address in processes:
            await wait_answering(address)
        leader = await find_leader(list(processes))
        survivor = next(a for a in processes if a != leader)
        async with auth_channel(survivor) as channel:
            await tenant_pb2_grpc.TenantServiceStub(channel).CreateTenant(
                tenant_pb2.CreateTenantRequest(name="acme")
            )
            config = config_pb2_grpc.ConfigServiceStub(channel)
            written: dict[int, str] = {}
            for i in range(WRITES):
                key = config_pb2.ConfigKey(
                    tenant="acme", environment="prod", service="api", key=f"k{i % 20}"
                )
                response = await config.Put(
                    config_pb2.PutRequest(key=key, value=json.dumps({"i": i}))
                )
                written[response.revision] = f"acme/prod/api/{key.key}"
                if i == WRITES // 3:
                    processes[leader].send_signal(signal.SIGKILL)
                    processes[leader].wait(10)
            assert await find_leader([survivor]) == survivor

        missing = await collector.wait_for(written)
        assert missing == set(), f"{len(missing)} revisions never arrived"
        for key, order in collector.received.first_arrivals_per_key().items():
            assert order == sorted(order), f"{key}: revisions out of order"
        print(collector.received.summary())
    finally:
        collector.close()
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(15)
