"""The watch hub: one change feed from the mirror, fanned out to every stream.

Memory is the design constraint (a fleet holds thousands of idle streams per
replica), so a stream costs one small object: a ``deque`` of pre-encoded
messages with a hard limit, a future only while its sender waits, and no
timer or task of its own. One hub ticker sends progress heartbeats to idle
streams, ends streams at their (jittered) maximum age and cancels senders
stuck behind a client that stopped reading.

Ordering: the mirror calls ``on_batch`` synchronously in revision order, and
``open`` captures the snapshot (or ring replay) and registers the stream in
the same event-loop step, so nothing can fall between the snapshot and the
first change, and no revision is sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sys
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from configsvc.errors import ResourceExhaustedError, StreamEndedError
from configsvc.model.keys import ConfigKey
from configsvc.store.items import ChangeBatch, Item
from configsvc.store.ports import WatchSource
from configsvc.v1 import watch_pb2
from configsvc.watch import wire
from configsvc.watch.history import History, HistoryLimits
from configsvc.watch.ring import Ring
from configsvc.watch.selectors import Selector

log = logging.getLogger(__name__)

SNAPSHOT_CHUNK = 256  # entries per snapshot message


@dataclass(frozen=True)
class WatchLimits:
    """Tunables of the watch fan-out; defaults suit a production replica."""

    queue_limit: int = 1024
    """Messages a stream may have waiting before it is reset as a slow consumer."""
    queue_bytes: int = 8 * 2**20
    """Bytes a stream may have waiting before it is reset (values can be 512 KiB)."""
    max_streams: int = 50_000
    """Streams per process; more answer RESOURCE_EXHAUSTED."""
    progress_interval: float = 10.0
    """Seconds of silence before a stream gets a progress heartbeat (jittered +-20%)."""
    max_age: float = 1800.0
    """Seconds after which a stream is ended so the client reconnects (jittered +-10%)."""
    ring_size: int = 10_000
    """Change batches kept for resumes."""
    ring_bytes: int = 64 * 2**20
    """Bytes of values the resume ring may hold."""
    history_events: int = 200_000
    """etcd events a resume older than the ring may read from etcd's history (every key
    under the prefix counts: a config write is about four); more: RESET RESUME_TOO_OLD."""
    history_timeout: float = 30.0
    """Seconds such a history replay may take; longer: RESET RESUME_TOO_OLD."""
    stuck_grace: float = 5.0
    """Seconds a reset stream's sender may stay blocked before it is cancelled."""
    lost_etcd_grace: float = 3.0
    """Seconds without etcd before every stream is ended so clients move or go stale."""


class Access(Protocol):
    """What a stream's caller may read (``configsvc.auth``); None: everything."""

    def readable(self, key: ConfigKey) -> bool: ...


class End:
    """Terminal marker queued behind a stream's last messages."""

    __slots__ = ("message", "resume_revision")

    def __init__(self, message: str, resume_revision: int) -> None:
        self.message = message
        self.resume_revision = resume_revision


class Shape:
    """Selectors and the tenants they name, one copy for every stream that asked for equal
    ones: idle streams are the memory that counts, and a fleet's streams mostly carry the
    same few selector sets (about 250 bytes each otherwise). ``WatchHub`` hands them out
    from a weak table, so a shape lives exactly as long as some stream holds it."""

    __slots__ = ("__weakref__", "selectors", "tenants")

    def __init__(self, selectors: tuple[Selector, ...]) -> None:
        self.selectors = selectors
        self.tenants = tuple(sorted({s.tenant for s in selectors}))


