"""Resuming a Watch on a server that started after the client's last revision.

A restarted (or another) server process has only seen changes since it loaded,
but etcd still holds older revisions until it compacts them: a resume point
etcd still holds is served without a RESET, from etcd's own history. Each test
has an etcd of its own (one compacts it) and real server processes in process,
stopped and started on it like a rolling restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from aetcd import rpc

from configsvc.devstack.etcd import EtcdServer
from configsvc.store.etcd import EtcdClient
from configsvc.v1 import auth_pb2, config_pb2, tenant_pb2, watch_pb2, watch_pb2_grpc
from configsvc.watch.hub import WatchLimits
from tests.helpers import Stack, auth_channel, ckey, close_stack, open_stack
from tests.integration.auth.support import bind, new_key, unique
from tests.integration.watch.test_watch import changed_keys, put, sel
from tests.integration.watch.test_watch_faults import read_all, resume_revision

ROOT = "/configsvc-resume"


async def start(etcd: EtcdServer, **overrides: object) -> Stack:
    return await open_stack(etcd.endpoint, ROOT, **overrides)


@pytest.fixture
async def raw_etcd(own_etcd: EtcdServer) -> AsyncIterator[EtcdClient]:
    """A plain etcd client on the test's etcd (what else writes there: cursors, compaction)."""
    client = EtcdClient([own_etcd.endpoint])
    yield client
    await client.close()


async def raw_put(etcd: EtcdClient, key: str, value: bytes = b"1") -> int:
    """A put of a non-config key, as the publisher's and webhooks' cursors do after every
    event they deliver: etcd's revision moves, no config changes."""
    response = await etcd.txn(
        rpc.TxnRequest(
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=key.encode(), value=value))]
        )
    )
    return int(response.header.revision)


def resume(stack: Stack, start_revision: int, *selectors: watch_pb2.WatchSelector) -> Any:
    stub = watch_pb2_grpc.WatchServiceStub(stack.channel)
    return stub.Watch(
        watch_pb2.WatchRequest(
            selectors=list(selectors or [sel("acme")]), start_revision=start_revision
        )
    )


async def read_through(call: Any, revision: int) -> list[watch_pb2.WatchResponse]:
    """Messages until a progress or changes message at or past ``revision``; a RESET or an
    end of stream before it fails the test."""
    got: list[watch_pb2.WatchResponse] = []
    while True:
        message = await asyncio.wait_for(call.read(), 30)
        assert message is not grpc.aio.EOF, f"stream ended after {got}"
        got.append(message)
        kind = message.WhichOneof("kind")
        assert kind in ("changes", "progress"), f"unexpected {kind}: {message}"
        if getattr(message, kind).revision >= revision:
            return got


async def test_resume_after_a_restart_without_config_writes_has_no_reset(
    own_etcd: EtcdServer, raw_etcd: EtcdClient
) -> None:
    """The client saw revision R; the server stops (handing out its resume revision), etcd's
    revision moves while it is down (cursors), a new server starts: both R + 1 and the
    handed-out revision resume with zero RESETs, and the next change arrives as usual."""
    first = await start(own_etcd)
    await first.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="acme"))
    seen = await put(first, "acme", "a")
    async with auth_channel(first.address) as channel:
        call = watch_pb2_grpc.WatchServiceStub(channel).Watch(
            watch_pb2.WatchRequest(selectors=[sel("acme")], start_revision=seen)
        )
        assert changed_keys(await read_through(call, seen))[0][0] == seen
        await close_stack(first)
        _, err = await read_all(call, timeout=30)
    assert err is not None and err.code() == grpc.StatusCode.UNAVAILABLE
    handed_out = resume_revision(err)
    assert handed_out > seen
    for i in range(3):
        await raw_put(raw_etcd, f"{ROOT}/sys/cursors/publisher", str(i).encode())

    second = await start(own_etcd)
    try:
        assert second.server.mirror.first_revision > handed_out
        calls = [resume(second, seen + 1), resume(second, handed_out)]
        for call in calls:
            got = await read_through(call, second.server.mirror.first_revision)
            assert changed_keys(got) == []  # nothing selected changed: no gap, no reset
        after = await put(second, "acme", "b")
        for call in calls:
            got = await read_through(call, after)
            assert changed_keys(got) == [(after, "b", watch_pb2.CHANGE_TYPE_PUT)]
            call.cancel()
    finally:
        await close_stack(second)


