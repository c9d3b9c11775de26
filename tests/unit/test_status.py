"""The status table and the interceptor's handling of unexpected errors."""

from __future__ import annotations

import logging
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2

from configsvc import errors
from configsvc.rpc import status
from tests.helpers import rich_status


class FakeContext:
    """Records what the interceptor does with the call (pure unit: no server)."""

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


CASES: list[tuple[errors.ConfigsvcError, grpc.StatusCode, Any]] = [
    (
        errors.InvalidArgumentError.single("key", "bad"),
        grpc.StatusCode.INVALID_ARGUMENT,
        error_details_pb2.BadRequest,
    ),
    (
        errors.NotFoundError("tenant", "x"),
        grpc.StatusCode.NOT_FOUND,
        error_details_pb2.ResourceInfo,
    ),
    (
        errors.AlreadyExistsError("tenant", "x"),
        grpc.StatusCode.ALREADY_EXISTS,
        error_details_pb2.ResourceInfo,
    ),
    (errors.ConflictError("k", 1, 2), grpc.StatusCode.ABORTED, error_details_pb2.ErrorInfo),
    (
        errors.FailedPreconditionError("no"),
        grpc.StatusCode.FAILED_PRECONDITION,
        error_details_pb2.PreconditionFailure,
    ),
    (
        errors.BackendUnavailableError("etcd", "down"),
        grpc.StatusCode.UNAVAILABLE,
        error_details_pb2.ErrorInfo,
    ),
    (errors.DeadlineError("late"), grpc.StatusCode.DEADLINE_EXCEEDED, None),
]


@pytest.mark.parametrize(("exc", "code", "detail_type"), CASES)
async def test_each_error_maps_to_its_code_and_details(
    exc: errors.ConfigsvcError, code: grpc.StatusCode, detail_type: Any
) -> None:
    async def behavior(request: object, context: object) -> None:
        raise exc

    context = FakeContext()
    with pytest.raises(grpc.aio.AbortError):
        await status.wrap_unary(behavior, "/m")(object(), context)
    assert context.code == code and context.details == exc.message
    rpc = rich_status(context.trailers)
    assert rpc is not None
    assert rpc.message == exc.message
    if detail_type is not None:
        assert rpc.details and rpc.details[0].Is(detail_type.DESCRIPTOR)


async def test_unexpected_errors_become_internal_with_incident_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def behavior(request: object, context: object) -> None:
        raise KeyError("secret internals")

    context = FakeContext()
    with caplog.at_level(logging.ERROR), pytest.raises(grpc.aio.AbortError):
        await status.wrap_unary(behavior, "/configsvc.v1.ConfigService/Get")(object(), context)
    assert context.code == grpc.StatusCode.INTERNAL
    assert "incident" in context.details and "secret internals" not in context.details
    assert "secret internals" in caplog.text


async def test_stream_wrapper_maps_errors_mid_stream() -> None:
    async def behavior(request: object, context: object):  # type: ignore[no-untyped-def]
        yield 1
        raise errors.BackendUnavailableError("etcd", "gone")

    context = FakeContext()
    received = []
    with pytest.raises(grpc.aio.AbortError):
        async for item in status.wrap_stream(behavior, "/s")(object(), context):
            received.append(item)
    assert received == [1] and context.code == grpc.StatusCode.UNAVAILABLE


def test_unknown_error_class_is_internal() -> None:
    assert status.status_code(errors.ConfigsvcError("x")) == grpc.StatusCode.INTERNAL
