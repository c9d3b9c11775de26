"""Flag sets in etcd: one per tenant and environment, with versions and audit.

Layout (``Keyspace``): the current flag set of environment ``E`` is the
record ``<root>/t/<tenant>/flags/E`` (a RECORD_KIND, so every replica's
mirror holds it and its record listener sees every change); each version is
also copied to ``<root>/t/<tenant>/flaghist/E/<version>`` (read from etcd, not
mirrored), like config history, so history and rollback survive compaction.

The stored value is a small JSON envelope around the flagd definition, which is
kept exactly as written (what ``flagd.sync.v1`` serves)::

    {"version": 3, "bucketing": "current", "definition": {...flagd JSON...},
     "actor": "...", "reason": "...", "time": "2026-...Z"}

Every write is one ``Writer.commit_records`` Txn: current record (CAS on its
mod_revision), history copy (must not exist yet) and an audit record of kind
``flag-set`` named by the environment.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aetcd import rpc

from configsvc.errors import InvalidArgumentError, NotFoundError
from configsvc.flags import schema
from configsvc.flags.evaluator import FlagSet, compile_flag_set
from configsvc.flags.fractional import Bucketing
from configsvc.model.keys import require_segment
from configsvc.model.values import digest, loads_bounded
from configsvc.store.etcd import prefix_range_end
from configsvc.store.keyspace import Keyspace
from configsvc.store.mirror import Record
from configsvc.store.ports import EtcdPort, MirrorPort, WriterPort
from configsvc.store.writer import RecordChange
from configsvc.v1 import audit_pb2, config_pb2

KIND = "flags"
HISTORY_KIND = "flaghist"
AUDIT_KIND = "flag-set"
_VERSION_WIDTH = 20
#: Largest flagd definition accepted (etcd's default request limit is 1.5 MiB).
MAX_DEFINITION_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class StoredFlagSet:
    """One version of a flag set as stored, with its compiled form."""

    tenant: str
    environment: str
    version: int
    revision: int
    bucketing: Bucketing
    actor: str
    reason: str
    time: str
    flag_set: FlagSet
    definition_json: str
    """The flagd definition as JSON text (what sync clients and ``get`` receive), serialized
    once per decoded version rather than by every SyncFlags subscriber and reader."""
    deleted: bool = False


def _envelope(stored: Mapping[str, Any]) -> bytes:
    return json.dumps(stored, separators=(",", ":"), sort_keys=True).encode()


def definition_text(definition: Mapping[str, Any]) -> str:
    """The one text form of a flagd definition: what a stored version decodes to (the
    envelope sorts keys), what readers receive, and what audit digests are taken of, so a
    version's after-digest is the next version's before-digest."""
    return json.dumps(definition, separators=(",", ":"), sort_keys=True)


def _decode(tenant: str, environment: str, raw: bytes, revision: int) -> StoredFlagSet:
    data = json.loads(raw)
    bucketing = data.get("bucketing", "current")
    definition = data.get("definition") or {"flags": {}}
    return StoredFlagSet(
        tenant,
        environment,
        int(data["version"]),
        revision,
        bucketing,
        data.get("actor", ""),
        data.get("reason", ""),
        data.get("time", ""),
        compile_flag_set(definition, bucketing),
        definition_text(definition),
        bool(data.get("deleted", False)),
    )


def load_json(text: str, field: str = "definition") -> Any:
    """Untrusted flag JSON through the bounded reader (``loads_bounded``: nesting, NaN,
    integer digits), its syntax errors worded as the flag API has always worded them
    ("is not JSON: ...")."""
    try:
        return loads_bounded(text, field=field)
    except InvalidArgumentError as exc:
        first = exc.violations[0]
        prefix = "is not valid JSON"
        if len(exc.violations) == 1 and first.description.startswith(prefix):
            raise InvalidArgumentError.single(
                first.field, "is not JSON" + first.description[len(prefix) :]
            ) from None
        raise


def parse_definition(text: str, field: str = "definition") -> dict[str, Any]:
    """The flagd JSON document in ``text``, schema-checked; INVALID_ARGUMENT names the place."""
    if len(text.encode()) > MAX_DEFINITION_BYTES:
        raise InvalidArgumentError.single(
            field, f"is {len(text.encode())} bytes; at most {MAX_DEFINITION_BYTES} are accepted"
        )
    document = load_json(text, field)
    if not isinstance(document, dict):
        raise InvalidArgumentError.single(field, "must be a JSON object with a 'flags' member")
    schema.require_valid(document, field=field)
    return document


class FlagStore:
    """Reads flag sets from the mirror (compiled once per revision) and writes them to etcd."""

    def __init__(
        self, mirror: MirrorPort, writer: WriterPort, etcd: EtcdPort, keyspace: Keyspace
    ) -> None:
        self._mirror = mirror
        self._writer = writer
        self._etcd = etcd
        self._ks = keyspace
        self._compiled: dict[bytes, StoredFlagSet] = {}

    # ------------------------------------------------------------------ keys

    def key(self, tenant: str, environment: str) -> bytes:
        return self._ks.record_key(tenant, KIND, environment)

    def _hist_prefix(self, tenant: str, environment: str) -> bytes:
        return self._ks.record_key(tenant, HISTORY_KIND, environment) + b"/"

    def _hist_key(self, tenant: str, environment: str, version: int) -> bytes:
        return self._hist_prefix(tenant, environment) + f"{version:0{_VERSION_WIDTH}d}".encode()

    def parse_key(self, raw: bytes) -> tuple[str, str] | None:
        """(tenant, environment) of a current flag-set key; None for any other key."""
        root = self._ks.root.encode() + b"/t/"
        if not raw.startswith(root):
            return None
        parts = raw[len(root) :].decode().split("/")
        if len(parts) != 3 or parts[1] != KIND:
            return None
        return parts[0], parts[2]

    # ----------------------------------------------------------------- reads

    def current(self, tenant: str, environment: str) -> StoredFlagSet | None:
        """The live flag set, or None if the environment has none."""
        raw = self.key(tenant, environment)
        record = self._mirror.record(raw)
        if record is None:
            self._compiled.pop(raw, None)
            return None
        return self._compile(raw, tenant, environment, record)

    def _compile(self, raw: bytes, tenant: str, environment: str, record: Record) -> StoredFlagSet:
        cached = self._compiled.get(raw)
        if cached is not None and cached.revision == record.mod_revision:
            return cached
        stored = _decode(tenant, environment, record.value, record.mod_revision)
        self._compiled[raw] = stored
        return stored

    def require(self, tenant: str, environment: str) -> StoredFlagSet:
        stored = self.current(tenant, environment)
        if stored is None:
            raise NotFoundError(
                "flag set",
                f"{tenant}/{environment}",
                f"tenant {tenant!r} has no flag set in environment "
                f"{environment!r}; load one with `configsvc flags put`",
            )
        return stored

    def environments(self, tenant: str) -> list[str]:
        prefix = self._ks.record_prefix(tenant, KIND)
        return [raw[len(prefix) :].decode() for raw, _ in self._mirror.records(prefix)]

    # ---------------------------------------------------------------- writes

    async def put(
        self,
        tenant: str,
        environment: str,
        definition: dict[str, Any],
        *,
        bucketing: Bucketing | None,
        actor: str,
        reason: str,
        expected_revision: int | None,
        timeout: float,
        operation: int = config_pb2.OPERATION_PUT,
        rolled_back_to: int = 0,
        attributes: Mapping[str, str] | None = None,
    ) -> StoredFlagSet:
        """Store a new version (``definition`` already schema-checked)."""
        require_segment("tenant", tenant)
        require_segment("environment", environment)
        before = self.current(tenant, environment)
        version = await self._next_version(tenant, environment, before, timeout)
        chosen: Bucketing = bucketing or (before.bucketing if before else "current")
        body = {
            "version": version,
            "bucketing": chosen,
            "definition": definition,
            "actor": actor,
            "reason": reason,
            "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        value = _envelope(body)
        audit = self._audit(
            tenant,
            environment,
            operation,
            actor,
            reason,
            before,
            version,
            expected_revision,
            definition_text(definition).encode(),
            rolled_back_to,
            attributes,
        )
        await self._commit(
            tenant, environment, value, body, before, expected_revision, audit, timeout
        )
        return self.require(tenant, environment)

    async def delete(
        self,
        tenant: str,
        environment: str,
        *,
        actor: str,
        reason: str,
        expected_revision: int | None,
        timeout: float,
    ) -> int:
        before = self.require(tenant, environment)
        version = await self._next_version(tenant, environment, before, timeout)
        body = {
            "version": version,
            "bucketing": before.bucketing,
            "definition": None,
            "deleted": True,
            "actor": actor,
            "reason": reason,
            "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        audit = self._audit(
            tenant,
            environment,
            config_pb2.OPERATION_DELETE,
            actor,
            reason,
            before,
            version,
            expected_revision,
            None,
            0,
            None,
        )
        return await self._commit(
            tenant, environment, None, body, before, expected_revision, audit, timeout
        )

    async def update(
        self,
        tenant: str,
        environment: str,
        change: Callable[[dict[str, Any]], None],
        *,
        actor: str,
        reason: str,
        expected_revision: int | None,
        timeout: float,
        attributes: Mapping[str, str],
    ) -> StoredFlagSet:
        """Apply ``change`` to a copy of the live definition, re-validate and store it."""
        before = self.require(tenant, environment)
        definition = copy.deepcopy(dict(before.flag_set.definition))
        change(definition)
        # An edit must not make the flag set less valid. Sets written through the API are
        # schema-valid, so this is plain validation for them; a set stored below the API
        # with known violations (the testbed's deliberate error cases) stays editable.
        # The live set is only validated when the edited one has violations (rarely).
        found = schema.violations(definition, schema_id=schema.schema_of(definition))
        if found:
            known = set(
                schema.violations(
                    before.flag_set.definition,
                    schema_id=schema.schema_of(before.flag_set.definition),
                )
            )
            new = [v for v in found if v not in known]
            if new:
                raise InvalidArgumentError(new)
        return await self.put(
            tenant,
            environment,
            definition,
            bucketing=None,
            actor=actor,
            reason=reason,
            expected_revision=before.revision if expected_revision is None else expected_revision,
            timeout=timeout,
            attributes=attributes,
        )

    async def rollback(
        self,
        tenant: str,
        environment: str,
        version: int,
        *,
        actor: str,
        reason: str,
        expected_revision: int | None,
        timeout: float,
    ) -> StoredFlagSet:
        old = await self.version(tenant, environment, version, timeout=timeout)
        if old.deleted:
            raise InvalidArgumentError.single(
                "version",
                f"version {version} is a deletion; roll back to a version that holds a flag set",
            )
        return await self.put(
            tenant,
            environment,
            dict(old.flag_set.definition),
            bucketing=old.bucketing,
            actor=actor,
            reason=reason or f"rollback to version {version}",
            expected_revision=expected_revision,
            timeout=timeout,
            operation=config_pb2.OPERATION_ROLLBACK,
            rolled_back_to=version,
        )

    async def _commit(
        self,
        tenant: str,
        environment: str,
        value: bytes | None,
        body: Mapping[str, Any],
        before: StoredFlagSet | None,
        expected_revision: int | None,
        audit: audit_pb2.AuditRecord,
        timeout: float,
    ) -> int:
        label = f"flag set {tenant}/{environment}"
        current_revision = before.revision if before else 0
        changes = [
            RecordChange(
                self.key(tenant, environment),
                value,
                current_revision if expected_revision is None else expected_revision,
                label,
            ),
            RecordChange(
                self._hist_key(tenant, environment, int(body["version"])),
                _envelope(body),
                0,
                f"{label} version {body['version']}",
            ),
        ]
        return await self._writer.commit_records(tenant, changes, [audit], timeout=timeout)

    async def _next_version(
        self, tenant: str, environment: str, before: StoredFlagSet | None, timeout: float
    ) -> int:
        if before is not None:
            return before.version + 1
        # After a deletion the history goes on: the newest history copy has the last number.
        prefix = self._hist_prefix(tenant, environment)
        response = await self._etcd.range(
            rpc.RangeRequest(
                key=prefix,
                range_end=prefix_range_end(prefix),
                keys_only=True,
                limit=1,
                sort_order=rpc.RangeRequest.DESCEND,
                sort_target=rpc.RangeRequest.KEY,
            ),
            timeout=timeout,
        )
        if response.kvs:
            return int(bytes(response.kvs[0].key).rsplit(b"/", 1)[1]) + 1
        return 1

    def _audit(
        self,
        tenant: str,
        environment: str,
        operation: int,
        actor: str,
        reason: str,
        before: StoredFlagSet | None,
        version: int,
        expected_revision: int | None,
        after: bytes | None,
        rolled_back_to: int,
        attributes: Mapping[str, str] | None,
    ) -> audit_pb2.AuditRecord:
        audit = audit_pb2.AuditRecord(
            kind=AUDIT_KIND,
            tenant=tenant,
            name=environment,
            operation=operation,  # type: ignore[arg-type]
            actor=actor,
            reason=reason,
            after_version=version,
            before_version=before.version if before else 0,
            rolled_back_to=rolled_back_to,
            before_digest=digest(before.definition_json.encode()) if before else "",
            after_digest=digest(after) if after is not None else "",
            attributes=dict(attributes or {}),
        )
        if expected_revision is not None:
            audit.expected_revision = expected_revision
        return audit

    # --------------------------------------------------------------- history

    async def history(
        self,
        tenant: str,
        environment: str,
        *,
        page_size: int,
        before_version: int | None,
        timeout: float,
    ) -> tuple[list[StoredFlagSet], int | None]:
        """A page of versions, newest first, and the ``before_version`` of the next page."""
        prefix = self._hist_prefix(tenant, environment)
        end = (
            self._hist_key(tenant, environment, before_version)
            if before_version is not None
            else prefix_range_end(prefix)
        )
        response = await self._etcd.range(
            rpc.RangeRequest(
                key=prefix,
                range_end=end,
                limit=page_size,
                sort_order=rpc.RangeRequest.DESCEND,
                sort_target=rpc.RangeRequest.KEY,
            ),
            timeout=timeout,
        )
        versions = [
            _decode(tenant, environment, bytes(kv.value), int(kv.mod_revision))
            for kv in response.kvs
        ]
        following = versions[-1].version if response.more and versions else None
        return versions, following

    async def version(
        self, tenant: str, environment: str, version: int, *, timeout: float
    ) -> StoredFlagSet:
        response = await self._etcd.range(
            rpc.RangeRequest(key=self._hist_key(tenant, environment, version)), timeout=timeout
        )
        if not response.kvs:
            raise NotFoundError(
                "flag set version",
                f"{tenant}/{environment}@{version}",
                f"version {version} of flag set {tenant}/{environment} not found in history",
            )
        kv = response.kvs[0]
        return _decode(tenant, environment, bytes(kv.value), int(kv.mod_revision))
