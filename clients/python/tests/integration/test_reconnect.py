"""Reconnect and resume against real servers: nothing missed, nothing repeated; RESET."""

from __future__ import annotations

import asyncio
import os

from clients.python.tests.integration.support import Recorder, eventually, start_server
from configsvc.devstack.etcd import EtcdServer
from configsvc.devstack.ports import free_port
from configsvc.store.etcd import EtcdClient
from configsvc.watch.hub import WatchLimits
from configsvc_client import Backoff, Change, ConfigClient, Selector

FAST = Backoff(initial=0.05, maximum=0.5)


async def test_resume_across_stream_ends_under_concurrent_writes(etcd: EtcdServer) -> None:
    """The server ends every stream after ~1 s (maximum age); the client resumes each time
    while a writer keeps going: every revision arrives exactly once, in order."""
    server = await start_server(
        etcd.endpoint,
        f"/client-age-{os.getpid()}",
        watch=WatchLimits(max_age=1.0, progress_interval=0.5),
    )
    try:
        await server.create_tenant("acme")
        await server.put("acme", "k0", "0")
        async with ConfigClient.connect(
            server.address, selectors=[Selector(tenant="acme")], backoff=FAST
        ) as client:
            seen = Recorder()
            client.subscribe("acme/prod/api/", seen, prefix=True)
            written: list[int] = []
            for i in range(150):
                written.append(await server.put("acme", f"k{i % 7}", str(i)))
                await asyncio.sleep(0.02)
            await eventually(lambda: client.status.revision >= written[-1])
            # Callbacks run in a task of their own, after the cache shows the change.
            await eventually(lambda: len(seen.changes) >= len(written))
            revisions = [c.revision for c in seen.changes]
            assert revisions == written  # no gap, no repeat, in order
            assert [c.value for c in seen.changes] == list(range(150))
            stats = client.stats
            assert stats.streams_opened >= 3, stats  # it really reconnected
            assert stats.resets == 0 and stats.snapshots == 1, stats
            assert "maximum stream age" in (client.status.last_error or "")
            assert await client.wait_fresh(timeout=5)
    finally:
        await server.stop()


async def test_resume_after_a_server_restart_on_the_same_port(private_etcd: EtcdServer) -> None:
    port = free_port()
    server = await start_server(private_etcd.endpoint, "/configsvc", port)
    await server.create_tenant("acme")
    for i in range(3):
        await server.put("acme", f"k{i}", str(i))
    client = await ConfigClient.connect(
        f"127.0.0.1:{port}", selectors=[Selector(tenant="acme")], backoff=FAST
    )
    try:
        seen = Recorder()
        client.subscribe("acme/prod/api/", seen, prefix=True)
        last = await server.put("acme", "k0", "10")
        await eventually(lambda: client.status.revision >= last)

        await server.stop()
        await eventually(lambda: client.status.stale and not client.status.connected)
        assert client.get("acme/prod/api/k0") == 10  # still served while disconnected

        server = await start_server(private_etcd.endpoint, "/configsvc", port)
        assert await client.wait_fresh(timeout=15)
        written = [await server.put("acme", "k1", str(v)) for v in range(11, 16)]
        await eventually(lambda: client.status.revision >= written[-1])
        await eventually(lambda: len(seen.changes) >= 1 + len(written))  # callbacks' own task
        assert [c.revision for c in seen.changes] == [last, *written]
        assert client.get("acme/prod/api/k1") == 15
        stats = client.stats
        # The restarted server could replay from the client's revision: a resume, no RESET.
        assert stats.resets == 0 and stats.snapshots == 1 and stats.duplicates_ignored == 0
        assert stats.streams_opened >= 2
    finally:
        await client.close()
        await server.stop()


