"""Shared steps of the servicers that store records (validation, environments, templates)."""

from __future__ import annotations

import json
from typing import Any

from configsvc.errors import InvalidArgumentError, NotFoundError
from configsvc.hier import records
from configsvc.hier.guard import WriteGuard
from configsvc.hier.records import StoredRecord
from configsvc.model.keys import ALL, require_segment
from configsvc.model.values import validate_json_value
from configsvc.rpc import requests
from configsvc.rpc.context import CallContext
from configsvc.store.keyspace import Keyspace
from configsvc.store.mirror import Mirror
from configsvc.store.tenants import require_tenant
from configsvc.store.writer import Writer
from configsvc.store.writes import WriteOptions
from configsvc.v1 import audit_pb2, config_pb2


def existing_tenant(mirror: Mirror, name: str) -> str:
    """The validated tenant name of a request; NOT_FOUND unless it exists."""
    tenant = require_segment("tenant", name)
    mirror.require_available(allow_stale=False)
    require_tenant(mirror, tenant)
    return tenant


def optional_scope_part(field: str, value: str) -> str:
    """An optional environment/service scope: "" (or "all") for every one."""
    if not value or value == ALL:
        return ""
    return require_segment(field, value)


def json_document(field: str, text: str) -> Any:
    """Parsed JSON text of a request field, size-checked like config values."""
    if not text:
        raise InvalidArgumentError.single(field, "is required (JSON text)")
    validate_json_value(text, field=field)
    return json.loads(text)


def record_audit(
    kind: str,
    tenant: str,
    name: str,
    actor: str,
    reason: str,
    *,
    deleted: bool = False,
    before_version: int = 0,
    after_version: int = 0,
) -> audit_pb2.AuditRecord:
    """The audit record of a change to a non-config record."""
    return audit_pb2.AuditRecord(
        kind=kind,
        tenant=tenant,
        name=name,
        actor=actor,
        reason=reason,
        operation=config_pb2.OPERATION_DELETE if deleted else config_pb2.OPERATION_PUT,
        before_version=before_version,
        after_version=after_version,
    )


class RecordServicer:
    """What every record-storing servicer holds: the store, the guard and the time budget."""

    def __init__(
        self,
        mirror: Mirror,
        writer: Writer,
        keyspace: Keyspace,
        guard: WriteGuard,
        request_timeout: float,
    ) -> None:
        self._mirror = mirror
        self._writer = writer
        self._ks = keyspace
        self._guard = guard
        self._timeout = request_timeout

    def _write_options(self, context: CallContext) -> WriteOptions:
        """A record write's options: caller, trace id and time left (``WriteOptions.of_call``)."""
        return WriteOptions.of_call(context, self._timeout)

    def _time_left(self, context: CallContext) -> float:
        return requests.time_left(context, self._timeout)

    def _version(self, tenant: str, kind: str, name: str, version: int) -> StoredRecord:
        """One version of a versioned record (0: the latest); NOT_FOUND names what is missing."""
        if version < 0:
            raise InvalidArgumentError.single("version", "must be 0 (latest) or positive")
        found = records.versions(self._mirror, self._ks, tenant, kind, name)
        chosen = [r for r in found if r.version == version] if version else found[-1:]
        if not chosen:
            raise NotFoundError(kind, f"{name}@{version}" if version else name)
        return chosen[0]
