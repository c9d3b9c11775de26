"""JSON values for resolution: strict parsing, exact numbers, canonical text.

Numbers keep their exact value: integers parse to Python ``int`` (any size)
and every other number to ``decimal.Decimal``, which keeps trailing zeros, so
``1.10`` stays ``1.10`` and ``9223372036854775807`` stays exact. The canonical
text is what ``json.dumps(value, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`` writes, extended to ``Decimal`` (written as
``str(decimal)``: the same digits, an exponent spelt ``1E+5``) and with
unpaired surrogates escaped as ``\\udXXX`` so the text is always valid UTF-8.

Values are compared by their canonical text, never with ``==``: in Python
``True == 1``, ``1 == 1.0`` and ``Decimal("1.10") == Decimal("1.1")``, but as
configuration these are different values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TypeAlias

from configsvc.errors import InvalidArgumentError

#: A parsed JSON value. Objects are ``dict`` and arrays ``list`` at run time;
#: they are typed read-only because resolved documents are shared (cached).
JsonValue: TypeAlias = (
    "bool | int | Decimal | str | Sequence[JsonValue] | Mapping[str, JsonValue] | None"
)

#: The tombstone marker member: ``{"$unset": true}`` removes an inherited value.
UNSET = "$unset"
#: Member names starting with this are reserved (only the tombstone may use it).
RESERVED_PREFIX = "$"
#: Deepest nesting of arrays and objects accepted in one value.
MAX_VALUE_DEPTH = 128

_TOMBSTONE_RULE = 'a tombstone must be exactly {"$unset": true}'
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def escape_pointer_token(name: str) -> str:
    """One RFC 6901 reference token: ``~`` becomes ``~0`` and ``/`` becomes ``~1``."""
    return name.replace("~", "~0").replace("/", "~1")


def is_tombstone(value: object) -> bool:
    """True for exactly ``{"$unset": true}`` (the JSON ``true``, not ``1``)."""
    return isinstance(value, dict) and len(value) == 1 and value.get(UNSET) is True


class _RuleError(Exception):
    """A rule broken at ``pointer``; turned into InvalidArgumentError by parse_value."""

    def __init__(self, pointer: str, reason: str) -> None:
        super().__init__(reason)
        self.pointer = pointer
        self.reason = reason


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def _check(value: object, pointer: str, depth: int, in_array: bool) -> None:
    """Enforce the tombstone form ("$unset" is the one reserved member) and the depth limit."""
    if isinstance(value, dict):
        if depth >= MAX_VALUE_DEPTH:
            raise _RuleError(pointer, f"is nested deeper than {MAX_VALUE_DEPTH} levels")
        if is_tombstone(value):
            if in_array:
                raise _RuleError(
                    pointer,
                    "a tombstone cannot be inside an array: arrays replace as a whole, "
                    "so there is nothing for it to remove",
                )
            return
        if UNSET in value:
            raise _RuleError(pointer, f"invalid tombstone: {_TOMBSTONE_RULE}")
        for name, child in value.items():
            # Only "$unset" is reserved: other "$" members ("$schema", "$ref", JSON
            # Logic...) are ordinary data that configuration values legitimately hold.
            _check(child, f"{pointer}/{escape_pointer_token(name)}", depth + 1, in_array)
    elif isinstance(value, list):
        if depth >= MAX_VALUE_DEPTH:
            raise _RuleError(pointer, f"is nested deeper than {MAX_VALUE_DEPTH} levels")
        for index, child in enumerate(value):
            _check(child, f"{pointer}/{index}", depth + 1, True)


def parse_value(
    value_json: str, *, key: str | None = None, field: str = "value", origin: str = ""
) -> JsonValue:
    """Parse and check one layer value; raise INVALID_ARGUMENT naming the JSON pointer.

    ``key`` is the config key the value is stored under: pointers in errors
    then start with ``/key`` as in the resolved document, and a key name
    starting with '$' is rejected too. ``origin`` (for example the source key
    and layer) is put in front of the description.
    """
    prefix = f"{origin} " if origin else ""
    _check_key(key, field, prefix)
    try:
        value: JsonValue = json.loads(
            value_json, parse_float=Decimal, parse_constant=_reject_constant
        )
    except RecursionError:
        raise InvalidArgumentError.single(
            field, f"{prefix}is nested deeper than {MAX_VALUE_DEPTH} levels"
        ) from None
    except ValueError as exc:
        raise InvalidArgumentError.single(field, f"{prefix}is not valid JSON: {exc}") from None
    check_value(value, key=key, field=field, origin=origin)
    return value


def _check_key(key: str | None, field: str, prefix: str) -> None:
    if key is not None and key.startswith(RESERVED_PREFIX):
        raise InvalidArgumentError.single(
            field,
            f"{prefix}at /{escape_pointer_token(key)}: key names starting with "
            f"'{RESERVED_PREFIX}' are reserved",
        )


def check_value(
    value: JsonValue, *, key: str | None = None, field: str = "value", origin: str = ""
) -> None:
    """``parse_value``'s checks for a value parsed already (as ``parse_value`` parses)."""
    prefix = f"{origin} " if origin else ""
    _check_key(key, field, prefix)
    root = "" if key is None else "/" + escape_pointer_token(key)
    try:
        _check(value, root, 0, False)
    except _RuleError as problem:
        where = problem.pointer or "/"
        raise InvalidArgumentError.single(field, f"{prefix}at {where}: {problem.reason}") from None


def _string(text: str) -> str:
    encoded = json.dumps(text, ensure_ascii=False)
    if _LONE_SURROGATE.search(encoded):
        encoded = _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", encoded)
    return encoded


def _emit(value: object, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a JSON number")
        out.append(str(value))
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _emit(item, out)
        out.append("]")
    elif isinstance(value, Mapping):
        out.append("{")
        for index, name in enumerate(sorted(value)):
            if not isinstance(name, str):
                raise TypeError(f"object member names must be str, not {type(name).__name__}")
            if index:
                out.append(",")
            out.append(_string(name))
            out.append(":")
            _emit(value[name], out)
        out.append("}")
    else:
        raise TypeError(f"{type(value).__name__} is not a JSON value (floats are not exact)")


def canonical_json(value: object) -> str:
    """The canonical text of a JSON value: sorted members, no spaces, exact numbers."""
    out: list[str] = []
    _emit(value, out)
    return "".join(out)


def sorted_copy(value: JsonValue) -> JsonValue:
    """A deep copy whose objects (also inside arrays) iterate in member-name order."""
    if isinstance(value, Mapping):
        return {name: sorted_copy(value[name]) for name in sorted(value)}
    if isinstance(value, list | tuple):
        return [sorted_copy(item) for item in value]
    return value
