"""Flag-set changes fanned out to EventStream and SyncFlags subscribers.

The mirror's record listener (one etcd watch per process, the same fan-out as
config) calls ``on_records`` for every revision. A subscriber holds only a
"changed" event, never a queue of payloads: it re-reads the live flag set
when woken, so any number of changes while it is busy coalesce into one
message and a slow client costs no memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from configsvc.flags.selector import FlagSetRef
from configsvc.flags.store import FlagStore
from configsvc.store.mirror import RecordBatch


class FlagEvents:
    """Subscribers per flag set, woken by the mirror's record listener."""

    def __init__(self, store: FlagStore) -> None:
        self._store = store
        self._subscribers: dict[FlagSetRef, set[asyncio.Event]] = {}

    def on_records(self, batch: RecordBatch) -> None:
        for raw, _record in batch.changes:
            parsed = self._store.parse_key(raw)
            if parsed is None:
                continue
            for event in self._subscribers.get(FlagSetRef(*parsed), ()):
                event.set()

    @contextmanager
    def subscribe(self, ref: FlagSetRef) -> Iterator[asyncio.Event]:
        """An event set on every change of ``ref`` (clear it before re-reading)."""
        event = asyncio.Event()
        self._subscribers.setdefault(ref, set()).add(event)
        try:
            yield event
        finally:
            subscribers = self._subscribers.get(ref)
            if subscribers is not None:
                subscribers.discard(event)
                if not subscribers:
                    del self._subscribers[ref]

    @property
    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subscribers.values())
