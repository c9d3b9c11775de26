"""What a storable value is: bounded JSON text, kept byte for byte.

Values are stored exactly as written rather than re-encoded, because Python's
float round trip and key ordering would otherwise change what a client wrote
(``1.10`` becoming ``1.1``), and 64-bit integers must survive unchanged for
clients in languages whose JSON parsers are stricter than ours.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from configsvc.errors import InvalidArgumentError

VALUE_MAX_BYTES = 512 * 1024
REASON_MAX_CHARS = 1024


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


#: Deepest nesting of arrays and objects accepted in any JSON a request carries (values,
#: flag sets, evaluation contexts, HTTP bodies). The same figure as resolution's
#: ``MAX_VALUE_DEPTH``: deep enough for any real document, far below the recursion
#: limits of the parser, JSON Schema and JSON Logic evaluators that walk the tree.
MAX_JSON_DEPTH = 128
#: Most digits an integer literal may have. Python refuses to convert more than 4,300
#: (CVE-2020-10735) with a ValueError deep in whatever parses it; checked up front it
#: is a clear INVALID_ARGUMENT.
MAX_INT_DIGITS = 4300

# A JSON string (escapes included) or one bracket: what nesting depth is counted over.
_DEPTH_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def json_depth(text: str, limit: int = MAX_JSON_DEPTH) -> int:
    """How deeply ``text`` nests arrays and objects, counted without parsing it, and
    stopping once past ``limit``: the parser itself recurses per level (a RecursionError
    at about 1,000), so depth must be known before it runs. Linear in the text."""
    depth = deepest = 0
    for match in _DEPTH_TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif token in "]}":
            depth -= 1
    return deepest


def _bounded_int(literal: str) -> int:
    if len(literal.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(
            f"an integer has {len(literal.lstrip('-'))} digits; at most {MAX_INT_DIGITS} "
            "are accepted"
        )
    return int(literal)


def _finite_float(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):
        raise ValueError(f"the number {literal[:40]} is outside the 64-bit float range")
    return number


def loads_bounded(
    text: str | bytes,
    *,
    field: str,
    max_depth: int = MAX_JSON_DEPTH,
    parse_float: Callable[[str], Any] = _finite_float,
) -> Any:
    """``json.loads`` for untrusted input: INVALID_ARGUMENT naming ``field`` for text that
    is not strict JSON (``NaN``, ``Infinity``), nests deeper than ``max_depth``, carries an
    integer of more than ``MAX_INT_DIGITS`` digits or a float that overflows; never a
    RecursionError or a bare ValueError. ``parse_float=Decimal`` keeps numbers exact."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidArgumentError.single(field, f"is not UTF-8 (byte {exc.start})") from None
    if json_depth(text, max_depth) > max_depth:
        raise InvalidArgumentError.single(
            field, f"is nested too deeply: more than {max_depth} levels of arrays and objects"
        )
    try:
        return json.loads(
            text, parse_float=parse_float, parse_int=_bounded_int, parse_constant=_reject_constant
        )
    except RecursionError:  # pragma: no cover - json_depth bounds the parser first
        raise InvalidArgumentError.single(field, "is nested too deeply") from None
    except ValueError as exc:
        raise InvalidArgumentError.single(field, f"is not valid JSON: {exc}") from None


def check_tree(value: object, *, field: str, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Check already-decoded JSON-like data (a ``google.protobuf.Struct`` turned into
    Python, a parsed body) the way ``loads_bounded`` checks text: nesting at most
    ``max_depth`` and every float finite (a Struct's number_value may be NaN or
    Infinity, which JSON and every evaluator downstream reject). Iterative, so the
    check itself cannot overflow the stack."""
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            raise InvalidArgumentError.single(
                field, f"holds the number {node}; only finite numbers are accepted"
            )
        if isinstance(node, dict | list):
            if depth >= max_depth:
                raise InvalidArgumentError.single(
                    field,
                    f"is nested too deeply: more than {max_depth} levels of arrays and objects",
                )
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)


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
    return loads_bounded(value, field=field, parse_float=Decimal)


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
