"""Writes against a real etcd: one Txn each, with history and audit at the same revision."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
import pytest
from aetcd import rpc
from google.rpc import error_details_pb2

from configsvc.internal.v1 import storage_pb2
from configsvc.model.keys import ConfigKey
from configsvc.model.values import digest
from configsvc.store.etcd import prefix_range_end
from configsvc.v1 import audit_pb2, config_pb2
from tests.helpers import Stack, ckey, close_stack, detail_of, open_stack


async def etcd_prefix(stack: Stack, prefix: bytes) -> list[rpc.KeyValue]:
    response = await stack.server.etcd.range(
        rpc.RangeRequest(key=prefix, range_end=prefix_range_end(prefix))
    )
    return list(response.kvs)


def error_info(err: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    return detail_of(err, error_details_pb2.ErrorInfo)


async def test_put_get_round_trips_exact_json(stack: Stack, tenant: str) -> None:
    value = '{"max": 9007199254740993, "min": -9223372036854775808, "ratio": 1.10, "s": "é"}'
    put = await stack.config.Put(
        config_pb2.PutRequest(key=ckey(tenant, "db.pool"), value=value, reason="initial")
    )
    got = await stack.config.Get(config_pb2.GetRequest(key=ckey(tenant, "db.pool")))
    assert got.entry.value == value
    assert json.loads(got.entry.value)["max"] == 9007199254740993
    assert got.entry.version == 1
    assert got.entry.mod_revision == put.revision == got.entry.create_revision
    assert got.revision >= put.revision
    assert got.entry.reason == "initial"
    assert got.entry.updated_by == "key:bootstrap-admin"  # the authenticated identity
    assert got.entry.value_digest == digest(value.encode())


async def test_actor_header_cannot_override_the_authenticated_identity(
    stack: Stack, tenant: str
) -> None:
    await stack.config.Put(
        config_pb2.PutRequest(key=ckey(tenant, "k"), value="1"),
        metadata=(("x-configsvc-actor", "alice@example.com"),),
    )
    got = await stack.config.Get(config_pb2.GetRequest(key=ckey(tenant, "k")))
    assert got.entry.updated_by == "key:bootstrap-admin"


async def config_audit(stack: Stack, tenant: str) -> list[Any]:
    """The tenant's audit records about config entries (creating the tenant is audited too)."""
    audit = await etcd_prefix(stack, stack.server.keyspace.audit_prefix(tenant))
    return [kv for kv in audit if not audit_pb2.AuditRecord.FromString(kv.value).kind]


async def test_every_write_has_history_and_audit_at_its_revision(stack: Stack, tenant: str) -> None:
    key = ckey(tenant, "feature.limit")
    p1 = await stack.config.Put(config_pb2.PutRequest(key=key, value="1", reason="one"))
    p2 = await stack.config.Put(config_pb2.PutRequest(key=key, value="2", reason="two"))
    d3 = await stack.config.Delete(config_pb2.DeleteRequest(key=key, reason="three"))
    r4 = await stack.config.Rollback(
        config_pb2.RollbackRequest(key=key, to_version=1, reason="four")
    )
    revisions = [p1.revision, p2.revision, d3.revision, r4.revision]
    assert revisions == sorted(set(revisions))

    ks = stack.server.keyspace
    model = ConfigKey(tenant, "prod", "api", "feature.limit")
    hist = await etcd_prefix(stack, ks.hist_prefix(model))
    assert [kv.mod_revision for kv in hist] == revisions
    ops = []
    for version, kv in enumerate(hist, start=1):
        record = storage_pb2.StoredValue.FromString(kv.value)
        assert record.version == version
        ops.append(record.operation)
    assert ops == [
        config_pb2.OPERATION_PUT,
        config_pb2.OPERATION_PUT,
        config_pb2.OPERATION_DELETE,
        config_pb2.OPERATION_ROLLBACK,
    ]

    audit = await config_audit(stack, tenant)
    assert sorted(kv.mod_revision for kv in audit) == revisions
    records = {kv.mod_revision: audit_pb2.AuditRecord.FromString(kv.value) for kv in audit}
    first, second, deletion, rollback = (records[r] for r in revisions)
    assert first.before_digest == "" and first.after_digest == digest(b"1")
    assert second.before_digest == digest(b"1") and second.after_digest == digest(b"2")
    assert deletion.operation == config_pb2.OPERATION_DELETE and deletion.after_digest == ""
    assert rollback.rolled_back_to == 1 and rollback.after_version == 4
    assert [r.reason for r in (first, second, deletion, rollback)] == [
        "one",
        "two",
        "three",
        "four",
    ]
    assert all(
        r.key.key == "feature.limit" and r.actor == "key:bootstrap-admin" for r in records.values()
    )


