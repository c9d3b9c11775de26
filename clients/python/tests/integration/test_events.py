"""EventConsumer against a real server publishing to real pulsar-lite, with duplicates."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pulsar

from clients.python.tests.integration.support import Server, start_server
from configsvc.devstack.etcd import EtcdServer
from configsvc.devstack.pulsar import PulsarLite
from configsvc.events.publisher import Publisher
from configsvc.events.settings import EventSettings
from configsvc_client.events import EventConsumer


async def test_consumer_delivers_each_revision_once(
    etcd: EtcdServer,
    pulsar_broker: PulsarLite,
    tmp_path: Path,
) -> None:
    topic = f"persistent://public/default/client-events-{uuid.uuid4().hex[:10]}"
    consumer = await asyncio.to_thread(
        EventConsumer.connect,
        pulsar_broker.url,
        topic,
        "svc",
        from_earliest=True,
        receive_timeout=0.1,
    )
    server: Server = await start_server(etcd.endpoint, f"/client-events-{tmp_path.name}")
    # The publisher a server with --pulsar-url runs, here on the test server's etcd client.
    publisher = Publisher(
        server.server.etcd,
        server.server.keyspace,
        EventSettings(pulsar_url=pulsar_broker.url, topic=topic, lease_ttl=2, cursor_interval=0.05),
    )
    publisher.start()
    try:
        await server.create_tenant("acme")
        revisions = [await server.put("acme", f"k{i % 3}", str(i)) for i in range(9)]
        received = []
        async with consumer:
            async for event in consumer:
                received.append((event.key, event.revision))
                if len(received) == 10:  # creating the tenant is an event too
                    break
            # Re-send everything by hand, as a publisher failover would: all are duplicates.
            client = pulsar.Client(pulsar_broker.url)
            producer = client.create_producer(topic)
            reader = client.create_reader(topic, pulsar.MessageId.earliest)
            for _ in range(10):
                message = reader.read_next(10_000)
                producer.send(message.data(), partition_key=message.partition_key())
            late = await server.put("acme", "k0", '"late"')
            producer.close()
            reader.close()
            client.close()
            event = await consumer.receive()
            consumer.acknowledge(event)
            assert (event.key, event.revision) == ("acme/prod/api/k0", late)
            # At least the 10 sent by hand. pulsar-lite adds its own: it sometimes dispatches
            # one stored message (same message id) several times to a new subscription.
            assert consumer.deduplicator.duplicates >= 10
        assert received[0][0] == "tenant:acme/acme"
        assert sorted(r for _, r in received[1:]) == revisions  # each revision exactly once
        assert all(key.startswith("acme/prod/api/k") for key, _ in received[1:])
    finally:
        await publisher.stop()
        await server.stop()
