"""Opaque page tokens that cannot be used to read outside the request's scope.

A token carries the position (the last item returned) and a fingerprint of the
request parameters it was issued for. Tokens are not secret: a forged but
well-formed token can only move the position within the same tenant scope,
which the caller could reach anyway. Anything else (bad base64, bad JSON, a
token from another request, an oversized token) is INVALID_ARGUMENT.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json

from configsvc.errors import InvalidArgumentError

_VERSION = 1
_TOKEN_MAX = 2048


def _fingerprint(kind: str, scope: tuple[str, ...]) -> str:
    return hashlib.sha256("\0".join((kind, *scope)).encode()).hexdigest()[:24]


def encode(kind: str, scope: tuple[str, ...], position: str) -> str:
    body = json.dumps(
        {"v": _VERSION, "f": _fingerprint(kind, scope), "p": position}, separators=(",", ":")
    )
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def decode(token: str, kind: str, scope: tuple[str, ...], field: str = "page_token") -> str | None:
    """The position in ``token``; None for an empty token (the first page)."""
    if not token:
        return None
    if len(token) > _TOKEN_MAX:
        raise InvalidArgumentError.single(field, f"is longer than {_TOKEN_MAX} characters")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = json.loads(raw)
        valid = (
            isinstance(body, dict)
            and body.get("v") == _VERSION
            and body.get("f") == _fingerprint(kind, scope)
            and isinstance(body.get("p"), str)
        )
    except (binascii.Error, ValueError, RecursionError):  # RecursionError: [[[[... forged
        valid = False
    if not valid:
        raise InvalidArgumentError.single(
            field,
            "is not a token this server issued for this request; pass the next_page_token "
            "of the previous page with the same filters, or empty for the first page",
        )
    position: str = body["p"]
    return position
