"""Rotation: notice new KV versions of the secrets that watch streams resolve.

Vault has no change feed, so the poller asks for the metadata (never the
data) of every secret some resolving stream of this process references,
every ``interval`` seconds. A version higher than the one last seen drops
the cached newest version and tells the listeners (the streams), which send
the affected entries again as a ``secrets_rotated`` event. A secret's first
known version is the one a stream fetched or the first poll saw, so only
changes after a stream started count. Vault down: the poll logs once per
outage and tries again next interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable

from configsvc.errors import ConfigsvcError
from configsvc.secrets.cache import SecretCache
from configsvc.secrets.vault import VaultClient

log = logging.getLogger(__name__)

Secret = tuple[str, str]  # (mount, path)
Listener = Callable[[frozenset[Secret]], None]


class RotationPoller:
    """Polls the newest version of tracked secrets; one per server process."""

    def __init__(
        self, vault: VaultClient, cache: SecretCache, interval: float, timeout: float
    ) -> None:
        self._vault = vault
        self._cache = cache
        self.interval = interval
        self._timeout = timeout
        self._tracked: Counter[Secret] = Counter()
        self._versions: dict[Secret, int] = {}
        self._listeners: set[Listener] = set()
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="configsvc-secret-rotation")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def track(self, secrets: Iterable[Secret]) -> None:
        self._tracked.update(secrets)

    def untrack(self, secrets: Iterable[Secret]) -> None:
        self._tracked.subtract(secrets)
        for secret in [s for s, n in self._tracked.items() if n <= 0]:
            del self._tracked[secret]
            self._versions.pop(secret, None)

    def add_listener(self, listener: Listener) -> None:
        self._listeners.add(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.discard(listener)

    def seen(self, mount: str, path: str, version: int) -> None:
        """A fetch saw ``version``: the baseline if this secret had none yet."""
        if (mount, path) in self._tracked:
            self._versions.setdefault((mount, path), version)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.poll()

    async def poll(self) -> frozenset[Secret]:
        """One pass over the tracked secrets; returns (and announces) the rotated ones."""
        rotated: set[Secret] = set()
        for secret in list(self._tracked):
            try:
                version = await self._vault.current_version(*secret, timeout=self._timeout)
            except ConfigsvcError as exc:
                if not self._failing:
                    log.warning(
                        "secret rotation poll failed; retrying every %.1fs: %s",
                        self.interval,
                        exc.message,
                    )
                self._failing = True
                continue
            if self._failing:
                log.info("secret rotation poll works again")
                self._failing = False
            previous = self._versions.get(secret)
            if secret not in self._tracked:
                continue  # untracked while we waited
            self._versions[secret] = version
            if previous is not None and version != previous:
                self._cache.drop(*secret)
                rotated.add(secret)
        if rotated:
            log.info("secrets rotated", extra={"secrets": sorted(f"{m}/{p}" for m, p in rotated)})
            changed = frozenset(rotated)
            for listener in list(self._listeners):
                listener(changed)
        return frozenset(rotated)
