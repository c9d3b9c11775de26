"""The publisher: elected leader, audit tail -> Pulsar, cursor after acknowledgement.

Shape of one leadership term:

* read the cursor (``<root>/sys/publisher/cursor``: the last revision whose
  events the broker acknowledged);
* tail the audit records after it (``AuditTail``), build each chunk's events
  and send them, with at most ``max_in_flight`` unacknowledged;
* a chunk's ``through`` revision becomes the acknowledged position only when
  every event of it and of all earlier chunks was acknowledged; the cursor is
  written from that position every ``cursor_interval`` seconds, with a Txn
  fenced on the leader key, so a deposed leader cannot move it.

Any failure (Pulsar refuses or times out, etcd lost) ends the session: the
acknowledged position is saved if possible, and after a backoff the session
starts again from the cursor. Events between the cursor and what was really
acknowledged are sent again: delivery is at-least-once, in revision order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from aetcd import rpc

from configsvc.events.build import EventBuilder, OutgoingEvent
from configsvc.events.election import Election, Leadership, new_identity
from configsvc.events.redact import withhold_value
from configsvc.events.settings import EventSettings
from configsvc.events.sink import EventSink, PulsarSink
from configsvc.events.tail import AuditTail
from configsvc.model.keys import ConfigKey
from configsvc.store.keyspace import Keyspace
from configsvc.store.ports import EtcdPort

log = logging.getLogger(__name__)


class LeadershipLostError(Exception):
    """The fenced cursor write failed: another replica leads now."""


def publisher_keys(ks: Keyspace, name: str = "publisher") -> tuple[bytes, bytes]:
    """(leader key, cursor key) of one tail: both under ``<root>/sys/<name>/``."""
    return ks.sys_key(name, "leader"), ks.sys_key(name, "cursor")


def parse_cursor(raw: bytes) -> int:
    return int(raw.decode() or 0)


@dataclass
class PublisherState:
    """What this replica knows about publishing; read by the status RPC and health."""

    identity: str
    is_leader: bool = False
    pending_events: int = 0
    published_events: int = 0
    acknowledged_revision: int = 0
    failing: bool = False
    last_error: str = ""


class _Pipeline:
    """Sends events with a bounded number in flight and tracks the acknowledged position."""

    def __init__(
        self, sink: EventSink, max_in_flight: int, position: int, state: PublisherState
    ) -> None:
        self._sink = sink
        self._slots = asyncio.Semaphore(max_in_flight)
        # (through revision, None) marks the end of a chunk; (0, future) is one event.
        self._queue: deque[tuple[int, asyncio.Future[None] | None]] = deque()
        self._state = state
        self.acked = position
        self.failed = asyncio.Event()
        self.error: BaseException | None = None

    async def send(self, event: OutgoingEvent) -> None:
        await self._slots.acquire()
        if self.error is not None:
            self._slots.release()
            raise self.error
        future = self._sink.send(event)
        self._state.pending_events += 1
        self._queue.append((0, future))
        future.add_done_callback(self._done)

    def mark(self, through: int) -> None:
        self._queue.append((through, None))
        self._advance()

    def _done(self, future: asyncio.Future[None]) -> None:
        self._slots.release()
        self._state.pending_events -= 1
        error = (
            asyncio.CancelledError("send cancelled") if future.cancelled() else future.exception()
        )
        if error is not None:
            if self.error is None:
                self.error = error
            self.failed.set()
        else:
            self._state.published_events += 1
        self._advance()

    def _advance(self) -> None:
        while self._queue:
            through, future = self._queue[0]
            if future is None:
                self.acked = through
                self._state.acknowledged_revision = through
            elif not future.done() or future.cancelled() or future.exception() is not None:
                return
            self._queue.popleft()


class Publisher:
    """Runs for the life of the server: campaigns, and publishes while it leads."""

    def __init__(
        self,
        etcd: EtcdPort,
        keyspace: Keyspace,
        settings: EventSettings,
        *,
        sink_factory: Callable[[], EventSink] | None = None,
        withhold: Callable[[ConfigKey, str], bool] = withhold_value,
        on_health: Callable[[bool], None] | None = None,
        name: str = "publisher",
        companion: Callable[[Leadership], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        self._etcd = etcd
        self._settings = settings
        self.leader_key, self.cursor_key = publisher_keys(keyspace, name)
        #: Runs alongside publishing for as long as this replica leads (webhook deliveries).
        self._companion = companion
        self.state = PublisherState(identity=new_identity())
        self._election = Election(etcd, self.leader_key, self.state.identity, settings.lease_ttl)
        self._tail = AuditTail(etcd, keyspace)
        self._builder = EventBuilder(etcd, keyspace, withhold)
        self._sink_factory = sink_factory or self._pulsar_sink
        self._on_health = on_health or (lambda _healthy: None)
        self._task: asyncio.Task[None] | None = None

    def _pulsar_sink(self) -> EventSink:
        return PulsarSink(
            self._settings.pulsar_url,
            self._settings.topic,
            send_timeout=self._settings.send_timeout,
            max_pending=self._settings.max_in_flight,
            tls=self._settings.tls,
        )

    @property
    def topic(self) -> str:
        return self._settings.topic

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop publishing and give up leadership at once (a successor starts without waiting)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            leadership = await self._election.acquire(self._settings.backoff)
            self.state.is_leader = True
            companion: asyncio.Task[None] | None = None
            if self._companion is not None:
                companion = asyncio.get_running_loop().create_task(self._companion(leadership))
            try:
                await self._lead(leadership)
            finally:
                if companion is not None:
                    companion.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await companion
                self.state.is_leader = False
                self.state.pending_events = 0
                await leadership.resign()
                self._set_failing(False, "")

    async def _lead(self, leadership: Leadership) -> None:
        low, high = self._settings.backoff
        delay = low
        while not leadership.lost.is_set():
            published = self.state.published_events
            try:
                await self._session(leadership)
            except LeadershipLostError:
                log.warning("publisher deposed: the leader key changed")
                return
            except Exception as exc:
                self._set_failing(True, str(exc))
                log.warning(
                    "publisher paused: %s (retry in %.1fs, cursor %d)",
                    exc,
                    delay,
                    self.state.acknowledged_revision,
                )
            if self.state.published_events > published:
                delay = low
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(leadership.lost.wait(), delay)
            delay = min(high, delay * 2)

    def _set_failing(self, failing: bool, error: str) -> None:
        if failing != self.state.failing:
            self._on_health(not failing)
        self.state.failing = failing
        if error:
            self.state.last_error = error

    async def read_cursor(self) -> int:
        response = await self._etcd.range(rpc.RangeRequest(key=self.cursor_key))
        return parse_cursor(response.kvs[0].value) if response.kvs else 0

    async def _write_cursor(self, leadership: Leadership, revision: int) -> None:
        response = await self._etcd.txn(
            rpc.TxnRequest(
                compare=[leadership.fence()],
                success=[
                    rpc.RequestOp(
                        request_put=rpc.PutRequest(
                            key=self.cursor_key, value=str(revision).encode()
                        )
                    )
                ],
            )
        )
        if not response.succeeded:
            leadership.lost.set()
            raise LeadershipLostError()

    async def _session(self, leadership: Leadership) -> None:
        cursor = await self.read_cursor()
        self.state.acknowledged_revision = cursor
        sink = self._sink_factory()
        await sink.open()
        pipeline = _Pipeline(sink, self._settings.max_in_flight, cursor, self.state)
        written = cursor

        async def feed() -> None:
            async for chunk in self._tail.follow(cursor):
                for event in await self._builder.build(chunk.items):
                    await pipeline.send(event)
                pipeline.mark(chunk.through)

        async def save() -> None:
            nonlocal written
            while True:
                await asyncio.sleep(self._settings.cursor_interval)
                if pipeline.acked > written:
                    await self._write_cursor(leadership, pipeline.acked)
                    written = pipeline.acked
                    if self.state.failing:
                        self._set_failing(False, "")

        async def guard() -> None:
            waits = [
                asyncio.ensure_future(pipeline.failed.wait()),
                asyncio.ensure_future(leadership.lost.wait()),
            ]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()
            if leadership.lost.is_set():
                raise LeadershipLostError()
            raise pipeline.error or RuntimeError("send failed")

        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(feed())
                group.create_task(save())
                group.create_task(guard())
        except BaseExceptionGroup as group_error:
            raise _first(group_error) from None
        finally:
            await sink.close()
            if pipeline.acked > written and not leadership.lost.is_set():
                with contextlib.suppress(Exception):
                    await self._write_cursor(leadership, pipeline.acked)


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error that ended a session (leadership loss wins: it changes what happens next)."""
    errors = list(_leaves(group))
    for error in errors:
        if isinstance(error, LeadershipLostError):
            return error
    for error in errors:
        if not isinstance(error, asyncio.CancelledError):
            return error
    return errors[0]


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            found.extend(_leaves(error))
        else:
            found.append(error)
    return found
