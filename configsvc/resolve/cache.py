"""A bounded LRU of resolved documents keyed by (tenant, service, environment, revision)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from configsvc.resolve.merge import Resolved


@dataclass(frozen=True, order=True)
class CacheKey:
    """What a resolution depends on: the scope and the revision its inputs were read at."""

    tenant: str
    service: str
    environment: str
    revision: int


class ResolveCache:
    """Least-recently-used cache of Resolved documents, at most ``max_entries``.

    ``revision`` must identify the inputs: for example the store revision
    the layers and templates were read at, or the highest mod_revision of
    every entry the resolution reads. Results of one revision never change, so
    entries are never invalidated, only evicted. Pure and synchronous; not
    thread-safe (use it from one event loop). Cached documents are shared:
    callers must not modify them.
    """

    def __init__(self, max_entries: int = 1024) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, not {max_entries}")
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[CacheKey, Resolved] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, tenant: str, service: str, environment: str, revision: int) -> Resolved | None:
        """The cached result (now most recently used), or None; counts a hit or a miss."""
        key = CacheKey(tenant, service, environment, revision)
        resolved = self._entries.get(key)
        if resolved is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        return resolved

    def put(
        self, tenant: str, service: str, environment: str, revision: int, resolved: Resolved
    ) -> None:
        """Store a result, evicting the least recently used entries beyond the bound."""
        key = CacheKey(tenant, service, environment, revision)
        self._entries[key] = resolved
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def get_or_resolve(
        self,
        tenant: str,
        service: str,
        environment: str,
        revision: int,
        compute: Callable[[], Resolved],
    ) -> Resolved:
        """The cached result, or ``compute()`` stored and returned (errors are not cached)."""
        resolved = self.get(tenant, service, environment, revision)
        if resolved is None:
            resolved = compute()
            self.put(tenant, service, environment, revision, resolved)
        return resolved

    def clear(self) -> None:
        """Drop every entry (counters are kept)."""
        self._entries.clear()
