"""Schemas and rules stored in etcd and enforced on every config write (real etcd)."""

from __future__ import annotations

import json

import grpc
import pytest
from aetcd import rpc

from configsvc.store.etcd import EtcdClient
from configsvc.v1 import audit_pb2, config_pb2, validation_pb2
from tests.helpers import ckey
from tests.integration.hier.support import Hier, bad_request

POOL_SCHEMA = {
    "type": "object",
    "properties": {
        "min": {"type": "integer", "minimum": 0},
        "max": {"type": "integer", "maximum": 100},
        "mode": {"enum": ["lifo", "fifo"]},
    },
    "additionalProperties": False,
}
POOL_RULE = {
    "if": [
        {"cfg_missing": ["db.pool/min", "db.pool/max"]},
        True,
        {"<=": [{"cfg": "db.pool/min"}, {"cfg": "db.pool/max"}]},
    ]
}


async def put_schema(
    hier: Hier, tenant: str, name: str = "pool", schema: object = POOL_SCHEMA, **fields: object
) -> validation_pb2.PutSchemaResponse:
    response: validation_pb2.PutSchemaResponse = await hier.validation.PutSchema(
        validation_pb2.PutSchemaRequest(
            tenant=tenant, name=name, schema=json.dumps(schema), **{"pattern": "db.pool", **fields}
        )
    )
    return response


async def put_rule(hier: Hier, tenant: str, **fields: object) -> validation_pb2.PutRuleResponse:
    request = validation_pb2.PutRuleRequest(
        tenant=tenant,
        **{
            "name": "pool-order",
            "logic": json.dumps(POOL_RULE),
            "message": "db.pool min must not exceed max",
            **fields,
        },
    )
    response: validation_pb2.PutRuleResponse = await hier.validation.PutRule(request)
    return response


async def test_schema_violations_name_every_json_pointer(hier: Hier, tenant: str) -> None:
    stored = await put_schema(hier, tenant, reason="pool shape")
    assert stored.schema.version == 1 and stored.schema.revision == stored.revision
    await hier.put(tenant, "prod", "api", "db.pool", {"min": 1, "max": 10})
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await hier.put(tenant, "prod", "api", "db.pool", {"min": -1, "max": 500, "x": 1})
    violations = bad_request(exc.value)
    assert [field for field, _ in violations] == ["value", "value/max", "value/min"]
    described = dict(violations)
    assert "500 is greater than the maximum of 100" in described["value/max"]
    assert "-1 is less than the minimum of 0" in described["value/min"]
    assert "'x' was unexpected" in described["value"]
    assert "pool" in described["value/min"]  # names the schema
    # Nothing was written.
    entry = await hier.stack.config.Get(config_pb2.GetRequest(key=ckey(tenant, "db.pool")))
    assert json.loads(entry.entry.value) == {"min": 1, "max": 10}
    # Wide values resolve into every environment, so they are checked too; tombstones are not.
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await hier.put(tenant, "all", "all", "db.pool", {"mode": "random"})
    assert [f for f, _ in bad_request(exc.value)] == ["value/mode"]
    await hier.put(tenant, "all", "all", "db.pool", {"$unset": True})
    # Other keys are not bound.
    await hier.put(tenant, "prod", "api", "db.other", {"max": 500})


async def test_schema_versions_scope_listing_and_deletion(hier: Hier, tenant: str) -> None:
    await put_schema(hier, tenant, environment="prod")
    await hier.put(tenant, "staging", "api", "db.pool", {"max": 1000})  # out of scope
    second = await put_schema(
        hier, tenant, schema={"type": "object"}, expected_version=1, environment="prod"
    )
    assert second.schema.version == 2
    await hier.put(tenant, "prod", "api", "db.pool", {"max": 1000})
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await put_schema(hier, tenant, expected_version=1)
    assert exc.value.code() == grpc.StatusCode.ABORTED
    assert "expected version 1, current version 2" in (exc.value.details() or "")

    first = await hier.validation.GetSchema(
        validation_pb2.GetSchemaRequest(tenant=tenant, name="pool", version=1)
    )
    assert json.loads(first.schema.schema) == POOL_SCHEMA and first.schema.environment == "prod"
    listed = await hier.validation.ListSchemas(validation_pb2.ListSchemasRequest(tenant=tenant))
    assert [(s.name, s.version) for s in listed.schemas] == [("pool", 2)]
    deleted = await hier.validation.DeleteSchema(
        validation_pb2.DeleteSchemaRequest(tenant=tenant, name="pool", reason="retired")
    )
    assert deleted.version == 3
    assert not (
        await hier.validation.ListSchemas(validation_pb2.ListSchemasRequest(tenant=tenant))
    ).schemas
    latest = await hier.validation.GetSchema(
        validation_pb2.GetSchemaRequest(tenant=tenant, name="pool")
    )
    assert latest.schema.deleted and latest.schema.version == 3
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await hier.validation.DeleteSchema(
            validation_pb2.DeleteSchemaRequest(tenant=tenant, name="pool")
        )
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND


