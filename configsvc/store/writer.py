"""The write path: every change is one etcd transaction, or nothing.

A change reads the key's current state (value, version, tenant) in one
read-only Txn, then commits value + history copy + audit record + commit
marker in one guarded Txn. The guards (compares) are what make concurrent
writers safe without locks:

* the config key's mod_revision equals what was read (optimistic concurrency;
  an absent key compares as 0), so a lost race changes nothing;
* the new history key does not exist yet, so two writers can never record the
  same version;
* the tenant key exists, so a write cannot land in a tenant deleted meanwhile.

A writer that loses a race without having asked for a specific revision
re-reads and tries again (bounded); one that named ``expected_revision`` gets
ABORTED with the current revision. All puts of a Txn share its revision, so
the audit record's mod_revision *is* the change's revision.

A write with a request id also creates its id's record in the same Txn
(``configsvc.store.idempotency``): a retry of a committed write finds it and
answers the first result instead of writing again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aetcd import rpc

from configsvc.errors import (
    AlreadyExistsError,
    ConflictError,
    FailedPreconditionError,
    NotFoundError,
)
from configsvc.internal.v1 import storage_pb2
from configsvc.model.backoff import Backoff, Jitter
from configsvc.model.keys import ConfigKey
from configsvc.model.values import digest
from configsvc.store.codec import (
    entry_from_kv,
    entry_from_stored,
    history_from_kv,
    now_timestamp,
    set_now,
    tenant_from_kv,
)
from configsvc.store.etcd import EtcdPort, prefix_range_end
from configsvc.store.idempotency import (
    IdempotencySettings,
    Remembered,
    RequestLedger,
)
from configsvc.store.keyspace import Keyspace, new_audit_id
from configsvc.store.mirror import Mirror
from configsvc.store.tenants import missing_tenant
from configsvc.store.writes import Change, Current, RecordChange, WriteOptions, WriteResult
from configsvc.v1 import audit_pb2, config_pb2, tenant_pb2

__all__ = [
    "MAX_ATTEMPTS",
    "RACE_BACKOFF",
    "Change",
    "Current",
    "KeyLocks",
    "RecordChange",
    "WriteOptions",
    "WriteResult",
    "Writer",
]  # the value types live in store.writes

#: How often an unconditional write retries after losing a race (also bounded by
#: the call's deadline); enough for dozens of writers on one hot key.
MAX_ATTEMPTS = 64
#: How long a write waits for the local mirror to show it (read-your-writes).
MIRROR_CATCH_UP = 2.0
#: Writers that keep colliding on one hot key spread out (full jitter): retry n waits
#: up to 1 ms * 2**n, at most 50 ms.
RACE_BACKOFF = Backoff(0.001, 0.05, Jitter.FULL)


# Every write fills its TxnRequest in place with these: building each compare and
# op as a message and passing lists of them to the constructor copies every one
# again, most of a Put's Txn building time (README, Benchmarks: write path CPU).


def _add_compare(compares: Any, key: bytes, result: int, target: int, revision: int) -> None:
    """Append to a Txn's compares: ``key``'s mod (target MOD) or create revision vs ``revision``."""
    compare = compares.add()
    compare.result, compare.target, compare.key = result, target, key
    if target == rpc.Compare.MOD:
        compare.mod_revision = revision
    else:
        compare.create_revision = revision


def _add_present(compares: Any, key: bytes) -> None:
    """Append to a Txn's compares: ``key`` exists (a tenant, for example)."""
    _add_compare(compares, key, rpc.Compare.GREATER, rpc.Compare.CREATE, 0)


def _add_put(ops: Any, key: bytes, value: bytes) -> None:
    put = ops.add().request_put
    put.key, put.value = key, value


