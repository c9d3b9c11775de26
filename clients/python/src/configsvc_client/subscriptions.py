"""Local fan-out of changes: callbacks and ``changes()`` iterators.

The client opens one Watch stream and dispatches locally, as the contract
asks. Callbacks run on the client's event loop, one at a time, in revision
order, after the cache already shows the change; an exception in a callback is
logged and counted, never allowed to end the stream. The changes reach this
module through ``_delivery.Delivery``, a bounded queue with a task of its own,
so a slow callback delays the callbacks after it but not the reading of the
stream (see that module for what happens when callbacks stay slow).

Registration is copy-on-write under a lock, so ``subscribe`` and ``cancel``
work from any thread (the synchronous facade needs that) while dispatch reads
a consistent set without locking.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
import threading
import weakref
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TypeAlias

from configsvc_client.errors import ChangesOverflowError, ClientClosedError
from configsvc_client.keys import Key, KeyPrefix
from configsvc_client.model import Change

__all__ = ["Callback", "ChangeStream", "Dispatcher", "Subscription"]

log = logging.getLogger("configsvc_client")

Callback: TypeAlias = Callable[[Change], Awaitable[object] | object]
"""A function or coroutine function that takes a :class:`Change`."""

Matcher: TypeAlias = Key | KeyPrefix | None
"""An exact key, a key prefix, or None for every change."""


def _matches(matcher: Matcher, key: Key) -> bool:
    if matcher is None:
        return True
    if isinstance(matcher, Key):
        return matcher == key
    return matcher.matches(key)


class Subscription:
    """A registered callback; :meth:`cancel` (or leaving its ``with`` block) removes it."""

    def __init__(self, dispatcher: Dispatcher, matcher: Matcher, callback: Callback) -> None:
        self._dispatcher = dispatcher
        self.matcher = matcher
        self.callback = callback
        self.active = True

    def cancel(self) -> None:
        """Stop receiving changes (idempotent; callable from any thread)."""
        if self.active:
            self.active = False
            self._dispatcher._remove(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cancel()

    def __repr__(self) -> str:
        return f"Subscription({self.matcher!s}, active={self.active})"


class ChangeStream:
    """An async iterator of changes with a bounded queue.

    When the consumer falls ``max_queue`` changes behind, the stream stops
    receiving and, once the queued changes are read, raises
    :class:`ChangesOverflowError`: silently dropping changes would be worse,
    and blocking would stall every other subscriber. The cache itself is
    always current, so a consumer that overflows can re-read it and open a
    new stream. The iterator ends when the client closes.
    """

    def __init__(self, dispatcher: Dispatcher, matcher: Matcher, max_queue: int) -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be >= 1")
        self._dispatcher = dispatcher
        self.matcher = matcher
        self._max_queue = max_queue
        self._queue: collections.deque[Change] = collections.deque()
        self._wakeup = asyncio.Event()
        self._overflowed = False
        self._closed = False

    def _offer(self, change: Change) -> None:
        if self._closed or self._overflowed:
            return
        if len(self._queue) >= self._max_queue:
            self._overflowed = True
            self._dispatcher._remove_stream(self)
            log.warning(
                "changes() iterator for %s overflowed (%d queued); it will raise "
                "ChangesOverflowError",
                self.matcher or "all keys",
                len(self._queue),
            )
        else:
            self._queue.append(change)
        self._wakeup.set()

    def close(self) -> None:
        """End the iteration (after the queued changes)."""
        if not self._closed:
            self._closed = True
            self._dispatcher._remove_stream(self)
            self._wakeup.set()

    def __aiter__(self) -> ChangeStream:
        return self

    async def __anext__(self) -> Change:
        while not self._queue:
            if self._overflowed:
                raise ChangesOverflowError(
                    f"changes() for {self.matcher or 'all keys'} fell more than "
                    f"{self._max_queue} changes behind"
                )
            if self._closed:
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._queue.popleft()

    async def __aenter__(self) -> ChangeStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Dispatcher:
    """Routes applied changes to subscriptions and streams."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._exact: dict[Key, tuple[Subscription, ...]] = {}
        self._other: tuple[Subscription, ...] = ()
        self._streams: weakref.WeakSet[ChangeStream] = weakref.WeakSet()
        self._closed = False
        self.callback_errors = 0

    def subscribe(self, matcher: Matcher, callback: Callback) -> Subscription:
        if not callable(callback):
            raise TypeError("callback must be callable")
        subscription = Subscription(self, matcher, callback)
        with self._lock:
            if self._closed:
                raise ClientClosedError("the client is closed")
            if isinstance(matcher, Key):
                self._exact = {
                    **self._exact,
                    matcher: (*self._exact.get(matcher, ()), subscription),
                }
            else:
                self._other = (*self._other, subscription)
        return subscription

    def _remove(self, subscription: Subscription) -> None:
        with self._lock:
            matcher = subscription.matcher
            if isinstance(matcher, Key):
                remaining = tuple(s for s in self._exact.get(matcher, ()) if s is not subscription)
                exact = dict(self._exact)
                if remaining:
                    exact[matcher] = remaining
                else:
                    exact.pop(matcher, None)
                self._exact = exact
            else:
                self._other = tuple(s for s in self._other if s is not subscription)

    def open_stream(self, matcher: Matcher, max_queue: int) -> ChangeStream:
        stream = ChangeStream(self, matcher, max_queue)
        with self._lock:
            if self._closed:
                stream._closed = True
            else:
                self._streams.add(stream)
        return stream

    def _remove_stream(self, stream: ChangeStream) -> None:
        with self._lock:
            self._streams.discard(stream)

    def close(self) -> None:
        """End every stream and drop every subscription."""
        with self._lock:
            self._closed = True
            streams = list(self._streams)
            subscriptions = [s for subs in self._exact.values() for s in subs] + list(self._other)
            self._exact, self._other = {}, ()
        for subscription in subscriptions:
            subscription.active = False
        for stream in streams:
            stream.close()

    async def dispatch(self, changes: list[Change]) -> None:
        """Deliver ``changes`` in order, each with :meth:`deliver`."""
        for change in changes:
            await self.deliver(change)

    async def deliver(self, change: Change) -> None:
        """Deliver one change: matching callbacks (awaited, in registration order), then
        matching stream queues."""
        for subscription in (*self._exact.get(change.path, ()), *self._other):
            if subscription.active and _matches(subscription.matcher, change.path):
                await self._invoke(subscription, change)
        for stream in list(self._streams):
            if _matches(stream.matcher, change.path):
                stream._offer(change)

    async def _invoke(self, subscription: Subscription, change: Change) -> None:
        try:
            result = subscription.callback(change)
            if inspect.isawaitable(result):
                await result
        except Exception:
            self.callback_errors += 1
            log.exception(
                "configsvc subscription callback for %s failed on %s %s@%d",
                subscription.matcher or "all keys",
                change.type.value,
                change.path,
                change.revision,
            )
