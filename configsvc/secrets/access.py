"""Who may read secret plaintext, and the audit trail of every attempt.

Until the auth issue lands the permission is a server setting
(``--secret-readers``); ``AccessPolicy`` is the seam RBAC replaces. Every
access, granted or denied, is an ``AuditRecord`` of kind ``secret`` with
``OPERATION_ACCESS``, the caller as actor and the reference (never the value)
in its attributes.

Audit records are committed *before* plaintext leaves the server (fail
closed: no record, no plaintext). To keep that cheap under load the auditor
group-commits: callers queue records and await one shared flush; while a
flush is in the air, new records wait for the next one, so an idle server
adds one etcd transaction of latency and a busy one writes up to
``batch`` records per transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from configsvc.store.keyspace import Keyspace
from configsvc.store.ports import WriterPort
from configsvc.v1 import audit_pb2, config_pb2

log = logging.getLogger(__name__)

KIND = "secret"
GRANTED, DENIED = "granted", "denied"


class AccessPolicy(Protocol):
    """Decides whether ``actor`` may read secret plaintext in ``tenant``."""

    def allows(self, actor: str, tenant: str) -> bool: ...

    @property
    def hint(self) -> str:
        """How the permission is granted (for PERMISSION_DENIED messages)."""
        ...


@dataclass(frozen=True)
class ReaderList:
    """``IDENTITY`` or ``IDENTITY@TENANT`` entries; ``*`` as identity matches everyone."""

    entries: tuple[str, ...]
    hint: ClassVar[str] = "server setting --secret-readers"

    def allows(self, actor: str, tenant: str) -> bool:
        for entry in self.entries:
            who, _, scope = entry.partition("@")
            if who in ("*", actor) and scope in ("", tenant):
                return True
        return False


@dataclass(frozen=True)
class Access:
    """One secret access to audit."""

    tenant: str
    actor: str
    ref: str
    decision: str
    config_key: str
    method: str

    def record(self) -> audit_pb2.AuditRecord:
        return audit_pb2.AuditRecord(
            kind=KIND,
            tenant=self.tenant,
            name=self.ref,
            actor=self.actor,
            operation=config_pb2.OPERATION_ACCESS,
            attributes={
                "ref": self.ref,
                "decision": self.decision,
                "config_key": self.config_key,
                "method": self.method,
            },
        )


class AccessAuditor:
    """Group-commits access records through ``Writer.commit_records``."""

    def __init__(self, writer: WriterPort, keyspace: Keyspace, *, batch: int = 100) -> None:
        self._writer = writer
        self._ks = keyspace
        self._batch = max(1, batch)
        self._pending: list[tuple[Access, asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None
        self.transactions = 0

    async def record(self, accesses: Sequence[Access], timeout: float) -> None:
        """Return once every record is committed; raises what the commit raised."""
        if not accesses:
            return
        loop = asyncio.get_running_loop()
        waits = []
        for access in accesses:
            done: asyncio.Future[None] = loop.create_future()
            self._pending.append((access, done))
            waits.append(done)
        if self._flushing is None or self._flushing.done():
            self._flushing = loop.create_task(self._flush(timeout))
        await asyncio.wait_for(asyncio.gather(*waits), timeout=max(0.01, timeout))

    async def _flush(self, timeout: float) -> None:
        while self._pending:
            taken: list[tuple[Access, asyncio.Future[None]]] = []
            tenant = self._pending[0][0].tenant
            rest = []
            for item in self._pending:
                if item[0].tenant == tenant and len(taken) < self._batch:
                    taken.append(item)
                else:
                    rest.append(item)
            self._pending = rest
            try:
                await self._writer.commit_records(
                    tenant, [], [access.record() for access, _ in taken], timeout=timeout
                )
                self.transactions += 1
                error: BaseException | None = None
            except Exception as exc:  # every waiter gets the same failure
                error = exc
            for _, done in taken:
                if done.done():
                    continue
                if error is None:
                    done.set_result(None)
                else:
                    done.set_exception(error)
