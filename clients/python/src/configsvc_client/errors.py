"""Typed exceptions, and the one table that maps gRPC statuses to them.

The server puts machine-readable ``google.rpc`` details in the
``grpc-status-details-bin`` trailer (BadRequest, ResourceInfo, ErrorInfo,
RetryInfo, PreconditionFailure). They are decoded once into
:class:`ErrorDetails`, and each exception class exposes the fields that
matter for its code (``ConflictError.current_revision``,
``UnavailableError.backend``...). Callers of the public API only ever see
these classes, never a raw ``grpc.aio.AioRpcError``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import message as _message
from google.rpc import error_details_pb2, status_pb2

__all__ = [
    "AlreadyExistsError",
    "ChangesOverflowError",
    "ClientClosedError",
    "ConfigError",
    "ConfigTypeError",
    "ConfigUnavailableError",
    "ConflictError",
    "DeadlineExceededError",
    "ErrorDetails",
    "FailedPreconditionError",
    "FieldViolation",
    "InvalidArgumentError",
    "KeyNotWatchedError",
    "NotFoundError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "UnauthenticatedError",
    "UnavailableError",
    "decode_details",
    "from_rpc_error",
]

log = logging.getLogger("configsvc_client")

DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One invalid request field (``google.rpc.BadRequest.FieldViolation``)."""

    field: str
    description: str


@dataclass(frozen=True, slots=True)
class ErrorDetails:
    """Everything the ``google.rpc`` details of a status said, decoded."""

    field_violations: tuple[FieldViolation, ...] = ()
    resource_type: str = ""
    resource_name: str = ""
    reason: str = ""
    domain: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    retry_delay: float | None = None
    precondition_violations: tuple[str, ...] = ()


class ConfigError(Exception):
    """Base class of every error the client raises.

    ``code`` is the gRPC status code when the error came from the server (or
    the transport), None for errors detected locally.
    """

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode | None = None,
        details: ErrorDetails | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = details if details is not None else ErrorDetails()


class InvalidArgumentError(ConfigError, ValueError):
    """The request is wrong (INVALID_ARGUMENT); retrying it unchanged cannot succeed."""

    @property
    def field_violations(self) -> tuple[FieldViolation, ...]:
        return self.details.field_violations

    @classmethod
    def single(cls, field_path: str, description: str) -> InvalidArgumentError:
        """A locally detected bad argument, shaped like the server's."""
        violation = FieldViolation(field_path, description)
        return cls(
            f"{field_path}: {description}", details=ErrorDetails(field_violations=(violation,))
        )


class NotFoundError(ConfigError, LookupError):
    """The tenant, entry or version does not exist (NOT_FOUND)."""

    @property
    def resource_type(self) -> str:
        return self.details.resource_type

    @property
    def resource_name(self) -> str:
        return self.details.resource_name


class AlreadyExistsError(ConfigError):
    """A create found the resource already there (ALREADY_EXISTS)."""

    @property
    def resource_type(self) -> str:
        return self.details.resource_type

    @property
    def resource_name(self) -> str:
        return self.details.resource_name


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class ConflictError(ConfigError):
    """``expected_revision`` did not match (ABORTED); nothing was written."""

    @property
    def current_revision(self) -> int | None:
        """The entry's revision on the server (0: it has no value)."""
        return _int_or_none(self.details.metadata.get("current_revision"))

    @property
    def expected_revision(self) -> int | None:
        return _int_or_none(self.details.metadata.get("expected_revision"))


class FailedPreconditionError(ConfigError):
    """The system is not in a state the operation needs (FAILED_PRECONDITION)."""

    @property
    def violations(self) -> tuple[str, ...]:
        return self.details.precondition_violations


class UnavailableError(ConfigError):
    """The server, or its backend, cannot be reached (UNAVAILABLE); retry later.

    ``backend`` is ``"etcd"`` when the server is up but lost etcd, None when
    the server itself could not be reached.
    """

    @property
    def backend(self) -> str | None:
        return self.details.metadata.get("backend")

    @property
    def retry_delay(self) -> float | None:
        return self.details.retry_delay


