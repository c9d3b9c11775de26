"""The one Watch stream: snapshot, resume, RESET, reconnect with backoff.

State kept between streams is the cache (entries exact at ``cache.revision``)
and whether it can be resumed from. Each stream asks for

* a snapshot (``send_snapshot``) when there is no base yet, after RESET,
  after a protocol violation, or when the server refused the resume point;
* otherwise a resume from ``cache.revision + 1``: nothing missed, nothing
  repeated. ``changes`` at or below the cache's revision are ignored and
  counted, so a server that repeats a revision cannot make callbacks fire
  twice.

A snapshot is collected in full and swapped in at ``snapshot_end``; a stream
that breaks mid-snapshot leaves the previous cache untouched. UNAVAILABLE, any
other failure and a clean end of stream all mean "reconnect and resume",
after a full-jitter backoff delay that restarts once a stream went live.

A stream can also die without ending: a server that gave up on it but could
not deliver its RESET or status, a server stopped (SIGSTOP, a hung host), a
proxy that stopped forwarding. The server sends a progress heartbeat on every
stream that has been quiet for its progress interval, so a stream with no
message at all for ``silence_limit`` seconds (several intervals) is treated
as dead: the client reports stale from that moment, cancels the call and
resumes on a new one. Nothing here depends on the server noticing anything.

The stream is read by this task alone; callbacks run in ``_delivery``'s task,
so a slow callback cannot stop the reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from configsvc_client._delivery import DEFAULT_MAX_PENDING, Delivery
from configsvc_client._gen.configsvc.v1 import watch_pb2
from configsvc_client._persist import Persister
from configsvc_client._transport import Transport
from configsvc_client.backoff import Backoff
from configsvc_client.cache import Cache, RawChange
from configsvc_client.errors import (
    ClientClosedError,
    ConfigError,
    InvalidArgumentError,
    from_rpc_error,
)
from configsvc_client.keys import Key, Selector
from configsvc_client.lkg import CacheFile
from configsvc_client.model import ChangeType, Entry
from configsvc_client.status import Stats
from configsvc_client.subscriptions import Dispatcher

__all__ = ["DEFAULT_PROGRESS_INTERVAL", "DEFAULT_SILENCE_INTERVALS", "Watcher", "silence_limit"]

log = logging.getLogger("configsvc_client")

#: Codes that, on a resume attempt, mean the server does not accept the resume
#: point (unknown or future revision): fall back to a snapshot at once.
_RESUME_REFUSED = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.FAILED_PRECONDITION,
    }
)
#: Codes that, on a snapshot request at start, mean the request itself (or the
#: credential) is wrong: start fails at once instead of waiting out connect_timeout.
_PERMANENT = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
    }
)


#: Seconds a resumed stream must stay open before it counts as accepted (see _settle).
RESUME_SETTLE = 0.5

#: The server's default ``--watch-progress-interval``: seconds of quiet before it sends a
#: heartbeat on a stream (jittered +-20%, so gaps reach 1.2 intervals).
DEFAULT_PROGRESS_INTERVAL = 10.0
#: Progress intervals of silence after which a stream is dead: 30 s with the defaults,
#: 2.5 times the longest gap a healthy quiet stream has.
DEFAULT_SILENCE_INTERVALS = 3.0
#: Below this, jitter alone (+20%) would make healthy quiet streams look dead.
_MIN_SILENCE_INTERVALS = 1.5
#: A watchdog that wakes this many seconds late ran on a blocked event loop (a blocking
#: callback): the reader gets _STALL_GRACE seconds to take what arrived meanwhile before
#: the stream is judged, so a loop stall alone does not replace a healthy stream.
_STALL = 0.5
_STALL_GRACE = 1.0


def silence_limit(progress_interval: float, silence_intervals: float) -> float:
    """Seconds without any message after which a stream counts as dead.

    ``progress_interval`` is the server's ``--watch-progress-interval``;
    ``silence_intervals`` how many of them to allow (at least 1.5: the server
    jitters heartbeats by +-20%).
    """
    if not progress_interval > 0:
        raise InvalidArgumentError.single(
            "progress_interval", f"must be > 0 seconds, got {progress_interval}"
        )
    if not silence_intervals >= _MIN_SILENCE_INTERVALS:
        raise InvalidArgumentError.single(
            "silence_intervals",
            f"must be >= {_MIN_SILENCE_INTERVALS} (heartbeats are "
            f"jittered by +-20%), got {silence_intervals}",
        )
    return progress_interval * silence_intervals


class _ProtocolError(Exception):
    """The server sent something the contract rules out; the client re-snapshots."""


@dataclass(slots=True)
class _Stream:
    """State of one Watch call."""

    resumed: bool
    live: bool = False
    ended: bool = False
    silenced: bool = False
    """The watchdog cancelled the call: nothing arrived within the silence limit."""


@dataclass(frozen=True, slots=True)
class _Outcome:
    live: bool
    reset: bool = False
    error: ConfigError | None = None
    resumed: bool = False


def _raw_change(change: Any) -> RawChange:
    key = Key(change.key.tenant, change.key.environment, change.key.service, change.key.key)
    if change.type == watch_pb2.CHANGE_TYPE_DELETE:
        return RawChange(ChangeType.DELETE, key, None)
    if change.type == watch_pb2.CHANGE_TYPE_PUT and change.HasField("entry"):
        return RawChange(ChangeType.PUT, key, Entry.from_proto(change.entry))
    raise _ProtocolError(f"change of unknown type {change.type} for {key}")


class Watcher:
    """Runs the stream in a task and keeps ``cache`` up to date.

    ``silence_limit``: seconds without any message after which a stream is
    treated as dead (see :func:`silence_limit`); ``max_pending``: changes the
    cache may be ahead of the callbacks (see ``_delivery``).
    """

    def __init__(
        self,
        transport: Transport,
        selectors: Sequence[Selector],
        cache: Cache,
        dispatcher: Dispatcher,
        stats: Stats,
        *,
        backoff: Backoff,
        persister: Persister | None = None,
        rand: Callable[[], float] = random.random,
        silence_limit: float = DEFAULT_PROGRESS_INTERVAL * DEFAULT_SILENCE_INTERVALS,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        if not silence_limit > 0:
            raise InvalidArgumentError.single("silence_limit", "must be > 0 seconds")
        self._transport = transport
        self.selectors = tuple(selectors)
        self._proto_selectors = [
            watch_pb2.WatchSelector(
                tenant=s.tenant,
                environment=s.environment,
                service=s.service,
                keys=list(s.keys),
                key_prefixes=list(s.key_prefixes),
            )
            for s in self.selectors
        ]
        self.cache = cache
        self._delivery = Delivery(dispatcher, cache, stats, max_pending=max_pending)
        self.stats = stats
        self.silence_limit = silence_limit
        self._heard_at = time.monotonic()
        """When the current stream was opened or last delivered a message (monotonic)."""
        self._suspect = False
        """A stream went silent and no message arrived since: a resumed stream must hear
        from the server before it counts as live (see _settle)."""
        self._backoff = backoff
        self._persister = persister
        self._rand = rand
        self.need_snapshot = True
        self.connected = False
        self.last_error: str | None = None
        self.fresh = asyncio.Event()
        self.started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        """Resolved when a stream first goes live; failed by a permanent error before that."""
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self._call: Any = None
        self._stopping = False
        self._closed = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        self._delivery.start()
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="configsvc-client-watch"
        )

    @property
    def silent(self) -> bool:
        """True when the stream has been silent past the limit (readable from any thread).

        Computed from the clock, not set by a task: a client whose own event
        loop is blocked still reports it.
        """
        return time.monotonic() - self._heard_at > self.silence_limit

    async def stop(self) -> None:
        """Stop the stream; callable from a callback (the loop then ends after it)."""
        self._stopping = True
        task, self._task = self._task, None
        call = self._call
        if call is not None:
            call.cancel()
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                # Swallow the task's own cancellation, but not a cancellation of stop().
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
        if call is not None:
            # Let gRPC deliver the cancelled call's completion on this loop now: the
            # synchronous facade closes its loop right after, and a late completion
            # would be posted to a closed loop.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(call.code(), 1.0)
        await self._delivery.stop()
        self.connected = False
        self.fresh.clear()
        self._closed.set()
        for _, waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(ClientClosedError("the client is closed"))
        self._waiters.clear()
        if not self.started.done():
            self.started.cancel()

    def adopt(self, cache_file: CacheFile, target: str) -> bool:
        """Serve a cache file until the server answers; False if a snapshot already came."""
        if self.cache.has_base:
            return False
        entries = [e for e in cache_file.entries if any(s.matches(e.key) for s in self.selectors)]
        self.cache.replace(entries, cache_file.revision)
        # A file taken with other selectors cannot be resumed from (the server would
        # not replay entries only the new selectors match), nor one taken from another
        # target (its revisions may belong to another etcd cluster).
        self.need_snapshot = (
            cache_file.selectors != self.selectors
            or cache_file.target != target
            or cache_file.revision <= 0
        )
        self._notify_revision()
        return True

    def end_startup(self) -> None:
        """The caller stopped waiting for the first live stream: errors are retried from now on."""
        if not self.started.done():
            self.started.cancel()

    async def wait_fresh(self, timeout: float | None) -> bool:
        """True once live, False on timeout; :class:`ClientClosedError` if closed meanwhile."""
        if self.fresh.is_set():
            return True
        if self._closed.is_set():
            raise ClientClosedError("the client is closed")
        fresh = asyncio.ensure_future(self.fresh.wait())
        closed = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait(
                (fresh, closed), timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            fresh.cancel()
            closed.cancel()
        if self.fresh.is_set():
            return True
        if self._closed.is_set():
            raise ClientClosedError("the client is closed")
        return False

    async def wait_revision(self, revision: int, timeout: float | None) -> bool:
        if self.cache.revision >= revision:
            return True
        if self._closed.is_set():
            raise ClientClosedError("the client is closed")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (revision, waiter)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    # -- the loop ----------------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        resets_in_a_row = 0
        while not self._stopping:
            outcome = await self._stream_once()
            if self._stopping:
                return
            was_connected = self.connected
            self.connected = False
            self.fresh.clear()
            if outcome.live:
                attempt = 0
            resets_in_a_row = resets_in_a_row + 1 if outcome.reset else 0
            delay = self._backoff.delay(attempt, self._rand)
            attempt += 1
            error = outcome.error
            if outcome.reset:
                # Re-snapshot at once, unless the server keeps resetting.
                if resets_in_a_row == 1:
                    delay = 0.0
            elif error is not None:
                self.last_error = error.message
                if outcome.resumed and error.code in _RESUME_REFUSED:
                    log.warning(
                        "configsvc refused to resume the watch (%s); re-snapshotting", error.message
                    )
                    self.need_snapshot = True
                    delay = 0.0
                elif not self.started.done() and error.code in _PERMANENT:
                    self.started.set_exception(error)
                    return
                else:
                    hint = getattr(error, "retry_delay", None)
                    if isinstance(hint, float):
                        delay = max(delay, hint)
                    (log.warning if was_connected else log.info)(
                        "configsvc watch stream failed (%s); reconnecting in %.2fs",
                        error.message,
                        delay,
                    )
            else:
                log.info("configsvc watch stream ended; reconnecting in %.2fs", delay)
            await asyncio.sleep(delay)

    def _request(self) -> watch_pb2.WatchRequest:
        if self.need_snapshot or not self.cache.has_base:
            return watch_pb2.WatchRequest(selectors=self._proto_selectors, send_snapshot=True)
        return watch_pb2.WatchRequest(
            selectors=self._proto_selectors, start_revision=self.cache.revision + 1
        )

    async def _stream_once(self) -> _Outcome:
        request = self._request()
        stream = _Stream(resumed=not request.send_snapshot)
        pending: list[Entry] = []
        self.stats.streams_opened += 1
        self._heard_at = time.monotonic()
        call = self._transport.watch(request)
        self._call = call
        loop = asyncio.get_running_loop()
        settle = loop.create_task(self._settle(call, stream)) if stream.resumed else None
        watchdog = loop.create_task(self._watchdog(call, stream))
        try:
            async for response in call:
                self._heard_at = time.monotonic()
                self._suspect = False
                if self._stopping:
                    break
                if self._on_message(stream, response, pending):
                    stream.ended = True
                    return _Outcome(stream.live, reset=True, resumed=stream.resumed)
            return _Outcome(stream.live, resumed=stream.resumed)
        except asyncio.CancelledError:
            # grpc.aio raises CancelledError from a call cancelled locally: the watchdog's
            # doing unless this task itself is being cancelled (stop()).
            current = asyncio.current_task()
            if not stream.silenced or self._stopping or (current and current.cancelling()):
                raise
            return self._silenced(stream)
        except grpc.aio.AioRpcError as exc:
            if stream.silenced:
                return self._silenced(stream)
            return _Outcome(stream.live, error=from_rpc_error(exc), resumed=stream.resumed)
        except _ProtocolError as exc:
            self.stats.protocol_errors += 1
            self.need_snapshot = True
            log.error("configsvc watch stream: %s; re-snapshotting", exc)
            return _Outcome(stream.live, error=ConfigError(str(exc)), resumed=stream.resumed)
        finally:
            stream.ended = True
            self._call = None
            call.cancel()
            watchdog.cancel()
            if settle is not None:
                settle.cancel()

    def _on_message(self, stream: _Stream, response: Any, pending: list[Entry]) -> bool:
        """Apply one message of the stream; True for a RESET (the stream is over)."""
        kind = response.WhichOneof("kind")
        if kind == "snapshot":
            if stream.resumed or stream.live:
                raise _ProtocolError("snapshot chunk outside a snapshot")
            pending.extend(Entry.from_proto(e) for e in response.snapshot.entries)
        elif kind == "snapshot_end":
            if stream.resumed or stream.live:
                raise _ProtocolError("snapshot_end outside a snapshot")
            self._apply_snapshot(stream, pending, response.snapshot_end.revision)
            pending.clear()
        elif kind == "changes":
            if not (stream.resumed or stream.live):
                raise _ProtocolError("changes before snapshot_end")
            self._go_live(stream)
            self._apply_changes(response.changes)
        elif kind == "progress":
            if stream.resumed or stream.live:  # before that: out of order, but harmless
                self._on_progress(stream, response.progress.revision)
        elif kind == "reset":
            self._on_reset(response.reset)
            return True
        return False

    def _silence_message(self) -> str:
        return (
            f"no message from the server for {self.silence_limit:g}s (the silence "
            f"limit; heartbeats were due) on a stream it may have given up on"
        )

    def _silenced(self, stream: _Stream) -> _Outcome:
        return _Outcome(
            stream.live, error=ConfigError(self._silence_message()), resumed=stream.resumed
        )

    async def _watchdog(self, call: Any, stream: _Stream) -> None:
        """Cancel the call once nothing has arrived for ``silence_limit`` seconds.

        The server heartbeats quiet streams, so such silence means the server
        stopped sending (it gave up on the stream without a status that got
        through, or it hangs) or the connection stopped carrying data. Waiting
        for TCP keepalive would take about 40 s and does not help when the
        server's connection is alive but the stream is not.
        """
        limit = self.silence_limit
        while not (stream.ended or self._stopping):
            wait = self._heard_at + limit - time.monotonic()
            if wait > 0:
                due = time.monotonic() + wait
                await asyncio.sleep(wait)
                if time.monotonic() - due > _STALL:
                    heard = self._heard_at
                    await asyncio.sleep(min(limit, _STALL_GRACE))
                    if self._heard_at != heard:
                        continue
                continue
            stream.silenced = True
            self._suspect = True
            self.stats.silent_streams += 1
            self.connected = False
            self.fresh.clear()
            self.last_error = self._silence_message()
            log.warning(
                "configsvc watch stream silent for %.1fs (limit %gs); cancelling it "
                "and resuming at revision %d",
                time.monotonic() - self._heard_at,
                limit,
                self.cache.revision + 1,
            )
            call.cancel()
            return

    async def _settle(self, call: Any, stream: _Stream) -> None:
        """Declare a resumed stream live once the server has kept it open a moment.

        A resumed stream that is up to date carries nothing until a change or
        a heartbeat (seconds later), while refusals (RESET, NOT_FOUND,
        UNAVAILABLE while the server's mirror is down...) come at once. So
        once the call is connected (``wait_for_connection``), a stream still
        open ``RESUME_SETTLE`` seconds later was accepted and goes live. A
        message goes live by itself (``changes``/``progress`` in
        ``_on_message``), and a stream that ended meanwhile never does.
        After a silence (``_suspect``) the settle time proves nothing (a
        stopped server's kernel still accepts the stream): then only a
        message clears ``_suspect`` and makes the stream live, at the latest
        the next heartbeat.
        """
        try:
            await call.wait_for_connection()
        except grpc.aio.AioRpcError:
            return  # the read loop sees the same error
        await asyncio.sleep(RESUME_SETTLE)
        # After a silent stream the connection itself is in doubt: a stopped server still
        # has the kernel accept and buffer a new stream, so only a message proves it live.
        if not stream.ended and not self._stopping and not self._suspect:
            self._go_live(stream)

    def _go_live(self, stream: _Stream) -> None:
        if stream.live:
            return
        stream.live = True
        if not self.connected:
            log.info("configsvc watch stream live at revision %d", self.cache.revision)
        self.connected = True
        self.fresh.set()
        if not self.started.done():
            self.started.set_result(None)

    def _on_progress(self, stream: _Stream, revision: int) -> None:
        self._go_live(stream)
        if self.cache.advance(revision):
            self._notify_revision()
            self._persist(urgent=False)
        elif revision < self.cache.revision:
            # Legitimate by the contract (this replica is complete up to an older
            # revision than the one the client resumed from, e.g. it lags or has not
            # observed unrelated etcd revisions); the resume point never moves back.
            self.stats.progress_behind += 1
            log.debug(
                "progress at %d is behind the cache's revision %d", revision, self.cache.revision
            )

    def _apply_snapshot(self, stream: _Stream, entries: list[Entry], revision: int) -> None:
        # Swap first, then report: whoever wakes up on "fresh" sees the new cache.
        changes = self.cache.replace(entries, revision)
        self.need_snapshot = False
        self.stats.snapshots += 1
        self._go_live(stream)
        self._notify_revision()
        self._persist(urgent=True)
        self._delivery.publish(changes)

    def _apply_changes(self, message: Any) -> None:
        revision = int(message.revision)
        if revision <= self.cache.revision:
            self.stats.duplicates_ignored += 1
            log.debug(
                "ignoring changes at revision %d (cache is at %d)", revision, self.cache.revision
            )
            return
        raw = [_raw_change(change) for change in message.changes]
        changes = self.cache.apply(revision, raw)
        self.stats.revisions_applied += 1
        self._notify_revision()
        self._persist(urgent=False)
        self._delivery.publish(changes)

    def _on_reset(self, reset: Any) -> None:
        self.stats.resets += 1
        self.need_snapshot = True
        try:
            reason = watch_pb2.ResetReason.Name(reset.reason)
        except ValueError:
            reason = str(reset.reason)
        self.last_error = (
            f"reset by server ({reason}: {reset.message}; compact revision "
            f"{reset.compact_revision}, server revision {reset.revision})"
        )
        log.warning(
            "configsvc watch %s at revision %d; re-snapshotting",
            self.last_error,
            self.cache.revision,
        )

    def _persist(self, *, urgent: bool) -> None:
        if self._persister is not None:
            self._persister.mark(urgent=urgent)

    def _notify_revision(self) -> None:
        revision = self.cache.revision
        for target, waiter in self._waiters:
            if target <= revision and not waiter.done():
                waiter.set_result(None)
