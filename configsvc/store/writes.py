"""What a write carries and what it answers: the write path's value types.

``WriteOptions`` is the one record of everything a change carries besides its
key and value (who, why, trace id, compare-and-swap revision, time budget,
labels, request id); every write -- Put, Delete, Rollback, Promote, the transit
rewrap, records, tenant creation -- is handed one, built by ``WriteOptions``
itself or by ``WriteOptions.of_call`` from an RPC's context. Separate from the
writer so that ``configsvc.store.ports`` can name these types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property

from configsvc.internal.v1 import storage_pb2
from configsvc.model.keys import ConfigKey
from configsvc.rpc import requests
from configsvc.rpc.context import CallContext
from configsvc.store.codec import entry_from_stored
from configsvc.store.idempotency import RequestId
from configsvc.v1 import audit_pb2, config_pb2


@dataclass(frozen=True)
class Current:
    """A key's state as read just before a write."""

    entry: config_pb2.ConfigEntry | None
    """The entry before the write (the mirror's own when the state comes from it)."""
    create_revision: int
    mod_revision: int
    last_version: int
    tenant_exists: bool


@dataclass(frozen=True)
class Change:
    """What a write wants to commit, decided from the current state."""

    operation: int
    record: storage_pb2.StoredValue | None  # None: delete the config key
    rolled_back_to: int = 0


@dataclass(frozen=True, kw_only=True)
class WriteOptions:
    """What every change carries besides the key and value: the one builder of writes.

    Put, Delete, Rollback, Promote, the transit rewrap, records and tenant creation
    are all handed one of these. A servicer builds it with ``of_call`` (who, trace id
    and time left come from the call, the same way for every RPC); code that writes
    on its own behalf (the rewrap, ``configsvc dev``) constructs it directly.
    """

    actor: str
    """Who makes it."""
    timeout: float
    """Seconds the whole change may take, retries included."""
    reason: str = ""
    """Why the change is made; recorded in history and audit."""
    trace_id: str = ""
    """W3C trace id of the request (recorded in the audit record and the change event)."""
    expected_revision: int | None = None
    """Compare-and-swap on the key's mod_revision (0: must be absent); None: unconditional."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Labels stored with a put's value (replacing the previous ones)."""
    request: RequestId | None = None
    """The write's idempotency key (Put, Delete, Rollback); None: not remembered."""

    @classmethod
    def of_call(
        cls,
        context: CallContext,
        budget: float,
        *,
        reason: str = "",
        expected_revision: int | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> WriteOptions:
        """The options of a write made for an RPC: its caller (``rpc.requests.actor``), its
        W3C trace id and the time it has left (its deadline, capped by ``budget`` seconds)."""
        return cls(
            actor=requests.actor(context),
            timeout=requests.time_left(context, budget),
            reason=reason,
            trace_id=requests.trace_id(context),
            expected_revision=expected_revision,
            labels=labels or {},
        )

    def remembered_as(self, request: RequestId | None) -> WriteOptions:
        """The same options with the write's idempotency key."""
        return replace(self, request=request)

    def stamp(self, audit: audit_pb2.AuditRecord) -> audit_pb2.AuditRecord:
        """Fill what ``audit`` does not say yet from these options: actor, reason and
        trace id (records and tenants build their own audit records)."""
        if not audit.actor:
            audit.actor = self.actor
        if not audit.reason:
            audit.reason = self.reason
        if not audit.trace_id:
            audit.trace_id = self.trace_id
        return audit


@dataclass(frozen=True)
class WriteResult:
    """The committed change.

    The entries are built on first use: a Put answers with the entry the
    mirror decoded anyway (read-your-writes waits for it), so building it
    here too would be done for nothing.
    """

    revision: int
    version: int
    key: ConfigKey
    current: Current
    change: Change

    @cached_property
    def entry(self) -> config_pb2.ConfigEntry | None:
        """The entry after the change (None after delete)."""
        if self.change.record is None:
            return None
        before = self.current.entry
        return entry_from_stored(
            self.key,
            self.change.record,
            create_revision=before.create_revision if before is not None else self.revision,
            mod_revision=self.revision,
        )

    @property
    def previous(self) -> config_pb2.ConfigEntry | None:
        """The entry before the change."""
        return self.current.entry


@dataclass(frozen=True)
class RecordChange:
    """One record key to write in ``Writer.commit_records``."""

    key: bytes
    value: bytes | None
    """The new value; None deletes the key."""
    expected_mod_revision: int | None = None
    """Compare-and-swap on the key's mod_revision (0: must be absent); None: unconditional."""
    label: str = ""
    """How error messages name the record (for example "environment prod")."""
