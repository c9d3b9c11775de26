"""What a storable value is: bounded JSON text, kept byte for byte.

Values are stored exactly as written rather than re-encoded, because Python's
float round trip and key ordering would otherwise change what a client wrote
(``1.10`` becoming ``1.1``), and 64-bit integers must survive unchanged for
clients in languages whose JSON parsers are stricter than ours.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

from configsvc.errors import InvalidArgumentError

VALUE_MAX_BYTES = 512 * 1024
REASON_MAX_CHARS = 1024


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def validate_json_value(value: str, *, field: str = "value") -> bytes:
    """Return the UTF-8 bytes of ``value`` after checking it is bounded, valid JSON."""
    parse_json_value(value, field=field)
    return value.encode("utf-8")


def parse_json_value(value: str, *, field: str = "value") -> Any:
    """``validate_json_value``, returning the parsed value instead of the bytes.

    Numbers parse as ``configsvc.resolve.parse_value`` parses them (``int``,
    ``Decimal``), so a write that needs the value parsed checks and parses
    its text once.
    """
    data = value.encode("utf-8")
    if len(data) > VALUE_MAX_BYTES:
        raise InvalidArgumentError.single(
            field, f"is {len(data)} bytes; the limit is {VALUE_MAX_BYTES} bytes (512 KiB)"
        )
    if not value.strip():
        raise InvalidArgumentError.single(field, "is required: a JSON text such as 42 or {}")
    try:
        return json.loads(value, parse_float=Decimal, parse_constant=_reject_constant)
    except ValueError as exc:
        raise InvalidArgumentError.single(field, f"is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidArgumentError.single(field, "is nested too deeply") from None


def validate_reason(reason: str, *, field: str = "reason") -> str:
    """Bound the free-text reason so audit records stay small."""
    if len(reason) > REASON_MAX_CHARS:
        raise InvalidArgumentError.single(
            field, f"is {len(reason)} characters; the limit is {REASON_MAX_CHARS}"
        )
    if any(ord(c) < 0x20 and c not in "\t" for c in reason):
        raise InvalidArgumentError.single(field, "must not contain control characters")
    return reason


def digest(data: bytes) -> str:
    """Hex SHA-256, the digest used in entries, history and audit records."""
    return hashlib.sha256(data).hexdigest()
