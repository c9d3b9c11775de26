"""Flag-set management over ``configsvc.v1.FlagService`` against real etcd."""

from __future__ import annotations

import itertools
import json
from typing import Any

import grpc
import pytest
from aetcd import rpc
from google.rpc import error_details_pb2

from configsvc.model.values import digest
from configsvc.store.etcd import prefix_range_end
from configsvc.v1 import audit_pb2, config_pb2, flags_pb2, flags_pb2_grpc
from tests.helpers import Stack, details_of

ROLLOUT = {
    "flags": {
        "new-checkout": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {"fractional": [{"var": "targetingKey"}, ["on", 10], ["off", 90]]},
        },
        "banner": {"state": "ENABLED", "variants": {"a": "A", "b": "B"}, "defaultVariant": "a"},
    },
}


@pytest.fixture
def flags(stack: Stack) -> flags_pb2_grpc.FlagServiceStub:
    return flags_pb2_grpc.FlagServiceStub(stack.channel)  # type: ignore[no-untyped-call]


def _ref(tenant: str, env: str = "prod") -> flags_pb2.FlagSetRef:
    return flags_pb2.FlagSetRef(tenant=tenant, environment=env)


def _violations(err: grpc.aio.AioRpcError) -> list[str]:
    for bad in details_of(err, error_details_pb2.BadRequest):
        return [v.field for v in bad.field_violations]
    return []


async def _put(flags: Any, tenant: str, document: Any, **kwargs: Any) -> flags_pb2.FlagSet:
    response = await flags.PutFlagSet(
        flags_pb2.PutFlagSetRequest(ref=_ref(tenant), definition=json.dumps(document), **kwargs)
    )
    result: flags_pb2.FlagSet = response.flag_set
    return result