class ConfigUnavailableError(UnavailableError):
    """No configuration at start: the server was unreachable and no usable cache file."""


class ResourceExhaustedError(ConfigError):
    """A limit was hit (RESOURCE_EXHAUSTED), e.g. the server's stream limit."""

    @property
    def retry_delay(self) -> float | None:
        return self.details.retry_delay


class PermissionDeniedError(ConfigError):
    """The caller may not do this (PERMISSION_DENIED)."""


class UnauthenticatedError(ConfigError):
    """The caller's credentials are missing or invalid (UNAUTHENTICATED)."""


class DeadlineExceededError(ConfigError, TimeoutError):
    """The call's deadline passed before it completed (DEADLINE_EXCEEDED)."""


class ConfigTypeError(ConfigError, TypeError):
    """A typed getter found a value of another JSON type."""


class KeyNotWatchedError(ConfigError, LookupError):
    """The key is outside every selector, so the local cache cannot know its value."""


class ChangesOverflowError(ConfigError):
    """A ``changes()`` iterator was not read fast enough and its queue overflowed."""


class ClientClosedError(ConfigError):
    """The client was closed."""


#: The one mapping from gRPC status code to exception class. Codes not listed
#: (INTERNAL, UNKNOWN, CANCELLED, ...) become a plain :class:`ConfigError`.
STATUS_TABLE: Mapping[grpc.StatusCode, type[ConfigError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.ABORTED: ConflictError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
}


def _unpack(detail: Any, message: _message.Message) -> bool:
    try:
        return bool(detail.Unpack(message))
    except Exception:  # a malformed Any must not hide the status itself
        return False


def decode_details(raw: bytes | None) -> ErrorDetails:
    """Decode a serialized ``google.rpc.Status``; unknown or broken details are skipped."""
    if not raw:
        return ErrorDetails()
    status = status_pb2.Status()
    try:
        status.ParseFromString(raw)
    except Exception:
        log.debug("ignoring an unparsable %s trailer", DETAILS_KEY)
        return ErrorDetails()
    violations: list[FieldViolation] = []
    preconditions: list[str] = []
    found: dict[str, Any] = {}
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        resource = error_details_pb2.ResourceInfo()
        info = error_details_pb2.ErrorInfo()
        retry = error_details_pb2.RetryInfo()
        precondition = error_details_pb2.PreconditionFailure()
        if _unpack(detail, bad):
            violations += [FieldViolation(v.field, v.description) for v in bad.field_violations]
        elif _unpack(detail, resource):
            found["resource_type"] = resource.resource_type
            found["resource_name"] = resource.resource_name
        elif _unpack(detail, info):
            found.update(reason=info.reason, domain=info.domain, metadata=dict(info.metadata))
        elif _unpack(detail, retry):
            found["retry_delay"] = retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9
        elif _unpack(detail, precondition):
            preconditions += [v.description for v in precondition.violations]
    return ErrorDetails(
        field_violations=tuple(violations), precondition_violations=tuple(preconditions), **found
    )


def _details_trailer(error: grpc.aio.AioRpcError) -> bytes | None:
    try:
        trailers = error.trailing_metadata() or ()
    except Exception:
        return None
    for key, value in trailers:
        if key == DETAILS_KEY and isinstance(value, bytes):
            return value
    return None


def from_status(code: grpc.StatusCode, message: str, details: ErrorDetails) -> ConfigError:
    """The exception for a status, through :data:`STATUS_TABLE`."""
    cls = STATUS_TABLE.get(code, ConfigError)
    text = f"{code.name}: {message}" if message else code.name
    return cls(text, code=code, details=details)


def from_rpc_error(error: grpc.aio.AioRpcError | grpc.RpcError) -> ConfigError:
    """The typed exception for a failed call (details decoded from its trailer)."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    message = error.details() if hasattr(error, "details") else str(error)
    if not isinstance(code, grpc.StatusCode):
        code = grpc.StatusCode.UNKNOWN
    return from_status(code, message or "", decode_details(_details_trailer(error)))
