"""Units of the bad-input answers (issue 17): rate-limited logging, capped statuses, the
one timestamp/duration check, flag nesting bounds."""

from __future__ import annotations

import logging

import grpc
import pytest
from google.protobuf import duration_pb2, timestamp_pb2

from configsvc import errors
from configsvc.flags import schema
from configsvc.ratelog import RateLimitedLog
from configsvc.rpc import requests, status
from configsvc.v1 import auth_pb2, config_pb2
from tests.helpers import DETAILS_TRAILER, rich_status


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rate_limited_log_writes_one_line_per_interval_with_the_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    limited = RateLimitedLog(logging.getLogger("test.limited"), 10.0, clock=clock)
    caplog.set_level(logging.WARNING, "test.limited")
    assert limited.note("bad thing %s", 1)
    for _ in range(41):
        clock.now += 0.2
        assert not limited.note("bad thing %s", 2)
    assert limited.suppressed == 41
    clock.now += 2.0  # 10.2 s after the first line
    assert limited.note("bad thing %s", 3)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "bad thing 1",
        "bad thing 3 (41 more since the last such line, 10 s between lines)",
    ]
    assert limited.suppressed == 0


class FakeContext:
    def __init__(self) -> None:
        self.code: grpc.StatusCode | None = None
        self.details = ""
        self.trailers: tuple[tuple[str, bytes], ...] = ()

    async def abort(
        self,
        code: grpc.StatusCode,
        details: str,
        trailing_metadata: tuple[tuple[str, bytes], ...] = (),
    ) -> None:
        self.code, self.details, self.trailers = code, details, trailing_metadata
        raise grpc.aio.AbortError()


@pytest.mark.parametrize(
    "exc",
    [
        errors.InvalidArgumentError(
            [errors.FieldViolation(f"labels[{'k' * 300}{i}]", "d" * 2000) for i in range(500)]
        ),
        errors.InvalidArgumentError.single("x" * 10_000, "\u00e4" * 10_000),
        errors.FailedPreconditionError("\U0001f600" * 5000),
        errors.NotFoundError("tenant", "t" * 20_000),
    ],
)
async def test_statuses_are_capped(exc: errors.ConfigsvcError) -> None:
    context = FakeContext()
    with pytest.raises(grpc.aio.AbortError):
        await status.abort_with(context, exc)  # type: ignore[arg-type]
    assert len(context.details.encode()) <= status.MESSAGE_MAX_BYTES
    raw = dict(context.trailers)[DETAILS_TRAILER]
    assert len(raw) <= status.DETAILS_MAX_BYTES
    decoded = rich_status(context.trailers)
    assert decoded is not None
    assert decoded.message == context.details
    if isinstance(exc, errors.InvalidArgumentError) and len(exc.violations) > 1:
        assert "(500 problems in all)" in context.details


async def test_short_messages_are_unchanged() -> None:
    context = FakeContext()
    exc = errors.InvalidArgumentError.single("key", "is required")
    with pytest.raises(grpc.aio.AbortError):
        await status.abort_with(context, exc)  # type: ignore[arg-type]
    assert context.details == "key: is required"


async def test_undecodable_request_answers_invalid_argument_everywhere() -> None:
    bad = status.UndecodableRequest("GetRequest")
    with pytest.raises(errors.InvalidArgumentError, match="request: is not a valid GetRequest"):
        _ = bad.key
    with pytest.raises(errors.InvalidArgumentError):
        bad.HasField("key")
    calls: list[object] = []

    async def behavior(request: object, context: object) -> None:
        calls.append(request)

    context = FakeContext()
    with pytest.raises(grpc.aio.AbortError):
        await status.wrap_unary(behavior, "/x/Get")(bad, context)
    assert context.code == grpc.StatusCode.INVALID_ARGUMENT and not calls


async def test_not_implemented_is_unimplemented() -> None:
    async def behavior(request: object, context: object) -> None:
        raise NotImplementedError("Method not implemented!")

    context = FakeContext()
    with pytest.raises(grpc.aio.AbortError):
        await status.wrap_unary(behavior, "/grpc.health.v1.Health/List")(object(), context)
    assert context.code == grpc.StatusCode.UNIMPLEMENTED


@pytest.mark.parametrize(
    ("seconds", "nanos", "ok"),
    [
        (0, 0, True),
        (-62_135_596_800, 0, True),
        (253_402_300_799, 999_999_999, True),
        (-62_135_596_801, 0, False),
        (253_402_300_800, 0, False),
        (2**62, 0, False),
        (-(2**63), 0, False),
        (5, -1, False),
        (5, 10**9, False),
    ],
)
def test_timestamp_range(seconds: int, nanos: int, ok: bool) -> None:
    request = config_pb2.ListRequest(
        updated_after=timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
    )
    if ok:
        assert requests.timestamp_ns(request, "updated_after") == seconds * 10**9 + nanos
    else:
        with pytest.raises(errors.InvalidArgumentError, match="updated_after"):
            requests.timestamp_ns(request, "updated_after")
    assert requests.timestamp_ns(config_pb2.ListRequest(), "updated_after") is None


@pytest.mark.parametrize(
    ("seconds", "nanos", "ok"),
    [
        (1, 0, True),
        (3600, 500, True),
        (0, 999_999_999, False),
        (2**62, 0, False),
        (-5, 0, False),
        (5, -1, False),
        (-1, 5, False),
        (315_576_000_001, 0, False),
        (10**10, 0, False),
    ],
)
def test_duration_range(seconds: int, nanos: int, ok: bool) -> None:
    request = auth_pb2.CreateApiKeyRequest(ttl=duration_pb2.Duration(seconds=seconds, nanos=nanos))
    if ok:
        value = requests.duration_seconds(request, "ttl", minimum=1, maximum=10**9)
        assert value == pytest.approx(seconds + nanos / 1e9)
    else:
        with pytest.raises(errors.InvalidArgumentError, match="ttl"):
            requests.duration_seconds(request, "ttl", minimum=1, maximum=10**9)


def _nested(levels: int) -> object:
    rule: object = "t"
    for _ in range(levels):
        rule = {"if": [True, rule, "f"]}
    return rule


def test_flag_nesting_is_checked_before_the_schema() -> None:
    flag = {"state": "ENABLED", "variants": {"t": True, "f": False}, "defaultVariant": "t"}
    ok = {"flags": {"a": {**flag, "targeting": _nested(32)}}}  # 64 levels
    assert schema.violations(ok) == []
    deep = {"flags": {"a": {**flag, "targeting": _nested(33)}}}
    found = schema.violations(deep)
    assert [v.field for v in found] == ["definition/flags/a/targeting"]
    assert "more than 64 levels" in found[0].description
    # 500 operations: far past where the schema validator itself would overflow.
    assert schema.violations({"flags": {"a": {**flag, "targeting": _nested(500)}}})
    evaluators = {"flags": {"a": {**flag}}, "$evaluators": {"e": _nested(40)}}
    assert [v.field for v in schema.violations(evaluators)] == ["definition/$evaluators/e"]