class Writer:
    """Commits config changes and tenants; reads history straight from etcd."""

    def __init__(
        self,
        etcd: EtcdPort,
        keyspace: Keyspace,
        mirror: Mirror,
        idempotency: IdempotencySettings | None = None,
    ) -> None:
        self._etcd = etcd
        self._ks = keyspace
        self._mirror = mirror
        self._locks = KeyLocks()
        self.requests = RequestLedger(etcd, keyspace, idempotency)

    # ----------------------------------------------------------------- tenants

    async def create_tenant(
        self, name: str, description: str, options: WriteOptions
    ) -> tuple[tenant_pb2.Tenant, int]:
        key = self._ks.tenant_key(name)
        timeout = options.timeout
        stored = storage_pb2.StoredTenant(
            description=description, create_time=now_timestamp(), created_by=options.actor
        )
        audit = options.stamp(
            audit_pb2.AuditRecord(
                id=new_audit_id(),
                kind="tenant",
                tenant=name,
                name=name,
                operation=config_pb2.OPERATION_PUT,
                time=stored.create_time,
            )
        )
        txn = rpc.TxnRequest()
        _add_compare(txn.compare, key, rpc.Compare.EQUAL, rpc.Compare.CREATE, 0)
        _add_put(txn.success, key, stored.SerializeToString())
        _add_put(txn.success, self._ks.audit_key(name, audit.id), audit.SerializeToString())
        _add_put(txn.success, self._ks.commit_marker, b"")
        response = await self._etcd.txn(txn, timeout=timeout)
        if not response.succeeded:
            raise AlreadyExistsError("tenant", name)
        revision = int(response.header.revision)
        await self._catch_up(revision)
        kv = rpc.KeyValue(
            key=key,
            value=stored.SerializeToString(),
            create_revision=revision,
            mod_revision=revision,
        )
        return tenant_from_kv(self._ks, kv), revision

    # ----------------------------------------------------------------- records

    async def commit_records(
        self,
        tenant: str | None,
        changes: Sequence[RecordChange],
        audits: Sequence[audit_pb2.AuditRecord],
        *,
        timeout: float | None = None,
        options: WriteOptions | None = None,
    ) -> int:
        """Commit record changes and their audit records in one Txn; returns its revision.

        For everything that is not a config entry (environments, schemas,
        flag sets, API keys, ...): the same all-or-nothing shape as config
        writes; ``changes`` may be empty for audit-only commits (audited
        reads). With ``tenant`` set the Txn also requires the tenant to exist
        and the audit records go under the tenant; without, under the
        installation-wide audit prefix. Audit records get their ``id`` here.
        A failed compare raises ABORTED naming the first key that moved (or
        NOT_FOUND for a missing tenant) and writes nothing. Give ``options`` (the
        call's ``WriteOptions``: its time budget, and the actor, reason and trace id
        of audit records that name none) or, for internal commits, ``timeout``.
        """
        if not changes and not audits:
            raise ValueError("commit_records needs at least one change or audit record")
        if options is not None:
            timeout = options.timeout
            for audit in audits:
                options.stamp(audit)
        if timeout is None:
            raise ValueError("commit_records needs options or a timeout")
        txn = rpc.TxnRequest()
        for change in changes:
            if change.expected_mod_revision is not None:
                _add_compare(
                    txn.compare,
                    change.key,
                    rpc.Compare.EQUAL,
                    rpc.Compare.MOD,
                    change.expected_mod_revision,
                )
        if tenant is not None:
            _add_present(txn.compare, self._ks.tenant_key(tenant))
        for change in changes:
            if change.value is not None:
                _add_put(txn.success, change.key, change.value)
            else:
                txn.success.add().request_delete_range.key = change.key
        audit_prefix = (
            self._ks.audit_prefix(tenant) if tenant is not None else self._ks.sys_audit_prefix
        )
        for audit in audits:
            audit.id = new_audit_id()
            if not audit.HasField("time"):
                set_now(audit.time)
            _add_put(txn.success, audit_prefix + audit.id.encode(), audit.SerializeToString())
        _add_put(txn.success, self._ks.commit_marker, b"")
        for change in changes:
            found = txn.failure.add().request_range
            found.key, found.keys_only = change.key, True
        if tenant is not None:
            found = txn.failure.add().request_range
            found.key, found.keys_only = self._ks.tenant_key(tenant), True
        response = await self._etcd.txn(txn, timeout=timeout)
        if not response.succeeded:
            found = [r.response_range.kvs for r in response.responses]
            if tenant is not None and not found[-1]:
                raise missing_tenant(tenant)
            for change, kvs in zip(changes, found, strict=False):
                current = int(kvs[0].mod_revision) if kvs else 0
                if change.expected_mod_revision not in (None, current):
                    raise ConflictError(
                        change.label or change.key.decode(), change.expected_mod_revision, current
                    )
            raise ConflictError("records changed meanwhile", None, 0)  # pragma: no cover
        revision = int(response.header.revision)
        await self._catch_up(revision)
        return revision

    async def scan(self, prefix: bytes, *, timeout: float) -> list[Any]:
        """Every etcd key-value under ``prefix`` now, in bounded pages (one-time scans of
        keys the mirror does not hold, such as the installation-wide audit trail)."""
        return await self._etcd.range_all(prefix, timeout=timeout)

    # ------------------------------------------------------------------ config

    async def put(self, key: ConfigKey, value: str, options: WriteOptions) -> WriteResult:
        def change(_current: Current, version: int) -> Change:
            return Change(
                config_pb2.OPERATION_PUT,
                self._record(value, version, options, config_pb2.OPERATION_PUT),
            )

        try:
            return await self._write(key, options, options.timeout, change)
        except (ConflictError, NotFoundError) as refused:
            return await self.replay_or_raise(key, options, refused)

    async def delete(self, key: ConfigKey, options: WriteOptions) -> WriteResult:
        def change(current: Current, _version: int) -> Change:
            if current.entry is None:
                raise NotFoundError("config entry", str(key))
            return Change(config_pb2.OPERATION_DELETE, None)

        # "Absent" must come from etcd, not from a mirror that may lag another replica.
        try:
            return await self._write(key, options, options.timeout, change, guess_absent=False)
        except (ConflictError, NotFoundError) as refused:
            return await self.replay_or_raise(key, options, refused)

    async def rollback(self, key: ConfigKey, to_version: int, options: WriteOptions) -> WriteResult:
        deadline = _Deadline(options.timeout)
        target = await self.history_record(key, to_version, timeout=deadline.left())
        if target.operation == config_pb2.OPERATION_DELETE:
            raise FailedPreconditionError(
                f"version {to_version} of {key} is a deletion; use Delete to remove the value"
            )

        def change(_current: Current, version: int) -> Change:
            record = self._record(target.value, version, options, config_pb2.OPERATION_ROLLBACK)
            record.rolled_back_to = to_version
            record.labels.clear()
            record.labels.update(target.labels)
            return Change(config_pb2.OPERATION_ROLLBACK, record, rolled_back_to=to_version)

        try:
            return await self._write(key, options, deadline.left(), change)
        except (ConflictError, NotFoundError) as refused:
            return await self.replay_or_raise(key, options, refused)

    async def replay(self, key: ConfigKey, options: WriteOptions) -> WriteResult | None:
        """The first result of this write if its request id is remembered, else None.

        Asked after a refusal that a retry can meet because state moved on
        since its first attempt (schemas, the rollback target, the key's
        revision), so the retry answers what the first attempt did. A retry
        that passes validation is caught by its Txn's compare on the id.
        FAILED_PRECONDITION when the id belongs to another request.
        """
        if options.request is None:
            return None
        found = await self.requests.find(key.tenant, options.request, options.timeout)
        return None if found is None else await self._replayed(key, found, options.timeout)

    async def replay_or_raise(
        self, key: ConfigKey, options: WriteOptions, refused: Exception
    ) -> WriteResult:
        """After a refusal (conflict, not found): a concurrent first attempt of the same
        request may have committed meanwhile, and then its result is the answer."""
        replayed = await self.replay(key, options)
        if replayed is None:
            raise refused
        return replayed

    async def _replayed(self, key: ConfigKey, found: Remembered, timeout: float) -> WriteResult:
        """The WriteResult of a remembered change, rebuilt from its history copies."""
        reads = rpc.TxnRequest()
        reads.success.add().request_range.key = self._ks.hist_key(key, found.version)
        if found.previous_mod_revision and found.version > 1:
            reads.success.add().request_range.key = self._ks.hist_key(key, found.version - 1)
        response = await self._etcd.txn(reads, timeout=timeout)
        copies = [r.response_range.kvs for r in response.responses]
        record = (
            storage_pb2.StoredValue.FromString(copies[0][0].value)
            if copies[0] and found.operation != config_pb2.OPERATION_DELETE
            else None
        )
        previous = None
        if len(copies) > 1 and copies[1]:
            previous = entry_from_stored(
                key,
                storage_pb2.StoredValue.FromString(copies[1][0].value),
                create_revision=found.previous_create_revision,
                mod_revision=found.previous_mod_revision,
            )
        current = Current(
            previous,
            found.previous_create_revision,
            found.previous_mod_revision,
            found.version - 1,
            True,
        )
        change = Change(
            found.operation,
            record,
            rolled_back_to=record.rolled_back_to if record is not None else 0,
        )
        return WriteResult(found.revision, found.version, key, current, change)

    async def put_many(
        self,
        writes: Sequence[tuple[ConfigKey, str]],
        options: WriteOptions,
        attributes: Mapping[str, str] | None = None,
    ) -> list[WriteResult]:
        """Put several keys of one tenant in ONE Txn (Promote): all or nothing.

        Each key gets its own version, history copy and audit record (with
        ``attributes``), exactly as a single Put would write it, and all share
        the commit revision. ``options.expected_revision`` does not apply
        (callers compare values themselves); a race with another writer
        re-reads every key and retries, bounded like single writes.
        """
        if not writes:
            raise ValueError("put_many needs at least one write")
        tenant = writes[0][0].tenant
        if any(key.tenant != tenant for key, _ in writes):
            raise ValueError("put_many writes keys of one tenant")
        deadline = _Deadline(options.timeout)
        async with contextlib.AsyncExitStack() as held:
            for cfg_key in sorted({self._ks.cfg_key(key) for key, _ in writes}):
                await held.enter_async_context(self._locks.hold(cfg_key))
            for attempt in range(MAX_ATTEMPTS):
                reads = rpc.TxnRequest()
                for key, _ in writes:
                    self._add_reads(reads.success, key)
                read = await self._etcd.txn(reads, timeout=deadline.left())
                currents = [
                    self._current_from(key, read.responses[3 * i : 3 * i + 3])
                    for i, (key, _) in enumerate(writes)
                ]
                if not currents[0].tenant_exists:
                    raise missing_tenant(tenant)
                txn = rpc.TxnRequest()
                _add_present(txn.compare, self._ks.tenant_key(tenant))
                planned = []
                for (key, value), current in zip(writes, currents, strict=True):
                    version = current.last_version + 1
                    change = Change(
                        config_pb2.OPERATION_PUT,
                        self._record(value, version, options, config_pb2.OPERATION_PUT),
                    )
                    self._add_change(
                        txn,
                        key,
                        self._ks.cfg_key(key),
                        current,
                        change,
                        version,
                        options,
                        attributes,
                    )
                    planned.append((key, current, change, version))
                _add_put(txn.success, self._ks.commit_marker, b"")
                response = await self._etcd.txn(txn, timeout=deadline.left())
                if response.succeeded:
                    revision = int(response.header.revision)
                    await self._catch_up(revision)
                    return [
                        WriteResult(revision, version, key, current, change)
                        for key, current, change, version in planned
                    ]
                if deadline.expired():
                    break
                await asyncio.sleep(RACE_BACKOFF.delay(attempt))
        raise ConflictError(
            f"{len(writes)} keys of tenant {tenant!r} kept changing: gave up after "
            f"{attempt + 1} attempts",
            None,
            0,
        )

    @staticmethod
    def _record(
        value: str, version: int, options: WriteOptions, operation: int
    ) -> storage_pb2.StoredValue:
        record = storage_pb2.StoredValue(
            value=value,
            version=version,
            updated_by=options.actor,
            reason=options.reason,
            operation=operation,  # type: ignore[arg-type]
            value_digest=digest(value.encode()),
            labels=options.labels or None,  # an empty map still costs its construction
        )
        set_now(record.update_time)  # in place: a Timestamp argument would be copied
        return record

    def _add_reads(self, ops: Any, key: ConfigKey) -> None:
        """Append the range ops that read a key's state (value, last history version,
        tenant) to ``ops``: a read-only Txn's, or a write Txn's failure branch."""
        ops.add().request_range.key = self._ks.cfg_key(key)
        hist = self._ks.hist_prefix(key)
        last = ops.add().request_range
        last.key, last.range_end, last.limit, last.keys_only = (
            hist,
            prefix_range_end(hist),
            1,
            True,
        )
        last.sort_order, last.sort_target = rpc.RangeRequest.DESCEND, rpc.RangeRequest.KEY
        tenant = ops.add().request_range
        tenant.key, tenant.count_only = self._ks.tenant_key(key.tenant), True

    def _current_from(self, key: ConfigKey, responses: Any) -> Current:
        cfg, last, tenant = (r.response_range for r in responses)
        last_version = self._ks.version_from_hist_key(last.kvs[0].key) if last.kvs else 0
        if cfg.kvs:
            kv = cfg.kvs[0]
            return Current(
                entry_from_kv(key, kv),
                int(kv.create_revision),
                int(kv.mod_revision),
                last_version,
                tenant.count > 0,
            )
        return Current(None, 0, 0, last_version, tenant.count > 0)

    async def _read_current(self, key: ConfigKey, timeout: float) -> Current:
        txn = rpc.TxnRequest()
        self._add_reads(txn.success, key)
        response = await self._etcd.txn(txn, timeout=timeout)
        return self._current_from(key, response.responses)

    async def _write(
        self,
        key: ConfigKey,
        options: WriteOptions,
        timeout: float,
        decide: Callable[[Current, int], Change],
        *,
        guess_absent: bool = True,
    ) -> WriteResult:
        expected_revision = options.expected_revision
        deadline = _Deadline(timeout)
        cfg_key = self._ks.cfg_key(key)
        async with self._locks.hold(cfg_key):
            current = self._hint(key)
            if current is not None and current.entry is None and not guess_absent:
                current = None
            if current is None or (
                expected_revision is not None and current.mod_revision != expected_revision
            ):
                current = await self._read_current(key, deadline.left())
            return await self._commit(key, cfg_key, current, options, deadline, decide)

    def _hint(self, key: ConfigKey) -> Current | None:
        """The key's state as this process's mirror shows it, as a guess.

        Only a guess: the Txn's compares reject a wrong one and its failure
        branch returns the real state, so a wrong guess costs one round trip
        and a right one saves the read.
        """
        if not self._mirror.synced or self._mirror.tenant(key.tenant) is None:
            return None
        entry = self._mirror.get(key)
        if entry is None:
            # Most writes to an absent key create it for the first time. If it
            # had a history (deleted earlier), the compare on version 1 fails
            # and the failure branch returns the real last version.
            return Current(None, 0, 0, 0, True)
        return Current(entry, entry.create_revision, entry.mod_revision, entry.version, True)

    async def _commit(
        self,
        key: ConfigKey,
        cfg_key: bytes,
        current: Current,
        options: WriteOptions,
        deadline: _Deadline,
        decide: Callable[[Current, int], Change],
    ) -> WriteResult:
        expected_revision = options.expected_revision
        request = options.request
        ledger_key = b""
        lease = 0
        if request is not None:
            ledger_key = self.requests.key(key.tenant, request)
            lease = await self.requests.lease(deadline.left())
        for attempt in range(MAX_ATTEMPTS):
            if not current.tenant_exists:
                raise missing_tenant(key.tenant)
            if expected_revision is not None and current.mod_revision != expected_revision:
                raise ConflictError(f"config entry {key}", expected_revision, current.mod_revision)
            version = current.last_version + 1
            change = decide(current, version)
            txn = rpc.TxnRequest()
            self._add_change(txn, key, cfg_key, current, change, version, options)
            _add_present(txn.compare, self._ks.tenant_key(key.tenant))
            _add_put(txn.success, self._ks.commit_marker, b"")
            # Losing a race returns the state that won, so a retry needs no extra read.
            self._add_reads(txn.failure, key)
            if request is not None:
                # The id is new, and is recorded with the change (or neither is).
                _add_compare(txn.compare, ledger_key, rpc.Compare.EQUAL, rpc.Compare.CREATE, 0)
                put = txn.success.add().request_put
                put.key, put.lease = ledger_key, lease
                put.value = self.requests.encode(
                    request,
                    change.operation,
                    version,
                    current.create_revision,
                    current.mod_revision,
                )
                txn.failure.add().request_range.key = ledger_key
            response = await self._etcd.txn(txn, timeout=deadline.left())
            if response.succeeded:
                revision = int(response.header.revision)
                if request is not None:
                    await self.requests.committed(key.tenant)
                await self._catch_up(revision)
                return WriteResult(revision, version, key, current, change)
            if request is not None and response.responses[3].response_range.kvs:
                # A concurrent attempt of the same request (another replica) won.
                found = self.requests.check(
                    request, self.requests.decode(response.responses[3].response_range.kvs[0])
                )
                await self._catch_up(found.revision)
                return await self._replayed(key, found, deadline.left())
            current = self._current_from(key, response.responses[:3])
            if deadline.expired():
                break
            # Writers that keep colliding on one hot key spread out (full jitter).
            await asyncio.sleep(RACE_BACKOFF.delay(attempt))
        raise ConflictError(
            f"config entry {key} is changing too fast: gave up after {attempt + 1} attempts",
            None,
            current.mod_revision,
        )

    def _add_change(
        self,
        txn: Any,
        key: ConfigKey,
        cfg_key: bytes,
        current: Current,
        change: Change,
        version: int,
        options: WriteOptions,
        attributes: Mapping[str, str] | None = None,
    ) -> None:
        """Add one key's share of a write Txn: its compares (the key did not move, the new
        version is not recorded yet) and its ops (value or deletion, history copy, audit
        record). The caller adds the tenant compare and the commit marker."""
        audit = self._audit(key, change, current, version, options)
        if attributes:
            audit.attributes.update(attributes)
        hist_key = self._ks.hist_key(key, version)
        _add_compare(txn.compare, cfg_key, rpc.Compare.EQUAL, rpc.Compare.MOD, current.mod_revision)
        _add_compare(txn.compare, hist_key, rpc.Compare.EQUAL, rpc.Compare.CREATE, 0)
        if change.record is None:
            txn.success.add().request_delete_range.key = cfg_key
            history = self._tombstone(version, options)
        else:
            history = bytes(change.record.SerializeToString())  # the value and its history copy
            _add_put(txn.success, cfg_key, history)
        _add_put(txn.success, hist_key, history)
        _add_put(txn.success, self._ks.audit_key(key.tenant, audit.id), audit.SerializeToString())

    @staticmethod
    def _tombstone(version: int, options: WriteOptions) -> bytes:
        """The history copy of a deletion."""
        tombstone = storage_pb2.StoredValue(
            version=version,
            updated_by=options.actor,
            update_time=now_timestamp(),
            reason=options.reason,
            operation=config_pb2.OPERATION_DELETE,
        )
        return bytes(tombstone.SerializeToString())

    @staticmethod
    def _audit(
        key: ConfigKey,
        change: Change,
        current: Current,
        version: int,
        options: WriteOptions,
    ) -> audit_pb2.AuditRecord:
        record = audit_pb2.AuditRecord(
            id=new_audit_id(),
            operation=change.operation,  # type: ignore[arg-type]
            actor=options.actor,
            reason=options.reason,
            before_digest=current.entry.value_digest if current.entry else "",
            after_digest=change.record.value_digest if change.record else "",
            before_version=current.last_version,
            after_version=version,
            rolled_back_to=change.rolled_back_to,
            trace_id=options.trace_id,
        )
        # Message fields in place (arguments would be copied). One instant per change:
        # the value's update time is the audit record's time.
        where = record.key
        where.tenant, where.environment, where.service, where.key = (
            key.tenant,
            key.environment,
            key.service,
            key.key,
        )
        if change.record is not None:
            stamp, when = change.record.update_time, record.time
            when.seconds, when.nanos = stamp.seconds, stamp.nanos
        else:
            set_now(record.time)
        if options.expected_revision is not None:
            record.expected_revision = options.expected_revision
        return record

    async def _catch_up(self, revision: int) -> None:
        """Wait briefly until this process's mirror shows the write (read-your-writes)."""
        await self._mirror.wait_applied(revision, MIRROR_CATCH_UP)

    # ----------------------------------------------------------------- history

    async def history(
        self, key: ConfigKey, *, page_size: int, before_version: int | None, timeout: float
    ) -> tuple[list[config_pb2.HistoryRecord], int | None, int]:
        """A page of history, newest first: (records, next before_version, revision)."""
        prefix = self._ks.hist_prefix(key)
        end = (
            self._ks.hist_key(key, before_version)
            if before_version is not None
            else prefix_range_end(prefix)
        )
        response = await self._etcd.range(
            rpc.RangeRequest(
                key=prefix,
                range_end=end,
                sort_order=rpc.RangeRequest.DESCEND,
                sort_target=rpc.RangeRequest.KEY,
                limit=page_size,
            ),
            timeout=timeout,
        )
        records = [history_from_kv(kv) for kv in response.kvs]
        following = records[-1].version if response.more and records else None
        return records, following, int(response.header.revision)

    async def history_record(
        self, key: ConfigKey, version: int, *, timeout: float
    ) -> config_pb2.HistoryRecord:
        response = await self._etcd.range(
            rpc.RangeRequest(key=self._ks.hist_key(key, version)), timeout=timeout
        )
        if not response.kvs:
            raise NotFoundError(
                "version", f"{key}@{version}", f"version {version} of {key} not found in history"
            )
        return history_from_kv(response.kvs[0])


