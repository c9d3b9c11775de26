"""The Put path's shortcuts keep its answers and its side effects exact.

Put answers with the entry its own mirror decoded (falling back to building it
when the mirror shows something else), and the commit marker every write
touches is held by the mirror but not reported as a record change.
"""

from __future__ import annotations

import asyncio

import pytest
from aetcd import rpc

from configsvc.store import writer as writer_module
from configsvc.store.mirror import RecordBatch
from configsvc.v1 import config_pb2
from tests.helpers import Stack, ckey, close_stack, open_stack


async def test_put_answers_the_entry_a_get_then_returns(stack: Stack, tenant: str) -> None:
    key = ckey(tenant, "answer")
    first = await stack.config.Put(
        config_pb2.PutRequest(key=key, value='{"n": 1.10}', reason="first", labels={"team": "core"})
    )
    second = await stack.config.Put(config_pb2.PutRequest(key=key, value="[1, 2]"))
    got = await stack.config.Get(config_pb2.GetRequest(key=key))
    assert second.entry == got.entry
    assert second.revision == got.entry.mod_revision
    assert (second.entry.version, second.entry.create_revision) == (2, first.revision)
    assert first.entry.value == '{"n": 1.10}' and first.entry.reason == "first"
    assert dict(first.entry.labels) == {"team": "core"} and not second.entry.labels
    assert first.entry.update_time.seconds > 0


async def test_put_through_a_lagging_mirror_answers_from_the_write(
    stack: Stack, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mirror does not show the write in time: the answer is built from the Txn."""
    monkeypatch.setattr(writer_module, "MIRROR_CATCH_UP", 0.2)
    other = await open_stack(stack.server.config.etcd_endpoints[0], stack.server.config.root_prefix)
    try:
        key = ckey(tenant, "lagging")
        created = await stack.config.Put(config_pb2.PutRequest(key=key, value="1"))
        assert await other.server.mirror.wait_applied(created.revision, 10)
        await other.server.mirror.stop()  # this replica stops following etcd
        other.server.mirror._synced = True  # and still guesses from what it holds
        await stack.config.Put(config_pb2.PutRequest(key=key, value="2"))
        written = await other.config.Put(
            config_pb2.PutRequest(key=key, value="3", labels={"via": "other"})
        )
        got = await stack.config.Get(
            config_pb2.GetRequest(key=key, consistency=config_pb2.READ_CONSISTENCY_STRONG)
        )
        assert written.entry == got.entry
        assert (written.entry.version, written.entry.value) == (3, "3")
        assert written.entry.create_revision == created.revision
        assert written.revision == got.entry.mod_revision
    finally:
        await close_stack(other)


async def test_config_writes_touch_the_marker_without_reporting_record_changes(
    stack: Stack, tenant: str
) -> None:
    mirror, ks = stack.server.mirror, stack.server.keyspace
    batches: list[RecordBatch] = []
    mirror.add_record_listener(batches.append)
    try:
        generation = mirror.records_generation
        results = await asyncio.gather(
            *(
                stack.config.Put(config_pb2.PutRequest(key=ckey(tenant, f"m{i}"), value="1"))
                for i in range(5)
            )
        )
        deleted = await stack.config.Delete(config_pb2.DeleteRequest(key=ckey(tenant, "m0")))
        marker = mirror.record(ks.commit_marker)
        assert marker is not None
        assert marker.mod_revision == deleted.revision > max(r.revision for r in results)
        assert [b for b in batches if any(raw == ks.commit_marker for raw, _ in b.changes)] == []
        # Caches keyed on records (API keys, role bindings) stay valid across config writes.
        assert mirror.records_generation == generation
        # The marker is still what the write Txn touched, as etcd says.
        head = await stack.server.etcd.range(rpc.RangeRequest(key=ks.commit_marker))
        assert int(head.kvs[0].mod_revision) == deleted.revision
    finally:
        mirror._record_listeners.remove(batches.append)
