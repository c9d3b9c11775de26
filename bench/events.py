"""Change events: Put-to-consumer latency and publisher throughput, against pulsar-lite.

    .venv/bin/python -m bench.events [--quick]

Real processes on loopback: etcd, pulsar-lite and one ``configsvc serve
--pulsar-url``. This process writes with gRPC and consumes the topic with
``pulsar-client`` on a thread, stamping each event when it is decoded.

1. Latency: sequential Puts at a fixed rate; for each, the time from the Put
   response to the consumer decoding its event (same process, same clock).
   Baseline: a bare producer -> consumer round trip on the same broker, from
   the producer's acknowledgement to the consumer's receive.
2. Publisher throughput: a backlog written while no replica publishes, then a
   publishing server is started; events per second between the first and the
   last event the consumer receives (the drain rate of the backlog).

Writes ``bench/events_results.json`` and prints the figures README.md shows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pulsar

from configsvc.devstack import EtcdServer, free_port
from configsvc.devstack.pulsar import PulsarLite
from configsvc.v1 import config_pb2, config_pb2_grpc, events_pb2, tenant_pb2, tenant_pb2_grpc

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "events_results.json"


@contextmanager
def serve(etcd: EtcdServer, port: int, pulsar_url: str, topic: str) -> Iterator[None]:
    command = [
        sys.executable,
        "-m",
        "configsvc.cli.main",
        "serve",
        "--workers",
        "1",
        "--listen",
        f"127.0.0.1:{port}",
        "--etcd-endpoints",
        etcd.endpoint,
        "--log-level",
        "WARNING",
        "--events-topic",
        topic,
        "--auth",
        "off",
    ]  # this measures events; bench.native measures auth's cost
    if pulsar_url:
        command += ["--pulsar-url", pulsar_url]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        yield
    finally:
        process.terminate()
        process.wait(30)


class Consumer:
    """Records (revision -> first receive time in ns) on a thread."""

    def __init__(self, url: str, topic: str) -> None:
        self.client = pulsar.Client(url, operation_timeout_seconds=10)
        self.consumer = self.client.subscribe(
            topic, "bench", initial_position=pulsar.InitialPosition.Earliest
        )
        self.received: dict[int, int] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                message = self.consumer.receive(timeout_millis=100)
            except pulsar.Timeout:
                continue
            now = time.time_ns()
            event = events_pb2.ConfigurationUpdatedEvent.FromString(message.data())
            self.received.setdefault(event.revision, now)
            self.consumer.acknowledge(message)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.client.close()


async def wait_up(address: str) -> tuple[grpc.aio.Channel, config_pb2_grpc.ConfigServiceStub]:
    channel = grpc.aio.insecure_channel(address)
    tenants = tenant_pb2_grpc.TenantServiceStub(channel)
    for _ in range(300):
        try:
            await tenants.ListTenants(tenant_pb2.ListTenantsRequest(), timeout=1)
            break
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.1)
    return channel, config_pb2_grpc.ConfigServiceStub(channel)


async def wait_received(consumer: Consumer, revisions: list[int], bound: float = 300) -> None:
    for _ in range(int(bound / 0.05)):
        if all(r in consumer.received for r in revisions):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError("not every event arrived")


def key(i: int) -> config_pb2.ConfigKey:
    return config_pb2.ConfigKey(tenant="bench", environment="prod", service="api", key=f"k{i % 50}")


async def latency(
    etcd: EtcdServer, broker: PulsarLite, count: int, rate: float
) -> dict[str, float]:
    topic = f"persistent://public/default/bench-latency-{uuid.uuid4().hex[:8]}"
    consumer = Consumer(broker.url, topic)
    port = free_port()
    with serve(etcd, port, broker.url, topic):
        channel, config = await wait_up(f"127.0.0.1:{port}")
        await tenant_pb2_grpc.TenantServiceStub(channel).CreateTenant(
            tenant_pb2.CreateTenantRequest(name="bench")
        )
        acked: dict[int, int] = {}
        for i in range(count):
            started = time.monotonic()
            response = await config.Put(config_pb2.PutRequest(key=key(i), value=str(i)))
            acked[response.revision] = time.time_ns()
            await asyncio.sleep(max(0.0, 1 / rate - (time.monotonic() - started)))
        await wait_received(consumer, list(acked))
        await channel.close()
    consumer.close()
    samples = sorted((consumer.received[r] - t) / 1e6 for r, t in acked.items())
    return {
        "events_latency_p50_ms": round(statistics.median(samples), 2),
        "events_latency_p99_ms": round(samples[int(len(samples) * 0.99) - 1], 2),
        "events_latency_samples": len(samples),
        "events_latency_rate_per_s": rate,
    }


async def baseline(broker: PulsarLite, count: int, rate: float) -> dict[str, float]:
    """Bare pulsar-lite: one producer to one consumer, same rate, same clock."""
    topic = f"persistent://public/default/bench-bare-{uuid.uuid4().hex[:8]}"
    consumer = Consumer(broker.url, topic)
    client = pulsar.Client(broker.url)
    producer = client.create_producer(topic)
    sent: dict[int, int] = {}
    for i in range(1, count + 1):
        started = time.monotonic()
        event = events_pb2.ConfigurationUpdatedEvent(revision=i)
        await asyncio.to_thread(producer.send, event.SerializeToString())
        sent[i] = time.time_ns()
        await asyncio.sleep(max(0.0, 1 / rate - (time.monotonic() - started)))
    await wait_received(consumer, list(sent))
    consumer.close()
    client.close()
    samples = sorted((consumer.received[r] - t) / 1e6 for r, t in sent.items())
    return {
        "pulsar_bare_latency_p50_ms": round(statistics.median(samples), 2),
        "pulsar_bare_latency_p99_ms": round(samples[int(len(samples) * 0.99) - 1], 2),
    }


async def throughput(etcd: EtcdServer, broker: PulsarLite, count: int) -> dict[str, float]:
    topic = f"persistent://public/default/bench-drain-{uuid.uuid4().hex[:8]}"
    port = free_port()
    revisions: list[int] = []
    with serve(etcd, port, "", topic):  # nobody publishes: the backlog builds in etcd
        channel, config = await wait_up(f"127.0.0.1:{port}")
        for start in range(0, count, 32):
            responses = await asyncio.gather(
                *(
                    config.Put(config_pb2.PutRequest(key=key(i), value=str(i)))
                    for i in range(start, min(count, start + 32))
                )
            )
            revisions += [r.revision for r in responses]
        await channel.close()
    consumer = Consumer(broker.url, topic)
    publishing = free_port()
    with serve(etcd, publishing, broker.url, topic):
        await wait_received(consumer, revisions)
    consumer.close()
    times = [consumer.received[r] for r in revisions]
    seconds = (max(times) - min(times)) / 1e9
    return {
        "events_publisher_events_per_s": round(len(revisions) / seconds),
        "events_publisher_backlog": len(revisions),
    }


async def main(quick: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="configsvc-bench-events-") as tmp:
        etcd = EtcdServer(Path(tmp) / "etcd", free_port(), free_port())
        etcd.start()
        broker = PulsarLite(Path(tmp) / "pulsar", free_port())
        broker.start(timeout=60)
        try:
            results = await latency(etcd, broker, 100 if quick else 500, rate=50)
            results |= await baseline(broker, 100 if quick else 500, rate=50)
            results |= await throughput(etcd, broker, 1000 if quick else 5000)
        finally:
            broker.stop()
            etcd.stop()
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    figures = asyncio.run(main(parser.parse_args().quick))
    OUT.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
