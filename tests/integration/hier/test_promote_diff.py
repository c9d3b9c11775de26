"""Promote between environments in one Txn, and Diff of scopes and revisions (real etcd)."""

from __future__ import annotations

import json

import grpc
import pytest

from configsvc.store.etcd import EtcdClient
from configsvc.v1 import audit_pb2, config_pb2, environment_pb2, hierarchy_pb2, validation_pb2
from tests.helpers import ckey
from tests.integration.hier.support import Hier, bad_request


def rows(
    response: hierarchy_pb2.DiffResponse | hierarchy_pb2.PromoteResponse,
) -> list[tuple[str, str | None, str | None]]:
    found = response.rows if isinstance(response, hierarchy_pb2.DiffResponse) else response.diff
    return [
        (r.path, r.left if r.HasField("left") else None, r.right if r.HasField("right") else None)
        for r in found
    ]


async def test_promote_dry_run_equals_the_applied_change(hier: Hier, tenant: str) -> None:
    await hier.put(tenant, "staging", "api", "db.pool", {"max": 20, "min": 2})
    await hier.put(tenant, "staging", "api", "timeout_ms", 500)
    await hier.put(tenant, "staging", "api", "same", "x")
    await hier.put(tenant, "staging", "api", "not-promoted", 1)
    await hier.put(tenant, "prod", "api", "db.pool", {"max": 10, "old": True})
    await hier.put(tenant, "prod", "api", "same", "x")
    request = hierarchy_pb2.PromoteRequest(
        tenant=tenant,
        service="api",
        source_environment="staging",
        target_environment="prod",
        keys=["db.pool", "timeout_ms", "same"],
        dry_run=True,
        reason="release 7",
    )
    dry = await hier.hierarchy.Promote(request)
    expected = [
        ("/db.pool/max", "10", "20"),
        ("/db.pool/min", None, "2"),
        ("/db.pool/old", "true", None),
        ("/timeout_ms", None, "500"),
    ]
    assert rows(dry) == expected and list(dry.keys) == ["db.pool", "timeout_ms"]
    assert not dry.entries
    before = await hier.stack.config.Get(config_pb2.GetRequest(key=ckey(tenant, "db.pool")))
    assert before.entry.version == 1  # the dry run wrote nothing

    snapshot = hierarchy_pb2.DiffSide(environment="prod", service="api", revision=dry.revision)
    request.dry_run = False
    applied = await hier.hierarchy.Promote(request)
    assert rows(applied) == rows(dry)
    assert [e.key.key for e in applied.entries] == ["db.pool", "timeout_ms"]
    assert {e.mod_revision for e in applied.entries} == {applied.revision}  # one Txn
    # The diff of the target scope across the promotion is exactly the dry run's.
    after = await hier.hierarchy.Diff(
        hierarchy_pb2.DiffRequest(
            tenant=tenant,
            left=snapshot,
            mode=hierarchy_pb2.DIFF_MODE_RAW,
            right=hierarchy_pb2.DiffSide(environment="prod", service="api"),
        )
    )
    assert rows(after) == expected and after.left_revision == dry.revision

    # Each promoted write has its own version, history copy and audit record.
    entry = await hier.stack.config.Get(config_pb2.GetRequest(key=ckey(tenant, "db.pool")))
    assert entry.entry.version == 2 and entry.entry.reason == "release 7"
    history = await hier.stack.config.History(
        config_pb2.HistoryRequest(key=ckey(tenant, "timeout_ms"))
    )
    assert [(r.version, r.revision) for r in history.records] == [(1, applied.revision)]
    client = EtcdClient(list(hier.stack.server.config.etcd_endpoints))
    try:
        kvs = await client.range_all(hier.stack.server.keyspace.audit_prefix(tenant))
        promoted = [
            audit_pb2.AuditRecord.FromString(kv.value)
            for kv in kvs
            if int(kv.mod_revision) == applied.revision
        ]
        assert sorted(a.key.key for a in promoted) == ["db.pool", "timeout_ms"]
        assert {a.attributes["promoted_from"] for a in promoted} == {"staging"}
    finally:
        await client.close()
    # Promoting again changes nothing.
    again = await hier.hierarchy.Promote(request)
    assert not again.diff and not again.keys and not again.entries