async def test_resume_after_writes_while_the_server_was_down_yields_exactly_them(
    own_etcd: EtcdServer,
) -> None:
    first = await start(own_etcd)
    for name in ("acme", "other"):
        await first.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name=name))
    await put(first, "acme", "gone")
    seen = await put(first, "acme", "a")
    await close_stack(first)

    # Another replica takes writes while this server is down.
    replica = await start(own_etcd)
    expected = [(await put(replica, "acme", "b"), "b", watch_pb2.CHANGE_TYPE_PUT)]
    await put(replica, "other", "b")  # another tenant: not selected
    await put(replica, "acme", "x", service="web")  # not selected by the service filter
    deleted = await replica.config.Delete(config_pb2.DeleteRequest(key=ckey("acme", "gone")))
    expected.append((deleted.revision, "gone", watch_pb2.CHANGE_TYPE_DELETE))
    expected.append((await put(replica, "acme", "a", "2"), "a", watch_pb2.CHANGE_TYPE_PUT))
    await put(replica, "other", "c")
    await close_stack(replica)

    second = await start(own_etcd)
    try:
        assert second.server.mirror.first_revision > expected[-1][0]
        call = resume(second, seen + 1, sel("acme", service="api"))
        got = await read_through(call, second.server.mirror.first_revision)
        assert changed_keys(got) == expected
        assert got[-1].WhichOneof("kind") == "progress"
        put_b = next(
            c
            for m in got
            if m.WhichOneof("kind") == "changes"
            for c in m.changes.changes
            if c.key.key == "b"
        )
        assert put_b.entry.value == "1" and put_b.entry.version == 1
        live = await put(second, "acme", "c")  # live changes follow the history
        assert changed_keys(await read_through(call, live)) == [
            (live, "c", watch_pb2.CHANGE_TYPE_PUT)
        ]
        call.cancel()
        assert second.server.hub.stats.history_replays == 1
    finally:
        await close_stack(second)


async def test_resume_from_a_revision_etcd_has_compacted_is_reset(
    own_etcd: EtcdServer, raw_etcd: EtcdClient
) -> None:
    first = await start(own_etcd)
    await first.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="acme"))
    seen = await put(first, "acme", "a")
    await put(first, "acme", "b")
    compacted = await put(first, "acme", "c")
    await close_stack(first)
    await raw_etcd.compact(compacted)

    second = await start(own_etcd)
    try:
        messages, err = await read_all(resume(second, seen + 1), timeout=30)
        assert err is None
        assert [m.WhichOneof("kind") for m in messages] == ["reset"]
        reset = messages[0].reset
        assert reset.reason == watch_pb2.RESET_REASON_RESUME_TOO_OLD
        assert reset.compact_revision == compacted
        assert "compacted" in reset.message
        # From the compact revision on, etcd still has it all: served.
        call = resume(second, compacted + 1)
        later = await put(second, "acme", "d")
        assert changed_keys(await read_through(call, later)) == [
            (later, "d", watch_pb2.CHANGE_TYPE_PUT)
        ]
        call.cancel()
    finally:
        await close_stack(second)


async def test_a_history_too_long_to_replay_is_reset(own_etcd: EtcdServer) -> None:
    first = await start(own_etcd)
    await first.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="acme"))
    seen = await put(first, "acme", "a")
    for i in range(10):
        await put(first, "acme", f"k{i}")
    await close_stack(first)

    second = await start(own_etcd, watch=WatchLimits(history_events=12))
    try:
        messages, err = await read_all(resume(second, seen + 1), timeout=30)
        assert err is None
        assert messages[-1].WhichOneof("kind") == "reset"
        assert messages[-1].reset.reason == watch_pb2.RESET_REASON_RESUME_TOO_OLD
        assert "too many to replay" in messages[-1].reset.message
        revisions = [r for r, _, _ in changed_keys(messages)]
        assert revisions == sorted(set(revisions)) and revisions[:1] in ([], [seen + 1])
    finally:
        await close_stack(second)


