"""Local dispatch: callbacks (sync and async), error isolation, iterators with bounded queues."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading

import pytest

from configsvc_client import Change, ChangesOverflowError, ChangeType, Entry, Key, KeyPrefix
from configsvc_client.subscriptions import Dispatcher


def put(name: str, revision: int, service: str = "api") -> Change:
    key = Key("acme", "prod", service, name)
    return Change(key, ChangeType.PUT, revision, Entry(key, str(revision), revision, 1))


async def test_exact_and_prefix_callbacks_in_order() -> None:
    dispatcher = Dispatcher()
    seen: list[tuple[str, str, int]] = []
    dispatcher.subscribe(
        Key("acme", "prod", "api", "db.pool"),
        lambda c: seen.append(("exact", c.path.key, c.revision)),
    )

    async def on_prefix(change: Change) -> None:
        await asyncio.sleep(0)
        seen.append(("prefix", change.path.key, change.value))

    dispatcher.subscribe(KeyPrefix("acme", "prod", "api", "db."), on_prefix)
    dispatcher.subscribe(None, lambda c: seen.append(("all", c.path.key, c.revision)))
    await dispatcher.dispatch([put("db.pool", 5), put("cache.size", 6), put("db.x", 7, "web")])
    assert seen == [
        ("exact", "db.pool", 5),
        ("prefix", "db.pool", 5),
        ("all", "db.pool", 5),
        ("all", "cache.size", 6),
        ("all", "db.x", 7),
    ]


async def test_failing_callbacks_are_logged_and_do_not_stop_delivery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dispatcher = Dispatcher()
    seen: list[int] = []

    def boom(change: Change) -> None:
        raise RuntimeError("callback bug")

    async def async_boom(change: Change) -> None:
        raise ValueError("async callback bug")

    dispatcher.subscribe(None, boom)
    dispatcher.subscribe(None, async_boom)
    dispatcher.subscribe(None, lambda c: seen.append(c.revision))
    with caplog.at_level(logging.ERROR, logger="configsvc_client"):
        await dispatcher.dispatch([put("a", 1), put("b", 2)])
    assert seen == [1, 2]
    assert dispatcher.callback_errors == 4
    assert "callback bug" in caplog.text and "async callback bug" in caplog.text


async def test_cancel_and_context_manager() -> None:
    dispatcher = Dispatcher()
    seen: list[int] = []
    sub = dispatcher.subscribe(None, lambda c: seen.append(c.revision))
    with dispatcher.subscribe(Key("acme", "prod", "api", "a"), lambda c: seen.append(-1)):
        await dispatcher.dispatch([put("a", 1)])
    sub.cancel()
    sub.cancel()  # idempotent
    await dispatcher.dispatch([put("a", 2)])
    assert seen == [-1, 1] and not sub.active  # exact-key subscriptions are served first


async def test_a_callback_may_cancel_during_dispatch() -> None:
    dispatcher = Dispatcher()
    seen: list[str] = []
    second = None

    def first(change: Change) -> None:
        seen.append("first")
        assert second is not None
        second.cancel()

    dispatcher.subscribe(None, first)
    second = dispatcher.subscribe(None, lambda c: seen.append("second"))
    await dispatcher.dispatch([put("a", 1)])
    assert seen == ["first"]


async def test_subscribe_from_other_threads_while_dispatching() -> None:
    dispatcher = Dispatcher()
    subs = []

    def churn() -> None:
        for _ in range(500):
            subs.append(dispatcher.subscribe(None, lambda c: None))
            subs.pop(0).cancel() if len(subs) > 10 else None

    thread = threading.Thread(target=churn)
    thread.start()
    while thread.is_alive():
        await dispatcher.dispatch([put("a", 1)])
        await asyncio.sleep(0)
    thread.join()


async def test_stream_delivers_in_order_and_ends_on_close() -> None:
    dispatcher = Dispatcher()
    stream = dispatcher.open_stream(KeyPrefix("acme", "prod", "api", "db."), max_queue=10)
    await dispatcher.dispatch([put("db.a", 1), put("other", 2), put("db.b", 3)])
    got = [await anext(stream), await anext(stream)]
    assert [(c.path.key, c.revision) for c in got] == [("db.a", 1), ("db.b", 3)]

    async def consume() -> list[int]:
        return [c.revision async for c in stream]

    task = asyncio.ensure_future(consume())
    await asyncio.sleep(0)
    await dispatcher.dispatch([put("db.c", 4)])
    await asyncio.sleep(0)
    dispatcher.close()
    assert await asyncio.wait_for(task, 2) == [4]


async def test_stream_overflow_raises_after_the_queued_changes() -> None:
    dispatcher = Dispatcher()
    stream = dispatcher.open_stream(None, max_queue=3)
    await dispatcher.dispatch([put("a", r) for r in range(1, 6)])
    assert [(await anext(stream)).revision for _ in range(3)] == [1, 2, 3]
    with pytest.raises(ChangesOverflowError):
        await anext(stream)
    # No longer registered: later changes do not pile up anywhere.
    await dispatcher.dispatch([put("a", 9)])
    assert not stream._queue


async def test_streams_are_dropped_when_garbage() -> None:
    dispatcher = Dispatcher()
    dispatcher.open_stream(None, max_queue=3)
    gc.collect()
    assert len(dispatcher._streams) == 0


async def test_stream_context_manager_unregisters() -> None:
    dispatcher = Dispatcher()
    async with dispatcher.open_stream(None, max_queue=3) as stream:
        assert len(dispatcher._streams) == 1
    assert len(dispatcher._streams) == 0
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
