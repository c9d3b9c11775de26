"""After a re-snapshot the client reports the differences one at a time in revision order.

Issue 17, item 4: the differences between the old cache and a new snapshot used to come
in key order (``k0, k1, k10, ...``) although README promises revision order.
"""

from __future__ import annotations

import random

from clients.python.tests.integration.support import Recorder, eventually, start_server
from configsvc.devstack.etcd import EtcdServer
from configsvc.devstack.ports import free_port
from configsvc.store.etcd import EtcdClient
from configsvc_client import Backoff, ChangeType, ConfigClient, Selector

FAST = Backoff(initial=0.05, maximum=0.5)


async def test_changes_after_a_re_snapshot_come_in_revision_order(private_etcd: EtcdServer) -> None:
    """Writes (puts in shuffled key order, deletes) while the client is away, then a
    compaction: the restarted server answers the resume with RESET, the client
    re-snapshots, and its callbacks see the differences in non-decreasing revision order,
    ending at exactly the server's state."""
    port = free_port()
    server = await start_server(private_etcd.endpoint, "/configsvc", port)
    await server.create_tenant("acme")
    for i in range(20):
        await server.put("acme", f"k{i}", str(i))
    client = await ConfigClient.connect(
        f"127.0.0.1:{port}", backoff=FAST, selectors=[Selector(tenant="acme")]
    )
    try:
        seen = Recorder()
        client.subscribe("acme/prod/api/", seen, prefix=True)
        await server.stop()

        other = await start_server(private_etcd.endpoint, "/configsvc")
        order = list(range(25))
        random.Random(17).shuffle(order)  # k10 before k1 before k0 ... : not key order
        for i in order:
            await other.put("acme", f"k{i}", str(100 + i))
        for i in (3, 12):
            await other.delete("acme", f"k{i}")
        last = await other.put("acme", "k7", "1007")
        etcd_client = EtcdClient([private_etcd.endpoint])
        await etcd_client.compact(last)
        await etcd_client.close()
        await other.stop()

        server = await start_server(private_etcd.endpoint, "/configsvc", port)
        await eventually(lambda: client.stats.snapshots == 2, timeout=30, what="a re-snapshot")
        assert await client.wait_fresh(timeout=15)
        expected = await server.values("acme")
        await eventually(
            lambda: {c.path.key for c in seen.changes} >= {f"k{i}" for i in range(25)},
            what="the differences delivered",
        )
        assert client.stats.resets == 1, client.stats

        revisions = [c.revision for c in seen.changes]
        assert revisions == sorted(revisions), [(c.revision, c.path.key) for c in seen.changes]
        # One change per differing key; the same key order would not be revision order.
        assert len(seen.changes) == 25
        assert [c.path.key for c in seen.changes][:3] != ["k0", "k1", "k10"]
        deleted = [c.path.key for c in seen.changes if c.type is ChangeType.DELETE]
        assert sorted(deleted) == ["k12", "k3"]
        # The final state equals the server's, in the cache and as the callbacks saw it.
        held = {
            f"{e.key.environment}/{e.key.service}/{e.key.key}": e.value for e in client.entries()
        }
        assert held == expected
        heard: dict[str, object] = {}
        for change in seen.changes:
            heard[change.path.key] = change.value
        assert {k: v for k, v in heard.items() if v is not None} == {
            key.rsplit("/", 1)[1]: int(value) for key, value in expected.items()
        }
    finally:
        await client.close()
        await server.stop()
