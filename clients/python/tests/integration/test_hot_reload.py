"""Hot reload against the real server: puts reach get(), callbacks and iterators."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from clients.python.tests.integration.support import Recorder, Server, eventually
from configsvc_client import (
    Change,
    ChangesOverflowError,
    ChangeType,
    ConfigClient,
    Selector,
    SyncConfigClient,
)


async def test_put_reaches_get_callbacks_and_iterators(server: Server, tenant: str) -> None:
    await server.put(tenant, "db.pool", '{"max": 20}')
    await server.put(tenant, "other", '"x"', service="web")  # outside the selector
    async with ConfigClient.connect(
        server.address, selectors=[Selector(tenant=tenant, environment="prod", service="api")]
    ) as client:
        status = client.status
        assert status.connected and not status.stale and status.last_error is None
        assert client.get(f"{tenant}/prod/api/db.pool") == {"max": 20}
        assert len(client.entries()) == 1

        exact, by_prefix = Recorder(), Recorder()
        async_seen: list[Change] = []

        async def on_async(change: Change) -> None:
            await asyncio.sleep(0)
            async_seen.append(change)

        client.subscribe(f"{tenant}/prod/api/db.pool", exact)
        client.subscribe(f"{tenant}/prod/api/db.", by_prefix, prefix=True)
        client.subscribe(f"{tenant}/prod/api/db.pool", on_async)
        stream = client.changes(prefix=f"{tenant}/prod/api/")

        revision = await server.put(tenant, "db.pool", '{"max": 50}')
        await eventually(lambda: client.get(f"{tenant}/prod/api/db.pool") == {"max": 50})
        await eventually(lambda: len(async_seen) == 1)
        assert exact.summary() == [("put", "db.pool", {"max": 50})]
        assert exact.changes[0].revision == revision
        assert exact.changes[0].previous is not None
        assert exact.changes[0].previous.value == '{"max": 20}'
        assert async_seen[0].revision == revision

        # The client's own write helpers; read-your-write through wait_revision.
        written = await client.put(f"{tenant}/prod/api/db.timeout", raw_json="9007199254740993")
        assert await client.wait_revision(written.revision, timeout=5)
        assert client.get_int(f"{tenant}/prod/api/db.timeout") == 9007199254740993
        deleted = await client.delete(f"{tenant}/prod/api/db.pool", reason="cleanup")
        assert deleted.previous.value == '{"max": 50}'
        assert await client.wait_revision(deleted.revision, timeout=5)
        assert client.get(f"{tenant}/prod/api/db.pool", "gone") == "gone"
        # wait_revision covers the cache; callbacks run in order but after it (an async
        # callback earlier in the dispatch, on_async here, yields to the waiter).
        await eventually(lambda: len(by_prefix.changes) == 3)
        assert by_prefix.summary() == [
            ("put", "db.pool", {"max": 50}),
            ("put", "db.timeout", 9007199254740993),
            ("delete", "db.pool", None),
        ]
        got = [await asyncio.wait_for(anext(stream), 5) for _ in range(3)]
        assert [(c.type, c.path.key) for c in got] == [
            (ChangeType.PUT, "db.pool"),
            (ChangeType.PUT, "db.timeout"),
            (ChangeType.DELETE, "db.pool"),
        ]
        fetched = await client.fetch(f"{tenant}/prod/api/db.timeout", consistent=True)
        assert fetched.value == "9007199254740993" and fetched.revision == written.revision
        stats = client.stats
        assert stats.snapshots == 1 and stats.duplicates_ignored == 0 and stats.resets == 0
    assert client.status.connected is False


async def test_selectors_with_prefixes_and_exact_keys(server: Server, tenant: str) -> None:
    await server.put(tenant, "feature.a", "true", env="all", service="all")
    await server.put(tenant, "feature.b", "false", env="all", service="all")
    await server.put(tenant, "db.x", "1")
    await server.put(tenant, "cache.x", "2")
    async with ConfigClient.connect(
        server.address,
        selectors=[
            Selector(tenant=tenant, environment="prod", key_prefixes=["db."]),
            Selector(tenant=tenant, environment="all", service="all", keys=["feature.a"]),
        ],
    ) as client:
        assert {e.path for e in client.entries()} == {
            f"{tenant}/all/all/feature.a",
            f"{tenant}/prod/api/db.x",
        }
        assert client.get_bool(f"{tenant}/all/all/feature.a") is True
        seen = Recorder()
        client.subscribe(f"{tenant}/prod/web/", seen, prefix=True)
        await server.put(tenant, "db.y", "3", service="web")
        await server.put(tenant, "cache.y", "4", service="web")  # not watched
        await server.put(tenant, "db.z", "5", service="web")
        await eventually(lambda: len(seen.changes) == 2)
        assert seen.summary() == [("put", "db.y", 3), ("put", "db.z", 5)]


async def test_a_failing_callback_does_not_break_the_stream(server: Server, tenant: str) -> None:
    async with ConfigClient.connect(server.address, selectors=[Selector(tenant=tenant)]) as client:

        def broken(change: Change) -> None:
            raise RuntimeError("bug in user code")

        good = Recorder()
        client.subscribe(f"{tenant}/prod/api/k", broken)
        client.subscribe(f"{tenant}/prod/api/k", good)
        for value in range(3):
            await server.put(tenant, "k", str(value))
        await eventually(lambda: len(good.changes) == 3)
        assert client.stats.callback_errors == 3 and client.status.connected


def _sync_scenario(
    address: str, tenant: str, put_from_outside: threading.Event, done: threading.Event
) -> list[tuple[str, object, str]]:
    seen: list[tuple[str, object, str]] = []
    arrived = threading.Event()

    def on_change(change: Change) -> None:
        seen.append((change.path.key, change.value, threading.current_thread().name))
        if len(seen) == 2:
            arrived.set()

    with SyncConfigClient.connect(
        address, selectors=[Selector(tenant=tenant, environment="prod", service="api")]
    ) as client:
        assert client.get_int(f"{tenant}/prod/api/limit") == 1
        assert client.status.connected and not client.status.stale
        client.subscribe(f"{tenant}/prod/api/limit", on_change)
        put_from_outside.set()  # the test's event loop puts limit=2 through the server
        for _ in range(500):
            if seen:
                break
            time.sleep(0.02)
        assert client.get_int(f"{tenant}/prod/api/limit") == 2
        entry = client.put(f"{tenant}/prod/api/limit", 3, reason="from the sync facade")
        assert arrived.wait(10)
        assert client.wait_revision(entry.revision, timeout=5)
        assert client.get_int(f"{tenant}/prod/api/limit") == 3
        assert client.wait_fresh(timeout=1)
    done.set()
    return seen


async def test_sync_facade_hot_reload(server: Server, tenant: str) -> None:
    await server.put(tenant, "limit", "1")
    put_from_outside, done = threading.Event(), threading.Event()
    scenario = asyncio.ensure_future(
        asyncio.to_thread(_sync_scenario, server.address, tenant, put_from_outside, done)
    )
    await eventually(put_from_outside.is_set, what="sync client subscribed")
    await server.put(tenant, "limit", "2")
    seen = await asyncio.wait_for(scenario, 30)
    assert [v for _, v, _ in seen] == [2, 3]
    # Callbacks run on the client's own thread, not the caller's.
    assert {thread for _, _, thread in seen} == {"configsvc-client"}


async def test_sync_facade_rejects_blocking_calls_from_callbacks(
    server: Server, tenant: str
) -> None:
    def scenario() -> BaseException | None:
        errors: list[BaseException] = []
        fired = threading.Event()
        with SyncConfigClient.connect(
            server.address, selectors=[Selector(tenant=tenant)]
        ) as client:

            def on_change(change: Change) -> None:
                try:
                    client.fetch(change.path)
                except BaseException as exc:
                    errors.append(exc)
                fired.set()

            client.subscribe(f"{tenant}/prod/api/", on_change, prefix=True)
            client.put(f"{tenant}/prod/api/x", 1)
            assert fired.wait(10)
        return errors[0] if errors else None

    error = await asyncio.to_thread(scenario)
    assert isinstance(error, RuntimeError) and "callback" in str(error)


@pytest.mark.parametrize("max_queue", [2])
async def test_slow_iterator_overflows_without_blocking_others(
    server: Server, tenant: str, max_queue: int
) -> None:
    async with ConfigClient.connect(server.address, selectors=[Selector(tenant=tenant)]) as client:
        slow = client.changes(max_queue=max_queue)
        fast = Recorder()
        client.subscribe(f"{tenant}/prod/api/", fast, prefix=True)
        for value in range(5):
            await server.put(tenant, "k", str(value))
        await eventually(lambda: len(fast.changes) == 5)
        assert [(await anext(slow)).value for _ in range(max_queue)] == [0, 1]
        with pytest.raises(ChangesOverflowError):
            await anext(slow)
