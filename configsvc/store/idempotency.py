"""Request ids of writes: remembered in etcd, in the write's own transaction.

A client that lost the answer to a write (deadline, dropped connection, the
server killed after the commit) cannot tell whether it happened; retrying
without an id would write a second version. With ``request_id`` the write's
Txn also creates ``<root>/t/<tenant>/req/<sha256(id)>`` (compare: absent), so
the id and the change commit together or not at all, on every replica at
once. The record holds a fingerprint of the request and what the change was
(operation, version, the previous entry's revisions); its create revision is
the change's revision, and the change's entries are rebuilt from the history
copies, which outlive compaction. A retry finds the record and answers the
same result without writing; the same id with another request is refused.

Why a key of its own and not the audit record: the audit trail is
append-only and scanned by time, a retry needs one point lookup, and a key
can carry a lease. Bounded in time by that lease (one per process, re-granted
each ``lease_reuse`` seconds, TTL ``retention + lease_reuse``: an id lives at
least ``retention`` seconds), and in count by trimming each tenant's oldest
records beyond ``max_per_tenant`` (checked every ``trim_every`` remembered
writes of a process). The ``req`` kind is neither a config key nor a mirrored
record kind, so the mirror and watch streams ignore it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import re
import time
from dataclasses import dataclass
from typing import Any

from aetcd import rpc

from configsvc.errors import (
    BackendUnavailableError,
    DeadlineError,
    FailedPreconditionError,
    FieldViolation,
    InvalidArgumentError,
)
from configsvc.store.etcd import EtcdPort, prefix_range_end
from configsvc.store.keyspace import Keyspace

log = logging.getLogger(__name__)

KIND = "req"
_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
#: Deletes per trimming Txn (etcd allows 128 operations per branch).
_TRIM_BATCH = 100


@dataclass(frozen=True)
class IdempotencySettings:
    """How long and how many request ids are remembered."""

    retention: float = 600.0
    """Seconds a request id is remembered at least (a retry within it is answered)."""
    lease_reuse: float = 60.0
    """Seconds one etcd lease serves new ids; ids live up to ``retention`` + this."""
    max_per_tenant: int = 100_000
    """Most ids kept per tenant; the oldest beyond it are deleted first."""
    trim_every: int = 256
    """Remembered writes of one process between two checks of a tenant's count."""


@dataclass(frozen=True)
class RequestId:
    """The id of one logical write and the fingerprint of its request."""

    value: str
    fingerprint: str
    """Hex SHA-256 of the operation, the caller and the request without its id."""
    what: str
    """How messages name the write (``Put of t/e/s/k``)."""


@dataclass(frozen=True)
class Remembered:
    """A committed write found under its request id."""

    fingerprint: str
    what: str
    operation: int
    revision: int
    """The change's revision (the record's create revision: same Txn)."""
    version: int
    previous_create_revision: int
    previous_mod_revision: int
    """0 when the key had no value before the change."""


def request_id(value: str, operation: str, actor: str, request: Any, what: str) -> RequestId | None:
    """Validate ``value`` (the request's ``request_id``) and fingerprint ``request``.

    The fingerprint is over the request's deterministic encoding with the id
    cleared, so a byte-identical retry matches and any other change (value,
    reason, labels, expected revision, key) does not; the operation and the
    caller are part of it, so one id cannot answer another caller's write.
    """
    if not value:
        return None
    if not _ID.fullmatch(value):
        raise InvalidArgumentError(
            [
                FieldViolation(
                    "request_id",
                    "must be 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', ':', '-' "
                    "(a UUID is the usual choice), or empty for none",
                )
            ]
        )
    copy = type(request)()
    copy.CopyFrom(request)
    copy.request_id = ""
    digest = hashlib.sha256()
    for part in (operation.encode(), actor.encode(), copy.SerializeToString(deterministic=True)):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return RequestId(value, digest.hexdigest(), what)


