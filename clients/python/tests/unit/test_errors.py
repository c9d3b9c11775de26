"""The status table: gRPC statuses with google.rpc details become typed exceptions."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from configsvc_client import (
    AlreadyExistsError,
    ConfigError,
    ConflictError,
    DeadlineExceededError,
    FailedPreconditionError,
    FieldViolation,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
)
from configsvc_client.errors import STATUS_TABLE, decode_details, from_rpc_error


def pack(message) -> any_pb2.Any:  # type: ignore[no-untyped-def]
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def rpc_error(code: grpc.StatusCode, message: str, *details) -> grpc.aio.AioRpcError:  # type: ignore[no-untyped-def]
    status = status_pb2.Status(
        code=getattr(code_pb2, code.name), message=message, details=[pack(d) for d in details]
    )
    trailers = grpc.aio.Metadata(("grpc-status-details-bin", status.SerializeToString()))
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailers, details=message)


def test_invalid_argument_carries_field_violations() -> None:
    err = from_rpc_error(
        rpc_error(
            grpc.StatusCode.INVALID_ARGUMENT,
            "key.key: bad",
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field="key.key", description="bad"),
                    error_details_pb2.BadRequest.FieldViolation(
                        field="value", description="not JSON"
                    ),
                ]
            ),
        )
    )
    assert type(err) is InvalidArgumentError and isinstance(err, ValueError)
    assert err.field_violations == (
        FieldViolation("key.key", "bad"),
        FieldViolation("value", "not JSON"),
    )
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "key.key: bad" in str(err)


def test_not_found_and_already_exists_carry_the_resource() -> None:
    info = error_details_pb2.ResourceInfo(resource_type="entry", resource_name="acme/prod/api/x")
    err = from_rpc_error(rpc_error(grpc.StatusCode.NOT_FOUND, "no such entry", info))
    assert type(err) is NotFoundError and isinstance(err, LookupError)
    assert (err.resource_type, err.resource_name) == ("entry", "acme/prod/api/x")
    err2 = from_rpc_error(rpc_error(grpc.StatusCode.ALREADY_EXISTS, "exists", info))
    assert type(err2) is AlreadyExistsError and err2.resource_name == "acme/prod/api/x"


def test_conflict_carries_current_revision() -> None:
    info = error_details_pb2.ErrorInfo(
        reason="REVISION_MISMATCH",
        domain="configsvc.io",
        metadata={"current_revision": "9007199254740993", "expected_revision": "4"},
    )
    err = from_rpc_error(rpc_error(grpc.StatusCode.ABORTED, "revision mismatch", info))
    assert type(err) is ConflictError
    assert err.current_revision == 9007199254740993 and err.expected_revision == 4
    assert err.details.reason == "REVISION_MISMATCH"


def test_unavailable_carries_backend_and_retry_delay() -> None:
    err = from_rpc_error(
        rpc_error(
            grpc.StatusCode.UNAVAILABLE,
            "etcd is unreachable",
            error_details_pb2.ErrorInfo(reason="BACKEND_UNAVAILABLE", metadata={"backend": "etcd"}),
            error_details_pb2.RetryInfo(retry_delay={"nanos": 500_000_000}),
        )
    )
    assert type(err) is UnavailableError
    assert err.backend == "etcd" and err.retry_delay == pytest.approx(0.5)


def test_failed_precondition_carries_violations() -> None:
    err = from_rpc_error(
        rpc_error(
            grpc.StatusCode.FAILED_PRECONDITION,
            "cannot roll back to a deletion",
            error_details_pb2.PreconditionFailure(
                violations=[
                    error_details_pb2.PreconditionFailure.Violation(
                        type="STATE", description="deleted"
                    )
                ]
            ),
        )
    )
    assert type(err) is FailedPreconditionError and err.violations == ("deleted",)


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (grpc.StatusCode.RESOURCE_EXHAUSTED, ResourceExhaustedError),
        (grpc.StatusCode.PERMISSION_DENIED, PermissionDeniedError),
        (grpc.StatusCode.UNAUTHENTICATED, UnauthenticatedError),
        (grpc.StatusCode.DEADLINE_EXCEEDED, DeadlineExceededError),
    ],
)
def test_codes_without_details(code: grpc.StatusCode, cls: type[ConfigError]) -> None:
    err = from_rpc_error(
        grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="nope")
    )
    assert type(err) is cls and err.code == code and err.message.endswith("nope")


def test_deadline_is_a_timeout_error() -> None:
    err = from_rpc_error(
        grpc.aio.AioRpcError(
            grpc.StatusCode.DEADLINE_EXCEEDED, grpc.aio.Metadata(), grpc.aio.Metadata()
        )
    )
    assert isinstance(err, TimeoutError)


def test_unlisted_codes_become_the_base_class() -> None:
    err = from_rpc_error(
        grpc.aio.AioRpcError(
            grpc.StatusCode.INTERNAL, grpc.aio.Metadata(), grpc.aio.Metadata(), details="incident 1"
        )
    )
    assert type(err) is ConfigError and err.code == grpc.StatusCode.INTERNAL
    assert grpc.StatusCode.INTERNAL not in STATUS_TABLE


def test_unavailable_without_details_has_no_backend() -> None:
    err = from_rpc_error(
        grpc.aio.AioRpcError(
            grpc.StatusCode.UNAVAILABLE,
            grpc.aio.Metadata(),
            grpc.aio.Metadata(),
            details="connect failed",
        )
    )
    assert isinstance(err, UnavailableError) and err.backend is None and err.retry_delay is None


def test_broken_details_do_not_hide_the_status() -> None:
    assert decode_details(b"\xff\xff not a status") == decode_details(None)
    bogus = status_pb2.Status(
        details=[any_pb2.Any(type_url="type.googleapis.com/x.Y", value=b"\x01")]
    )
    assert decode_details(bogus.SerializeToString()).field_violations == ()
    trailers = grpc.aio.Metadata(("grpc-status-details-bin", b"\x00garbage"))
    err = from_rpc_error(
        grpc.aio.AioRpcError(grpc.StatusCode.ABORTED, grpc.aio.Metadata(), trailers, details="x")
    )
    assert type(err) is ConflictError and err.current_revision is None


def test_local_invalid_argument_has_the_server_shape() -> None:
    err = InvalidArgumentError.single("path", "empty segment")
    assert err.field_violations == (FieldViolation("path", "empty segment"),)
    assert err.code is None
