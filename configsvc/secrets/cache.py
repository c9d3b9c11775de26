"""The resolution cache: fetched KV versions kept for a TTL.

Keyed by (mount, path, pinned version or None). It bounds how often Vault is
asked and is what keeps secret reads working through a short Vault outage: a
value inside its TTL is served, an older one never is. The rotation poller
drops the newest-version entry of a secret as soon as it sees a new version.
The clock is injectable so tests do not sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from configsvc.secrets.vault import SecretVersion

CacheKey = tuple[str, str, int | None]


class SecretCache:
    """(mount, path, version) -> SecretVersion, each for ``ttl`` seconds; at most ``limit``."""

    def __init__(
        self, ttl: float, *, limit: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self._limit = limit
        self._clock = clock
        self._entries: dict[CacheKey, tuple[float, SecretVersion]] = {}

    def get(self, key: CacheKey) -> SecretVersion | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if self._clock() - found[0] > self.ttl:
            del self._entries[key]
            return None
        return found[1]

    def put(self, key: CacheKey, value: SecretVersion) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= self._limit and key not in self._entries:
            # Evict the oldest fetch: dicts keep insertion order.
            del self._entries[next(iter(self._entries))]
        self._entries.pop(key, None)
        self._entries[key] = (self._clock(), value)

    def drop(self, mount: str, path: str) -> None:
        """Forget the newest-version entry of one secret (it was rotated)."""
        self._entries.pop((mount, path, None), None)

    def __len__(self) -> int:
        return len(self._entries)
