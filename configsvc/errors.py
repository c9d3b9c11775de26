"""Typed errors of the configsvc server.

Every failure that reaches a caller is one of these classes. The gRPC edge
(``configsvc.rpc.status``) maps them to status codes and ``google.rpc`` error
details in a single table, the way etcd's ``v3rpc/util.go`` does, so code deep
in the store never imports gRPC status machinery and tests can assert on the
exception type.
"""

from __future__ import annotations

from dataclasses import dataclass


class ConfigsvcError(Exception):
    """Base class: ``message`` is what the caller sees, written for a person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class FieldViolation:
    """One invalid request field: the dotted field path and why it is wrong."""

    field: str
    description: str


class InvalidArgumentError(ConfigsvcError):
    """The request itself is wrong; retrying it unchanged cannot succeed."""

    def __init__(self, violations: list[FieldViolation]) -> None:
        self.violations = violations
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in violations))

    @classmethod
    def single(cls, field_path: str, description: str) -> InvalidArgumentError:
        """The common case of one bad field."""
        return cls([FieldViolation(field_path, description)])


class NotFoundError(ConfigsvcError):
    """The named resource does not exist."""

    def __init__(self, resource_type: str, resource_name: str, message: str | None = None) -> None:
        self.resource_type = resource_type
        self.resource_name = resource_name
        super().__init__(message or f"{resource_type} {resource_name!r} not found")


class AlreadyExistsError(ConfigsvcError):
    """A create found the resource already there."""

    def __init__(self, resource_type: str, resource_name: str) -> None:
        self.resource_type = resource_type
        self.resource_name = resource_name
        super().__init__(f"{resource_type} {resource_name!r} already exists")


class ConflictError(ConfigsvcError):
    """Optimistic concurrency failed: the entry changed since the caller read it.

    ``current_revision`` is the entry's mod_revision now (0 when it has no
    value), so a client can re-read and retry without guessing.
    """

    def __init__(self, what: str, expected_revision: int | None, current_revision: int) -> None:
        self.expected_revision = expected_revision
        self.current_revision = current_revision
        if expected_revision is None:
            message = f"{what} (current revision {current_revision}); retry"
        else:
            message = (
                f"{what} changed: expected revision {expected_revision}, current revision "
                f"{current_revision}; read it again and retry"
            )
        super().__init__(message)


class FailedPreconditionError(ConfigsvcError):
    """The request is valid but the system is not in a state that allows it."""


class BackendUnavailableError(ConfigsvcError):
    """A backend (etcd, Vault, Pulsar) cannot be reached; the caller may retry."""

    def __init__(self, backend: str, detail: str) -> None:
        self.backend = backend
        self.detail = detail
        super().__init__(f"{backend} unavailable: {detail}")


class ResourceExhaustedError(ConfigsvcError):
    """A limit of this server (streams, queues) is reached; retry later or elsewhere."""

    #: Seconds after which a retry can succeed (sent as ``RetryInfo``).
    retry_after: float = 1.0


class StreamEndedError(ConfigsvcError):
    """The server ends a healthy stream so the client reconnects (shutdown, stream age).

    ``resume_revision`` is where the client should resume.
    """

    def __init__(self, message: str, resume_revision: int) -> None:
        super().__init__(message)
        self.resume_revision = resume_revision


class DeadlineError(ConfigsvcError):
    """The caller's deadline ran out while waiting on a backend."""


class UnauthenticatedError(ConfigsvcError):
    """The call carries no credential, or one that is invalid, expired or revoked."""


class PermissionDeniedError(ConfigsvcError):
    """The caller is known but may not do this: no role binding allows this call on this scope,
    or a narrower policy (for example reading secret plaintext) refuses it."""


class RateLimitedError(ResourceExhaustedError):
    """A per-identity or per-tenant limit is reached; ``retry_after`` says when to retry."""

    def __init__(self, message: str, retry_after: float, reason: str) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.reason = reason


class FlagParseError(ConfigsvcError):
    """A stored flag cannot be evaluated as written (flagd's PARSE_ERROR, gRPC DATA_LOSS)."""


class FlagEvaluationError(ConfigsvcError):
    """A flag's evaluation failed for another reason (flagd's GENERAL error, gRPC UNKNOWN)."""
