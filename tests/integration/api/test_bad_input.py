"""Every bad input gets INVALID_ARGUMENT or NOT_FOUND naming the field, and writes nothing."""

from __future__ import annotations

import base64
import json
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2

from configsvc.model.values import VALUE_MAX_BYTES
from configsvc.v1 import config_pb2, tenant_pb2
from tests.helpers import Stack, ckey, details_of, rich_status


def violations(err: grpc.aio.AioRpcError) -> dict[str, str]:
    assert rich_status(err) is not None
    out: dict[str, str] = {}
    for bad in details_of(err, error_details_pb2.BadRequest):
        out.update({v.field: v.description for v in bad.field_violations})
    return out


async def expect(call: Any, code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await call
    assert exc.value.code() == code, exc.value.details()
    return exc.value


BAD_SEGMENTS = [
    ("", "is required"),
    ("a" * 64, "limit is 63"),
    ("..", "invalid"),
    ("a/b", "invalid"),
    ("a\x00b", "invalid"),
    ("a\nb", "invalid"),
    ("Prod", "invalid"),
    ("-x", "invalid"),
    ("pr\u043ed", "invalid"),  # Cyrillic o
    ("a%2fb", "invalid"),
]


@pytest.mark.parametrize(("segment", "reason"), BAD_SEGMENTS)
@pytest.mark.parametrize("field", ["environment", "service"])
async def test_bad_segments_are_rejected_and_nothing_written(
    stack: Stack, tenant: str, field: str, segment: str, reason: str
) -> None:
    key = ckey(tenant, "k")
    setattr(key, field, segment)
    err = await expect(
        stack.config.Put(config_pb2.PutRequest(key=key, value="1")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    found = violations(err)
    assert reason in found[f"key.{field}"]
    listed = await stack.config.List(config_pb2.ListRequest(tenant=tenant))
    assert len(listed.entries) == 0


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "is required"),
        ("k" * 257, "limit is 256"),
        ("a..b", "invalid"),
        ("..", "invalid"),
        ("a/b", "invalid"),
        ("a\tb", "invalid"),
        (".hidden", "invalid"),
        ("ключ", "invalid"),
    ],
)
async def test_bad_keys_are_rejected(stack: Stack, tenant: str, key: str, reason: str) -> None:
    err = await expect(
        stack.config.Put(config_pb2.PutRequest(key=ckey(tenant, key), value="1")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert reason in violations(err)["key.key"]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "is required"),
        ("   ", "is required"),
        ("{", "not valid JSON"),
        ("NaN", "not valid JSON"),
        ("[Infinity]", "not valid JSON"),
        ("{'a': 1}", "not valid JSON"),
        ("1 2", "not valid JSON"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ],
)
async def test_bad_values_are_rejected(stack: Stack, tenant: str, value: str, reason: str) -> None:
    err = await expect(
        stack.config.Put(config_pb2.PutRequest(key=ckey(tenant, "v"), value=value)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert reason in violations(err)["value"]


async def test_oversized_value_names_the_limit(stack: Stack, tenant: str) -> None:
    at_limit = json.dumps("x" * (VALUE_MAX_BYTES - 2))
    assert len(at_limit) == VALUE_MAX_BYTES
    ok = await stack.config.Put(config_pb2.PutRequest(key=ckey(tenant, "big"), value=at_limit))
    assert ok.entry.version == 1
    over = json.dumps("x" * (VALUE_MAX_BYTES - 1))
    err = await expect(
        stack.config.Put(config_pb2.PutRequest(key=ckey(tenant, "big"), value=over)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "limit is 524288 bytes" in violations(err)["value"]
    got = await stack.config.Get(config_pb2.GetRequest(key=ckey(tenant, "big")))
    assert got.entry.version == 1


async def test_oversized_reason_and_bad_revision(stack: Stack, tenant: str) -> None:
    err = await expect(
        stack.config.Put(
            config_pb2.PutRequest(key=ckey(tenant, "r"), value="1", reason="x" * 1025)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "limit is 1024" in violations(err)["reason"]
    err = await expect(
        stack.config.Put(
            config_pb2.PutRequest(key=ckey(tenant, "r"), value="1", expected_revision=-1)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "expected_revision" in violations(err)
    err = await expect(
        stack.config.Rollback(config_pb2.RollbackRequest(key=ckey(tenant, "r"), to_version=0)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "to_version" in violations(err)


@pytest.mark.parametrize("size", [0, -1, 1001, 1_000_000])
async def test_page_sizes_out_of_range(stack: Stack, tenant: str, size: int) -> None:
    err = await expect(
        stack.config.List(config_pb2.ListRequest(tenant=tenant, page_size=size)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "between 1 and 1000" in violations(err)["page_size"]
    err = await expect(
        stack.config.History(config_pb2.HistoryRequest(key=ckey(tenant, "k"), page_size=size)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "page_size" in violations(err)


async def test_forged_page_tokens(stack: Stack, tenant: str) -> None:
    for i in range(3):
        await stack.config.Put(config_pb2.PutRequest(key=ckey(tenant, f"k{i}"), value="1"))
    first = await stack.config.List(config_pb2.ListRequest(tenant=tenant, page_size=1))
    assert first.next_page_token
    forged = [
        "not-base64!!",
        base64.urlsafe_b64encode(b"{}").decode(),
        base64.urlsafe_b64encode(b"[1,2]").decode(),
        base64.urlsafe_b64encode(json.dumps({"v": 1, "f": "0" * 24, "p": "x"}).encode()).decode(),
        "A" * 5000,
    ]
    for token in forged:
        err = await expect(
            stack.config.List(config_pb2.ListRequest(tenant=tenant, page_token=token)),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert "page_token" in violations(err)
    # A genuine token used with other filters is rejected too.
    err = await expect(
        stack.config.List(
            config_pb2.ListRequest(
                tenant=tenant, environment="prod", page_token=first.next_page_token
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "page_token" in violations(err)
    history = await stack.config.History(config_pb2.HistoryRequest(key=ckey(tenant, "k0")))
    err = await expect(
        stack.config.History(
            config_pb2.HistoryRequest(key=ckey(tenant, "k0"), page_token=first.next_page_token)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert history.records and "page_token" in violations(err)


async def test_unknown_tenant_is_not_found_for_every_rpc(stack: Stack) -> None:
    key = ckey("no-such-tenant", "k")
    calls = [
        stack.config.Get(config_pb2.GetRequest(key=key)),
        stack.config.BatchGet(config_pb2.BatchGetRequest(keys=[key])),
        stack.config.List(config_pb2.ListRequest(tenant="no-such-tenant")),
        stack.config.Put(config_pb2.PutRequest(key=key, value="1")),
        stack.config.Delete(config_pb2.DeleteRequest(key=key)),
        stack.config.History(config_pb2.HistoryRequest(key=key)),
        stack.config.Rollback(config_pb2.RollbackRequest(key=key, to_version=1)),
        stack.tenants.GetTenant(tenant_pb2.GetTenantRequest(name="no-such-tenant")),
    ]
    for call in calls:
        err = await expect(call, grpc.StatusCode.NOT_FOUND)
        assert "no-such-tenant" in (err.details() or "")


async def test_empty_requests_never_answer_unknown_or_internal(stack: Stack) -> None:
    empty_calls = {
        "Get": stack.config.Get(config_pb2.GetRequest()),
        "BatchGet": stack.config.BatchGet(config_pb2.BatchGetRequest()),
        "List": stack.config.List(config_pb2.ListRequest()),
        "Put": stack.config.Put(config_pb2.PutRequest()),
        "Delete": stack.config.Delete(config_pb2.DeleteRequest()),
        "History": stack.config.History(config_pb2.HistoryRequest()),
        "Rollback": stack.config.Rollback(config_pb2.RollbackRequest()),
        "CreateTenant": stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest()),
        "GetTenant": stack.tenants.GetTenant(tenant_pb2.GetTenantRequest()),
    }
    for name, call in empty_calls.items():
        err = await expect(call, grpc.StatusCode.INVALID_ARGUMENT)
        assert violations(err), f"{name} gave no field violations"
    listed = await stack.tenants.ListTenants(tenant_pb2.ListTenantsRequest())
    assert listed.revision > 0


async def test_batch_get_limits(stack: Stack, tenant: str) -> None:
    err = await expect(
        stack.config.BatchGet(
            config_pb2.BatchGetRequest(keys=[ckey(tenant, f"k{i}") for i in range(1001)])
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "limit is 1000" in violations(err)["keys"]
    err = await expect(
        stack.config.BatchGet(
            config_pb2.BatchGetRequest(keys=[ckey(tenant, "ok"), ckey(tenant, "bad/key")])
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "keys[1].key" in violations(err)


async def test_bad_consistency_and_actor(stack: Stack, tenant: str) -> None:
    err = await expect(
        stack.config.Get(config_pb2.GetRequest(key=ckey(tenant, "k"), consistency=42)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "consistency" in violations(err)
    # With authentication the actor is the identity; the advisory header is ignored.
    put = await stack.config.Put(
        config_pb2.PutRequest(key=ckey(tenant, "k"), value="1"),
        metadata=(("x-configsvc-actor", "x" * 300),),
    )
    assert put.entry.updated_by == "key:bootstrap-admin"


async def test_tenant_creation_rules(stack: Stack, tenant: str) -> None:
    await expect(
        stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name=tenant)),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    await expect(
        stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="all")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    await expect(
        stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="Bad_Name")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    got = await stack.tenants.GetTenant(tenant_pb2.GetTenantRequest(name=tenant))
    assert got.tenant.name == tenant and got.tenant.create_revision > 0
    listed = await stack.tenants.ListTenants(tenant_pb2.ListTenantsRequest())
    assert tenant in [t.name for t in listed.tenants]