async def test_put_get_and_the_schema_rejects_with_the_offending_path(
    flags: Any, tenant: str
) -> None:
    stored = await _put(flags, tenant, ROLLOUT, reason="launch")
    assert (stored.version, stored.bucketing, stored.updated_by) == (
        1,
        flags_pb2.BUCKETING_CURRENT,
        "key:bootstrap-admin",
    )  # the authenticated caller
    got = (await flags.GetFlagSet(flags_pb2.GetFlagSetRequest(ref=_ref(tenant)))).flag_set
    assert json.loads(got.definition) == ROLLOUT and got.revision == stored.revision

    bad = json.loads(json.dumps(ROLLOUT))
    bad["flags"]["banner"]["state"] = "SOMETIMES"
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _put(flags, tenant, bad)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _violations(raised.value) == ["definition/flags/banner/state"]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await flags.PutFlagSet(flags_pb2.PutFlagSetRequest(ref=_ref(tenant), definition="{"))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "is not JSON" in (raised.value.details() or "")
    # Nothing partial: the failed writes left version 1 in place.
    got = (await flags.GetFlagSet(flags_pb2.GetFlagSetRequest(ref=_ref(tenant)))).flag_set
    assert got.version == 1


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (flags_pb2.GetFlagSetRequest(), "ref"),
        (
            flags_pb2.GetFlagSetRequest(ref=flags_pb2.FlagSetRef(tenant="a/b", environment="p")),
            "ref.tenant",
        ),
    ],
)
async def test_bad_refs_are_invalid_argument(flags: Any, request_: Any, field: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await flags.GetFlagSet(request_)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _violations(raised.value) == [field]


async def test_missing_tenant_and_flag_set_are_not_found(flags: Any, tenant: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _put(flags, "no-such-tenant", ROLLOUT)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await flags.GetFlagSet(flags_pb2.GetFlagSetRequest(ref=_ref(tenant, "staging")))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert "configsvc flags put" in (raised.value.details() or "")


async def test_state_rollout_flag_edits_history_rollback_and_audit(
    flags: Any, tenant: str, stack: Stack
) -> None:
    await _put(flags, tenant, ROLLOUT)
    disabled = (
        await flags.SetFlagState(
            flags_pb2.SetFlagStateRequest(
                ref=_ref(tenant), flag_key="banner", enabled=False, reason="incident"
            )
        )
    ).flag_set
    assert json.loads(disabled.definition)["flags"]["banner"]["state"] == "DISABLED"
    rolled = (
        await flags.SetRollout(
            flags_pb2.SetRolloutRequest(
                ref=_ref(tenant),
                flag_key="new-checkout",
                weights=[
                    flags_pb2.RolloutWeight(variant="on", weight=50),
                    flags_pb2.RolloutWeight(variant="off", weight=50),
                ],
            )
        )
    ).flag_set
    targeting = json.loads(rolled.definition)["flags"]["new-checkout"]["targeting"]
    assert targeting == {"fractional": [{"var": "targetingKey"}, ["on", 50], ["off", 50]]}
    # A flag without a fractional rule gets one, by targeting key.
    banner = (
        await flags.SetRollout(
            flags_pb2.SetRolloutRequest(
                ref=_ref(tenant),
                flag_key="banner",
                weights=[flags_pb2.RolloutWeight(variant="b", weight=1)],
            )
        )
    ).flag_set
    assert json.loads(banner.definition)["flags"]["banner"]["targeting"] == {
        "fractional": [["b", 1]]
    }
    added = (
        await flags.PutFlag(
            flags_pb2.PutFlagRequest(
                ref=_ref(tenant),
                flag_key="limit",
                definition=json.dumps(
                    {"state": "ENABLED", "variants": {"low": 1, "high": 9}, "defaultVariant": "low"}
                ),
            )
        )
    ).flag_set
    assert "limit" in json.loads(added.definition)["flags"]
    removed = (
        await flags.DeleteFlag(flags_pb2.DeleteFlagRequest(ref=_ref(tenant), flag_key="limit"))
    ).flag_set
    assert removed.version == 6 and "limit" not in json.loads(removed.definition)["flags"]

    for bad, code in [
        (
            flags_pb2.SetRolloutRequest(
                ref=_ref(tenant),
                flag_key="banner",
                weights=[flags_pb2.RolloutWeight(variant="zzz", weight=1)],
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            flags_pb2.SetRolloutRequest(ref=_ref(tenant), flag_key="banner"),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            flags_pb2.SetRolloutRequest(
                ref=_ref(tenant),
                flag_key="nope",
                weights=[flags_pb2.RolloutWeight(variant="a", weight=1)],
            ),
            grpc.StatusCode.NOT_FOUND,
        ),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await flags.SetRollout(bad)
        assert raised.value.code() == code
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await flags.PutFlag(
            flags_pb2.PutFlagRequest(ref=_ref(tenant), flag_key="x", definition='{"state": "ON"}')
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _violations(raised.value)[0].startswith("definition/flags/x")

    first = await flags.ListFlagSetHistory(
        flags_pb2.ListFlagSetHistoryRequest(ref=_ref(tenant), page_size=4)
    )
    assert [v.version for v in first.versions] == [6, 5, 4, 3]
    rest = await flags.ListFlagSetHistory(
        flags_pb2.ListFlagSetHistoryRequest(
            ref=_ref(tenant), before_version=first.next_before_version
        )
    )
    assert [v.version for v in rest.versions] == [2, 1] and not rest.HasField("next_before_version")

    back = (
        await flags.RollbackFlagSet(
            flags_pb2.RollbackFlagSetRequest(ref=_ref(tenant), to_version=1)
        )
    ).flag_set
    assert back.version == 7 and json.loads(back.definition) == ROLLOUT
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await flags.RollbackFlagSet(
            flags_pb2.RollbackFlagSetRequest(ref=_ref(tenant), to_version=99)
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await flags.SetFlagState(
            flags_pb2.SetFlagStateRequest(ref=_ref(tenant), flag_key="banner", expected_revision=1)
        )
    assert raised.value.code() == grpc.StatusCode.ABORTED

    deleted = await flags.DeleteFlagSet(flags_pb2.DeleteFlagSetRequest(ref=_ref(tenant)))
    assert deleted.revision > back.revision
    again = await _put(flags, tenant, ROLLOUT)
    assert again.version == 9  # history goes on after a deletion
    history = await flags.ListFlagSetHistory(
        flags_pb2.ListFlagSetHistoryRequest(ref=_ref(tenant), page_size=2)
    )
    assert [(v.version, v.deleted) for v in history.versions] == [(9, False), (8, True)]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await flags.RollbackFlagSet(
            flags_pb2.RollbackFlagSetRequest(ref=_ref(tenant), to_version=8)
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    prefix = stack.server.keyspace.audit_prefix(tenant)
    audits = await stack.server.etcd.range(
        rpc.RangeRequest(key=prefix, range_end=prefix_range_end(prefix))
    )
    records = [audit_pb2.AuditRecord.FromString(kv.value) for kv in audits.kvs]
    records = [r for r in records if r.kind != "tenant"]  # creating the tenant is audited too
    assert [r.after_version for r in records] == list(range(1, 10))
    assert {r.kind for r in records} == {"flag-set"} and {r.name for r in records} == {"prod"}
    assert records[1].attributes == {"flag": "banner", "change": "disable"}
    assert records[1].reason == "incident"
    assert records[6].operation == config_pb2.OPERATION_ROLLBACK
    assert records[6].rolled_back_to == 1
    assert records[7].operation == config_pb2.OPERATION_DELETE and not records[7].after_digest


async def test_audit_digests_chain_from_version_to_version(
    flags: Any, tenant: str, stack: Stack
) -> None:
    """Each record's before-digest is the previous record's after-digest: both are taken
    of the stored text, whatever key order or spacing the request used."""
    await _put(flags, tenant, ROLLOUT)
    await flags.SetFlagState(
        flags_pb2.SetFlagStateRequest(
            ref=_ref(tenant), flag_key="banner", enabled=False, reason="incident"
        )
    )
    changed = json.loads(json.dumps(ROLLOUT))
    changed["flags"]["banner"]["defaultVariant"] = "b"
    await _put(flags, tenant, changed)

    prefix = stack.server.keyspace.audit_prefix(tenant)
    audits = await stack.server.etcd.range(
        rpc.RangeRequest(key=prefix, range_end=prefix_range_end(prefix))
    )
    records = [audit_pb2.AuditRecord.FromString(kv.value) for kv in audits.kvs]
    records = [r for r in records if r.kind == "flag-set"]
    assert [r.after_version for r in records] == [1, 2, 3]
    assert records[0].before_digest == "" and all(r.after_digest for r in records)
    assert len({r.after_digest for r in records}) == 3
    for previous, record in itertools.pairwise(records):
        assert record.before_digest == previous.after_digest, record.after_version
    got = (await flags.GetFlagSet(flags_pb2.GetFlagSetRequest(ref=_ref(tenant)))).flag_set
    assert records[-1].after_digest == digest(got.definition.encode())