class Subscription:
    """One stream's selectors and bounded outbox."""

    __slots__ = (
        "_outbox",
        "_shape",
        "_waiter",
        "access",
        "closing",
        "deadline",
        "next_progress",
        "owner",
        "peer",
        "queued_bytes",
        "reset_at",
        "revision",
        "selectors",
        "sender",
        "tenants",
    )

    def __init__(
        self,
        shape: Shape,
        revision: int,
        deadline: float,
        next_progress: float,
        access: Access | None = None,
        owner: Any = None,
        peer: str = "",
    ) -> None:
        self._shape = shape  # keeps the shared copy alive while this stream lives
        self.selectors = shape.selectors
        self.tenants = shape.tenants
        self.peer = peer  # the client's address: streams of one connection share it
        self.access = access
        self.owner = owner  # who opened the stream (the auth caller), for resets
        # A list, not a deque: an empty deque costs 760 bytes, an empty list 56, and
        # with thousands of idle streams that is most of what a stream adds.
        self._outbox: list[bytes | End] = []
        self.queued_bytes = 0
        self._waiter: asyncio.Future[None] | None = None
        self.revision = revision  # last revision queued for this stream
        self.closing = False
        self.deadline = deadline
        self.next_progress = next_progress
        self.reset_at = 0.0
        self.sender: asyncio.Task[object] | None = None

    def matches(self, key: ConfigKey) -> bool:
        return any(s.matches(key) for s in self.selectors) and (
            self.access is None or self.access.readable(key)
        )

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def push(self, message: bytes | End, wake: bool = True) -> None:
        self._outbox.append(message)
        if isinstance(message, bytes):
            self.queued_bytes += len(message)
        if wake:
            self._wake()

    def queued(self) -> int:
        return len(self._outbox)

    def replace_all(self, message: bytes | End) -> None:
        """Drop everything queued (bounding memory) and queue ``message`` alone."""
        self._outbox.clear()
        self.queued_bytes = 0
        self.push(message)

    def pop(self) -> bytes | End | None:
        """The oldest queued message, or None when nothing is queued: then the sender
        awaits ``wakeup()`` and asks again."""
        if not self._outbox:
            return None
        message = self._outbox.pop(0)
        if isinstance(message, bytes):
            self.queued_bytes -= len(message)
        return message

    def wakeup(self) -> asyncio.Future[None]:
        """A future completed by the next ``push``. The sender awaits it in its own frame:
        an idle stream then holds no coroutine of the hub's (a ``next()`` coroutine
        waiting on it cost 224 bytes per idle stream)."""
        self._waiter = asyncio.get_running_loop().create_future()
        return self._waiter


@dataclass
class WatchStats:
    """Counters for operators and tests."""

    opened: int = 0
    slow_resets: int = 0
    history_replays: int = 0
    aged_out: int = 0
    credential_expired: int = 0
    cancelled_stuck: int = 0
    messages: int = 0