async def test_audit_records_hold_digests_never_values(stack: Stack, tenant: str) -> None:
    marker = "recognisable-plaintext-4d1f"
    key = ckey(tenant, "token")
    await stack.config.Put(config_pb2.PutRequest(key=key, value=json.dumps(marker)))
    await stack.config.Delete(config_pb2.DeleteRequest(key=key))
    audit = await config_audit(stack, tenant)
    assert len(audit) == 2
    assert all(marker.encode() not in kv.value for kv in audit)
    assert audit_pb2.AuditRecord.FromString(audit[0].value).after_digest == digest(
        json.dumps(marker).encode()
    )


async def test_cas_conflict_changes_nothing_and_reports_current_revision(
    stack: Stack, tenant: str
) -> None:
    key = ckey(tenant, "cas")
    created = await stack.config.Put(
        config_pb2.PutRequest(key=key, value='"a"', expected_revision=0)
    )
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await stack.config.Put(config_pb2.PutRequest(key=key, value='"b"', expected_revision=0))
    assert exc.value.code() == grpc.StatusCode.ABORTED
    assert error_info(exc.value).metadata["current_revision"] == str(created.revision)

    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await stack.config.Delete(
            config_pb2.DeleteRequest(key=key, expected_revision=created.revision - 1)
        )
    assert exc.value.code() == grpc.StatusCode.ABORTED

    history = await stack.config.History(config_pb2.HistoryRequest(key=key))
    assert [r.version for r in history.records] == [1]
    got = await stack.config.Get(config_pb2.GetRequest(key=key))
    assert got.entry.value == '"a"'

    updated = await stack.config.Put(
        config_pb2.PutRequest(key=key, value='"c"', expected_revision=created.revision)
    )
    assert updated.entry.version == 2
    assert updated.entry.create_revision == created.revision


async def test_concurrent_unconditional_puts_all_land_with_distinct_versions(
    stack: Stack, tenant: str
) -> None:
    key = ckey(tenant, "contended")
    writers = 40
    results = await asyncio.gather(
        *(stack.config.Put(config_pb2.PutRequest(key=key, value=str(i))) for i in range(writers))
    )
    versions = sorted(r.entry.version for r in results)
    assert versions == list(range(1, writers + 1))
    history = await stack.config.History(config_pb2.HistoryRequest(key=key, page_size=100))
    assert [r.version for r in history.records] == list(range(writers, 0, -1))
    # Each version's history copy holds the value its writer sent.
    by_version = {r.entry.version: r.entry.value for r in results}
    assert {r.version: r.value for r in history.records} == by_version


async def test_concurrent_cas_writers_exactly_one_wins(stack: Stack, tenant: str) -> None:
    key = ckey(tenant, "race")
    base = await stack.config.Put(config_pb2.PutRequest(key=key, value="0"))
    outcomes = await asyncio.gather(
        *(
            stack.config.Put(
                config_pb2.PutRequest(key=key, value=str(i), expected_revision=base.revision)
            )
            for i in range(1, 6)
        ),
        return_exceptions=True,
    )
    wins = [o for o in outcomes if isinstance(o, config_pb2.PutResponse)]
    losses = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(wins) == 1 and len(losses) == 4
    assert all(e.code() == grpc.StatusCode.ABORTED for e in losses)


async def test_delete_and_rollback(stack: Stack, tenant: str) -> None:
    key = ckey(tenant, "timeout_ms", service="all")
    await stack.config.Put(config_pb2.PutRequest(key=key, value="100"))
    await stack.config.Put(config_pb2.PutRequest(key=key, value="250"))
    deleted = await stack.config.Delete(config_pb2.DeleteRequest(key=key, reason="cleanup"))
    assert deleted.previous.value == "250" and deleted.version == 3
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await stack.config.Get(config_pb2.GetRequest(key=key))
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await stack.config.Delete(config_pb2.DeleteRequest(key=key))
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND

    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await stack.config.Rollback(config_pb2.RollbackRequest(key=key, to_version=3))
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await stack.config.Rollback(config_pb2.RollbackRequest(key=key, to_version=99))
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND

    restored = await stack.config.Rollback(
        config_pb2.RollbackRequest(key=key, to_version=1, reason="undo")
    )
    assert restored.entry.value == "100" and restored.entry.version == 4
    got = await stack.config.Get(config_pb2.GetRequest(key=key))
    assert got.entry.value == "100"
    history = await stack.config.History(config_pb2.HistoryRequest(key=key))
    top = history.records[0]
    assert top.operation == config_pb2.OPERATION_ROLLBACK and top.rolled_back_to == 1


