"""The JSON forms of secrets inside config values, and walking values for them.

Two reserved single-member objects may appear anywhere in a value (as the
whole value, as an object member or as an array element):

``{"$secret": {"mount": "secret", "path": "db/prod", "field": "password"}}``
    A reference to one field of a Vault KV v2 secret; ``"version": N`` pins a
    version, without it the reference follows the newest version (and
    rotations reach watchers). ``mount`` and ``path`` are Vault path segments
    joined by ``/`` (no empty, ``.`` or ``..`` segments); ``field`` is any
    non-empty name.

``{"$encrypted": {"key": "configsvc", "ciphertext": "vault:v1:..."}}``
    Vault transit ciphertext of an inline value that a key's JSON Schema marks
    ``"x-sensitive": true``; the server writes it, clients never need to.

An object that has a ``$secret`` or ``$encrypted`` member must be exactly
one of these forms: anything else is INVALID_ARGUMENT with the JSON pointer,
so a typo can never be stored as plain data and later served as if it were
a value. Other ``$`` members stay ordinary data (the resolve engine's rule).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from configsvc.errors import InvalidArgumentError
from configsvc.resolve.jsonvalue import JsonValue, escape_pointer_token
from configsvc.v1 import secrets_pb2

SECRET = "$secret"
ENCRYPTED = "$encrypted"
_REF_MEMBERS = frozenset({"mount", "path", "field", "version"})
_SEGMENT = re.compile(r"[A-Za-z0-9_.@=+-]{1,128}")
_PATH_MAX = 512
_FIELD_MAX = 256
_TRANSIT_KEY = re.compile(r"[A-Za-z0-9_-]{1,128}")


@dataclass(frozen=True)
class SecretRef:
    """One field of a Vault KV v2 secret; ``version`` None follows the newest."""

    mount: str
    path: str
    field: str
    version: int | None = None

    @property
    def secret(self) -> tuple[str, str]:
        """(mount, path): what Vault versions, and what rotation polls."""
        return (self.mount, self.path)

    def __str__(self) -> str:
        """The form used in audit records, logs and messages: never a value."""
        pinned = "" if self.version is None else f"@v{self.version}"
        return f"{self.mount}/{self.path}#{self.field}{pinned}"

    def message(self) -> secrets_pb2.SecretRef:
        ref = secrets_pb2.SecretRef(mount=self.mount, path=self.path, field=self.field)
        if self.version is not None:
            ref.version = self.version
        return ref


@dataclass(frozen=True)
class Ciphertext:
    """A transit ciphertext and the transit key that made it."""

    key: str
    ciphertext: str

    def form(self) -> dict[str, JsonValue]:
        return {ENCRYPTED: {"key": self.key, "ciphertext": self.ciphertext}}


def _vault_path(field: str, value: object, pointer: str, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise _bad(pointer, f'"{what}" must be a non-empty string')
    if len(value) > _PATH_MAX:
        raise _bad(pointer, f'"{what}" is longer than {_PATH_MAX} characters')
    for segment in value.split("/"):
        if segment in ("", ".", "..") or not _SEGMENT.fullmatch(segment):
            raise _bad(
                pointer,
                f'"{what}" {value!r} has an invalid segment {segment!r}: use '
                "1-128 of A-Z a-z 0-9 _ . @ = + - separated by single '/'",
            )
    return value


def _bad(pointer: str, reason: str) -> InvalidArgumentError:
    return InvalidArgumentError.single("value", f"at {pointer or '/'}: {reason}")


def parse_ref(body: object, pointer: str) -> SecretRef:
    """The SecretRef in the body of a ``$secret`` member (INVALID_ARGUMENT otherwise)."""
    example = '{"$secret": {"mount": "secret", "path": "db/prod", "field": "password"}}'
    if not isinstance(body, Mapping):
        raise _bad(pointer, f"a secret reference is an object: {example}")
    unknown = sorted(set(body) - _REF_MEMBERS)
    if unknown:
        raise _bad(
            pointer,
            f"unknown member {unknown[0]!r} in a secret reference; the "
            "members are mount, path, field and optional version",
        )
    mount = _vault_path("mount", body.get("mount"), pointer, "mount")
    path = _vault_path("path", body.get("path"), pointer, "path")
    field = body.get("field")
    if not isinstance(field, str) or not field or len(field) > _FIELD_MAX:
        raise _bad(pointer, f'"field" must be a string of 1 to {_FIELD_MAX} characters')
    version = body.get("version")
    if version is not None and (
        isinstance(version, bool) or not isinstance(version, int) or version < 1
    ):
        raise _bad(
            pointer,
            '"version" must be an integer of 1 or more (omit it to follow the newest version)',
        )
    return SecretRef(mount, path, field, version)


def parse_ciphertext(body: object, pointer: str) -> Ciphertext:
    if (
        not isinstance(body, Mapping)
        or set(body) != {"key", "ciphertext"}
        or not isinstance(body["key"], str)
        or not _TRANSIT_KEY.fullmatch(body["key"])
        or not isinstance(body["ciphertext"], str)
        or not body["ciphertext"].startswith("vault:v")
    ):
        raise _bad(
            pointer,
            'an encrypted value is {"$encrypted": {"key": "<transit key>", '
            '"ciphertext": "vault:vN:..."}} as written by the server',
        )
    return Ciphertext(body["key"], body["ciphertext"])


def _special(value: Mapping[str, Any], pointer: str) -> SecretRef | Ciphertext | None:
    """The reference or ciphertext ``value`` is, None for plain data."""
    marker = SECRET if SECRET in value else ENCRYPTED if ENCRYPTED in value else None
    if marker is None:
        return None
    if len(value) != 1:
        raise _bad(pointer, f'an object with a "{marker}" member must have no other members')
    if marker == SECRET:
        return parse_ref(value[SECRET], pointer + "/" + escape_pointer_token(SECRET))
    return parse_ciphertext(value[ENCRYPTED], pointer + "/" + escape_pointer_token(ENCRYPTED))


def walk(value: JsonValue, pointer: str = "") -> Iterator[tuple[str, SecretRef | Ciphertext]]:
    """Every reference and ciphertext in ``value`` with its JSON pointer, in document order.

    Raises INVALID_ARGUMENT for a malformed reserved form.
    """
    if isinstance(value, Mapping):
        special = _special(value, pointer)
        if special is not None:
            yield pointer, special
            return
        for name, child in value.items():
            yield from walk(child, f"{pointer}/{escape_pointer_token(name)}")
    elif isinstance(value, list | tuple):
        for index, child in enumerate(value):
            yield from walk(child, f"{pointer}/{index}")


def refs_in(value: JsonValue) -> list[SecretRef]:
    """The distinct secret references in ``value``, sorted."""
    return sorted({found for _, found in walk(value) if isinstance(found, SecretRef)}, key=str)


Replacer = Callable[[SecretRef | Ciphertext, JsonValue], JsonValue]


def substitute(value: JsonValue, replace: Replacer) -> JsonValue:
    """A copy of ``value`` with every reference and ciphertext replaced by
    ``replace(it, its JSON form)`` (return the form to keep it)."""
    if isinstance(value, Mapping):
        special = _special(value, "")
        if special is not None:
            return replace(special, value)
        return {name: substitute(child, replace) for name, child in value.items()}
    if isinstance(value, list | tuple):
        return [substitute(child, replace) for child in value]
    return value


def might_hold_secrets(text: str) -> bool:
    """Cheap pre-check on JSON text: False means it certainly holds no reserved form.

    ``\\u`` counts because a member name may be written with escapes.
    """
    return SECRET in text or ENCRYPTED in text or "\\u" in text


def ref_from_message(message: secrets_pb2.SecretRef) -> SecretRef:
    body: dict[str, object] = {"mount": message.mount, "path": message.path, "field": message.field}
    if message.HasField("version"):
        body["version"] = message.version
    return parse_ref(body, "")