class WatchHub:
    """Owns every stream of this process; fed by the mirror."""

    def __init__(self, mirror: WatchSource, limits: WatchLimits) -> None:
        self._mirror = mirror
        self.limits = limits
        self._ring = Ring(limits.ring_size, limits.ring_bytes)
        self._subs: set[Subscription] = set()
        self._shapes: weakref.WeakValueDictionary[tuple[Selector, ...], Shape] = (
            weakref.WeakValueDictionary()
        )
        self._by_tenant: dict[str, set[Subscription]] = {}
        # Per tenant, its streams grouped by connection (see on_batch); rebuilt lazily
        # after a stream of the tenant opens or closes.
        self._fan_order: dict[str, tuple[Subscription, ...]] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._closed = False
        self._lost_since: float | None = None
        self.stats = WatchStats()
        mirror.add_change_listener(self.on_batch)
        mirror.add_sync_listener(self.on_sync)

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick_loop(), name="configsvc-watch-ticker")

    async def shutdown(self) -> None:
        """End every stream with 'resume elsewhere' and stop the ticker."""
        self._closed = True
        for sub in list(self._subs):
            self._end(sub, "the server is shutting down; reconnect and resume")
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None

    @property
    def stream_count(self) -> int:
        return len(self._subs)

    # -------------------------------------------------------------------- feed

    def on_batch(self, batch: ChangeBatch) -> None:
        """Fan one revision out; each distinct message is encoded once."""
        self._ring.append(batch)
        tenants = {key.tenant for key, _ in batch.changes}
        interested = self._interested(tenants)
        if not interested:
            return
        encoded = [wire.encode_change(key, item) for key, item in batch.changes]
        cache: dict[tuple[int, ...], bytes] = {}
        woken: list[Subscription] = []
        # A fleet's streams mostly share selectors: match once per distinct set.
        picks: dict[tuple[tuple[Selector, ...], Access | None], tuple[int, ...]] = {}
        for sub in interested:
            if sub.closing:
                continue
            picked = picks.get((sub.selectors, sub.access))
            if picked is None:
                picked = tuple(i for i, (key, _) in enumerate(batch.changes) if sub.matches(key))
                picks[(sub.selectors, sub.access)] = picked
            if not picked:
                continue
            data = cache.get(picked)
            if data is None:
                data = wire.changes(batch.revision, (encoded[i] for i in picked))
                cache[picked] = data
            if self._offer(sub, data, batch.revision):
                woken.append(sub)
        _wake_in_chunks(woken, 0)

    def _interested(self, tenants: set[str]) -> tuple[Subscription, ...]:
        """The streams of ``tenants``, those of one client connection next to each other.

        gRPC writes each ``context.write`` with its own system call unless the
        connection is still busy with the previous one; consecutive writes to the
        same connection then go out together, and the client reads them together.
        Fanning out connection by connection rather than in set order (which
        interleaves connections) cuts the TCP segments and the watchers' and the
        server's CPU per write (``bench.watch``; the figures are in README's
        Benchmarks section).
        """
        if len(tenants) == 1:
            (tenant,) = tenants
            order = self._fan_order.get(tenant)
            if order is None:
                order = tuple(sorted(self._by_tenant.get(tenant, ()), key=_peer_of))
                self._fan_order[tenant] = order
            return order
        union: set[Subscription] = set()
        for tenant in tenants:
            union |= self._by_tenant.get(tenant, set())
        return tuple(sorted(union, key=_peer_of))

    def _base(self) -> int:
        """Changes after this revision can be replayed: the ring holds every batch since
        the mirror's first load (a resync's diff batch covers any gap) or since the
        last eviction."""
        return max(self._ring.base, self._mirror.first_revision)

    def _offer(self, sub: Subscription, data: bytes, revision: int) -> bool:
        if (
            sub.queued() >= self.limits.queue_limit
            or sub.queued_bytes + len(data) > self.limits.queue_bytes
        ):
            self.stats.slow_resets += 1
            sub.closing = True
            sub.reset_at = time.monotonic()
            # Where the client can resume if the RESET cannot reach it (see give_up):
            # the first message dropped here is the first it will not get.
            resume = next(
                (
                    point
                    for message in sub._outbox
                    if isinstance(message, bytes)
                    and (point := wire.resume_point(message)) is not None
                ),
                revision,
            )
            sub.replace_all(
                wire.reset(
                    watch_pb2.RESET_REASON_SLOW_CONSUMER,
                    self._base(),
                    self._mirror.revision,
                    f"the stream fell more than {self.limits.queue_limit} messages or "
                    f"{self.limits.queue_bytes} bytes behind; re-snapshot",
                )
            )
            sub.push(End("", resume))
            log.warning("watch stream reset: slow consumer")
            return False
        sub.revision = revision
        sub.next_progress = time.monotonic() + self._progress_delay()
        sub.push(data, wake=False)
        self.stats.messages += 1
        return True

    # ------------------------------------------------------------------ streams

    def shape(self, selectors: tuple[Selector, ...]) -> Shape:
        """The shared copy of ``selectors`` (see ``Shape``), made on first use."""
        shape = self._shapes.get(selectors)
        if shape is None:
            shape = self._shapes[selectors] = Shape(selectors)
        return shape

    def open(
        self,
        shape: Shape,
        *,
        start_revision: int,
        send_snapshot: bool,
        access: Access | None = None,
        owner: Any = None,
        peer: str = "",
    ) -> tuple[Subscription, Iterator[bytes | History]]:
        """Register a stream and return it with its first messages.

        The first messages (snapshot, or ring replay) are computed here,
        synchronously with registration; the caller sends them before reading
        the subscription's outbox. A resume point older than the ring is
        served from etcd's history: then one of the first messages is a
        ``History``, which the caller iterates (it reads etcd) and which ends
        the stream with a RESET only when etcd no longer holds what it needs.
        """
        if self._closed:
            raise StreamEndedError(
                "the server is shutting down; reconnect elsewhere", start_revision
            )
        if len(self._subs) >= self.limits.max_streams:
            raise ResourceExhaustedError(
                f"this server holds its maximum of {self.limits.max_streams} watch streams; "
                "retry later or on another replica"
            )
        now = time.monotonic()
        revision = self._mirror.revision
        max_age = self.limits.max_age * random.uniform(0.9, 1.1)
        # One string per connection, not per stream (interned strings die with their users).
        sub = Subscription(
            shape,
            revision,
            now + max_age,
            now + self._progress_delay(),
            access,
            owner,
            sys.intern(peer),
        )
        first: Iterator[bytes | History]
        if send_snapshot:
            first = self._snapshot(shape.selectors, revision, access)
        elif start_revision > 0 and start_revision - 1 < self._base():
            first = self._from_history(sub, start_revision, revision)
        else:
            # A new or resumed stream learns at once that it is live and up to where.
            replay = self._ring.since(start_revision) if start_revision > 0 else []
            first = self._replay(sub, replay, revision)
        self._subs.add(sub)
        for tenant in sub.tenants:
            self._by_tenant.setdefault(tenant, set()).add(sub)
            self._fan_order.pop(tenant, None)
        self.stats.opened += 1
        return sub, first

    def _from_history(
        self, sub: Subscription, start: int, revision: int
    ) -> Iterator[bytes | History]:
        """First messages of a resume from before the ring: etcd's history of revisions
        ``start`` .. ``revision``, then a progress at ``revision`` (live changes after it
        are queued on ``sub`` meanwhile). The commit marker every configsvc write touches
        tells, here and now, whether any config changed since ``start``: if not, there
        is nothing to replay and etcd is not asked (nor does its compaction matter)."""
        keyspace = self._mirror.keyspace
        marker = self._mirror.record(keyspace.commit_marker)
        last_write = marker.mod_revision if marker is not None else 0
        if last_write < start:
            return iter([wire.progress(revision)])
        self.stats.history_replays += 1
        history = History(
            self._mirror.etcd,
            keyspace,
            sub.matches,
            start=start,
            end=revision,
            last_write=last_write,
            limits=HistoryLimits(self.limits.history_events, self.limits.history_timeout),
        )
        return iter([history, wire.progress(revision)])

    def close(self, sub: Subscription) -> None:
        self._subs.discard(sub)
        for tenant in sub.tenants:
            self._fan_order.pop(tenant, None)
            subs = self._by_tenant.get(tenant)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._by_tenant[tenant]

    def _snapshot(
        self, selectors: tuple[Selector, ...], revision: int, access: Access | None = None
    ) -> Iterator[bytes]:
        """The matching entries at ``revision``, captured now, sent in chunks."""
        matched: dict[bytes, Item] = {}
        for selector in selectors:
            prefix = self._mirror.scope_prefix(
                selector.tenant, selector.environment, selector.service
            )
            for item in self._mirror.items(prefix):
                if selector.matches(item.key) and (access is None or access.readable(item.key)):
                    matched[item.data] = item  # keyed by bytes: unique per entry version
        ordered = sorted(matched.values(), key=lambda item: item.key)

        def chunks() -> Iterator[bytes]:
            for start in range(0, len(ordered), SNAPSHOT_CHUNK):
                yield wire.snapshot_chunk(i.data for i in ordered[start : start + SNAPSHOT_CHUNK])
            yield wire.snapshot_end(revision)

        return chunks()

    def _replay(
        self, sub: Subscription, batches: list[ChangeBatch], revision: int
    ) -> Iterator[bytes]:
        for batch in batches:
            picked = [(k, i) for k, i in batch.changes if sub.matches(k)]
            if picked:
                yield wire.changes(batch.revision, (wire.encode_change(k, i) for k, i in picked))
        yield wire.progress(revision)

    def give_up(
        self, sub: Subscription, cancelled: BaseException, resume: int | None = None
    ) -> StreamEndedError | None:
        """The error that ends a stream whose sender ``tick`` cancelled (``GAVE_UP``), or
        None if ``cancelled`` came from elsewhere (the client went away, shutdown).
        Called by the sender in its ``except CancelledError``; it un-cancels the sender's
        task so the caller can end the call with that status.

        The sender was blocked in a write behind a client that stopped reading, so the
        RESET queued by ``_offer`` cannot reach it in band: HTTP/2 delivers a stream's
        messages in order. The cancelled write stays handed to gRPC, and the status the
        caller aborts with is queued behind it, so a client that reads again gets every
        message up to that one, then this status and where to resume, instead of an open
        stream that never says anything again. ``resume`` is given by a sender still
        sending its first messages (snapshot or replay): where they stopped, since the
        queue only holds later ones; 0 inside a snapshot, which cannot be resumed.
        """
        if cancelled.args != (GAVE_UP,):
            return None
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        queued = sub.revision + 1
        while (message := sub.pop()) is not None:
            if isinstance(message, End):
                queued = message.resume_revision or queued
        if resume is None:
            resume = queued
        stopped = (
            f"nothing could be sent on this stream for {self.limits.stuck_grace:g} s "
            f"while more than {self.limits.queue_limit} messages or "
            f"{self.limits.queue_bytes} bytes waited: the client stopped reading "
            "(or resolving its secrets stalled)"
        )
        if not resume:
            return StreamEndedError(
                f"{stopped}; it ended inside its snapshot: re-open the stream with a snapshot", 0
            )
        return StreamEndedError(f"{stopped}; resume from revision {resume}", resume)

    def reset_where(
        self, predicate: Callable[[Subscription], bool], reason: int, message: str
    ) -> int:
        """Reset (re-snapshot) every open stream ``predicate`` picks; returns how many.

        The reset is queued behind what the stream already has, so the client
        sees every change up to now, then re-opens under the new conditions
        (for example narrower grants after a role binding change).
        """
        count = 0
        for sub in list(self._subs):
            if sub.closing or not predicate(sub):
                continue
            sub.closing = True
            sub.push(wire.reset(reason, self._base(), self._mirror.revision, message))
            sub.push(End("", 0))
            count += 1
        return count

    # ------------------------------------------------------------------- ticker

    def _progress_delay(self) -> float:
        return self.limits.progress_interval * random.uniform(0.8, 1.2)

    def _end(self, sub: Subscription, message: str) -> None:
        if sub.closing:
            return
        sub.closing = True
        sub.push(End(message, sub.revision + 1))

    async def _tick_loop(self) -> None:
        period = min(1.0, self.limits.progress_interval / 4, self.limits.max_age / 4)
        while True:
            await asyncio.sleep(period)
            self.tick()

    def on_sync(self, synced: bool) -> None:
        """Mirror gained or lost etcd; streams are ended if it stays lost (see tick)."""
        self._lost_since = None if synced else time.monotonic()

    def tick(self) -> None:
        """Heartbeats, maximum age, lost etcd and stuck senders; one pass over the streams."""
        now = time.monotonic()
        revision = self._mirror.revision
        if self._lost_since is not None and now - self._lost_since > self.limits.lost_etcd_grace:
            for sub in list(self._subs):
                self._end(
                    sub, "this server has lost etcd; reconnect (to another replica) and resume"
                )
        for sub in list(self._subs):
            if sub.closing:
                if (
                    sub.reset_at
                    and now - sub.reset_at > self.limits.stuck_grace
                    and sub.sender is not None
                    and not sub.sender.done()
                ):
                    self.stats.cancelled_stuck += 1
                    sub.reset_at = 0.0  # once: the sender now ends the call itself
                    sub.sender.cancel(GAVE_UP)
                continue
            if now >= sub.deadline:
                sub.push(wire.progress(max(revision, sub.revision)))
                if _credential_expired(sub.owner):
                    self.stats.credential_expired += 1
                    self._end(sub, "the credential expired; reconnect with a valid one and resume")
                else:
                    self.stats.aged_out += 1
                    self._end(sub, "maximum stream age reached; reconnect and resume")
            elif now >= sub.next_progress and sub.queued() == 0:
                sub.revision = max(revision, sub.revision)
                sub.push(wire.progress(sub.revision))
                sub.next_progress = now + self._progress_delay()