async def test_history_pages_newest_first(stack: Stack, tenant: str) -> None:
    key = ckey(tenant, "paged")
    for i in range(7):
        await stack.config.Put(config_pb2.PutRequest(key=key, value=str(i)))
    seen: list[int] = []
    token = ""
    while True:
        page = await stack.config.History(
            config_pb2.HistoryRequest(key=key, page_size=3, page_token=token)
        )
        seen.extend(r.version for r in page.records)
        token = page.next_page_token
        if not token:
            break
    assert seen == [7, 6, 5, 4, 3, 2, 1]


async def test_history_survives_compaction(stack: Stack, tenant: str) -> None:
    key = ckey(tenant, "compacted")
    for i in range(3):
        last = await stack.config.Put(config_pb2.PutRequest(key=key, value=str(i)))
    await stack.server.etcd.compact(last.revision)
    history = await stack.config.History(config_pb2.HistoryRequest(key=key))
    assert [r.value for r in history.records] == ["2", "1", "0"]
    rolled = await stack.config.Rollback(config_pb2.RollbackRequest(key=key, to_version=1))
    assert rolled.entry.value == "0"


async def test_strong_read_sees_write_made_through_another_replica(
    stack: Stack, tenant: str
) -> None:
    other = await open_stack(stack.server.config.etcd_endpoints[0], stack.server.config.root_prefix)
    try:
        written = await other.config.Put(config_pb2.PutRequest(key=ckey(tenant, "x"), value="7"))
        got = await stack.config.Get(
            config_pb2.GetRequest(
                key=ckey(tenant, "x"), consistency=config_pb2.READ_CONSISTENCY_STRONG
            )
        )
        assert got.entry.value == "7"
        assert got.revision >= written.revision
    finally:
        await close_stack(other)


async def test_batch_get_reports_missing_keys(stack: Stack, tenant: str) -> None:
    await stack.config.Put(config_pb2.PutRequest(key=ckey(tenant, "a"), value="1"))
    await stack.config.Put(config_pb2.PutRequest(key=ckey(tenant, "b", env="all"), value="2"))
    response = await stack.config.BatchGet(
        config_pb2.BatchGetRequest(
            keys=[ckey(tenant, "a"), ckey(tenant, "nope"), ckey(tenant, "b", env="all")]
        )
    )
    assert [e.value for e in response.entries] == ["1", "2"]
    assert [k.key for k in response.missing] == ["nope"]
    assert response.revision > 0


async def test_writes_alternating_between_replicas_keep_versions_dense(
    stack: Stack, tenant: str
) -> None:
    """Each replica guesses the current state from its own mirror; a stale guess must retry."""
    other = await open_stack(stack.server.config.etcd_endpoints[0], stack.server.config.root_prefix)
    try:
        key = ckey(tenant, "shared")
        written = []
        for i in range(20):
            target = (stack, other)[i % 2]
            response = await target.config.Put(config_pb2.PutRequest(key=key, value=str(i)))
            written.append((response.entry.version, str(i)))
        assert [v for v, _ in written] == list(range(1, 21))
        history = await other.config.History(config_pb2.HistoryRequest(key=key, page_size=50))
        assert sorted((r.version, r.value) for r in history.records) == written
        assert not stack.server.writer._locks and not other.server.writer._locks
    finally:
        await close_stack(other)


async def test_delete_through_a_replica_that_has_not_seen_the_key(
    stack: Stack, tenant: str
) -> None:
    """A lagging mirror must not turn a Delete of an existing key into NOT_FOUND."""
    other = await open_stack(stack.server.config.etcd_endpoints[0], stack.server.config.root_prefix)
    try:
        await other.server.mirror.stop()  # this replica's mirror stops following etcd
        await stack.config.Put(config_pb2.PutRequest(key=ckey(tenant, "fresh"), value="1"))
        other.server.mirror._synced = True  # pretend it is current: its guess is now stale
        deleted = await other.config.Delete(config_pb2.DeleteRequest(key=ckey(tenant, "fresh")))
        assert deleted.previous.value == "1" and deleted.version == 2
    finally:
        await close_stack(other)


async def test_writers_are_woken_before_the_change_is_fanned_out(stack: Stack, tenant: str) -> None:
    """A Put's answer must not queue behind the writes to every watch stream."""
    mirror = stack.server.mirror
    checked: list[int] = []

    def listener(batch) -> None:  # type: ignore[no-untyped-def]
        parked = [
            rev
            for rev, _, future in mirror._revision_waiters
            if rev <= batch.revision and not future.done()
        ]
        assert parked == [], f"writers still parked at revision {batch.revision}: {parked}"
        checked.append(batch.revision)

    mirror.add_change_listener(listener)
    try:
        results = await asyncio.gather(
            *(
                stack.config.Put(config_pb2.PutRequest(key=ckey(tenant, f"o{i}"), value="1"))
                for i in range(20)
            )
        )
    finally:
        mirror._change_listeners.remove(listener)
    assert {r.revision for r in results} <= set(checked)
