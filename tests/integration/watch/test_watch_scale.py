"""1,000 concurrent streams each receive every one of 200 writes, in order, once."""

from __future__ import annotations

import asyncio

from configsvc.v1 import config_pb2, watch_pb2, watch_pb2_grpc
from tests.helpers import Stack, auth_channel, ckey

STREAMS = 1000
CHANNELS = 10  # 100 streams per HTTP/2 connection, as a few client processes would hold
WRITES = 200


async def test_thousand_streams_receive_every_write_in_order(stack: Stack, tenant: str) -> None:
    channels = [auth_channel(stack.address) for _ in range(CHANNELS)]
    request = watch_pb2.WatchRequest(selectors=[watch_pb2.WatchSelector(tenant=tenant)])
    calls = [
        watch_pb2_grpc.WatchServiceStub(channels[i % CHANNELS]).Watch(request)
        for i in range(STREAMS)
    ]
    received: list[list[int]] = [[] for _ in range(STREAMS)]

    async def consume(index: int) -> None:
        async for message in calls[index]:
            if message.WhichOneof("kind") == "changes":
                received[index].append(message.changes.revision)
                if len(received[index]) == WRITES:
                    return

    def registered() -> int:
        return len(stack.server.hub._by_tenant.get(tenant, ()))

    for _ in range(100):  # every stream registered before the first write
        if registered() == STREAMS:
            break
        await asyncio.sleep(0.1)
    assert registered() == STREAMS
    consumers = [asyncio.create_task(consume(i)) for i in range(STREAMS)]
    revisions = []
    for i in range(WRITES):
        response = await stack.config.Put(
            config_pb2.PutRequest(key=ckey(tenant, f"k{i % 20}"), value=str(i))
        )
        revisions.append(response.revision)
    try:
        await asyncio.wait_for(asyncio.gather(*consumers), 120)
    finally:
        for call in calls:
            call.cancel()
        for channel in channels:
            await channel.close()
    assert all(got == revisions for got in received)