async def test_schema_changes_are_audited(hier: Hier, tenant: str) -> None:
    stored = await put_schema(hier, tenant, reason="first")
    client = EtcdClient(list(hier.stack.server.config.etcd_endpoints))
    try:
        ks = hier.stack.server.keyspace
        kvs = await client.range_all(ks.audit_prefix(tenant))
        audits = [audit_pb2.AuditRecord.FromString(kv.value) for kv in kvs]
        mine = [(a.kind, a.name, a.reason, a.after_version) for a in audits if a.kind == "schema"]
        assert mine == [("schema", "pool", "first", 1)]
        assert int(kvs[-1].mod_revision) == stored.revision
        versions = await client.range(
            rpc.RangeRequest(
                key=ks.record_prefix(tenant, "schema"),
                range_end=ks.record_prefix(tenant, "schema")[:-1] + b"0",
                count_only=True,
            )
        )
        assert versions.count == 1
    finally:
        await client.close()


async def test_bad_schemas_and_rules_are_refused_with_their_place(hier: Hier, tenant: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await put_schema(hier, tenant, schema={"type": "nope"})
    assert [f for f, _ in bad_request(exc.value)] == ["schema/type"]
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await put_schema(hier, tenant, pattern="a/b")
    assert [f for f, _ in bad_request(exc.value)] == ["pattern"]
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await put_rule(hier, tenant, logic=json.dumps({"and": [{"var": "x"}]}))
    assert [f for f, _ in bad_request(exc.value)] == ["logic/and/0/var"]
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await hier.validation.PutSchema(
            validation_pb2.PutSchemaRequest(
                tenant="nobody-here", name="x", pattern="a", schema="{}"
            )
        )
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND


async def test_rules_run_on_every_resolved_document_a_write_affects(
    hier: Hier, tenant: str
) -> None:
    await hier.put(tenant, "prod", "api", "db.pool", {"min": 1, "max": 10})
    await hier.put(tenant, "prod", "web", "db.pool", {"max": 4})
    await hier.put(tenant, "staging", "web", "other", 1)
    rule = await put_rule(hier, tenant, reason="sanity")
    assert rule.rule.version == 1 and not rule.existing_violations
    # A global min of 5 breaks web in prod (max 4) but not api (its own min 1).
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await hier.put(tenant, "all", "all", "db.pool", {"min": 5})
    [(field, description)] = bad_request(exc.value)
    assert field == "rules/pool-order"
    assert "db.pool min must not exceed max" in description
    assert "service 'web' in environment 'prod'" in description
    assert "api" not in description
    # The same value for staging only is fine (web has no max there: the rule's guard).
    await hier.put(tenant, "staging", "all", "db.pool", {"min": 5})
    # Delete is judged too: without its own max, web in prod would inherit min 3 > max 2.
    await hier.put(tenant, "all", "all", "db.pool", {"min": 3})
    await hier.put(tenant, "prod", "all", "db.pool", {"max": 2})
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await hier.stack.config.Delete(
            config_pb2.DeleteRequest(key=ckey(tenant, "db.pool", env="prod", service="web"))
        )
    assert "broken for service 'web' in environment 'prod'" in bad_request(exc.value)[0][1]
    assert (await hier.resolve(tenant, "prod", "web"))["db.pool"] == {"min": 3, "max": 4}


async def test_rollback_is_judged_on_the_value_it_restores(hier: Hier, tenant: str) -> None:
    await hier.put(tenant, "prod", "api", "db.pool", {"max": 500})
    await hier.put(tenant, "prod", "api", "db.pool", {"max": 5})
    await put_schema(hier, tenant, force=True)
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await hier.stack.config.Rollback(
            config_pb2.RollbackRequest(key=ckey(tenant, "db.pool"), to_version=1)
        )
    assert [f for f, _ in bad_request(exc.value)] == ["value/max"]
    history = await hier.stack.config.History(
        config_pb2.HistoryRequest(key=ckey(tenant, "db.pool"))
    )
    assert [r.version for r in history.records] == [2, 1]


async def test_rule_already_broken_needs_force_and_does_not_freeze_writes(
    hier: Hier, tenant: str
) -> None:
    await hier.put(tenant, "prod", "api", "db.pool", {"min": 9, "max": 1})
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await put_rule(hier, tenant)
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "service 'api' in environment 'prod'" in (exc.value.details() or "")
    forced = await put_rule(hier, tenant, force=True)
    assert [(v.rule, v.service, v.environment) for v in forced.existing_violations] == [
        ("pool-order", "api", "prod")
    ]
    await hier.put(tenant, "prod", "api", "unrelated", 1)  # already broken: not this write's fault
    listed = await hier.validation.ListRules(validation_pb2.ListRulesRequest(tenant=tenant))
    assert [r.name for r in listed.rules] == ["pool-order"]
    await hier.validation.DeleteRule(
        validation_pb2.DeleteRuleRequest(tenant=tenant, name="pool-order", expected_version=1)
    )
    assert not (
        await hier.validation.ListRules(validation_pb2.ListRulesRequest(tenant=tenant))
    ).rules


async def test_validate_reports_without_writing(hier: Hier, tenant: str) -> None:
    await hier.put(tenant, "prod", "api", "db.pool", {"min": 1, "max": 500})
    await hier.put(tenant, "staging", "api", "db.pool", {"min": 1, "max": 50})
    before = await hier.stack.config.Get(config_pb2.GetRequest(key=ckey(tenant, "db.pool")))

    # A proposed schema: which stored values it would invalidate.
    proposal = validation_pb2.PutSchemaRequest(
        tenant=tenant, name="pool", pattern="db.*", schema=json.dumps(POOL_SCHEMA)
    )
    report = await hier.validation.Validate(
        validation_pb2.ValidateRequest(tenant=tenant, schema=proposal)
    )
    assert not report.valid
    assert [(v.key.environment, v.field) for v in report.value_violations] == [
        ("prod", "value/max")
    ]
    assert not (
        await hier.validation.ListSchemas(validation_pb2.ListSchemasRequest(tenant=tenant))
    ).schemas
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await put_schema(hier, tenant, pattern="db.*")
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "prod/api/db.pool value/max" in (exc.value.details() or "")

    # Proposed writes with the proposed schema and rule: the full report.
    writes = [
        validation_pb2.ProposedWrite(
            key=ckey(tenant, "db.pool"), value=json.dumps({"min": 5, "max": 2})
        ),
        validation_pb2.ProposedWrite(
            key=ckey(tenant, "db.pool", env="staging"), value=json.dumps({"min": 1, "max": 101})
        ),
    ]
    rule = validation_pb2.PutRuleRequest(
        name="pool-order", logic=json.dumps(POOL_RULE), message="min <= max"
    )
    report = await hier.validation.Validate(
        validation_pb2.ValidateRequest(tenant=tenant, writes=writes, schema=proposal, rule=rule)
    )
    assert [(v.key.environment, v.field) for v in report.value_violations] == [
        ("staging", "value/max")
    ]
    assert [(v.rule, v.service, v.environment) for v in report.rule_violations] == [
        ("pool-order", "api", "prod")
    ]
    # A valid proposal.
    ok = await hier.validation.Validate(
        validation_pb2.ValidateRequest(
            tenant=tenant,
            writes=[validation_pb2.ProposedWrite(key=ckey(tenant, "db.pool"), delete=True)],
            schema=proposal,
        )
    )
    assert ok.valid and ok.revision >= before.revision
    after = await hier.stack.config.Get(config_pb2.GetRequest(key=ckey(tenant, "db.pool")))
    assert after.entry.mod_revision == before.entry.mod_revision
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await hier.validation.Validate(
            validation_pb2.ValidateRequest(
                tenant=tenant,
                writes=[validation_pb2.ProposedWrite(key=ckey("other", "db.pool"), value="1")],
            )
        )
    assert bad_request(exc.value)[0][0] == "writes[0].key.tenant"