async def test_a_history_replay_gives_only_what_the_caller_may_read(
    own_etcd: EtcdServer,
) -> None:
    first = await start(own_etcd)
    await first.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="acme"))
    name = unique("pub-reader")
    key = await new_key(first, name)
    await bind(first, f"key:{name}", auth_pb2.ROLE_VIEWER, "acme", key_prefix="pub.")
    seen = await put(first, "acme", "pub.start")
    readable = [await put(first, "acme", "pub.a")]
    await put(first, "acme", "private.a")
    readable.append(await put(first, "acme", "pub.b"))
    await close_stack(first)

    second = await start(own_etcd)
    try:
        async with auth_channel(second.address, key) as channel:
            call = watch_pb2_grpc.WatchServiceStub(channel).Watch(
                watch_pb2.WatchRequest(selectors=[sel("acme")], start_revision=seen + 1)
            )
            got = await read_through(call, second.server.mirror.first_revision)
            call.cancel()
        assert changed_keys(got) == [
            (readable[0], "pub.a", watch_pb2.CHANGE_TYPE_PUT),
            (readable[1], "pub.b", watch_pb2.CHANGE_TYPE_PUT),
        ]
    finally:
        await close_stack(second)


async def test_live_changes_during_a_history_replay_follow_it_without_gap_or_duplicate(
    own_etcd: EtcdServer,
) -> None:
    first = await start(own_etcd)
    await first.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="acme"))
    seen = await put(first, "acme", "a")
    missed = [await put(first, "acme", f"m{i}") for i in range(20)]
    await close_stack(first)

    second = await start(own_etcd)
    try:

        async def write() -> list[int]:
            return [await put(second, "acme", f"live{i % 3}") for i in range(20)]

        writer = asyncio.create_task(write())
        call = resume(second, seen + 1)
        live = await asyncio.wait_for(writer, 60)
        got = await read_through(call, live[-1])
        call.cancel()
        revisions = [r for r, _, _ in changed_keys(got)]
        assert revisions == missed + live
        assert second.server.hub.stats.history_replays == 1
    finally:
        await close_stack(second)


async def test_a_client_that_stops_reading_during_a_history_replay_resumes_without_gap(
    own_etcd: EtcdServer,
) -> None:
    """The history replay of a resume fills the client's flow-control window and the live
    changes behind it overflow the stream's queue: the stream ends with the revision right
    after the last replayed change the client got, and resuming there gives the rest."""
    first = await start(own_etcd)
    await first.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="acme"))
    seen = await put(first, "acme", "a")
    big = '"' + "h" * 60_000 + '"'  # ~7 MB of history: more than HTTP/2 buffers unread
    missed = [await put(first, "acme", f"m{i % 10}", big) for i in range(120)]
    await close_stack(first)

    second = await start(
        own_etcd,
        watch=WatchLimits(queue_limit=5, progress_interval=0.3, max_age=600, stuck_grace=0.5),
    )
    try:
        hub = second.server.hub
        call = resume(second, seen + 1)  # the client reads nothing for now
        live = [await put(second, "acme", f"live{i}") for i in range(10)]
        for _ in range(100):  # bounded: the grace is 0.5 s
            if hub.stats.cancelled_stuck:
                break
            await asyncio.sleep(0.1)
        assert hub.stats.history_replays == 1 and hub.stats.cancelled_stuck == 1
        got, err = await read_all(call, timeout=30)
        revisions = [r for r, _, _ in changed_keys(got)]
        assert 0 < len(revisions) < len(missed)  # the client stopped it inside the replay
        assert revisions == missed[: len(revisions)]
        assert err is not None and err.code() == grpc.StatusCode.UNAVAILABLE
        assert "stopped reading" in (err.details() or "")
        handed_out = resume_revision(err)
        assert handed_out == revisions[-1] + 1
        rest = resume(second, handed_out)
        more = await read_through(rest, live[-1])
        rest.cancel()
        assert revisions + [r for r, _, _ in changed_keys(more)] == missed + live
    finally:
        await close_stack(second)


async def test_a_history_replay_past_its_deadline_is_reset(own_etcd: EtcdServer) -> None:
    first = await start(own_etcd)
    await first.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="acme"))
    seen = await put(first, "acme", "a")
    await put(first, "acme", "b")
    await close_stack(first)

    second = await start(own_etcd, watch=WatchLimits(history_timeout=0.0001))
    try:
        messages, err = await read_all(resume(second, seen + 1), timeout=30)
        assert err is None
        assert [m.WhichOneof("kind") for m in messages][-1] == "reset"
        assert messages[-1].reset.reason == watch_pb2.RESET_REASON_RESUME_TOO_OLD
        assert "took longer than" in messages[-1].reset.message
    finally:
        await close_stack(second)
