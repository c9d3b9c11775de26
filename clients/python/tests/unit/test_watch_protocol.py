"""The Watch state machine against a scripted stream (a pure unit: no network).

The integration tests run the same client against the real server; these
pin down the cases a real server does not produce on demand: repeated and
stale revisions, protocol violations, refusals of a resume point.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from configsvc_client import Backoff, ChangeType, Entry, Key, Selector
from configsvc_client._gen.configsvc.v1 import config_pb2, watch_pb2
from configsvc_client._watch import Watcher
from configsvc_client.cache import Cache
from configsvc_client.errors import NotFoundError
from configsvc_client.lkg import CacheFile
from configsvc_client.status import Stats
from configsvc_client.subscriptions import Dispatcher

SELECTORS = (Selector(tenant="acme", environment="prod", service="api"),)


def pb_entry(key: str, value: str, revision: int) -> config_pb2.ConfigEntry:
    return config_pb2.ConfigEntry(
        key=config_pb2.ConfigKey(tenant="acme", environment="prod", service="api", key=key),
        value=value,
        mod_revision=revision,
        create_revision=revision,
        version=1,
    )


def snapshot(revision: int, **values: tuple[str, int]) -> list[watch_pb2.WatchResponse]:
    entries = [pb_entry(k, v, r) for k, (v, r) in sorted(values.items())]
    return [
        watch_pb2.WatchResponse(snapshot=watch_pb2.SnapshotChunk(entries=entries[:1])),
        watch_pb2.WatchResponse(snapshot=watch_pb2.SnapshotChunk(entries=entries[1:])),
        watch_pb2.WatchResponse(snapshot_end=watch_pb2.SnapshotEnd(revision=revision)),
    ]


def changes(revision: int, *puts: str, deletes: tuple[str, ...] = ()) -> watch_pb2.WatchResponse:
    items = [
        watch_pb2.Change(
            type=watch_pb2.CHANGE_TYPE_PUT,
            key=pb_entry(k, "0", 0).key,
            entry=pb_entry(k, str(revision), revision),
        )
        for k in puts
    ]
    items += [
        watch_pb2.Change(type=watch_pb2.CHANGE_TYPE_DELETE, key=pb_entry(k, "", 0).key)
        for k in deletes
    ]
    return watch_pb2.WatchResponse(changes=watch_pb2.Changes(revision=revision, changes=items))


def progress(revision: int) -> watch_pb2.WatchResponse:
    return watch_pb2.WatchResponse(progress=watch_pb2.Progress(revision=revision))


def reset() -> watch_pb2.WatchResponse:
    return watch_pb2.WatchResponse(
        reset=watch_pb2.Reset(
            reason=watch_pb2.RESET_REASON_RESUME_TOO_OLD,
            compact_revision=50,
            revision=60,
            message="too old",
        )
    )


def status(code: grpc.StatusCode, message: str = "") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=message)


class FakeCall:
    """Yields its responses, then raises ``error``, ends, or stays open until cancelled."""

    def __init__(
        self,
        responses: list[watch_pb2.WatchResponse],
        error: grpc.aio.AioRpcError | None = None,
        hold: bool = False,
    ) -> None:
        self.responses, self.error, self.hold = responses, error, hold
        self._cancelled = asyncio.Event()

    def __aiter__(self) -> AsyncIterator[watch_pb2.WatchResponse]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[watch_pb2.WatchResponse]:
        for response in self.responses:
            await asyncio.sleep(0)
            yield response
        if self.error is not None:
            raise self.error
        if self.hold:
            await self._cancelled.wait()
            raise status(grpc.StatusCode.CANCELLED)

    def cancel(self) -> None:
        self._cancelled.set()

    async def wait_for_connection(self) -> None:
        return None


class FakeTransport:
    def __init__(self, *calls: FakeCall) -> None:
        self.calls = list(calls)
        self.requests: list[watch_pb2.WatchRequest] = []
        self.more = asyncio.Event()

    def watch(self, request: watch_pb2.WatchRequest, metadata: Any = None) -> FakeCall:
        self.requests.append(request)
        self.more.set()
        return self.calls.pop(0) if self.calls else FakeCall([], hold=True)


async def run(
    transport: FakeTransport,
    until: int,
    cache: Cache | None = None,
) -> tuple[Watcher, list[tuple[str, str, int]]]:
    """Start a watcher and let it make ``until`` Watch calls (the last one stays open)."""
    seen: list[tuple[str, str, int]] = []
    dispatcher = Dispatcher()
    dispatcher.subscribe(None, lambda c: seen.append((c.type.value, c.path.key, c.revision)))
    watcher = Watcher(
        transport,
        SELECTORS,
        cache or Cache(),
        dispatcher,
        Stats(),  # type: ignore[arg-type]
        backoff=Backoff(initial=0.001, maximum=0.002),
    )
    watcher.start()
    for _ in range(200):
        if len(transport.requests) >= until and not transport.calls:
            break
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.05)
    return watcher, seen


async def test_first_stream_asks_for_a_snapshot_then_resumes_after_the_last_revision() -> None:
    transport = FakeTransport(
        FakeCall(
            [
                *snapshot(4, a=("1", 3), b=("2", 4)),
                changes(5, "a"),
                changes(5, "a"),
                changes(3, "b"),
                changes(6, "b", deletes=("a",)),
            ],
            error=status(grpc.StatusCode.UNAVAILABLE, "server shutting down"),
        ),
        FakeCall([progress(9)], hold=True),
    )
    watcher, seen = await run(transport, 2)
    try:
        first, second = transport.requests[:2]
        assert first.send_snapshot and first.start_revision == 0
        assert list(first.selectors) == [
            watch_pb2.WatchSelector(tenant="acme", environment="prod", service="api")
        ]
        assert not second.send_snapshot and second.start_revision == 7
        # Snapshot diff (from empty), then each revision once; the repeats are ignored.
        assert seen == [
            ("put", "a", 3),
            ("put", "b", 4),
            ("put", "a", 5),
            ("put", "b", 6),
            ("delete", "a", 6),
        ]
        assert watcher.stats.duplicates_ignored == 2 and watcher.stats.revisions_applied == 2
        assert watcher.cache.revision == 9  # progress moved the resume point
        assert watcher.connected and watcher.fresh.is_set()
        assert watcher.last_error is not None and "shutting down" in watcher.last_error
    finally:
        await watcher.stop()


async def test_reset_re_snapshots_and_reports_the_differences() -> None:
    transport = FakeTransport(
        FakeCall(snapshot(4, a=("1", 3), b=("2", 4), c=("3", 2))),  # then ends cleanly
        FakeCall([reset()]),
        FakeCall([*snapshot(60, a=("1", 3), b=("5", 55), d=("7", 58))], hold=True),
    )
    watcher, seen = await run(transport, 3)
    try:
        assert [r.send_snapshot for r in transport.requests[:3]] == [True, False, True]
        assert transport.requests[1].start_revision == 5
        # In revision order (issue 17 item 4; this asserted key order before).
        assert seen[3:] == [("put", "b", 55), ("put", "d", 58), ("delete", "c", 60)]
        assert watcher.stats.resets == 1 and watcher.stats.snapshots == 2
        assert {k.key: e.value for k, e in watcher.cache.entries().items()} == {
            "a": "1",
            "b": "5",
            "d": "7",
        }
        assert "RESET_REASON_RESUME_TOO_OLD" in (watcher.last_error or "")
    finally:
        await watcher.stop()


async def test_a_broken_snapshot_leaves_the_cache_untouched() -> None:
    cache = Cache()
    transport = FakeTransport(
        FakeCall(
            snapshot(4, a=("1", 3), b=("2", 4))[:1], error=status(grpc.StatusCode.UNAVAILABLE)
        ),
        FakeCall([], hold=True),
    )
    seen_sizes = []
    watcher, seen = await run(transport, 2, cache)
    try:
        seen_sizes.append(len(cache))
        assert seen == [] and seen_sizes == [0] and not cache.has_base
        assert transport.requests[1].send_snapshot
    finally:
        await watcher.stop()


@pytest.mark.parametrize(
    "bad",
    [
        [changes(3, "a")],  # changes before snapshot_end
        [*snapshot(4, a=("1", 3)), *snapshot(5, a=("1", 3))],  # a second snapshot on one stream
    ],
)
async def test_protocol_violations_force_a_snapshot(bad: list[watch_pb2.WatchResponse]) -> None:
    transport = FakeTransport(FakeCall(bad, hold=True), FakeCall([], hold=True))
    watcher, _ = await run(transport, 2)
    try:
        assert watcher.stats.protocol_errors == 1
        assert transport.requests[1].send_snapshot
    finally:
        await watcher.stop()


async def test_progress_behind_the_cache_never_moves_the_resume_point_back() -> None:
    # A replica that lags (or has not seen unrelated etcd revisions) may say "complete up
    # to 12" after a resume at 41: true, and no reason to re-snapshot or go back.
    transport = FakeTransport(
        FakeCall(snapshot(40, a=("1", 30)), error=status(grpc.StatusCode.UNAVAILABLE)),
        FakeCall(
            [progress(12), changes(40, "a"), changes(41, "a")],
            error=status(grpc.StatusCode.UNAVAILABLE),
        ),
        FakeCall([], hold=True),
    )
    watcher, seen = await run(transport, 3)
    try:
        assert [r.send_snapshot for r in transport.requests[:3]] == [True, False, False]
        assert transport.requests[2].start_revision == 42
        assert watcher.stats.progress_behind == 1 and watcher.stats.duplicates_ignored == 1
        assert seen[-1] == ("put", "a", 41) and watcher.cache.revision == 41
    finally:
        await watcher.stop()


@pytest.mark.parametrize(
    ("target", "selectors", "resumes"),
    [
        ("server:1", SELECTORS, True),
        ("elsewhere:1", SELECTORS, False),
        ("server:1", (Selector(tenant="acme"),), False),
    ],
)
async def test_a_cache_file_is_a_resume_point_only_for_the_same_target_and_selectors(
    target: str, selectors: tuple[Selector, ...], resumes: bool
) -> None:
    transport = FakeTransport(FakeCall([], hold=True))
    watcher = Watcher(
        transport,
        SELECTORS,
        Cache(),
        Dispatcher(),
        Stats(),  # type: ignore[arg-type]
        backoff=Backoff(initial=0.001, maximum=0.002),
    )
    file = CacheFile(
        revision=77,
        selectors=selectors,
        target=target,
        entries=(
            Entry(Key("acme", "prod", "api", "a"), "1", 70, 1),
            Entry(Key("acme", "prod", "web", "b"), "2", 71, 1),
        ),
    )
    assert watcher.adopt(file, "server:1")
    assert [k.key for k in watcher.cache.entries()] == ["a"]  # filtered to the selectors
    watcher.start()
    await asyncio.sleep(0.05)
    await watcher.stop()
    request = transport.requests[0]
    assert request.send_snapshot is not resumes
    assert request.start_revision == (78 if resumes else 0)


async def test_a_refused_resume_point_falls_back_to_a_snapshot_at_once() -> None:
    transport = FakeTransport(
        FakeCall(snapshot(4, a=("1", 3))),
        FakeCall([], error=status(grpc.StatusCode.OUT_OF_RANGE, "future revision")),
        FakeCall(snapshot(4, a=("1", 3)), hold=True),
    )
    watcher, _ = await run(transport, 3)
    try:
        assert [r.send_snapshot for r in transport.requests[:3]] == [True, False, True]
    finally:
        await watcher.stop()


async def test_a_bad_request_at_start_fails_startup() -> None:
    transport = FakeTransport(FakeCall([], error=status(grpc.StatusCode.NOT_FOUND, "tenant")))
    watcher, _ = await run(transport, 1)
    try:
        with pytest.raises(NotFoundError):
            await watcher.started
        assert len(transport.requests) == 1  # not retried
    finally:
        await watcher.stop()


async def test_unavailable_is_retried_with_backoff_until_live() -> None:
    transport = FakeTransport(
        *[
            FakeCall([], error=status(grpc.StatusCode.UNAVAILABLE, "connect failed"))
            for _ in range(5)
        ],
        FakeCall(snapshot(4, a=("1", 3)), hold=True),
    )
    watcher, _ = await run(transport, 6)
    try:
        await asyncio.wait_for(watcher.started, 2)
        assert all(r.send_snapshot for r in transport.requests)
        assert watcher.stats.streams_opened == 6 and watcher.connected
    finally:
        await watcher.stop()


async def test_wait_revision_and_close() -> None:
    transport = FakeTransport(FakeCall([*snapshot(4, a=("1", 3)), changes(8, "a")], hold=True))
    watcher, _ = await run(transport, 1)
    assert await watcher.wait_revision(8, 1)
    assert not await watcher.wait_revision(9, 0.05)
    await watcher.stop()
    assert not watcher.connected


async def test_change_types_are_reported() -> None:
    transport = FakeTransport(
        FakeCall([*snapshot(4), changes(5, "x"), changes(6, deletes=("x",))], hold=True)
    )
    watcher, seen = await run(transport, 1)
    await watcher.stop()
    assert seen == [(ChangeType.PUT.value, "x", 5), (ChangeType.DELETE.value, "x", 6)]
