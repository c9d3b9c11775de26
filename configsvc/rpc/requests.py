"""Validation of request messages shared by the servicers.

Every servicer method starts by turning its request into validated values
through these helpers, so a bad field is rejected with its name and limit
before anything touches etcd, and every RPC answers an empty request with
INVALID_ARGUMENT rather than UNKNOWN.
"""

from __future__ import annotations

import re
from typing import Any

from configsvc.errors import FieldViolation, InvalidArgumentError
from configsvc.model.keys import ConfigKey, key_violation, segment_violation
from configsvc.rpc import principal
from configsvc.rpc.context import CallContext
from configsvc.v1 import config_pb2

ACTOR_HEADER = "x-configsvc-actor"
ANONYMOUS = "anonymous"
_ACTOR_MAX = 256


def config_key(request: Any, field: str = "key") -> ConfigKey:
    """The validated ConfigKey in ``request.<field>``."""
    if not request.HasField(field):
        raise InvalidArgumentError.single(field, "is required")
    message = getattr(request, field)
    return ConfigKey.parse(
        message.tenant, message.environment, message.service, message.key, field=field
    )


def config_key_at(message: config_pb2.ConfigKey, field: str) -> ConfigKey:
    return ConfigKey.parse(
        message.tenant, message.environment, message.service, message.key, field=field
    )


def optional_segment(field: str, value: str) -> str | None:
    """An optional tenant/environment/service filter: None when empty."""
    if not value:
        return None
    violation = segment_violation(field, value)
    if violation:
        raise InvalidArgumentError([violation])
    return value


def optional_key_prefix(field: str, value: str) -> str:
    if value:
        violation = key_violation(field, value)
        if violation:
            raise InvalidArgumentError([violation])
    return value


def page_size(request: Any, *, default: int, maximum: int, field: str = "page_size") -> int:
    """The page size: ``default`` when unset; an explicit value must be 1..maximum."""
    if not request.HasField(field):
        return default
    size = int(getattr(request, field))
    if not 1 <= size <= maximum:
        raise InvalidArgumentError.single(field, f"is {size}; it must be between 1 and {maximum}")
    return size


def expected_revision(request: Any, field: str = "expected_revision") -> int | None:
    if not request.HasField(field):
        return None
    value = int(getattr(request, field))
    if value < 0:
        raise InvalidArgumentError.single(field, f"is {value}; revisions are 0 or positive")
    return value


#: The range google.protobuf.Timestamp allows: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
TIMESTAMP_MIN_SECONDS = -62_135_596_800
TIMESTAMP_MAX_SECONDS = 253_402_300_799
#: The range google.protobuf.Duration allows: about +-10,000 years.
DURATION_MAX_SECONDS = 315_576_000_000
_NANOS_MAX = 999_999_999


def timestamp_ns(message: Any, field: str, *, path: str | None = None) -> int | None:
    """``message.<field>`` (a Timestamp) in nanoseconds since 1970; None when unset.

    The one check of timestamps in requests: outside the proto's range (before year 1,
    after 9999) or with nanos outside 0..999,999,999, protobuf's own conversions raise a
    bare ValueError. ``path`` is the field's name in the message a caller sees, when
    ``message`` is nested (``filter.start_time``).
    """
    if not message.HasField(field):
        return None
    value = getattr(message, field)
    name = path or field
    if not TIMESTAMP_MIN_SECONDS <= value.seconds <= TIMESTAMP_MAX_SECONDS:
        raise InvalidArgumentError.single(
            name,
            f"has seconds {value.seconds}; a timestamp must lie between "
            "0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z",
        )
    if not 0 <= value.nanos <= _NANOS_MAX:
        raise InvalidArgumentError.single(
            name, f"has nanos {value.nanos}; they must be 0 to {_NANOS_MAX}"
        )
    return int(value.seconds) * 1_000_000_000 + int(value.nanos)


def duration_seconds(
    message: Any, field: str, *, minimum: float, maximum: float, path: str | None = None
) -> float | None:
    """``message.<field>`` (a Duration) in seconds, checked to lie in minimum..maximum;
    None when unset. Also refuses what the proto itself does not allow (nanos outside
    +-999,999,999 or of the other sign than seconds), so no conversion downstream can
    overflow or raise."""
    if not message.HasField(field):
        return None
    value = getattr(message, field)
    name = path or field
    seconds, nanos = int(value.seconds), int(value.nanos)
    if (
        abs(seconds) > DURATION_MAX_SECONDS
        or abs(nanos) > _NANOS_MAX
        or (seconds > 0 and nanos < 0)
        or (seconds < 0 and nanos > 0)
    ):
        raise InvalidArgumentError.single(
            name,
            f"is not a valid Duration (seconds {seconds}, nanos {nanos}): seconds "
            f"must be within +-{DURATION_MAX_SECONDS}, nanos within +-{_NANOS_MAX} "
            "and of the same sign",
        )
    total = seconds + nanos / 1e9
    if not minimum <= total <= maximum:
        raise InvalidArgumentError.single(
            name, f"is {total:g}s; it must be between {minimum:g}s and {maximum:g}s"
        )
    return total


def positive(field: str, value: int) -> int:
    if value <= 0:
        raise InvalidArgumentError.single(field, f"is {value}; it must be 1 or more")
    return value


def consistency(value: int) -> int:
    if value not in config_pb2.ReadConsistency.values():
        raise InvalidArgumentError.single("consistency", f"{value} is not a ReadConsistency value")
    return value


def actor(context: CallContext) -> str:
    """Who is calling: the authenticated identity; the advisory header only when auth is off."""
    caller = principal.current()
    if caller is not None:
        return caller.principal.name
    for key, value in context.invocation_metadata() or ():
        if key == ACTOR_HEADER and isinstance(value, str):
            if len(value) > _ACTOR_MAX or not value.isprintable() or not value.strip():
                raise InvalidArgumentError(
                    [
                        FieldViolation(
                            f"metadata[{ACTOR_HEADER}]",
                            f"must be 1 to {_ACTOR_MAX} printable characters",
                        )
                    ]
                )
            return value
    return ANONYMOUS


def time_left(context: CallContext, default: float) -> float:
    """Seconds this call may still spend: the caller's deadline, capped by ``default``."""
    remaining = context.time_remaining()
    if remaining is None:
        return default
    return max(0.01, min(default, float(remaining) - 0.05))


TRACEPARENT_HEADER = "traceparent"
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")


def trace_id(context: CallContext) -> str:
    """The W3C trace id of the call's ``traceparent`` header; empty if absent or malformed.

    Malformed trace context is ignored rather than rejected, as the W3C spec
    asks of receivers: tracing must never make a request fail.
    """
    for key, value in context.invocation_metadata() or ():
        if key == TRACEPARENT_HEADER and isinstance(value, str):
            match = _TRACEPARENT.fullmatch(value.strip())
            if match and match.group(1) != "0" * 32:
                return match.group(1)
    return ""
