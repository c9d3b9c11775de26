"""Delivery decoupled from the stream (bounded, coalescing) and the silence limit.

Pure units: the real Cache, Dispatcher and Watcher against the scripted stream of
test_watch_protocol; the integration tests (test_silent_streams.py) do the same
against real servers.
"""

from __future__ import annotations

import asyncio

import pytest

from clients.python.tests.unit.test_watch_protocol import (
    SELECTORS,
    FakeCall,
    FakeTransport,
    changes,
    progress,
    snapshot,
)
from configsvc_client import Backoff, Change, ConfigClient, Entry, Key
from configsvc_client._delivery import Delivery
from configsvc_client._watch import RESUME_SETTLE, Watcher, silence_limit
from configsvc_client.cache import Cache, RawChange
from configsvc_client.errors import InvalidArgumentError
from configsvc_client.model import ChangeType
from configsvc_client.status import Stats
from configsvc_client.subscriptions import Dispatcher


def _put(cache: Cache, name: str, revision: int) -> list[Change]:
    key = Key("acme", "prod", "api", name)
    entry = Entry(key, str(revision), revision=revision, version=1)
    return cache.apply(revision, [RawChange(ChangeType.PUT, key, entry)])


def _delete(cache: Cache, name: str, revision: int) -> list[Change]:
    key = Key("acme", "prod", "api", name)
    return cache.apply(revision, [RawChange(ChangeType.DELETE, key, None)])


async def test_changes_under_the_bound_are_delivered_one_by_one_in_order() -> None:
    cache, dispatcher, stats = Cache(), Dispatcher(), Stats()
    seen: list[tuple[str, int]] = []
    dispatcher.subscribe(None, lambda c: seen.append((c.path.key, c.revision)))
    delivery = Delivery(dispatcher, cache, stats, max_pending=10)
    delivery.start()
    try:
        for revision, name in enumerate(["b", "a", "b", "c"], start=1):
            delivery.publish(_put(cache, name, revision))
        await asyncio.sleep(0.05)
        assert seen == [("b", 1), ("a", 2), ("b", 3), ("c", 4)]
        assert stats.deliveries_coalesced == 0 and delivery.pending == 0
    finally:
        await delivery.stop()


async def test_a_callback_may_stop_the_delivery_it_runs_in() -> None:
    cache, dispatcher, stats = Cache(), Dispatcher(), Stats()
    delivery = Delivery(dispatcher, cache, stats, max_pending=10)
    seen: list[int] = []

    async def stopper(change: Change) -> None:
        seen.append(change.revision)
        await delivery.stop()

    dispatcher.subscribe(None, stopper)
    delivery.start()
    task = delivery._task
    delivery.publish(_put(cache, "a", 1) + _put(cache, "b", 2))
    await asyncio.sleep(0.05)
    assert seen == [1] and task is not None and task.done()


async def test_slow_callbacks_get_the_net_difference_in_revision_order() -> None:
    """The callback blocks on its first change; 50 more changes overflow the bound of 8.
    Publishing never waits; once the callback lets go it hears, one at a time in revision
    order, what changed since the change in flight: each key's latest state, deletes too."""
    cache, dispatcher, stats = Cache(), Dispatcher(), Stats()
    release = asyncio.Event()
    seen: list[Change] = []

    async def slow(change: Change) -> None:
        await release.wait()
        seen.append(change)

    dispatcher.subscribe(None, slow)
    delivery = Delivery(dispatcher, cache, stats, max_pending=8)
    delivery.start()
    try:
        delivery.publish(_put(cache, "k0", 1))
        await asyncio.sleep(0.01)  # k0@1 is in flight now
        revision = 1
        for i in range(50):
            revision += 1
            delivery.publish(_put(cache, f"k{i % 6}", revision))
        revision += 1
        delivery.publish(_delete(cache, "k0", revision))
        assert stats.deliveries_coalesced == 1 and delivery.pending == 0
        release.set()
        await asyncio.sleep(0.05)
        revisions = [c.revision for c in seen]
        assert revisions == sorted(revisions)
        assert seen[0].path.key == "k0" and seen[0].revision == 1  # the one in flight
        heard: dict[str, str | None] = {}
        for change in seen:
            heard[change.path.key] = change.entry.value if change.entry else None
        assert {k: v for k, v in heard.items() if v is not None} == {
            k.key: e.value for k, e in cache.entries().items()
        }
        # One change per key after k0@1: puts of k1..k5, then the delete of k0 (at the
        # cache's revision, so last).
        assert heard["k0"] is None and len(seen) == 1 + 6
        assert seen[-1].type is ChangeType.DELETE and seen[-1].revision == revision
        # Back under the bound: every change again.
        delivery.publish(_put(cache, "k9", revision + 1))
        await asyncio.sleep(0.02)
        assert seen[-1].path.key == "k9" and stats.deliveries_coalesced == 1
    finally:
        await delivery.stop()