class RequestLedger:
    """Reads, writes (as Txn ops) and trims the remembered request ids."""

    def __init__(
        self, etcd: EtcdPort, keyspace: Keyspace, settings: IdempotencySettings | None = None
    ) -> None:
        self._etcd = etcd
        self._ks = keyspace
        self.settings = settings or IdempotencySettings()
        self._lease = 0
        self._lease_until = 0.0
        self._lease_lock = asyncio.Lock()
        self._since_trim: dict[str, int] = {}

    def key(self, tenant: str, request: RequestId) -> bytes:
        return self._ks.record_key(tenant, KIND, hashlib.sha256(request.value.encode()).hexdigest())

    async def lease(self, timeout: float) -> int:
        """The lease new ids attach to (granted once per ``lease_reuse`` seconds)."""
        async with self._lease_lock:
            if self._lease and time.monotonic() < self._lease_until:
                return self._lease
            ttl = math.ceil(self.settings.retention + self.settings.lease_reuse)
            self._lease, _granted = await self._etcd.lease_grant(ttl, timeout=timeout)
            self._lease_until = time.monotonic() + self.settings.lease_reuse
            return self._lease

    @staticmethod
    def encode(
        request: RequestId, operation: int, version: int, previous_create: int, previous_mod: int
    ) -> bytes:
        return json.dumps(
            {
                "f": request.fingerprint,
                "w": request.what,
                "op": operation,
                "v": version,
                "pc": previous_create,
                "pm": previous_mod,
            },
            separators=(",", ":"),
        ).encode()

    @staticmethod
    def decode(kv: Any) -> Remembered:
        data = json.loads(kv.value)
        return Remembered(
            str(data["f"]),
            str(data["w"]),
            int(data["op"]),
            int(kv.create_revision),
            int(data["v"]),
            int(data["pc"]),
            int(data["pm"]),
        )

    @staticmethod
    def check(request: RequestId, found: Remembered) -> Remembered:
        """``found`` if it is this request's record; FAILED_PRECONDITION if another's."""
        if found.fingerprint != request.fingerprint:
            raise FailedPreconditionError(
                f"request_id {request.value!r} was already used for another write ({found.what}"
                f", committed at revision {found.revision}); a request id names one logical "
                "write: send a new one for a different request, the same one only to retry"
            )
        return found

    async def find(self, tenant: str, request: RequestId, timeout: float) -> Remembered | None:
        response = await self._etcd.range(
            rpc.RangeRequest(key=self.key(tenant, request)), timeout=timeout
        )
        if not response.kvs:
            return None
        return self.check(request, self.decode(response.kvs[0]))

    async def committed(self, tenant: str) -> None:
        """After a remembered write: every ``trim_every`` of them, trim the tenant."""
        count = self._since_trim.get(tenant, 0) + 1
        if count < self.settings.trim_every:
            self._since_trim[tenant] = count
            return
        self._since_trim.pop(tenant, None)
        try:
            await self.trim(tenant, timeout=5.0)
        except (BackendUnavailableError, DeadlineError) as exc:  # the next check retries
            log.warning("trimming the request ids of tenant %s failed: %s", tenant, exc)

    async def trim(self, tenant: str, *, timeout: float) -> int:
        """Delete the tenant's oldest ids beyond ``max_per_tenant``; returns how many."""
        prefix = self._ks.record_prefix(tenant, KIND)
        end = prefix_range_end(prefix)
        counted = await self._etcd.range(
            rpc.RangeRequest(key=prefix, range_end=end, count_only=True), timeout=timeout
        )
        excess = int(counted.count) - self.settings.max_per_tenant
        deleted = 0
        while excess > 0:
            oldest = await self._etcd.range(
                rpc.RangeRequest(
                    key=prefix,
                    range_end=end,
                    keys_only=True,
                    limit=min(excess, _TRIM_BATCH),
                    sort_order=rpc.RangeRequest.ASCEND,
                    sort_target=rpc.RangeRequest.CREATE,
                ),
                timeout=timeout,
            )
            if not oldest.kvs:
                break
            txn = rpc.TxnRequest()
            for kv in oldest.kvs:
                txn.success.add().request_delete_range.key = kv.key
            await self._etcd.txn(txn, timeout=timeout)
            deleted += len(oldest.kvs)
            excess -= len(oldest.kvs)
        return deleted
