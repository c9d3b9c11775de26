"""Addresses: keys, key prefixes and the selectors a client watches.

Paths are written ``tenant/environment/service/key`` everywhere in the public
API because that is how people (and the ``configsvc`` CLI) name entries. Only
the structure is checked here (four non-empty segments, no ``/`` in a key);
the full grammar belongs to the server, which rejects bad names with
INVALID_ARGUMENT, so the two can never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from configsvc_client.errors import InvalidArgumentError

__all__ = ["Key", "KeyLike", "KeyPrefix", "Selector", "parse_key", "parse_prefix"]


@dataclass(frozen=True, order=True, slots=True)
class Key:
    """One entry's address. Ordered like the server lists entries."""

    tenant: str
    environment: str
    service: str
    key: str

    @property
    def path(self) -> str:
        """``tenant/environment/service/key``."""
        return f"{self.tenant}/{self.environment}/{self.service}/{self.key}"

    def __str__(self) -> str:
        return self.path


KeyLike = Key | str
"""A :class:`Key` or its ``tenant/environment/service/key`` path."""


def _split(path: str, *, allow_empty_key: bool) -> tuple[str, str, str, str]:
    parts = path.split("/")
    if len(parts) != 4:
        raise InvalidArgumentError.single(
            "path", f"{path!r} is not tenant/environment/service/key (4 segments)"
        )
    tenant, environment, service, key = parts
    if not (tenant and environment and service) or not (key or allow_empty_key):
        raise InvalidArgumentError.single("path", f"{path!r} has an empty segment")
    return tenant, environment, service, key


def parse_key(path: KeyLike) -> Key:
    """The :class:`Key` for a path (a ``Key`` is returned unchanged)."""
    if isinstance(path, Key):
        return path
    if not isinstance(path, str):
        raise InvalidArgumentError.single("path", f"expected a str or Key, got {type(path)!r}")
    return Key(*_split(path, allow_empty_key=False))


@dataclass(frozen=True, slots=True)
class KeyPrefix:
    """All keys of one (tenant, environment, service) scope that start with ``prefix``."""

    tenant: str
    environment: str
    service: str
    prefix: str = ""

    def matches(self, key: Key) -> bool:
        return (
            key.tenant == self.tenant
            and key.environment == self.environment
            and key.service == self.service
            and key.key.startswith(self.prefix)
        )

    def __str__(self) -> str:
        return f"{self.tenant}/{self.environment}/{self.service}/{self.prefix}"


def parse_prefix(path: str | KeyPrefix) -> KeyPrefix:
    """``tenant/environment/service/prefix``; the prefix may be empty (the whole scope)."""
    if isinstance(path, KeyPrefix):
        return path
    return KeyPrefix(*_split(path, allow_empty_key=True))


def _strings(name: str, values: Iterable[str]) -> tuple[str, ...]:
    if isinstance(values, str):
        raise InvalidArgumentError.single(name, "expected a list of strings, got one string")
    return tuple(values)


@dataclass(frozen=True, slots=True)
class Selector:
    """What one client watches within a tenant (``configsvc.v1.WatchSelector``).

    Empty ``environment``/``service`` mean every environment/service; empty
    ``keys`` and ``key_prefixes`` together mean every key of the scope. The
    same rules are applied locally, so a read of a key no selector covers is
    an error instead of a silent default.
    """

    tenant: str
    environment: str = ""
    service: str = ""
    key_prefixes: tuple[str, ...] = field(default=())
    keys: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        # Accept lists for convenience; store tuples so selectors stay hashable.
        object.__setattr__(self, "key_prefixes", _strings("key_prefixes", self.key_prefixes))
        object.__setattr__(self, "keys", _strings("keys", self.keys))
        if not self.tenant:
            raise InvalidArgumentError.single("selectors.tenant", "a selector needs a tenant")
        if self.keys and not (self.environment and self.service):
            raise InvalidArgumentError.single(
                "selectors.keys", "exact keys need both environment and service"
            )

    def _scope_matches(self, tenant: str, environment: str, service: str) -> bool:
        return (
            tenant == self.tenant
            and (not self.environment or environment == self.environment)
            and (not self.service or service == self.service)
        )

    def matches(self, key: Key) -> bool:
        """Whether the server sends this key on a stream with this selector."""
        if not self._scope_matches(key.tenant, key.environment, key.service):
            return False
        if not self.keys and not self.key_prefixes:
            return True
        return key.key in self.keys or any(key.key.startswith(p) for p in self.key_prefixes)

    def overlaps(self, prefix: KeyPrefix) -> bool:
        """Whether some key under ``prefix`` could match this selector."""
        if not self._scope_matches(prefix.tenant, prefix.environment, prefix.service):
            return False
        if not self.keys and not self.key_prefixes:
            return True
        return any(k.startswith(prefix.prefix) for k in self.keys) or any(
            p.startswith(prefix.prefix) or prefix.prefix.startswith(p) for p in self.key_prefixes
        )
