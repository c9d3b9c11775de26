"""Last-known-good: start from the cache file while configsvc is down, then converge."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from clients.python.tests.integration.support import Recorder, eventually, start_server
from configsvc.devstack.etcd import EtcdServer
from configsvc.devstack.ports import free_port
from configsvc.store.etcd import EtcdClient
from configsvc_client import (
    Backoff,
    ConfigClient,
    ConfigUnavailableError,
    Selector,
    UnavailableError,
    lkg,
)

FAST = Backoff(initial=0.05, maximum=0.5)
ACME = [Selector(tenant="acme", environment="prod", service="api")]


async def test_serves_the_file_while_down_then_resumes_or_resnapshots(
    private_etcd: EtcdServer, tmp_path: Path
) -> None:
    cache_file = tmp_path / "state" / "configsvc-cache.json"
    port = free_port()
    target = f"127.0.0.1:{port}"
    server = await start_server(private_etcd.endpoint, "/configsvc", port)
    await server.create_tenant("acme")
    await server.put("acme", "a", "1")
    await server.put("acme", "b", '{"x": 9007199254740993}')
    async with ConfigClient.connect(target, selectors=ACME, cache_file=cache_file) as first:
        revision = first.status.revision
    saved = lkg.load(cache_file)
    assert saved is not None and saved.revision == revision and len(saved.entries) == 2
    await server.stop()

    # 1. Nothing listens: the file is served and the client says it is stale.
    started = time.monotonic()
    client = await ConfigClient.connect(
        target, selectors=ACME, cache_file=cache_file, connect_timeout=0.5, backoff=FAST
    )
    try:
        assert time.monotonic() - started < 5
        status = client.status
        assert status.stale and not status.connected and status.revision == revision
        assert status.last_error is not None and "UNAVAILABLE" in status.last_error
        assert client.get("acme/prod/api/a") == 1
        assert client.get("acme/prod/api/b") == {"x": 9007199254740993}
        assert not await client.wait_fresh(timeout=0.3)

        # 2. The server returns with nothing changed: the file's revision is in its window,
        #    so the client resumes from it (no snapshot, no RESET) and reports fresh.
        server = await start_server(private_etcd.endpoint, "/configsvc", port)
        assert await client.wait_fresh(timeout=15)
        assert not client.status.stale and client.status.connected
        stats = client.stats
        assert stats.snapshots == 0 and stats.resets == 0, stats
        await server.put("acme", "a", "2")
        await eventually(lambda: client.get("acme/prod/api/a") == 2)
    finally:
        await client.close()
        await server.stop()
    assert lkg.load(cache_file) is not None  # close wrote the latest state

    # 3. Changes while everything is down, and etcd compacted past the file's revision:
    #    the restarted server cannot replay them (without the compaction it now replays
    #    them from etcd's history, issue 17 item 3), so the client re-snapshots from RESET
    #    and reports the differences.
    other = await start_server(private_etcd.endpoint, "/configsvc")
    await other.put("acme", "a", "3")
    await other.delete("acme", "b")
    last = await other.put("acme", "c", '"new"')
    await other.stop()
    etcd_client = EtcdClient([private_etcd.endpoint])
    await etcd_client.compact(last)
    await etcd_client.close()
    client = await ConfigClient.connect(
        target, selectors=ACME, cache_file=cache_file, connect_timeout=0.3, backoff=FAST
    )
    try:
        seen = Recorder()
        client.subscribe("acme/prod/api/", seen, prefix=True)
        assert client.status.stale and client.get("acme/prod/api/a") == 2
        server = await start_server(private_etcd.endpoint, "/configsvc", port)
        assert await client.wait_fresh(timeout=15)
        await eventually(lambda: client.stats.snapshots == 1)
        assert {e.key.key: e.value for e in client.entries()} == {"a": "3", "c": '"new"'}
        await eventually(lambda: len(seen.changes) >= 3)  # callbacks run in their own task
        assert sorted(seen.summary()) == [
            ("delete", "b", None),
            ("put", "a", 3),
            ("put", "c", "new"),
        ]
        assert client.stats.resets == 1
    finally:
        await client.close()
        await server.stop()
    final = lkg.load(cache_file)
    assert final is not None and {e.key.key for e in final.entries} == {"a", "c"}


async def test_a_file_from_other_selectors_is_filtered_and_not_resumed(
    private_etcd: EtcdServer, tmp_path: Path
) -> None:
    cache_file = tmp_path / "cache.json"
    port = free_port()
    server = await start_server(private_etcd.endpoint, "/configsvc", port)
    await server.create_tenant("acme")
    await server.put("acme", "db.a", "1")
    await server.put("acme", "cache.a", "2")
    async with ConfigClient.connect(server.address, selectors=ACME, cache_file=cache_file):
        pass
    await server.stop()
    narrower = [Selector(tenant="acme", environment="prod", service="api", key_prefixes=["db."])]
    client = await ConfigClient.connect(
        server.address, selectors=narrower, cache_file=cache_file, connect_timeout=0.3, backoff=FAST
    )
    try:
        assert [e.key.key for e in client.entries()] == ["db.a"]
        server = await start_server(private_etcd.endpoint, "/configsvc", port)
        assert await client.wait_fresh(timeout=15)
        # Taken with other selectors, the file cannot be a resume point: a snapshot.
        assert client.stats.snapshots == 1 and client.stats.resets == 0
    finally:
        await client.close()
        await server.stop()


async def test_corrupt_file_is_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache_file = tmp_path / "cache.json"
    lkg.save(cache_file, 7, ACME, [])
    cache_file.write_bytes(cache_file.read_bytes()[:-20])  # truncated
    with (
        caplog.at_level(logging.WARNING, logger="configsvc_client"),
        pytest.raises(ConfigUnavailableError) as exc,
    ):
        await ConfigClient.connect(
            f"127.0.0.1:{free_port()}", selectors=ACME, cache_file=cache_file, connect_timeout=0.3
        )
    assert "ignoring the configsvc cache file" in caplog.text
    assert "no usable cache file" in str(exc.value)


async def test_no_server_and_no_file_is_config_unavailable(tmp_path: Path) -> None:
    target = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(ConfigUnavailableError) as exc:
        async with ConfigClient.connect(
            target, selectors=ACME, cache_file=tmp_path / "missing.json", connect_timeout=0.5
        ):
            pass
    assert 0.4 < time.monotonic() - started < 5
    assert isinstance(exc.value, UnavailableError) and target in str(exc.value)
    with pytest.raises(ConfigUnavailableError):
        await ConfigClient.connect(target, selectors=ACME, connect_timeout=0.2)
