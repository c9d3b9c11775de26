"""The address grammar of configuration entries, checked at every entry point.

One grammar for every segment means a name that passes here can be joined
into an etcd key with ``/`` and never escape its prefix: no segment can hold
``/``, ``..``, control characters, look-alike unicode or be empty. The checks
are deliberately an allow-list (ASCII letters, digits and a few separators)
rather than a deny-list, so encodings nobody thought of are rejected too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from configsvc.errors import FieldViolation, InvalidArgumentError

#: Marker for "every environment" / "every service" (global and wide values).
ALL = "all"

SEGMENT_MAX = 63
KEY_MAX = 256

_SEGMENT_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_KEY_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,255}")

_SEGMENT_RULE = (
    f"must be 1 to {SEGMENT_MAX} characters of a-z, 0-9 and '-', starting and ending "
    "with a letter or digit"
)
_KEY_RULE = (
    f"must be 1 to {KEY_MAX} characters of A-Z, a-z, 0-9, '_', '-' and '.', starting "
    "with a letter, digit or '_', without '..'"
)


def _describe(value: str) -> str:
    """Quote a rejected value safely: bounded length, control characters escaped."""
    shown = value if len(value) <= 40 else value[:40] + "..."
    return ascii(shown)


def segment_violation(field: str, value: str) -> FieldViolation | None:
    """Why ``value`` is not a valid tenant/environment/service name, or None."""
    if not value:
        return FieldViolation(field, f"is required; {_SEGMENT_RULE}")
    if len(value) > SEGMENT_MAX:
        return FieldViolation(field, f"is {len(value)} characters long; the limit is {SEGMENT_MAX}")
    if not _SEGMENT_RE.fullmatch(value):
        return FieldViolation(field, f"{_describe(value)} is invalid: {_SEGMENT_RULE}")
    return None


def key_violation(field: str, value: str) -> FieldViolation | None:
    """Why ``value`` is not a valid key (or key prefix: same grammar), or None."""
    if not value:
        return FieldViolation(field, f"is required; {_KEY_RULE}")
    if len(value) > KEY_MAX:
        return FieldViolation(field, f"is {len(value)} characters long; the limit is {KEY_MAX}")
    if not _KEY_RE.fullmatch(value) or ".." in value:
        return FieldViolation(field, f"{_describe(value)} is invalid: {_KEY_RULE}")
    return None


def require_segment(field: str, value: str) -> str:
    """Return ``value`` if it is a valid segment, else raise INVALID_ARGUMENT."""
    violation = segment_violation(field, value)
    if violation:
        raise InvalidArgumentError([violation])
    return value


@dataclass(frozen=True, order=True)
class ConfigKey:
    """A validated address of one entry: only constructed through ``parse``."""

    tenant: str
    environment: str
    service: str
    key: str

    @classmethod
    def parse(
        cls, tenant: str, environment: str, service: str, key: str, *, field: str = "key"
    ) -> ConfigKey:
        """Validate all four parts at once so the caller learns every mistake."""
        violations = [
            v
            for v in (
                segment_violation(f"{field}.tenant", tenant),
                segment_violation(f"{field}.environment", environment),
                segment_violation(f"{field}.service", service),
                key_violation(f"{field}.key", key),
            )
            if v is not None
        ]
        if violations:
            raise InvalidArgumentError(violations)
        return cls(tenant, environment, service, key)

    def __str__(self) -> str:
        return f"{self.tenant}/{self.environment}/{self.service}/{self.key}"
