"""Writes the cache file in the background: at once after a snapshot, debounced after changes.

A busy key must not turn into a file write per revision, so writes after
changes are spaced at least ``interval`` apart; a snapshot (a new base) is
written at once; closing the client writes what is pending. Writes run in a
worker thread (serializing and fsync-ing a large cache must not block the
event loop) one at a time, so an older state can never overwrite a newer one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from configsvc_client import lkg
from configsvc_client.cache import Cache
from configsvc_client.keys import Selector
from configsvc_client.status import Stats

__all__ = ["Persister"]

log = logging.getLogger("configsvc_client")


class Persister:
    """Keeps ``path`` in step with the cache."""

    def __init__(
        self,
        path: Path,
        selectors: Sequence[Selector],
        cache: Cache,
        stats: Stats,
        interval: float = 0.5,
        target: str = "",
    ) -> None:
        self.path = path
        self._target = target
        self._selectors = tuple(selectors)
        self._cache = cache
        self._stats = stats
        self._interval = interval
        self._dirty = False
        self._urgent = False
        self._closing = False
        self._wakeup = asyncio.Event()
        self._last_write = float("-inf")
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="configsvc-client-persist"
        )

    def mark(self, *, urgent: bool = False) -> None:
        """The cache changed; ``urgent`` (a snapshot) skips the debounce."""
        self._dirty = True
        self._urgent = self._urgent or urgent
        self._wakeup.set()

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            # Debounce: wait out the interval since the last write, unless a
            # snapshot or close asks for the write now.
            while not (self._closing or self._urgent):
                wait = self._last_write + self._interval - time.monotonic()
                if wait <= 0:
                    break
                try:
                    await asyncio.wait_for(self._wakeup.wait(), wait)
                except TimeoutError:
                    break
                self._wakeup.clear()
            if self._dirty:
                await self._write()
            if self._closing and not self._dirty:
                return

    async def _write(self) -> None:
        self._dirty = self._urgent = False
        revision, entries = self._cache.revision, self._cache.entries().values()
        self._last_write = time.monotonic()
        try:
            await asyncio.to_thread(
                lkg.save, self.path, revision, self._selectors, list(entries), self._target
            )
        except Exception as exc:
            self._stats.persist_errors += 1
            # A read-only or full disk fails every write: say so once, not twice a second.
            (log.warning if not self._failing else log.debug)(
                "cannot write the configsvc cache file %s: %s", self.path, exc
            )
            self._failing = True
        else:
            self._stats.persist_writes += 1
            if self._failing:
                log.info("configsvc cache file %s written again", self.path)
            self._failing = False

    async def close(self) -> None:
        """Write what is pending, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            # Shielded: a write in its thread must finish before anything else may write.
            await asyncio.shield(self._task)
