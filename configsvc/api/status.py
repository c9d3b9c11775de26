"""The one place where configsvc errors become gRPC statuses.

The table below is the whole mapping (the role etcd's ``v3rpc/util.go`` plays):
typed exceptions from anywhere in the server are caught by one wrapper around
every RPC, unary and streaming, and turned into a status code, a message a
person can act on and ``google.rpc`` details a program can act on. Anything
else is a bug: it is logged with its traceback under an incident id and the
caller gets INTERNAL with that id, never a Python traceback. The wrappers are
applied once per method when services are registered (``configsvc.api.registry``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from configsvc import errors

log = logging.getLogger(__name__)

DOMAIN = "configsvc.io"
_DETAILS_KEY = "grpc-status-details-bin"

#: Exception class -> gRPC status code. Order matters only for subclasses.
STATUS_TABLE: tuple[tuple[type[errors.ConfigsvcError], grpc.StatusCode], ...] = (
    (errors.InvalidArgumentError, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFoundError, grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExistsError, grpc.StatusCode.ALREADY_EXISTS),
    (errors.ConflictError, grpc.StatusCode.ABORTED),
    (errors.FailedPreconditionError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.BackendUnavailableError, grpc.StatusCode.UNAVAILABLE),
    (errors.StreamEndedError, grpc.StatusCode.UNAVAILABLE),
    (errors.ResourceExhaustedError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.DeadlineError, grpc.StatusCode.DEADLINE_EXCEEDED),
    (errors.UnauthenticatedError, grpc.StatusCode.UNAUTHENTICATED),
    (errors.PermissionDeniedError, grpc.StatusCode.PERMISSION_DENIED),
    # The flagd evaluation protocol's codes: providers map them back to OpenFeature errors.
    (errors.FlagParseError, grpc.StatusCode.DATA_LOSS),
    (errors.FlagEvaluationError, grpc.StatusCode.UNKNOWN),
)


def status_code(exc: errors.ConfigsvcError) -> grpc.StatusCode:
    for cls, code in STATUS_TABLE:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def _details(exc: errors.ConfigsvcError) -> list[any_pb2.Any]:
    """The google.rpc error details that make each error machine-readable."""
    if isinstance(exc, errors.InvalidArgumentError):
        return [_pack(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
            for v in exc.violations
        ]))]
    if isinstance(exc, errors.NotFoundError | errors.AlreadyExistsError):
        return [_pack(error_details_pb2.ResourceInfo(
            resource_type=exc.resource_type, resource_name=exc.resource_name,
            description=exc.message))]
    if isinstance(exc, errors.ConflictError):
        metadata = {"current_revision": str(exc.current_revision)}
        if exc.expected_revision is not None:
            metadata["expected_revision"] = str(exc.expected_revision)
        return [_pack(error_details_pb2.ErrorInfo(
            reason="REVISION_MISMATCH", domain=DOMAIN, metadata=metadata))]
    if isinstance(exc, errors.BackendUnavailableError):
        return [
            _pack(error_details_pb2.ErrorInfo(
                reason="BACKEND_UNAVAILABLE", domain=DOMAIN, metadata={"backend": exc.backend})),
            _pack(error_details_pb2.RetryInfo(retry_delay={"nanos": 500_000_000})),
        ]
    if isinstance(exc, errors.StreamEndedError):
        return [_pack(error_details_pb2.ErrorInfo(
            reason="STREAM_ENDED", domain=DOMAIN,
            metadata={"resume_revision": str(exc.resume_revision)}))]
    if isinstance(exc, errors.RateLimitedError):
        return [
            _pack(error_details_pb2.ErrorInfo(reason=exc.reason, domain=DOMAIN)),
            _pack(_retry_info(exc.retry_after)),
        ]
    if isinstance(exc, errors.ResourceExhaustedError):
        return [_pack(_retry_info(exc.retry_after))]
    if isinstance(exc, errors.PermissionDeniedError):
        return [_pack(error_details_pb2.ErrorInfo(reason="PERMISSION_DENIED", domain=DOMAIN))]
    if isinstance(exc, errors.FailedPreconditionError):
        return [_pack(error_details_pb2.PreconditionFailure(violations=[
            error_details_pb2.PreconditionFailure.Violation(type="STATE", description=exc.message)
        ]))]
    return []


def _retry_info(seconds: float) -> error_details_pb2.RetryInfo:
    whole = int(seconds)
    return error_details_pb2.RetryInfo(
        retry_delay={"seconds": whole, "nanos": int((seconds - whole) * 1e9)})


async def abort_with(context: grpc.aio.ServicerContext, exc: errors.ConfigsvcError) -> None:
    """End the RPC with the status for ``exc`` (raises grpc's abort exception)."""
    code = status_code(exc)
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=exc.message,
                               details=_details(exc))
    await context.abort(code, exc.message,
                        trailing_metadata=((_DETAILS_KEY, status.SerializeToString()),))


async def _abort_internal(context: grpc.aio.ServicerContext, method: str, exc: Exception) -> None:
    incident = uuid.uuid4().hex[:12]
    log.error("unhandled error in %s (incident %s)", method, incident, exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL,
                        f"internal error (incident {incident}); the server log has the details")


def wrap_unary(behavior: Callable[..., Any], method: str) -> Callable[..., Any]:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await behavior(request, context)
        except errors.ConfigsvcError as exc:
            await abort_with(context, exc)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort_internal(context, method, exc)
        return None  # pragma: no cover - abort always raises

    return wrapped


def wrap_stream(behavior: Callable[..., Any], method: str) -> Callable[..., Any]:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        try:
            async for response in behavior(request, context):
                yield response
        except errors.ConfigsvcError as exc:
            await abort_with(context, exc)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort_internal(context, method, exc)

    return wrapped