async def test_promote_is_validated_like_put(hier: Hier, tenant: str) -> None:
    await hier.put(tenant, "staging", "api", "a", 1)
    await hier.environments.CreateEnvironment(
        environment_pb2.CreateEnvironmentRequest(tenant=tenant, name="prod", protected=True)
    )
    promote = hierarchy_pb2.PromoteRequest(
        tenant=tenant, service="api", source_environment="staging", target_environment="prod"
    )
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await hier.hierarchy.Promote(promote)
    assert bad_request(exc.value)[0][0] == "reason"
    promote.keys.append("missing")
    promote.reason = "r"
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await hier.hierarchy.Promote(promote)
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND and "missing" in str(exc.value.details())
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await hier.hierarchy.Promote(
            hierarchy_pb2.PromoteRequest(
                tenant=tenant, service="api", source_environment="prod", target_environment="prod"
            )
        )
    assert bad_request(exc.value)[0][0] == "target_environment"


async def test_diff_scopes_resolved_and_raw(hier: Hier, tenant: str) -> None:
    await hier.put(tenant, "all", "all", "log", "info")
    await hier.put(tenant, "staging", "api", "db", {"host": "s", "port": 1})
    await hier.put(tenant, "prod", "api", "db", {"host": "p", "port": 1})
    await hier.put(tenant, "prod", "all", "log", "warn")
    staging = hierarchy_pb2.DiffSide(environment="staging", service="api")
    prod = hierarchy_pb2.DiffSide(environment="prod", service="api")
    resolved = await hier.hierarchy.Diff(
        hierarchy_pb2.DiffRequest(tenant=tenant, left=staging, right=prod)
    )
    assert rows(resolved) == [("/db/host", '"s"', '"p"'), ("/log", '"info"', '"warn"')]
    log_row = resolved.rows[1]
    assert (log_row.left_provenance.layer, log_row.right_provenance.layer) == ("global", "env")
    assert log_row.right_provenance.key.environment == "prod"
    raw = await hier.hierarchy.Diff(
        hierarchy_pb2.DiffRequest(
            tenant=tenant, left=staging, right=prod, mode=hierarchy_pb2.DIFF_MODE_RAW
        )
    )
    assert rows(raw) == [("/db/host", '"s"', '"p"')]

    # Two revisions of one scope.
    first = await hier.stack.config.Resolve(
        config_pb2.ResolveRequest(tenant=tenant, environment="prod", service="api")
    )
    await hier.put(tenant, "all", "api", "db", {"pool": 4})
    then = hierarchy_pb2.DiffSide(environment="prod", service="api", revision=first.revision)
    history = await hier.hierarchy.Diff(
        hierarchy_pb2.DiffRequest(tenant=tenant, left=then, right=prod)
    )
    assert rows(history) == [("/db/pool", None, "4")]
    same = await hier.hierarchy.Diff(
        hierarchy_pb2.DiffRequest(tenant=tenant, left=prod, right=prod)
    )
    assert not same.rows

    future = hierarchy_pb2.DiffSide(environment="prod", service="api", revision=10**12)
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await hier.hierarchy.Diff(hierarchy_pb2.DiffRequest(tenant=tenant, left=future, right=prod))
    assert bad_request(exc.value)[0][0] == "left.revision"
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await hier.hierarchy.Diff(hierarchy_pb2.DiffRequest(tenant=tenant, left=prod))
    assert bad_request(exc.value)[0][0] == "right"
    assert (
        json.loads(
            (await hier.stack.config.Get(config_pb2.GetRequest(key=ckey(tenant, "db")))).entry.value
        )["host"]
        == "p"
    )


async def test_promote_refuses_values_a_schema_rejects(hier: Hier, tenant: str) -> None:
    await hier.validation.PutSchema(
        validation_pb2.PutSchemaRequest(
            tenant=tenant,
            name="pool",
            pattern="db.pool",
            environment="prod",
            schema=json.dumps({"properties": {"max": {"maximum": 100}}}),
        )
    )
    await hier.put(tenant, "staging", "api", "db.pool", {"max": 500})
    await hier.put(tenant, "staging", "api", "ok", 1)
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await hier.hierarchy.Promote(
            hierarchy_pb2.PromoteRequest(
                tenant=tenant,
                service="api",
                source_environment="staging",
                target_environment="prod",
                dry_run=True,
            )
        )
    assert [f for f, _ in bad_request(exc.value)] == ["db.pool: value/max"]
    listed = await hier.stack.config.List(config_pb2.ListRequest(tenant=tenant, environment="prod"))
    assert not listed.entries  # all or nothing: "ok" was not promoted either
