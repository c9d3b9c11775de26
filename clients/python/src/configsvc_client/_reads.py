"""The read and subscribe API both clients share: local, no RPC, safe from any thread."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, TypeVar, overload

from configsvc_client.cache import Cache
from configsvc_client.errors import ConfigTypeError, InvalidArgumentError, KeyNotWatchedError
from configsvc_client.keys import Key, KeyLike, KeyPrefix, Selector, parse_key, parse_prefix
from configsvc_client.model import Entry
from configsvc_client.subscriptions import Callback, Dispatcher, Subscription

__all__ = ["ConfigReader"]

_D = TypeVar("_D")


@functools.lru_cache(maxsize=4096)
def _parse_path(path: str) -> Key:
    # Hot read paths repeat the same few strings; parsing them once is enough.
    return parse_key(path)


def _key(path: KeyLike) -> Key:
    return _parse_path(path) if isinstance(path, str) else parse_key(path)


def _type_name(value: Any) -> str:
    names = {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        dict: "object",
        list: "array",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)


class ConfigReader:
    """Reads from the local cache. Absent keys give ``default``; keys outside
    every selector raise :class:`KeyNotWatchedError` (a typo'd path or a
    missing selector would otherwise silently read as "absent")."""

    _cache: Cache
    _selectors: tuple[Selector, ...]
    _dispatcher: Dispatcher

    def _watched(self, key: Key) -> Key:
        if not any(selector.matches(key) for selector in self._selectors):
            raise KeyNotWatchedError(f"{key} is not covered by the client's selectors")
        return key

    def entry(self, path: KeyLike) -> Entry | None:
        """The raw entry (JSON text, revision, version, ...), None if absent."""
        return self._cache.get(self._watched(_key(path)))

    def get(self, path: KeyLike, default: Any = None) -> Any:
        """The decoded JSON value of ``tenant/environment/service/key``, or ``default``.

        Objects come back as read-only dicts and arrays as tuples, shared by every
        reader (no copy, no parse per call); use :meth:`get_json` to mutate."""
        entry = self._cache.lookup(path)  # a hit needs no validation: it was watched
        if entry is not None:
            return entry.decode()
        entry = self.entry(path)
        return default if entry is None else entry.decode()

    def _typed(self, path: KeyLike, default: Any, accept: tuple[type, ...], what: str) -> Any:
        entry = self.entry(path)
        if entry is None:
            return default
        value = entry.decode()
        # bool is an int in Python, but JSON true is not a number.
        if isinstance(value, bool) and bool not in accept:
            raise ConfigTypeError(f"{entry.key}: expected {what}, got boolean")
        if not isinstance(value, accept):
            raise ConfigTypeError(f"{entry.key}: expected {what}, got {_type_name(value)}")
        return value

    @overload
    def get_int(self, path: KeyLike) -> int | None: ...
    @overload
    def get_int(self, path: KeyLike, default: _D) -> int | _D: ...
    def get_int(self, path: KeyLike, default: object = None) -> object:
        """A JSON integer (exact, any size); :class:`ConfigTypeError` for other types."""
        return self._typed(path, default, (int,), "an integer")

    @overload
    def get_float(self, path: KeyLike) -> float | None: ...
    @overload
    def get_float(self, path: KeyLike, default: _D) -> float | _D: ...
    def get_float(self, path: KeyLike, default: object = None) -> object:
        """A JSON number as a float (integers are accepted and converted)."""
        value = self._typed(path, _Absent, (int, float), "a number")
        return default if value is _Absent else float(value)

    @overload
    def get_str(self, path: KeyLike) -> str | None: ...
    @overload
    def get_str(self, path: KeyLike, default: _D) -> str | _D: ...
    def get_str(self, path: KeyLike, default: object = None) -> object:
        """A JSON string."""
        return self._typed(path, default, (str,), "a string")

    @overload
    def get_bool(self, path: KeyLike) -> bool | None: ...
    @overload
    def get_bool(self, path: KeyLike, default: _D) -> bool | _D: ...
    def get_bool(self, path: KeyLike, default: object = None) -> object:
        """A JSON boolean (``true``/``false`` only; no truthiness of other types)."""
        return self._typed(path, default, (bool,), "a boolean")

    @overload
    def get_json(self, path: KeyLike) -> dict[str, Any] | list[Any] | None: ...
    @overload
    def get_json(self, path: KeyLike, default: _D) -> dict[str, Any] | list[Any] | _D: ...
    def get_json(self, path: KeyLike, default: object = None) -> object:
        """A JSON object or array as a fresh, mutable copy (``get`` returns the shared,
        read-only one)."""
        entry = self.entry(path)
        if entry is None:
            return default
        self._typed(path, default, (dict, tuple), "an object or array")
        return entry.decode_mutable()

    def entries(self, prefix: str | KeyPrefix | None = None) -> list[Entry]:
        """Cached entries in key order, all or those under ``tenant/env/service/prefix``."""
        matcher = None if prefix is None else parse_prefix(prefix)
        return sorted(
            (
                e
                for e in self._cache.entries().values()
                if matcher is None or matcher.matches(e.key)
            ),
            key=lambda e: e.key,
        )

    def _matcher(self, path_or_prefix: KeyLike | KeyPrefix, prefix: bool) -> Key | KeyPrefix:
        if prefix or isinstance(path_or_prefix, KeyPrefix):
            if isinstance(path_or_prefix, Key):
                raise TypeError("prefix=True needs a 'tenant/env/service/prefix' string")
            matcher = parse_prefix(path_or_prefix)
            if not any(selector.overlaps(matcher) for selector in self._selectors):
                raise KeyNotWatchedError(f"no selector covers keys under {matcher}")
            return matcher
        return self._watched(_key(path_or_prefix))

    def subscribe(
        self, path_or_prefix: KeyLike | KeyPrefix, callback: Callback, *, prefix: bool = False
    ) -> Subscription:
        """Call ``callback(change)`` for every change of a key (or of keys under a prefix).

        The callback runs on the client's event loop after the cache shows the
        change; it may be a coroutine function (awaited before the next
        change is delivered). Exceptions are logged and counted, never fatal.
        """
        return self._dispatcher.subscribe(self._matcher(path_or_prefix, prefix), callback)


class _AbsentType:
    pass


_Absent: Any = _AbsentType()


def selectors_tuple(selectors: Sequence[Selector]) -> tuple[Selector, ...]:
    """Validated selectors: 1 to 100, as the contract allows."""
    result = tuple(selectors)
    if not result:
        raise InvalidArgumentError.single("selectors", "at least one selector is needed")
    if len(result) > 100:
        raise InvalidArgumentError.single("selectors", f"at most 100, got {len(result)}")
    for selector in result:
        if not isinstance(selector, Selector):
            raise TypeError(f"selectors must be Selector objects, got {type(selector)!r}")
    return result
