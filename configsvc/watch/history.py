"""Resumes older than this process: the missed changes, read from etcd's own history.

The ring only holds what this process has seen since it loaded, and every
server restart moves that start past every client's resume point (the
publisher and webhook cursors write to etcd after every event, so etcd's
revision moves even with no config write). etcd still holds those revisions
until it compacts them, so a resume point below the ring is served by one
short etcd watch from that revision, filtered to the stream's selectors and
its caller's access, up to the revision the stream was registered at; the
stream's live changes queue behind it (see ``WatchHub.open``).

When the watch ends: it covers the whole configsvc prefix, which holds the
commit marker every configsvc write also touches. The marker's mod_revision
as the mirror knew it at registration (``last_write``) is the newest revision
at or below the registration revision that changed config at all, so once the
watch has delivered the events of that revision (a whole response, never half
of a fragmented one), nothing the stream could select is still missing. It
does not trust progress notifications (etcd 3.5.1 can send them ahead of the
events of their revision), nor the catch-up response's header revision (etcd
sends at most 1,000 revisions per catch-up response under the current header).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

from aetcd import rpc

from configsvc.errors import BackendUnavailableError
from configsvc.model.keys import ConfigKey
from configsvc.store.codec import entry_from_kv
from configsvc.store.etcd import BACKEND, EtcdPort, prefix_range_end
from configsvc.store.keyspace import Keyspace
from configsvc.store.mirror import Item
from configsvc.v1 import watch_pb2
from configsvc.watch import wire


@dataclass(frozen=True)
class HistoryLimits:
    """Bounds on one history replay, so an old resume point cannot cost without end."""

    max_events: int
    """etcd events (of every kind under the prefix) one replay may read; more: RESET."""
    timeout: float
    """Seconds one replay may take; longer: RESET."""


class History:
    """The changes of revisions ``start`` .. ``end`` a stream selects, from etcd.

    Iterating yields encoded ``changes`` messages, one per revision, in revision
    order; a replay that cannot complete yields a RESET last and sets ``reset``
    (the stream then ends). Nothing is held beyond one etcd response.
    """

    def __init__(
        self,
        etcd: EtcdPort,
        keyspace: Keyspace,
        matches: Callable[[ConfigKey], bool],
        *,
        start: int,
        end: int,
        last_write: int,
        limits: HistoryLimits,
    ) -> None:
        self._etcd = etcd
        self._ks = keyspace
        self._matches = matches
        self.start = start
        self.end = end
        self._last_write = last_write
        self._limits = limits
        self.reset = False
        self.events_read = 0

    def __aiter__(self) -> AsyncGenerator[bytes, None]:
        return self._messages()

    async def _messages(self) -> AsyncGenerator[bytes, None]:
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=8)
        reader = asyncio.create_task(self._read(queue), name="configsvc-watch-history")
        try:
            while (message := await queue.get()) is not None:
                yield message
            await reader  # raises what the reader raised (etcd unavailable)
        finally:
            reader.cancel()

    async def _read(self, queue: asyncio.Queue[bytes | None]) -> None:
        """Read etcd under the replay's deadline, in a task of its own: a deadline in the
        generator would cancel whatever task iterates it (the stream's sender, in a write).
        The queue is short, so a client that reads slowly slows the replay down and the
        deadline bounds how long it holds its etcd watch."""
        try:
            async with asyncio.timeout(self._limits.timeout):
                await self._follow(queue)
        except TimeoutError:
            await queue.put(
                self._reset(
                    0,
                    f"replaying the changes since revision {self.start} from etcd took "
                    f"longer than {self._limits.timeout:g} s; re-snapshot",
                )
            )
        await queue.put(None)

    def _reset(self, compact_revision: int, message: str) -> bytes:
        self.reset = True
        return wire.reset(
            watch_pb2.RESET_REASON_RESUME_TOO_OLD, compact_revision, self.end, message
        )

    async def _follow(self, queue: asyncio.Queue[bytes | None]) -> None:
        prefix = self._ks.all_prefix
        create = rpc.WatchCreateRequest(
            key=prefix, range_end=prefix_range_end(prefix), start_revision=self.start, fragment=True
        )
        revision = 0
        changes: list[tuple[ConfigKey, Item | None]] = []
        async for response in self._etcd.watch(create):
            if response.canceled or response.compact_revision:
                if response.compact_revision:
                    await queue.put(
                        self._reset(
                            int(response.compact_revision),
                            f"etcd has compacted its history past revision {self.start} (compact "
                            f"revision {response.compact_revision}); re-snapshot",
                        )
                    )
                    return
                raise BackendUnavailableError(
                    BACKEND, f"history watch canceled: {response.cancel_reason}"
                )
            past_end = False
            for event in response.events:
                kv = event.kv
                if kv.mod_revision > self.end:
                    past_end = True  # the stream's live queue has these
                    break
                self.events_read += 1
                if kv.mod_revision != revision:
                    if changes:
                        await queue.put(_changes(revision, changes))
                        changes = []
                    revision = int(kv.mod_revision)
                key = self._ks.parse_cfg_key(kv.key)
                if key is not None and self._matches(key):
                    changes.append((key, _item(key, kv, event)))
            if self.events_read > self._limits.max_events:
                await queue.put(
                    self._reset(
                        0,
                        f"more than {self._limits.max_events} etcd events since revision "
                        f"{self.start}: too many to replay; re-snapshot",
                    )
                )
                return
            if past_end or (
                not response.fragment
                and response.events
                and response.events[-1].kv.mod_revision >= self._last_write
            ):
                break
        if changes:
            await queue.put(_changes(revision, changes))


def _item(key: ConfigKey, kv: Any, event: Any) -> Item | None:
    if event.type == rpc.Event.DELETE:
        return None
    return Item.of(key, entry_from_kv(key, kv))


def _changes(revision: int, changes: list[tuple[ConfigKey, Item | None]]) -> bytes:
    """One revision's changes in key order, as the mirror hands a live batch over."""
    changes.sort(key=lambda change: change[0])
    return wire.changes(revision, (wire.encode_change(key, item) for key, item in changes))
