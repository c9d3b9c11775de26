"""The Watch RPC against a real etcd: order, filtering, resume, resets and limits."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from aetcd import rpc
from google.rpc import error_details_pb2

from configsvc.v1 import config_pb2, tenant_pb2, watch_pb2, watch_pb2_grpc
from configsvc.watch.hub import WatchLimits
from tests.helpers import (
    PrivateStack,
    Stack,
    auth_channel,
    ckey,
    close_stack,
    open_stack,
    rich_status,
)


def watch(
    stack: Stack,
    *selectors: watch_pb2.WatchSelector,
    start_revision: int = 0,
    snapshot: bool = False,
) -> Any:
    stub = watch_pb2_grpc.WatchServiceStub(stack.channel)
    return stub.Watch(
        watch_pb2.WatchRequest(
            selectors=list(selectors), start_revision=start_revision, send_snapshot=snapshot
        )
    )


def sel(
    tenant: str,
    env: str = "",
    service: str = "",
    keys: tuple[str, ...] = (),
    prefixes: tuple[str, ...] = (),
) -> watch_pb2.WatchSelector:
    return watch_pb2.WatchSelector(
        tenant=tenant,
        environment=env,
        service=service,
        keys=list(keys),
        key_prefixes=list(prefixes),
    )


async def read_until(
    call: Any, count: int, kind: str = "changes", timeout: float = 15
) -> list[watch_pb2.WatchResponse]:
    """Read messages until ``count`` of ``kind`` arrived; returns all messages read."""
    got: list[watch_pb2.WatchResponse] = []

    async def run() -> None:
        seen = 0
        async for message in call:
            got.append(message)
            if message.WhichOneof("kind") == kind:
                seen += 1
                if seen == count:
                    return

    await asyncio.wait_for(run(), timeout)
    return got


async def read_to_end(call: Any) -> list[watch_pb2.WatchResponse]:
    """Read with read() until the stream ends (grpc forbids mixing read() and iteration)."""
    got = []
    while True:
        message = await asyncio.wait_for(call.read(), 30)
        if message is grpc.aio.EOF:
            return got
        got.append(message)


def changed_keys(messages: list[watch_pb2.WatchResponse]) -> list[tuple[int, str, int]]:
    return [
        (m.changes.revision, c.key.key, c.type)
        for m in messages
        if m.WhichOneof("kind") == "changes"
        for c in m.changes.changes
    ]


async def put(stack: Stack, tenant: str, key: str, value: str = "1", **where: str) -> int:
    response = await stack.config.Put(
        config_pb2.PutRequest(key=ckey(tenant, key, **where), value=value)
    )
    return int(response.revision)


@pytest.fixture
async def tuned(stack: Stack) -> AsyncIterator[Stack]:
    """A second server on the session etcd with short watch timers and small limits."""
    other = await open_stack(
        stack.server.config.etcd_endpoints[0],
        stack.server.config.root_prefix,
        watch=WatchLimits(
            queue_limit=50, max_streams=20, progress_interval=0.3, max_age=60, stuck_grace=0.5
        ),
    )
    yield other
    await close_stack(other)


async def test_snapshot_then_changes_in_revision_order(stack: Stack, tenant: str) -> None:
    r1 = await put(stack, tenant, "a")
    await put(stack, tenant, "z", env="staging")
    call = watch(stack, sel(tenant, env="prod"), snapshot=True)
    head = await read_until(call, 1, "snapshot_end")
    snapshot = [
        e.key.key for m in head if m.WhichOneof("kind") == "snapshot" for e in m.snapshot.entries
    ]
    assert snapshot == ["a"]
    end = head[-1].snapshot_end.revision
    assert end >= r1

    revisions = [await put(stack, tenant, f"k{i}") for i in range(5)]
    await put(stack, tenant, "other-env", env="staging")  # filtered out
    delete = await stack.config.Delete(config_pb2.DeleteRequest(key=ckey(tenant, "a")))
    got = await read_until(call, 6)
    call.cancel()
    assert changed_keys(got) == [
        *[(r, f"k{i}", watch_pb2.CHANGE_TYPE_PUT) for i, r in enumerate(revisions)],
        (delete.revision, "a", watch_pb2.CHANGE_TYPE_DELETE),
    ]
    put_message = got[0].changes.changes[0]
    assert put_message.entry.value == "1" and put_message.entry.version == 1


async def test_selectors_keys_prefixes_and_overlap(stack: Stack, tenant: str) -> None:
    call = watch(
        stack,
        sel(tenant, "prod", "api", keys=("exact",)),
        sel(tenant, "prod", "", prefixes=("db.",)),
        sel(tenant, "prod", "api", prefixes=("db.pool",)),
    )  # overlaps the previous
    await asyncio.sleep(0.1)
    await put(stack, tenant, "exact")
    await put(stack, tenant, "exactly")  # not matched
    await put(stack, tenant, "db.pool.max")  # matched by two selectors: sent once
    await put(stack, tenant, "db.url", service="web")
    await put(stack, tenant, "cache.size")  # not matched
    last = await put(stack, tenant, "db.last", env="staging")  # other env: not matched
    marker = await put(stack, tenant, "db.marker")
    got = await read_until(call, 4)
    call.cancel()
    assert [k for _, k, _ in changed_keys(got)] == ["exact", "db.pool.max", "db.url", "db.marker"]
    assert got[-1].changes.revision == marker > last


async def test_resume_from_revision_plus_one_has_no_gap_and_no_duplicate(
    stack: Stack, tenant: str
) -> None:
    call = watch(stack, sel(tenant), snapshot=True)
    head = await read_until(call, 1, "snapshot_end")
    revisions = [await put(stack, tenant, f"k{i}", str(i)) for i in range(3)]
    first = await read_until(call, 3)
    call.cancel()
    seen = changed_keys(first)
    last_seen = seen[-1][0]
    assert last_seen == revisions[-1] > head[-1].snapshot_end.revision

    more = [await put(stack, tenant, f"k{i}", str(i)) for i in range(3, 6)]
    resumed = watch(stack, sel(tenant), start_revision=last_seen + 1)
    got = await read_until(resumed, 3)
    resumed.cancel()
    assert [r for r, _, _ in changed_keys(got)] == more


async def test_resume_older_than_the_ring_is_served_from_etcd_history(
    stack: Stack, tenant: str
) -> None:
    """A fresh server process has only seen changes since it loaded; older revisions that
    etcd still holds are replayed from etcd's own history, without a reset. (This test
    asserted a RESUME_TOO_OLD reset here until issue 17: see test_watch_resume_history.)"""
    first = await put(stack, tenant, "a")
    await put(stack, tenant, "skipped", env="staging")  # not selected
    other = await open_stack(stack.server.config.etcd_endpoints[0], stack.server.config.root_prefix)
    try:
        assert other.server.mirror.first_revision > first
        call = watch(other, sel(tenant, env="prod"), start_revision=first)
        head = [await asyncio.wait_for(call.read(), 15) for _ in range(2)]
        assert [m.WhichOneof("kind") for m in head] == ["changes", "progress"]
        assert changed_keys(head) == [(first, "a", watch_pb2.CHANGE_TYPE_PUT)]
        assert head[1].progress.revision >= other.server.mirror.first_revision
        revision = await put(stack, tenant, "b")
        got = await read_until(call, 1)
        call.cancel()
        assert changed_keys(got) == [(revision, "b", watch_pb2.CHANGE_TYPE_PUT)]
    finally:
        await close_stack(other)


async def test_a_stream_that_never_reads_is_reset_and_others_flow(
    tuned: Stack, stack: Stack, tenant: str
) -> None:
    hub = tuned.server.hub
    # Open a stream and never read it: its server-side outbox fills.
    stalled = watch(tuned, sel(tenant))
    healthy = watch(tuned, sel(tenant))
    await asyncio.sleep(0.2)
    big = '"' + "x" * 60_000 + '"'  # large messages exhaust HTTP/2 flow control quickly
    resets_before = hub.stats.slow_resets
    received: list[int] = []

    async def drain() -> None:
        async for message in healthy:
            if message.WhichOneof("kind") == "changes":
                received.append(message.changes.revision)
                if len(received) == 150:
                    return

    reader = asyncio.create_task(drain())
    for i in range(150):
        await put(stack, tenant, f"k{i % 10}", big)
    await asyncio.wait_for(reader, 30)
    healthy.cancel()
    assert received == sorted(received) and len(set(received)) == 150
    assert hub.stats.slow_resets == resets_before + 1
    # The stalled stream's outbox was dropped: nothing of it is held beyond one reset.
    assert all(sub.queued() <= 2 for sub in hub._subs)
    # A sender blocked behind the silent client is cancelled after the grace period.
    for _ in range(50):
        if hub.stream_count == 0:
            break
        await asyncio.sleep(0.1)
    assert hub.stream_count == 0
    stalled.cancel()


async def test_a_stalled_stream_is_reset_by_its_byte_budget(stack: Stack, tenant: str) -> None:
    small = await open_stack(
        stack.server.config.etcd_endpoints[0],
        stack.server.config.root_prefix,
        watch=WatchLimits(queue_limit=10_000, queue_bytes=300_000),
    )
    try:
        hub = small.server.hub
        stalled = watch(small, sel(tenant))
        await asyncio.sleep(0.2)
        big = '"' + "y" * 100_000 + '"'
        # Far fewer messages than queue_limit. The first few MB go into HTTP/2 flow-control
        # windows (grown by BDP probing) before the sender blocks and the outbox fills.
        for i in range(300):
            await put(stack, tenant, f"b{i % 5}", big)
            if hub.stats.slow_resets:
                break
        assert hub.stats.slow_resets == 1
        assert all(sub.queued_bytes <= 300_000 for sub in hub._subs)
        stalled.cancel()
    finally:
        await close_stack(small)


async def test_stream_limit_gives_resource_exhausted(tuned: Stack, tenant: str) -> None:
    calls = [watch(tuned, sel(tenant)) for _ in range(20)]
    await asyncio.sleep(0.3)
    assert tuned.server.hub.stream_count == 20
    extra = watch(tuned, sel(tenant))
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await extra.read()
    assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "maximum of 20" in (exc.value.details() or "")
    for call in calls:
        call.cancel()


async def test_idle_streams_get_progress_heartbeats(tuned: Stack, tenant: str) -> None:
    revision = await put(tuned, tenant, "a")
    call = watch(tuned, sel(tenant))
    got = await read_until(call, 2, "progress", timeout=10)
    call.cancel()
    progress = [m.progress.revision for m in got if m.WhichOneof("kind") == "progress"]
    assert all(p >= revision for p in progress) and progress == sorted(progress)


async def test_max_age_ends_stream_with_unavailable_and_resume_point(
    stack: Stack, tenant: str
) -> None:
    short = await open_stack(
        stack.server.config.etcd_endpoints[0],
        stack.server.config.root_prefix,
        watch=WatchLimits(max_age=1.0, progress_interval=5),
    )
    try:
        call = watch(short, sel(tenant))
        revision = await put(short, tenant, "a")
        messages = []
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            async for message in call:
                messages.append(message)
        assert exc.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "maximum stream age" in (exc.value.details() or "")
        info = error_details_pb2.ErrorInfo()
        status = rich_status(exc.value)
        assert status is not None and status.details[0].Unpack(info)
        resume = int(info.metadata["resume_revision"])
        assert resume > revision
        assert messages[-1].WhichOneof("kind") == "progress"
    finally:
        await close_stack(short)


async def test_shutdown_ends_streams_with_unavailable(stack: Stack, tenant: str) -> None:
    other = await open_stack(stack.server.config.etcd_endpoints[0], stack.server.config.root_prefix)
    async with auth_channel(other.address) as channel:
        call = watch_pb2_grpc.WatchServiceStub(channel).Watch(
            watch_pb2.WatchRequest(selectors=[sel(tenant)])
        )
        first = await call.read()  # a new stream is told at once that it is live
        assert first.WhichOneof("kind") == "progress"
        await close_stack(other)
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await read_to_end(call)
    assert exc.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "shutting down" in (exc.value.details() or "")


async def test_bad_watch_requests(stack: Stack, tenant: str) -> None:
    cases: list[tuple[watch_pb2.WatchRequest, grpc.StatusCode, str]] = [
        (watch_pb2.WatchRequest(), grpc.StatusCode.INVALID_ARGUMENT, "selectors"),
        (
            watch_pb2.WatchRequest(selectors=[sel("")]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "selectors[0].tenant",
        ),
        (
            watch_pb2.WatchRequest(selectors=[sel(tenant, keys=("k",))]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "need both environment and service",
        ),
        (
            watch_pb2.WatchRequest(selectors=[sel(tenant, "prod", "api", prefixes=("a/b",))]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "key_prefixes[0]",
        ),
        (
            watch_pb2.WatchRequest(selectors=[sel(tenant)] * 101),
            grpc.StatusCode.INVALID_ARGUMENT,
            "limit is 100",
        ),
        (
            watch_pb2.WatchRequest(selectors=[sel(tenant)], start_revision=-1),
            grpc.StatusCode.INVALID_ARGUMENT,
            "start_revision",
        ),
        (
            watch_pb2.WatchRequest(selectors=[sel(tenant)], start_revision=5, send_snapshot=True),
            grpc.StatusCode.INVALID_ARGUMENT,
            "cannot be combined",
        ),
        (
            watch_pb2.WatchRequest(selectors=[sel("no-such-tenant")]),
            grpc.StatusCode.NOT_FOUND,
            "no-such-tenant",
        ),
    ]
    stub = watch_pb2_grpc.WatchServiceStub(stack.channel)
    for request, code, text in cases:
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await stub.Watch(request).read()
        assert exc.value.code() == code, (text, exc.value.details())
        assert text in (exc.value.details() or ""), exc.value.details()


async def test_undecodable_watch_request_is_invalid_argument(stack: Stack) -> None:
    raw = stack.channel.unary_stream(
        "/configsvc.v1.WatchService/Watch",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    call = raw(b"\xff\xff\xff")
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await read_to_end(call)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid WatchRequest" in (exc.value.details() or "")


async def test_unrelated_tenant_changes_reach_nobody(stack: Stack, tenant: str) -> None:
    other = f"{tenant}-b"
    await stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name=other))
    call = watch(stack, sel(tenant))
    await asyncio.sleep(0.1)
    for i in range(5):
        await put(stack, other, f"k{i}")
    mine = await put(stack, tenant, "mine")
    got = await read_until(call, 1)
    call.cancel()
    assert changed_keys(got) == [(mine, "mine", watch_pb2.CHANGE_TYPE_PUT)]


async def test_resumed_stream_gets_progress_right_after_the_replay(
    stack: Stack, tenant: str
) -> None:
    first = await put(stack, tenant, "a")
    second = await put(stack, tenant, "b")
    call = watch(stack, sel(tenant), start_revision=first)
    messages = [await call.read() for _ in range(3)]
    call.cancel()
    assert [m.WhichOneof("kind") for m in messages] == ["changes", "changes", "progress"]
    assert messages[1].changes.revision == second
    assert messages[2].progress.revision >= second


async def test_resume_point_ahead_of_etcd_is_reset(stack: Stack, tenant: str) -> None:
    revision = await put(stack, tenant, "a")
    call = watch(stack, sel(tenant), start_revision=revision + 1000)
    messages = [m async for m in call]
    assert [m.WhichOneof("kind") for m in messages] == ["reset"]
    assert messages[0].reset.reason == watch_pb2.RESET_REASON_RESUME_AHEAD
    assert messages[0].reset.revision >= revision


async def test_resume_ahead_of_the_mirror_but_not_of_etcd_catches_up(
    stack: Stack, tenant: str
) -> None:
    """A client that saw a newer revision elsewhere resumes here without a reset."""
    await put(stack, tenant, "a")
    # Move etcd's revision past anything this mirror has seen (a key outside configsvc).
    raw = await stack.server.etcd.txn(
        rpc.TxnRequest(
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=b"/elsewhere/x", value=b"1"))]
        )
    )
    ahead = int(raw.header.revision)
    assert ahead > stack.server.mirror.revision
    call = watch(stack, sel(tenant), start_revision=ahead + 1)
    message = await asyncio.wait_for(call.read(), 15)
    call.cancel()
    assert message.WhichOneof("kind") == "progress"
    assert message.progress.revision >= ahead


async def test_streams_end_when_the_server_loses_etcd(private_stack: PrivateStack) -> None:
    stack, etcd = private_stack.stack, private_stack.etcd
    stack.server.hub.limits = WatchLimits(lost_etcd_grace=0.5)
    await stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="acme"))
    call = watch(stack, sel("acme"))
    assert (await call.read()).WhichOneof("kind") == "progress"
    etcd.stop()
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await read_to_end(call)
    assert exc.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "lost etcd" in (exc.value.details() or "")


async def test_streams_with_equal_selectors_share_one_copy(stack: Stack, tenant: str) -> None:
    """Idle streams are the memory that counts: streams asking for equal selectors hold one
    shared copy of them, streams of one connection one copy of its address, and the shared
    copy goes away with the last stream that held it."""
    hub = stack.server.hub
    channel = auth_channel(stack.address, options=[("grpc.use_local_subchannel_pool", 1)])
    try:
        stub = watch_pb2_grpc.WatchServiceStub(channel)
        calls = []
        for selector in (sel(tenant), sel(tenant), sel(tenant, prefixes=("feature.",))):
            call = stub.Watch(watch_pb2.WatchRequest(selectors=[selector], send_snapshot=True))
            await read_until(call, 1, kind="snapshot_end")
            calls.append(call)
        ours = [sub for sub in hub._interested({tenant}) if sub.peer]
        assert len(ours) == 3
        whole = [sub for sub in ours if not sub.selectors[0].prefixes]
        (narrow,) = [sub for sub in ours if sub.selectors[0].prefixes]
        assert len(whole) == 2
        assert whole[0].selectors is whole[1].selectors
        assert whole[0].tenants is whole[1].tenants
        assert narrow.selectors is not whole[0].selectors
        assert len({id(sub.peer) for sub in ours}) == 1  # one connection, one string
        keys = {sub.selectors for sub in ours}
        assert all(k in hub._shapes for k in keys)
        del ours, whole, narrow  # the test's own references would keep the shapes alive
        for call in calls:
            call.cancel()
        for _ in range(50):
            if not any(k in hub._shapes for k in keys):
                break
            gc.collect()
            await asyncio.sleep(0.1)
        assert not any(k in hub._shapes for k in keys)
    finally:
        await channel.close()


async def test_fan_out_visits_streams_connection_by_connection(stack: Stack, tenant: str) -> None:
    """Streams of two client connections, opened interleaved, are fanned out one
    connection after the other (gRPC then batches consecutive writes of a connection),
    and every one of them still receives each change exactly once."""
    hub = stack.server.hub
    channels = [
        auth_channel(stack.address, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(2)
    ]
    try:
        calls = []
        for _ in range(3):  # A B A B A B: registration order interleaves the connections
            for channel in channels:
                stub = watch_pb2_grpc.WatchServiceStub(channel)
                call = stub.Watch(
                    watch_pb2.WatchRequest(selectors=[sel(tenant)], send_snapshot=True)
                )
                await read_until(call, 1, kind="snapshot_end")
                calls.append(call)
        ours = [sub for sub in hub._interested({tenant}) if sub.peer]
        peers = [sub.peer for sub in ours]
        assert len(ours) == 6 and len(set(peers)) == 2
        runs = [p for i, p in enumerate(peers) if i == 0 or peers[i - 1] != p]
        assert runs == sorted(set(peers))  # one contiguous run per connection
        revision = await put(stack, tenant, "fanned")
        for call in calls:
            got = await read_until(call, 1)
            assert [m.changes.revision for m in got if m.WhichOneof("kind") == "changes"] == [
                revision
            ]
        calls[0].cancel()
        for _ in range(50):  # the order is rebuilt without the closed stream
            if len([s for s in hub._interested({tenant}) if s.peer]) == 5:
                break
            await asyncio.sleep(0.1)
        assert len([s for s in hub._interested({tenant}) if s.peer]) == 5
    finally:
        for channel in channels:
            await channel.close()
