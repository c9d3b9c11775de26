"""Delivery of applied changes to subscribers, decoupled from reading the stream.

The stream reader applies each message to the cache and hands the resulting
changes to :class:`Delivery`; a task of its own runs the callbacks, one change
at a time, in revision order. So a slow callback never stops the stream from
being read: the cache stays current, progress heartbeats keep arriving, and
the server never sees this client as a slow consumer because of user code.

The hand-over queue is bounded (``max_pending`` changes). When callbacks stay
slow and the queue would grow past it, the queued changes are dropped and
replaced by the net difference between what subscribers last saw and the
cache as it is when delivery resumes, delivered in revision order, exactly
like the differences after a re-snapshot: every key's latest state arrives,
intermediate values of a key may be skipped, memory stays bounded.

A callback that blocks the event loop itself (``time.sleep`` in a sync
callback) stops reading too; nothing in one thread can prevent that. The
silence limit of the watch (see ``Watcher``) then reports the client stale
and, once the loop runs again, replaces the stream if the server gave up on it.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Iterable

from configsvc_client.cache import Cache, diff
from configsvc_client.keys import Key
from configsvc_client.model import Change, Entry
from configsvc_client.status import Stats
from configsvc_client.subscriptions import Dispatcher

__all__ = ["DEFAULT_MAX_PENDING", "Delivery"]

log = logging.getLogger("configsvc_client")

#: Changes the cache may be ahead of the subscribers before they get the net difference.
DEFAULT_MAX_PENDING = 10_000
#: Changes delivered in a row before the delivery task lets the stream reader run.
_YIELD_EVERY = 256


def _undo(state: dict[Key, Entry], changes: Iterable[Change]) -> None:
    """Turn ``state`` back into what it was before ``changes`` (given oldest first)."""
    for change in reversed(list(changes)):
        if change.previous is None:
            state.pop(change.path, None)
        else:
            state[change.path] = change.previous


class Delivery:
    """A bounded queue of changes and the task that delivers them."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        cache: Cache,
        stats: Stats,
        *,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        self._dispatcher = dispatcher
        self._cache = cache
        self._stats = stats
        self.max_pending = max_pending
        self._queue: collections.deque[Change] = collections.deque()
        #: What subscribers have seen (or are being shown) when the queue overflowed;
        #: None while the queue holds every change since then.
        self._seen: dict[Key, Entry] | None = None
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    @property
    def pending(self) -> int:
        """Changes applied to the cache but not yet handed to subscribers (0 when coalesced)."""
        return len(self._queue)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="configsvc-client-delivery"
        )

    async def stop(self) -> None:
        """Stop delivering (queued changes are dropped); callable from a callback."""
        self._stopped = True
        self._wakeup.set()  # a task stopped from its own callback ends after it
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
        self._queue.clear()
        self._seen = None

    def publish(self, changes: list[Change]) -> None:
        """Queue changes the cache already shows (called by the reader, never blocks)."""
        if not changes or self._stopped:
            return
        if self._seen is not None:
            return  # coalescing: the net difference computed later includes these
        if len(self._queue) + len(changes) > self.max_pending:
            # The cache already includes ``changes`` and everything queued: undo both to
            # get what subscribers will have seen once the change in flight is done.
            seen = self._cache.entries()
            _undo(seen, changes)
            _undo(seen, self._queue)
            self._seen = seen
            self._stats.deliveries_coalesced += 1
            log.warning(
                "configsvc subscribers fell %d changes behind (callbacks too slow); "
                "they will get the net difference instead of every change",
                len(self._queue) + len(changes),
            )
            self._queue.clear()
        else:
            self._queue.extend(changes)
        self._wakeup.set()

    async def _run(self) -> None:
        while not self._stopped:
            await self._wakeup.wait()
            self._wakeup.clear()
            delivered = 0
            while (self._queue or self._seen is not None) and not self._stopped:
                if self._seen is not None:
                    batch = diff(self._seen, self._cache.entries(), self._cache.revision)
                    self._seen = None
                    # Queued behind the difference: changes published from now on come after.
                    for change in batch:
                        await self._deliver(change)
                        delivered += 1
                        if delivered % _YIELD_EVERY == 0:
                            await asyncio.sleep(0)
                    continue
                await self._deliver(self._queue.popleft())
                delivered += 1
                if delivered % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)

    async def _deliver(self, change: Change) -> None:
        before = self._dispatcher.callback_errors
        await self._dispatcher.deliver(change)
        self._stats.callback_errors += self._dispatcher.callback_errors - before
