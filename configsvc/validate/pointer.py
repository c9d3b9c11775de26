"""JSON Pointers (RFC 6901): how violations and sensitive fields name a place in a value.

A pointer is ``""`` for the whole value or ``/a/b/0`` for member ``b`` of
member ``a``, first array item. ``~`` and ``/`` inside a member name are
written ``~0`` and ``~1``, so every member name, even one holding dots or
slashes, has exactly one pointer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from configsvc.resolve.jsonvalue import escape_pointer_token

#: What a pointer lookup returns when nothing is there (distinct from JSON null).
MISSING = object()

_INDEX_RE = re.compile(r"0|[1-9][0-9]*")
_BAD_ESCAPE_RE = re.compile(r"~(?![01])")

#: One reference token, escaped for a pointer (the resolve engine's own escaping).
escape = escape_pointer_token


def unescape(token: str) -> str:
    """Undo ``escape``: ``~1`` first, then ``~0`` (RFC 6901 section 4)."""
    return token.replace("~1", "/").replace("~0", "~")


def to_pointer(path: Iterable[str | int]) -> str:
    """The pointer of a path of member names and array indexes."""
    return "".join(f"/{escape(str(part))}" for part in path)


def pointer_violation(pointer: str) -> str | None:
    """Why ``pointer`` is not a JSON Pointer, or None."""
    if pointer and not pointer.startswith("/"):
        return f"{pointer!r} is not a JSON Pointer: it must be empty or start with '/'"
    if _BAD_ESCAPE_RE.search(pointer):
        return f"{pointer!r} is not a JSON Pointer: '~' must be followed by '0' or '1'"
    return None


def parse(pointer: str) -> list[str]:
    """The unescaped reference tokens of ``pointer``; ValueError if it is malformed."""
    problem = pointer_violation(pointer)
    if problem:
        raise ValueError(problem)
    if not pointer:
        return []
    return [unescape(token) for token in pointer[1:].split("/")]


def resolve(document: object, pointer: str) -> object:
    """The value ``pointer`` names inside ``document``, or ``MISSING``."""
    current = document
    for token in parse(pointer):
        if isinstance(current, Mapping):
            if token not in current:
                return MISSING
            current = current[token]
        elif isinstance(current, Sequence) and not isinstance(current, str | bytes):
            if not _INDEX_RE.fullmatch(token) or int(token) >= len(current):
                return MISSING
            current = current[int(token)]
        else:
            return MISSING
    return current


def sort_key(path: Sequence[str | int]) -> tuple[tuple[int, int, str], ...]:
    """Order paths the way a person reads them: array indexes numerically."""
    return tuple((0, part, "") if isinstance(part, int) else (1, 0, part) for part in path)


def is_within(pointer: str, ancestor: str) -> bool:
    """True if ``pointer`` is ``ancestor`` or lies below it."""
    return pointer == ancestor or pointer.startswith(ancestor + "/")
