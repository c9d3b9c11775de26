"""Validation of request messages shared by the servicers.

Every servicer method starts by turning its request into validated values
through these helpers, so a bad field is rejected with its name and limit
before anything touches etcd, and every RPC answers an empty request with
INVALID_ARGUMENT rather than UNKNOWN.
"""

from __future__ import annotations

import re
from typing import Any

import grpc

from configsvc.auth import principal
from configsvc.errors import FieldViolation, InvalidArgumentError
from configsvc.model.keys import ConfigKey, key_violation, segment_violation
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


def positive(field: str, value: int) -> int:
    if value <= 0:
        raise InvalidArgumentError.single(field, f"is {value}; it must be 1 or more")
    return value


def consistency(value: int) -> int:
    if value not in config_pb2.ReadConsistency.values():
        raise InvalidArgumentError.single(
            "consistency", f"{value} is not a ReadConsistency value"
        )
    return value


def actor(context: grpc.aio.ServicerContext) -> str:
    """Who is calling: the authenticated identity; the advisory header only when auth is off."""
    caller = principal.current()
    if caller is not None:
        return caller.principal.name
    for key, value in context.invocation_metadata() or ():
        if key == ACTOR_HEADER and isinstance(value, str):
            if len(value) > _ACTOR_MAX or not value.isprintable() or not value.strip():
                raise InvalidArgumentError([FieldViolation(
                    f"metadata[{ACTOR_HEADER}]",
                    f"must be 1 to {_ACTOR_MAX} printable characters")])
            return value
    return ANONYMOUS


def time_left(context: grpc.aio.ServicerContext, default: float) -> float:
    """Seconds this call may still spend: the caller's deadline, capped by ``default``."""
    remaining = context.time_remaining()
    if remaining is None:
        return default
    return max(0.01, min(default, float(remaining) - 0.05))


TRACEPARENT_HEADER = "traceparent"
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")


def trace_id(context: grpc.aio.ServicerContext) -> str:
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
