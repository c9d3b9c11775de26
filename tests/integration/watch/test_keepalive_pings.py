"""A client that pings as often as it likes keeps its streams.

The Python flagd provider's default keepalive (0) makes grpc ping every millisecond. With
grpc's default of two ping strikes the server answered that with GOAWAY
(``too_many_pings``), which cut the provider's EventStream; the provider then waits its
reconnect backoff, and changes made meanwhile were never seen (the provider suite's
``test_flag_change_event[rpc]`` failed that way now and then). The server allows any number
of strikes, so such a client keeps its connection; the pings it can send stay bounded by
grpc's own ``max_pings_without_data`` on the client side.
"""

from __future__ import annotations

import asyncio

from configsvc.v1 import config_pb2, watch_pb2, watch_pb2_grpc
from tests.helpers import Stack, auth_channel, ckey

PINGING = [
    ("grpc.keepalive_time_ms", 1),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),  # no client-side cap: the worst case
]


async def test_a_client_pinging_every_millisecond_keeps_its_watch(
    stack: Stack, tenant: str
) -> None:
    async with auth_channel(stack.address, options=PINGING) as channel:
        stub = watch_pb2_grpc.WatchServiceStub(channel)
        call = stub.Watch(
            watch_pb2.WatchRequest(selectors=[watch_pb2.WatchSelector(tenant=tenant)])
        )
        first = await asyncio.wait_for(call.read(), 15)
        assert first.HasField("progress")
        # Long enough for many pings and, before the fix, for the GOAWAY after two strikes.
        await asyncio.sleep(3)
        put = await stack.config.Put(
            config_pb2.PutRequest(key=ckey(tenant, "pinged"), value="1"), timeout=10
        )
        message = await asyncio.wait_for(call.read(), 15)
        while message.HasField("progress"):
            message = await asyncio.wait_for(call.read(), 15)
        assert message.changes.revision == put.entry.mod_revision
        assert [c.key.key for c in message.changes.changes] == ["pinged"]
        call.cancel()