GAVE_UP = "configsvc: the client stopped reading; the stream is given up"
"""The message ``tick`` cancels a stuck sender with (see ``WatchHub.give_up``)."""


def _credential_expired(owner: object) -> bool:
    """True when the stream's credential has expired (within a second): its stream then
    ends for that reason, not for its age, so the client knows to get a new one."""
    expires = getattr(getattr(owner, "principal", None), "expires_at", None)
    return isinstance(expires, int | float) and time.time() + 1.0 >= expires


WAKE_CHUNK = 256
"""Senders woken per event-loop step by one change (see ``_wake_in_chunks``)."""


def _wake_in_chunks(subs: list[Subscription], start: int) -> None:
    """Wake senders a chunk per event-loop step, so the loop polls I/O between chunks.

    The change is already queued on every stream (``on_batch`` decides all ordering
    synchronously); only the senders' turns are spread. Woken all at once, thousands
    of senders' writes ran before the loop next polled, and a writer whose etcd answer
    had not been read yet waited behind all of them (the Put round trip that
    ``bench.watch`` measures at 10,000 streams, before and after: README, Benchmarks).
    """
    end = start + WAKE_CHUNK
    for sub in subs[start:end]:
        sub._wake()
    if end < len(subs):
        asyncio.get_running_loop().call_soon(_wake_in_chunks, subs, end)


def _peer_of(sub: Subscription) -> str:
    return sub.peer