async def test_a_silent_stream_is_cancelled_and_resumed_after_its_revision() -> None:
    """The first stream delivers a snapshot and a change, then nothing (no heartbeat, no
    status: a server that gave up on it). After the silence limit the client cancels it,
    reports the silence and resumes from the next revision on a new stream."""
    transport = FakeTransport(
        FakeCall([*snapshot(4, a=("1", 3)), changes(6, "a")], hold=True),
        FakeCall([progress(9)], hold=True),
    )
    seen: list[tuple[str, int]] = []
    dispatcher = Dispatcher()
    dispatcher.subscribe(None, lambda c: seen.append((c.path.key, c.revision)))
    watcher = Watcher(
        transport,
        SELECTORS,
        Cache(),
        dispatcher,
        Stats(),  # type: ignore[arg-type]
        backoff=Backoff(initial=0.001, maximum=0.002),
        silence_limit=0.3,
    )
    watcher.start()
    try:
        for _ in range(200):
            if len(transport.requests) >= 2:
                break
            await asyncio.sleep(0.01)
        assert len(transport.requests) >= 2
        second = transport.requests[1]
        assert not second.send_snapshot and second.start_revision == 7
        assert watcher.stats.silent_streams == 1 and watcher.stats.snapshots == 1
        assert "silence limit" in (watcher.last_error or "")
        assert seen == [("a", 3), ("a", 6)]
    finally:
        await watcher.stop()


async def test_after_a_silence_only_a_message_makes_a_resumed_stream_live() -> None:
    """A stopped server lets the kernel accept a new stream and says nothing: after a
    silence, a resumed stream that stays open is not live (stale) until a message comes."""
    late = FakeCall([], hold=True)
    transport = FakeTransport(FakeCall(snapshot(4, a=("1", 3)), hold=True), late)
    watcher = Watcher(
        transport,
        SELECTORS,
        Cache(),
        Dispatcher(),
        Stats(),  # type: ignore[arg-type]
        backoff=Backoff(initial=0.001, maximum=0.002),
        silence_limit=1.0,
    )
    watcher.start()
    try:
        for _ in range(300):
            if len(transport.requests) >= 2:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(RESUME_SETTLE + 0.2)  # past the settle time, before the next silence
        assert len(transport.requests) == 2 and not transport.requests[1].send_snapshot
        assert not watcher.connected and not watcher.fresh.is_set()
    finally:
        await watcher.stop()


async def test_heartbeats_keep_a_quiet_stream_alive() -> None:
    class Heartbeats(FakeCall):
        async def _iterate(self):  # type: ignore[no-untyped-def,override]
            for response in snapshot(4, a=("1", 3)):
                yield response
            for revision in range(5, 25):
                await asyncio.sleep(0.05)
                yield progress(revision)
            await self._cancelled.wait()

    transport = FakeTransport(Heartbeats([]))
    watcher = Watcher(
        transport,
        SELECTORS,
        Cache(),
        Dispatcher(),
        Stats(),  # type: ignore[arg-type]
        backoff=Backoff(initial=0.001, maximum=0.002),
        silence_limit=0.5,
    )
    watcher.start()
    try:
        await asyncio.sleep(0.8)  # well past the limit, heartbeats every 0.05 s meanwhile
        assert watcher.stats.silent_streams == 0 and len(transport.requests) == 1
        assert not watcher.silent and watcher.connected
    finally:
        await watcher.stop()


def test_the_silence_limit_is_a_multiple_of_the_progress_interval() -> None:
    assert silence_limit(10.0, 3.0) == 30.0  # the defaults
    assert silence_limit(0.5, 3.0) == 1.5
    with pytest.raises(InvalidArgumentError, match="silence_intervals"):
        silence_limit(10.0, 1.2)  # jitter alone would make quiet streams look dead
    with pytest.raises(InvalidArgumentError, match="progress_interval"):
        silence_limit(0.0, 3.0)
    with pytest.raises(InvalidArgumentError, match="silence_intervals"):
        ConfigClient("127.0.0.1:1", selectors=SELECTORS, silence_intervals=1.0)