class KeyLocks:
    """One asyncio lock per key, created on demand and dropped when unused.

    Writes to the same key from one process queue here instead of racing in
    etcd: optimistic retries are unfair under sustained contention (a writer
    can lose every round), a FIFO lock is not. Writers on other replicas still
    race through the Txn compare, which is rare and bounded.
    """

    def __init__(self) -> None:
        self._locks: dict[bytes, tuple[asyncio.Lock, int]] = {}

    def hold(self, key: bytes) -> _Held:
        """``async with locks.hold(key):`` -- a plain class, not a generator-based
        context manager, because every write takes one (a few us less each)."""
        return _Held(self, key)

    def _enter(self, key: bytes) -> asyncio.Lock:
        found = self._locks.get(key)
        lock, users = found if found is not None else (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        return lock

    def _leave(self, key: bytes) -> None:
        lock, users = self._locks[key]
        if users == 1:
            del self._locks[key]
        else:
            self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class _Held:
    """One writer's hold on one key's lock (see ``KeyLocks.hold``)."""

    __slots__ = ("_key", "_lock", "_locks")

    def __init__(self, locks: KeyLocks, key: bytes) -> None:
        self._locks = locks
        self._key = key
        self._lock: asyncio.Lock | None = None

    async def __aenter__(self) -> None:
        lock = self._locks._enter(self._key)
        try:
            await lock.acquire()
        except BaseException:  # cancelled while queued: no longer a user
            self._locks._leave(self._key)
            raise
        self._lock = lock

    async def __aexit__(self, *_exc: object) -> None:
        assert self._lock is not None
        self._lock.release()
        self._locks._leave(self._key)


class _Deadline:
    """The time left of one operation that makes several etcd calls."""

    def __init__(self, timeout: float) -> None:
        # time.monotonic, not the loop's clock: get_running_loop() makes a getpid()
        # system call each time (CPython 3.11), and every write starts a deadline.
        self._end = time.monotonic() + timeout

    def left(self) -> float:
        return max(0.05, self._end - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self._end
