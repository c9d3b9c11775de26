"""Bad input at the edges of the wire format: every answer a clean status (issue 17, 5-7).

Undecodable bytes, timestamps and durations outside their proto ranges, NaN and
Infinity in evaluation contexts, nesting and numbers past the JSON bounds, and
errors with so many violations that their details would not fit in a trailer.
Each must be INVALID_ARGUMENT (or UNAUTHENTICATED for an anonymous caller) with a
message a person can read, never UNKNOWN, INTERNAL or RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2, timestamp_pb2
from google.rpc import error_details_pb2

from configsvc.flags._gen.flagd.evaluation.v1 import evaluation_pb2 as ev
from configsvc.flags._gen.flagd.evaluation.v1 import evaluation_pb2_grpc
from configsvc.flags._gen.flagd.evaluation.v2 import evaluation_pb2 as ev2
from configsvc.flags._gen.flagd.evaluation.v2 import evaluation_pb2_grpc as evaluation_v2_grpc
from configsvc.rpc import status as status_module
from configsvc.v1 import (
    audit_query_pb2,
    audit_query_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    config_pb2,
    flags_pb2,
    flags_pb2_grpc,
    watch_pb2,
    watch_pb2_grpc,
)
from tests.helpers import DETAILS_TRAILER, Stack, ckey, detail_of

#: Bytes no message decodes: field 1, length-delimited, says 5 bytes and carries 2.
GARBAGE = b"\x0a\x05ab"


async def expect(call: Any, code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await call
    assert exc.value.code() == code, (exc.value.code(), exc.value.details())
    return exc.value


def bad_request(err: grpc.aio.AioRpcError) -> error_details_pb2.BadRequest:
    return detail_of(err, error_details_pb2.BadRequest)


# ----------------------------------------------------------------- undecodable bytes

RAW_UNARY = [
    "/configsvc.v1.ConfigService/Get",
    "/configsvc.v1.ConfigService/Put",
    "/configsvc.v1.ConfigService/List",
    "/configsvc.v1.TenantService/CreateTenant",
    "/configsvc.v1.AuthService/CreateApiKey",
    "/flagd.evaluation.v1.Service/ResolveBoolean",
    "/flagd.evaluation.v2.Service/ResolveString",
    "/flagd.sync.v1.FlagSyncService/FetchAllFlags",
    "/grpc.health.v1.Health/Check",
]
RAW_STREAM = [
    "/configsvc.v1.AuditService/ExportAudit",
    "/configsvc.v1.WatchService/Watch",
    "/flagd.sync.v1.FlagSyncService/SyncFlags",
    "/flagd.evaluation.v1.Service/EventStream",
    "/grpc.health.v1.Health/Watch",
]


@pytest.mark.parametrize("method", RAW_UNARY)
async def test_undecodable_unary_request_is_invalid_argument(stack: Stack, method: str) -> None:
    call = stack.channel.unary_unary(method)(GARBAGE, timeout=10)
    err = await expect(call, grpc.StatusCode.INVALID_ARGUMENT)
    assert "request: is not a valid " in (err.details() or "")
    assert bad_request(err).field_violations[0].field == "request"


@pytest.mark.parametrize("method", RAW_STREAM)
async def test_undecodable_stream_request_is_invalid_argument(stack: Stack, method: str) -> None:
    call = stack.channel.unary_stream(method)(GARBAGE, timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        async for _ in call:
            pass
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT, exc.value.details()
    assert "request: is not a valid " in (exc.value.details() or "")


async def test_undecodable_reflection_request_is_invalid_argument(stack: Stack) -> None:
    call = stack.channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
    )(timeout=10)
    await call.write(GARBAGE)
    await call.done_writing()
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        async for _ in call:
            pass
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT, exc.value.details()


async def test_anonymous_garbage_is_refused_cleanly_and_logged_rate_limited(
    stack: Stack, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(status_module.BAD_REQUESTS, "interval", 3600.0)
    status_module.BAD_REQUESTS.reset()
    caplog.set_level(logging.INFO)
    async with grpc.aio.insecure_channel(stack.address) as anonymous:
        for method in RAW_UNARY * 5:
            with pytest.raises(grpc.aio.AioRpcError) as exc:
                await anonymous.unary_unary(method)(GARBAGE, timeout=10)
            # Public methods (health) read the request; the rest refuse the caller first.
            assert exc.value.code() in (
                grpc.StatusCode.UNAUTHENTICATED,
                grpc.StatusCode.INVALID_ARGUMENT,
            ), method
    for method in RAW_UNARY * 5:
        with pytest.raises(grpc.aio.AioRpcError):
            await stack.channel.unary_unary(method)(GARBAGE, timeout=10)
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    lines = [r for r in caplog.records if "undecodable" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert status_module.BAD_REQUESTS.suppressed >= len(RAW_UNARY) * 5 - 1


# ------------------------------------------------------- timestamps and durations


TOO_LATE = timestamp_pb2.Timestamp(seconds=2**62)
BEFORE_YEAR_1 = timestamp_pb2.Timestamp(seconds=-62135596801)
NEGATIVE_NANOS = timestamp_pb2.Timestamp(seconds=10, nanos=-1)


@pytest.mark.parametrize("when", [TOO_LATE, BEFORE_YEAR_1, NEGATIVE_NANOS])
@pytest.mark.parametrize("field", ["updated_after", "updated_before"])
async def test_list_timestamps_out_of_range(
    stack: Stack, tenant: str, field: str, when: timestamp_pb2.Timestamp
) -> None:
    request = config_pb2.ListRequest(tenant=tenant)
    getattr(request, field).CopyFrom(when)
    err = await expect(stack.config.List(request), grpc.StatusCode.INVALID_ARGUMENT)
    assert field in (err.details() or "")
    assert "0001-01-01" in (err.details() or "") or "nanos" in (err.details() or "")


@pytest.mark.parametrize("when", [TOO_LATE, BEFORE_YEAR_1, NEGATIVE_NANOS])
@pytest.mark.parametrize("field", ["start_time", "end_time"])
async def test_audit_timestamps_out_of_range(
    stack: Stack, tenant: str, field: str, when: timestamp_pb2.Timestamp
) -> None:
    audit = audit_query_pb2_grpc.AuditServiceStub(stack.channel)  # type: ignore[no-untyped-call]
    audit_filter = audit_query_pb2.AuditFilter(tenant=tenant)
    getattr(audit_filter, field).CopyFrom(when)
    err = await expect(
        audit.ListAudit(audit_query_pb2.ListAuditRequest(filter=audit_filter)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert f"filter.{field}" in (err.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        async for _ in audit.ExportAudit(audit_query_pb2.ExportAuditRequest(filter=audit_filter)):
            pass
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT, exc.value.details()


@pytest.mark.parametrize(
    "ttl",
    [
        duration_pb2.Duration(seconds=2**62),
        duration_pb2.Duration(seconds=-(2**62)),
        duration_pb2.Duration(seconds=315_576_000_000),
        duration_pb2.Duration(seconds=5, nanos=-1),
    ],
)
async def test_api_key_ttl_out_of_range(stack: Stack, ttl: duration_pb2.Duration) -> None:
    stub = auth_pb2_grpc.AuthServiceStub(stack.channel)  # type: ignore[no-untyped-call]
    err = await expect(
        stub.CreateApiKey(auth_pb2.CreateApiKeyRequest(name="ttl-k", ttl=ttl)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "ttl" in (err.details() or "")


# ---------------------------------------------------------------------------- flags

_FLAGS = {
    "flags": {
        "on": {"state": "ENABLED", "variants": {"t": True, "f": False}, "defaultVariant": "t"}
    }
}


def _ref(tenant: str) -> flags_pb2.FlagSetRef:
    return flags_pb2.FlagSetRef(tenant=tenant, environment="prod")


async def _put_flags(stack: Stack, tenant: str, document: Any) -> Any:
    stub = flags_pb2_grpc.FlagServiceStub(stack.channel)  # type: ignore[no-untyped-call]
    text = document if isinstance(document, str) else json.dumps(document)
    return await stub.PutFlagSet(flags_pb2.PutFlagSetRequest(ref=_ref(tenant), definition=text))


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
async def test_resolve_with_non_finite_context(stack: Stack, tenant: str, number: float) -> None:
    await _put_flags(stack, tenant, _FLAGS)
    selector = (("flagd-selector", f"{tenant}/prod"),)
    v1 = evaluation_pb2_grpc.ServiceStub(stack.channel)
    v2 = evaluation_v2_grpc.ServiceStub(stack.channel)
    calls: list[Any] = []
    for messages, stub in ((ev, v1), (ev2, v2)):
        for name in ("Boolean", "String", "Int", "Float", "Object"):
            request = getattr(messages, f"Resolve{name}Request")(flag_key="on")
            request.context.update({"deep": {"n": [number]}})
            calls.append(getattr(stub, f"Resolve{name}")(request, metadata=selector))
    request_all = ev.ResolveAllRequest()
    request_all.context.update({"n": number})
    calls.append(v1.ResolveAll(request_all, metadata=selector))
    for call in calls:
        err = await expect(call, grpc.StatusCode.INVALID_ARGUMENT)
        assert "context" in (err.details() or "")
        assert "finite" in (err.details() or "")


def _nested_targeting(levels: int) -> Any:
    rule: Any = "t"
    for _ in range(levels):
        rule = {"if": [True, rule, "f"]}
    return rule


@pytest.mark.parametrize("operations", [33, 60, 400])
async def test_deep_targeting_is_refused_at_write(
    stack: Stack, tenant: str, operations: int
) -> None:
    document = json.loads(json.dumps(_FLAGS))
    document["flags"]["on"]["targeting"] = _nested_targeting(operations)
    err = await expect(_put_flags(stack, tenant, document), grpc.StatusCode.INVALID_ARGUMENT)
    assert "nested" in (err.details() or "")


async def test_targeting_at_the_depth_limit_is_served(stack: Stack, tenant: str) -> None:
    document = json.loads(json.dumps(_FLAGS))
    document["flags"]["on"]["targeting"] = _nested_targeting(32)  # 64 levels: the limit
    await _put_flags(stack, tenant, document)
    stub = evaluation_pb2_grpc.ServiceStub(stack.channel)
    answer = await stub.ResolveBoolean(
        ev.ResolveBooleanRequest(flag_key="on"), metadata=(("flagd-selector", f"{tenant}/prod"),)
    )
    assert (answer.value, answer.reason) == (True, "TARGETING_MATCH")


async def test_evaluators_composed_past_the_limit_are_refused(stack: Stack, tenant: str) -> None:
    document = json.loads(json.dumps(_FLAGS))
    # Each evaluator is 40 levels deep and refers to the next: fine alone, 162 composed.
    evaluators: dict[str, Any] = {}
    for i in range(4):
        inner: Any = {"$ref": f"e{i + 1}"} if i < 3 else "t"
        for _ in range(20):
            inner = {"if": [True, inner, "f"]}
        evaluators[f"e{i}"] = inner
    document["$evaluators"] = evaluators
    document["flags"]["on"]["targeting"] = {"if": [True, {"$ref": "e0"}, "f"]}
    err = await expect(_put_flags(stack, tenant, document), grpc.StatusCode.INVALID_ARGUMENT)
    assert "nested" in (err.details() or "")


async def test_deep_variant_in_put_flag(stack: Stack, tenant: str) -> None:
    await _put_flags(stack, tenant, _FLAGS)
    stub = flags_pb2_grpc.FlagServiceStub(stack.channel)  # type: ignore[no-untyped-call]
    deep = "[" * 800 + "]" * 800
    definition = '{"state":"ENABLED","variants":{"a":' + deep + '},"defaultVariant":"a"}'
    err = await expect(
        stub.PutFlag(
            flags_pb2.PutFlagRequest(ref=_ref(tenant), flag_key="deep", definition=definition)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "nested too deeply" in (err.details() or "")


async def test_huge_integer_in_flag_set(stack: Stack, tenant: str) -> None:
    text = (
        '{"flags":{"n":{"state":"ENABLED","variants":{"a":'
        + "9" * 4301
        + '},"defaultVariant":"a"}}}'
    )
    err = await expect(_put_flags(stack, tenant, text), grpc.StatusCode.INVALID_ARGUMENT)
    assert "4301 digits" in (err.details() or "")
    stub = flags_pb2_grpc.FlagServiceStub(stack.channel)  # type: ignore[no-untyped-call]
    await _put_flags(stack, tenant, _FLAGS)
    err = await expect(
        stub.PutFlag(
            flags_pb2.PutFlagRequest(
                ref=_ref(tenant),
                flag_key="n",
                definition='{"state":"ENABLED","variants":{"a":'
                + "9" * 4301
                + '},"defaultVariant":"a"}',
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "4301 digits" in (err.details() or "")


# ------------------------------------------------------------------ details size cap


def _assert_capped(err: grpc.aio.AioRpcError, total: int) -> None:
    details = err.details() or ""
    assert len(details.encode()) <= status_module.MESSAGE_MAX_BYTES
    assert f"{total} problems" in details, details
    trailer = dict(err.trailing_metadata() or ())
    raw = trailer.get(DETAILS_TRAILER)
    assert isinstance(raw, bytes)
    assert len(raw) <= status_module.DETAILS_MAX_BYTES
    bad = bad_request(err)
    assert 0 < len(bad.field_violations) < total
    assert str(total - len(bad.field_violations) + 1) in bad.field_violations[-1].description


def _total(err: grpc.aio.AioRpcError) -> int:
    """The count of problems the message states ("... 128 problems ...")."""
    words = (err.details() or "").split()
    return int(words[words.index("problems") - 1].strip("(;:"))


async def test_put_with_64_bad_labels_states_its_count(stack: Stack, tenant: str) -> None:
    labels = {f"Bad Label {i:02d} " + "x" * 40: "v" for i in range(64)}
    err = await expect(
        stack.config.Put(config_pb2.PutRequest(key=ckey(tenant, "k"), value="1", labels=labels)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    total = _total(err)
    assert total >= 64
    _assert_capped(err, total)


async def test_watch_with_100_bad_selectors(stack: Stack, tenant: str) -> None:
    watch = watch_pb2_grpc.WatchServiceStub(stack.channel)  # type: ignore[no-untyped-call]
    selectors = [
        watch_pb2.WatchSelector(
            tenant=tenant, environment="Bad Env " + "x" * 40, keys=["bad key " + "y" * 100]
        )
        for _ in range(100)
    ]
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        async for _ in watch.Watch(watch_pb2.WatchRequest(selectors=selectors), timeout=10):
            pass
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT, exc.value.details()
    total = _total(exc.value)
    assert total >= 100
    _assert_capped(exc.value, total)


async def test_batch_get_with_300_bad_keys(stack: Stack, tenant: str) -> None:
    keys = [ckey(tenant, f"bad key {i} " + "z" * 60) for i in range(300)]
    err = await expect(
        stack.config.BatchGet(config_pb2.BatchGetRequest(keys=keys)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    total = _total(err)
    assert total == 300
    _assert_capped(err, total)


async def test_deeply_nested_forged_page_token(stack: Stack, tenant: str) -> None:
    """A page token is base64 JSON: one nested 1,530 deep once overflowed the parser."""
    import base64  # noqa: PLC0415

    token = base64.urlsafe_b64encode(b"[" * 1530).decode().rstrip("=")
    err = await expect(
        stack.config.List(config_pb2.ListRequest(tenant=tenant, page_token=token)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "page_token" in (err.details() or "")
