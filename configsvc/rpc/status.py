"""The one place where configsvc errors become gRPC statuses.

The table below is the whole mapping (the role etcd's ``v3rpc/util.go`` plays):
typed exceptions from anywhere in the server are caught by one wrapper around
every RPC, unary and streaming, and turned into a status code, a message a
person can act on and ``google.rpc`` details a program can act on. Anything
else is a bug: it is logged with its traceback under an incident id and the
caller gets INTERNAL with that id, never a Python traceback. The wrappers are
applied once per method when services are registered (``configsvc.rpc.registry``).

Sizes are capped: the message and the details travel in the response trailers, and a
client refuses trailers past its metadata limit (8 KiB soft, 16 KiB hard in gRPC's C
core) with RESOURCE_EXHAUSTED, hiding the real answer. So the message is at most
``MESSAGE_MAX_BYTES`` and the serialized ``google.rpc.Status`` at most
``DETAILS_MAX_BYTES``; an error with more violations than fit lists the first ones and
says how many more there were.

A request whose bytes do not decode arrives as an ``UndecodableRequest`` (see
``configsvc.rpc.registry``): the wrappers answer it INVALID_ARGUMENT, and the events
are logged through ``BAD_REQUESTS``, at most one line a minute with a count.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from configsvc import errors
from configsvc.ratelog import RateLimitedLog

log = logging.getLogger(__name__)

DOMAIN = "configsvc.io"
_DETAILS_KEY = "grpc-status-details-bin"
#: Longest status message, in UTF-8 bytes (gRPC percent-encodes it: up to 3x on the wire).
MESSAGE_MAX_BYTES = 768
#: Largest serialized google.rpc.Status (message copy included; base64: 4/3x on the wire).
#: With the message, the trailers stay under 6 KiB, well below the 8 KiB soft limit.
DETAILS_MAX_BYTES = 2560
#: Longest field path and description of one violation in the details, in UTF-8 bytes.
_FIELD_MAX_BYTES = 200
_DESCRIPTION_MAX_BYTES = 400
#: Room kept in the details for the Any wrapper, the status code and the "more" line.
_DETAILS_RESERVE = 200

#: Undecodable requests: one log line per minute at most, with the count left out.
BAD_REQUESTS = RateLimitedLog(log, interval=60.0)


class UndecodableRequest:
    """Stands in for a request whose bytes are not a valid message of its type.

    gRPC decodes a request before any handler or interceptor code runs, and a
    deserializer that raises makes gRPC answer UNKNOWN and log a traceback. So the
    deserializers of ``configsvc.rpc.registry`` return this instead; the wrappers below
    answer it INVALID_ARGUMENT. Any code that reads it first (the auth interceptor
    reading a request's scopes, after authenticating the caller) gets the same
    INVALID_ARGUMENT from any attribute, so it can never be mistaken for a message.
    """

    __slots__ = ("type_name",)

    def __init__(self, type_name: str) -> None:
        object.__setattr__(self, "type_name", type_name)

    def error(self) -> errors.InvalidArgumentError:
        return errors.InvalidArgumentError.single("request", f"is not a valid {self.type_name}")

    def __getattr__(self, name: str) -> NoReturn:
        raise self.error()

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise self.error()


def _refuse_undecodable(request: object) -> None:
    if type(request) is UndecodableRequest:
        raise request.error()


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


def _clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes (on a character boundary), marked."""
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode(errors="ignore") + "\u2026"


def _violations_message(violations: list[errors.FieldViolation]) -> str:
    """The first violations that fit in ``MESSAGE_MAX_BYTES``, then how many more."""
    total = len(violations)
    tail_room = 64  # "; and 1234 more (1235 problems in all)"
    parts: list[str] = []
    used = 0
    for v in violations:
        part = _clip(f"{v.field}: {v.description}", MESSAGE_MAX_BYTES // 3)
        size = len(part.encode()) + 2
        if used + size > MESSAGE_MAX_BYTES - tail_room:
            break
        parts.append(part)
        used += size
    listed = len(parts)
    if listed < total:
        parts.append(f"and {total - listed} more ({total} problems in all)")
    return "; ".join(parts)


def status_message(exc: errors.ConfigsvcError) -> str:
    """What the caller reads: ``exc.message``, or its capped form when too long."""
    if len(exc.message.encode()) <= MESSAGE_MAX_BYTES:
        return exc.message
    if isinstance(exc, errors.InvalidArgumentError) and exc.violations:
        return _violations_message(exc.violations)
    return _clip(exc.message, MESSAGE_MAX_BYTES)


def _bad_request(violations: list[errors.FieldViolation], budget: int) -> any_pb2.Any:
    """A BadRequest of the first violations that fit in ``budget`` bytes, plus one
    ``request`` violation counting the rest when some did not."""
    bad = error_details_pb2.BadRequest()
    used = 0
    for v in violations:
        item = error_details_pb2.BadRequest.FieldViolation(
            field=_clip(v.field, _FIELD_MAX_BYTES),
            description=_clip(v.description, _DESCRIPTION_MAX_BYTES),
        )
        size = item.ByteSize() + 3
        if used + size > budget:
            break
        bad.field_violations.append(item)
        used += size
    rest = len(violations) - len(bad.field_violations)
    if rest:
        bad.field_violations.append(
            error_details_pb2.BadRequest.FieldViolation(
                field="request",
                description=f"and {rest} more problems not listed ({len(violations)} in all)",
            )
        )
    return _pack(bad)


def _details(exc: errors.ConfigsvcError, message: str | None = None) -> list[any_pb2.Any]:
    """The google.rpc error details that make each error machine-readable, within
    ``DETAILS_MAX_BYTES`` together with ``message`` (the capped status message)."""
    if message is None:
        message = status_message(exc)
    if isinstance(exc, errors.InvalidArgumentError):
        budget = DETAILS_MAX_BYTES - _DETAILS_RESERVE - len(message.encode())
        return [_bad_request(exc.violations, budget)]
    if isinstance(exc, errors.NotFoundError | errors.AlreadyExistsError):
        return [
            _pack(
                error_details_pb2.ResourceInfo(
                    resource_type=exc.resource_type,
                    resource_name=_clip(exc.resource_name, _DESCRIPTION_MAX_BYTES),
                    description=message,
                )
            )
        ]
    if isinstance(exc, errors.ConflictError):
        metadata = {"current_revision": str(exc.current_revision)}
        if exc.expected_revision is not None:
            metadata["expected_revision"] = str(exc.expected_revision)
        return [
            _pack(
                error_details_pb2.ErrorInfo(
                    reason="REVISION_MISMATCH", domain=DOMAIN, metadata=metadata
                )
            )
        ]
    if isinstance(exc, errors.BackendUnavailableError):
        return [
            _pack(
                error_details_pb2.ErrorInfo(
                    reason="BACKEND_UNAVAILABLE", domain=DOMAIN, metadata={"backend": exc.backend}
                )
            ),
            _pack(error_details_pb2.RetryInfo(retry_delay={"nanos": 500_000_000})),
        ]
    if isinstance(exc, errors.StreamEndedError):
        return [
            _pack(
                error_details_pb2.ErrorInfo(
                    reason="STREAM_ENDED",
                    domain=DOMAIN,
                    metadata={"resume_revision": str(exc.resume_revision)},
                )
            )
        ]
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
        return [
            _pack(
                error_details_pb2.PreconditionFailure(
                    violations=[
                        error_details_pb2.PreconditionFailure.Violation(
                            type="STATE", description=message
                        )
                    ]
                )
            )
        ]
    return []


def _retry_info(seconds: float) -> error_details_pb2.RetryInfo:
    whole = int(seconds)
    return error_details_pb2.RetryInfo(
        retry_delay={"seconds": whole, "nanos": int((seconds - whole) * 1e9)}
    )


async def abort_with(context: grpc.aio.ServicerContext, exc: errors.ConfigsvcError) -> None:
    """End the RPC with the status for ``exc`` (raises grpc's abort exception)."""
    status = status_proto(exc)
    await context.abort(
        status_code(exc),
        status.message,
        trailing_metadata=((_DETAILS_KEY, status.SerializeToString()),),
    )


async def _abort_internal(context: grpc.aio.ServicerContext, method: str, exc: Exception) -> None:
    incident = uuid.uuid4().hex[:12]
    log.error("unhandled error in %s (incident %s)", method, incident, exc_info=exc)
    await context.abort(
        grpc.StatusCode.INTERNAL,
        f"internal error (incident {incident}); the server log has the details",
    )


async def _abort_unimplemented(context: grpc.aio.ServicerContext, method: str) -> None:
    """A generated servicer base class's method (one this server does not implement, such
    as grpc-health's List): UNIMPLEMENTED, as gRPC answers an unknown method."""
    await context.abort(
        grpc.StatusCode.UNIMPLEMENTED, f"{method} is not implemented by this server"
    )


async def _abort_for(context: grpc.aio.ServicerContext, method: str, exc: Exception) -> None:
    """End the call for what a handler raised, the same way for every kind of handler:
    a typed error through the table, an abort as it is, an unimplemented servicer method
    as UNIMPLEMENTED, anything else as INTERNAL with an incident id (traceback logged)."""
    if isinstance(exc, errors.ConfigsvcError):
        await abort_with(context, exc)
    elif isinstance(exc, grpc.aio.AbortError):
        raise exc
    elif isinstance(exc, NotImplementedError):
        await _abort_unimplemented(context, method)
    else:
        await _abort_internal(context, method, exc)


def wrap_unary(behavior: Callable[..., Any], method: str) -> Callable[..., Any]:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            _refuse_undecodable(request)
            return await behavior(request, context)
        except Exception as exc:
            await _abort_for(context, method, exc)
        return None  # pragma: no cover - abort always raises

    return wrapped


def wrap_stream(behavior: Callable[..., Any], method: str) -> Callable[..., Any]:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        try:
            _refuse_undecodable(request)
            async for response in behavior(request, context):
                yield response
        except Exception as exc:
            await _abort_for(context, method, exc)

    return wrapped


def status_proto(exc: errors.ConfigsvcError) -> status_pb2.Status:
    """The ``google.rpc.Status`` for ``exc`` (code, message, details), as ``abort_with``
    sends it in the trailer: the HTTP adapters send the same status as JSON."""
    code = status_code(exc)
    message = status_message(exc)
    return status_pb2.Status(
        code=getattr(code_pb2, code.name), message=message, details=_details(exc, message)
    )
