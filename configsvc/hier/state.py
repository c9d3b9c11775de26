"""The hierarchy records of one tenant as ready-to-use objects, rebuilt when records change.

Building a ``SchemaRegistry`` compiles every schema and a ``Rule`` checks its
logic, so the per-tenant state is built once and reused until one of that
tenant's records changes. Stored
records were validated on write; one that no longer loads (a stricter engine)
is skipped and logged rather than blocking every write of the tenant.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from configsvc.errors import InvalidArgumentError
from configsvc.hier import records
from configsvc.hier.records import StoredRecord
from configsvc.resolve import LayerValue, Template
from configsvc.store.keyspace import Keyspace
from configsvc.store.mirror import RecordBatch
from configsvc.store.ports import MirrorPort
from configsvc.validate import Rule, SchemaBinding, SchemaRegistry, Scope

log = logging.getLogger(__name__)
T = TypeVar("T")


def schema_binding(tenant: str, record: StoredRecord) -> SchemaBinding:
    body = record.body
    return SchemaBinding(
        pattern=body["pattern"],
        schema=json.loads(body["schema"]),
        version=record.version,
        source=record.name,
        scope=Scope(tenant, body.get("environment", ""), body.get("service", "")),
    )


def rule_of(tenant: str, record: StoredRecord) -> Rule:
    body = record.body
    return Rule(
        name=record.name,
        logic=json.loads(body["logic"]),
        message=body["message"],
        scope=Scope(tenant, body.get("environment", ""), body.get("service", "")),
    )


def template_of(tenant: str, record: StoredRecord) -> Template:
    body = record.body
    ref = f"{record.name}@{record.version}"
    return Template(
        name=record.name,
        version=record.version,
        entries={
            key: LayerValue(value, record.mod_revision, f"{tenant}/{ref}/{key}")
            for key, value in body.get("values", {}).items()
        },
        extends=tuple(body.get("extends", ())),
    )


@dataclass
class TenantState:
    """Schemas, rules, templates, extends lists and environments of one tenant."""

    tenant: str
    schemas: dict[str, StoredRecord] = field(default_factory=dict)
    """Latest version of each schema name (deleted ones included)."""
    rules: dict[str, StoredRecord] = field(default_factory=dict)
    """Latest version of each rule name (deleted ones included)."""
    bindings: list[SchemaBinding] = field(default_factory=list)
    rule_objects: list[Rule] = field(default_factory=list)
    templates: dict[tuple[str, int], Template] = field(default_factory=dict)
    template_records: dict[tuple[str, int], StoredRecord] = field(default_factory=dict)
    extends: dict[str, StoredRecord] = field(default_factory=dict)
    environments: dict[str, StoredRecord] = field(default_factory=dict)
    registry: SchemaRegistry = field(default_factory=lambda: SchemaRegistry(()))

    def template(self, name: str, version: int) -> Template | None:
        return self.templates.get((name, version))

    def extends_of(self, service: str) -> tuple[str, ...]:
        record = self.extends.get(service)
        return tuple(record.body.get("extends", ())) if record is not None else ()

    def protected(self, environment: str) -> bool:
        record = self.environments.get(environment)
        return bool(record is not None and record.body.get("protected"))


def build(mirror: MirrorPort, ks: Keyspace, tenant: str) -> TenantState:
    state = TenantState(tenant)
    state.schemas = records.latest_by_name(records.scan(mirror, ks, tenant, records.SCHEMA))
    state.rules = records.latest_by_name(records.scan(mirror, ks, tenant, records.RULE))
    state.bindings = _loaded(tenant, state.schemas, schema_binding)
    state.rule_objects = _loaded(tenant, state.rules, rule_of)
    state.registry = SchemaRegistry(state.bindings)
    for record in records.scan(mirror, ks, tenant, records.TEMPLATE):
        state.template_records[(record.name, record.version)] = record
        state.templates[(record.name, record.version)] = template_of(tenant, record)
    state.extends = {r.name: r for r in records.scan(mirror, ks, tenant, records.EXTENDS)}
    state.environments = {r.name: r for r in records.scan(mirror, ks, tenant, records.ENVIRONMENT)}
    return state


def _loaded(
    tenant: str, latest: dict[str, StoredRecord], load: Callable[[str, StoredRecord], T]
) -> list[T]:
    """The records in force (not deleted) as objects; one that no longer loads is logged."""
    found = []
    for record in latest.values():
        if record.body.get("deleted"):
            continue
        try:
            found.append(load(tenant, record))
        except (InvalidArgumentError, ValueError, KeyError) as exc:
            log.warning("stored %s/%s@%d skipped: %s", tenant, record.name, record.version, exc)
    return found


class StateCache:
    """Per-tenant ``TenantState``, rebuilt after a change to that tenant's records.

    Invalidated by a mirror record listener that looks at the changed keys:
    ``records_generation`` alone would rebuild every tenant's state on every
    config write, since the commit marker every Txn touches is a record too.
    ``generation(tenant)`` changes whenever that tenant's state may change.
    """

    def __init__(self, mirror: MirrorPort, ks: Keyspace) -> None:
        self._mirror = mirror
        self._ks = ks
        self._states: dict[str, TenantState] = {}
        self._generations: dict[str, int] = {}
        self._counter = 0
        self._base = 0
        mirror.add_record_listener(self._on_records)
        # The first load after start (or a reload) reports no record changes: start over.
        mirror.add_sync_listener(self._on_sync)

    def _on_sync(self, _synced: bool) -> None:
        self._states.clear()
        self._counter += 1
        self._generations = dict.fromkeys(self._generations, self._counter)
        self._base = self._counter

    def _on_records(self, batch: RecordBatch) -> None:
        for raw, _ in batch.changes:
            tenant = records.tenant_of_record(self._ks, raw)
            if tenant is not None:
                self._states.pop(tenant, None)
                self._counter += 1
                self._generations[tenant] = self._counter

    def generation(self, tenant: str) -> int:
        return self._generations.get(tenant, self._base)

    def get(self, tenant: str) -> TenantState:
        state = self._states.get(tenant)
        if state is None:
            state = self._states[tenant] = build(self._mirror, self._ks, tenant)
        return state