async def test_reset_after_compaction_and_restart_re_snapshots(private_etcd: EtcdServer) -> None:
    """Changes and a compaction while the client is away; the restarted server (a new
    process, empty replay window) answers the resume with RESET; the client re-snapshots,
    converges to exactly etcd's state and reports the differences, deletes included."""
    port = free_port()
    server = await start_server(private_etcd.endpoint, "/configsvc", port)
    await server.create_tenant("acme")
    for name in ["stays", "changes", "goes", "goes.too"]:
        await server.put("acme", name, '"v1"')
    await server.put("acme", "elsewhere", '"v1"', service="web")
    client = await ConfigClient.connect(
        f"127.0.0.1:{port}",
        backoff=FAST,
        selectors=[Selector(tenant="acme", environment="prod", service="api")],
    )
    try:
        seen = Recorder()
        client.subscribe("acme/prod/api/", seen, prefix=True)
        before = client.status.revision
        await server.stop()

        # Behind the client's back, through a second server on another port.
        other = await start_server(private_etcd.endpoint, "/configsvc")
        await other.put("acme", "changes", '"v2"')
        await other.delete("acme", "goes")
        await other.delete("acme", "goes.too")
        await other.put("acme", "new", '"v1"')
        await other.put("acme", "elsewhere", '"v2"', service="web")  # not watched
        last = await other.put("acme", "changes", '"v3"')
        etcd_client = EtcdClient([private_etcd.endpoint])
        await etcd_client.compact(last)
        await etcd_client.close()
        await other.stop()
        assert last > before

        server = await start_server(private_etcd.endpoint, "/configsvc", port)
        assert await client.wait_fresh(timeout=15)
        await eventually(lambda: client.stats.snapshots == 2)
        expected = {
            k: v for k, v in (await server.values("acme")).items() if k.startswith("prod/api/")
        }
        assert {
            f"{e.key.environment}/{e.key.service}/{e.key.key}": e.value for e in client.entries()
        } == expected
        assert expected == {
            "prod/api/stays": '"v1"',
            "prod/api/changes": '"v3"',
            "prod/api/new": '"v1"',
        }
        await eventually(lambda: len(seen.changes) >= 4)  # callbacks run in their own task
        assert sorted(seen.summary()) == sorted(
            [
                ("put", "changes", "v3"),
                ("delete", "goes", None),
                ("delete", "goes.too", None),
                ("put", "new", "v1"),
            ]
        )
        assert client.status.revision >= last
        stats = client.stats
        assert stats.resets == 1, stats
        assert "RESUME_TOO_OLD" in (client.status.last_error or "")

        # And it follows live changes again afterwards.
        revision = await server.put("acme", "stays", '"v2"')
        await eventually(lambda: client.get("acme/prod/api/stays") == "v2")
        await eventually(lambda: len(seen.changes) >= 5)
        assert seen.changes[-1].revision == revision
    finally:
        await client.close()
        await server.stop()


async def test_a_slow_callback_no_longer_makes_the_client_fall_behind(etcd: EtcdServer) -> None:
    """A callback blocks while large changes pile up. This test used to assert that the
    stream then stalls, the server's outbox overflows and it RESETs the client (slow
    consumer): issue 17 item 1 removed that stall. The stream is read on while the
    callback waits, so the cache is exact before the callback lets go, the server never
    resets the stream, and the callback still hears each key's latest value."""
    server = await start_server(
        etcd.endpoint,
        f"/client-slow-{os.getpid()}",
        watch=WatchLimits(queue_limit=4, progress_interval=1.0),
    )
    try:
        await server.create_tenant("acme")
        async with ConfigClient.connect(
            server.address, selectors=[Selector(tenant="acme")], backoff=FAST
        ) as client:
            release = asyncio.Event()
            seen = Recorder()

            async def blocking(change: Change) -> None:
                await release.wait()
                seen(change)

            client.subscribe("acme/prod/api/", blocking, prefix=True)
            padding = "x" * 200_000
            for i in range(60):
                await server.put("acme", f"k{i % 5}", f'{{"i": {i}, "pad": "{padding}"}}')
            expected = await server.values("acme")
            await eventually(
                lambda: (
                    {
                        f"{e.key.environment}/{e.key.service}/{e.key.key}": e.value
                        for e in client.entries()
                    }
                    == expected
                ),
                timeout=30,
                what="the cache exact while the callback blocks",
            )
            assert not client.status.stale, client.status
            release.set()
            await eventually(
                lambda: len(seen.changes) == 60, timeout=30, what="every change delivered"
            )
            stats = client.stats
            assert stats.resets == 0 and stats.snapshots == 1, stats
            assert [c.revision for c in seen.changes] == sorted(c.revision for c in seen.changes)
            last = {}
            for change in seen.changes:
                last[change.path.key] = change.value["i"]
            assert last == {f"k{i % 5}": i for i in range(55, 60)}
    finally:
        await server.stop()
