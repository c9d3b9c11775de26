"""The configsvc.v1.TemplateService servicer: immutable template versions and extends lists."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from configsvc.api.records_common import RecordServicer, existing_tenant, record_audit
from configsvc.errors import FieldViolation, InvalidArgumentError
from configsvc.hier import records
from configsvc.hier.records import StoredRecord
from configsvc.hier.sensitive import outside_secret_places, plain_sensitive_places
from configsvc.hier.state import TenantState, template_of
from configsvc.model.keys import ALL, ConfigKey, key_violation, require_segment
from configsvc.model.values import validate_json_value, validate_reason
from configsvc.resolve import Template, is_tombstone, parse_template_ref, parse_value
from configsvc.resolve.templates import expand_templates
from configsvc.rpc import requests
from configsvc.rpc.context import CallContext
from configsvc.store.codec import now_timestamp
from configsvc.store.writer import RecordChange
from configsvc.v1 import template_pb2, template_pb2_grpc

VALUES_MAX = 1000
EXTENDS_MAX = 16


class TemplateService(RecordServicer, template_pb2_grpc.TemplateServiceServicer):  # type: ignore[misc]
    """Stores templates and extends lists as records; see template.proto for the contract."""

    async def PutTemplate(
        self, request: template_pb2.PutTemplateRequest, context: CallContext
    ) -> template_pb2.PutTemplateResponse:
        tenant = existing_tenant(self._mirror, request.tenant)
        name = require_segment("name", request.name)
        reason = validate_reason(request.reason)
        description = validate_reason(request.description, field="description")
        values = _checked_values(request.values)
        extends = _checked_refs(request.extends)
        state = self._guard.states.get(tenant)
        _check_schemas(state, tenant, values)
        latest = [r for (n, _), r in state.template_records.items() if n == name]
        current = max(latest, key=lambda r: r.version) if latest else None
        expected = int(request.expected_version) if request.HasField("expected_version") else None
        version = records.next_version(current, expected, f"template {name!r}")
        actor = requests.actor(context)
        body = {
            "values": values,
            "extends": extends,
            "description": description,
            "created_by": actor,
            "create_time": records.timestamp_text(now_timestamp()),
        }
        # The new version itself takes part in the expansion, so a self-reference is a cycle.
        proposed = template_of(tenant, StoredRecord(name, version, body, 0, 0))
        _expand(state, [proposed.ref], proposed)
        audit = record_audit(
            records.TEMPLATE,
            tenant,
            name,
            actor,
            reason,
            before_version=version - 1,
            after_version=version,
        )
        revision = await self._writer.commit_records(
            tenant,
            [
                RecordChange(
                    records.version_key(self._ks, tenant, records.TEMPLATE, name, version),
                    records.encode(body),
                    0,
                    label=f"template {name}@{version}",
                )
            ],
            [audit],
            options=self._write_options(context),
        )
        return template_pb2.PutTemplateResponse(
            template=_message(tenant, StoredRecord(name, version, body, revision, revision)),
            revision=revision,
        )

    async def GetTemplate(
        self, request: template_pb2.GetTemplateRequest, context: CallContext
    ) -> template_pb2.GetTemplateResponse:
        tenant = existing_tenant(self._mirror, request.tenant)
        name = require_segment("name", request.name)
        chosen = self._version(tenant, records.TEMPLATE, name, request.version)
        return template_pb2.GetTemplateResponse(
            template=_message(tenant, chosen), revision=self._mirror.revision
        )

    async def ListTemplates(
        self, request: template_pb2.ListTemplatesRequest, context: CallContext
    ) -> template_pb2.ListTemplatesResponse:
        tenant = existing_tenant(self._mirror, request.tenant)
        # template_records is in (name, version) order, as the records were scanned.
        latest = records.latest_by_name(
            iter(self._guard.states.get(tenant).template_records.values())
        )
        return template_pb2.ListTemplatesResponse(
            templates=[_message(tenant, latest[n]) for n in sorted(latest)],
            revision=self._mirror.revision,
        )

    async def SetExtends(
        self, request: template_pb2.SetExtendsRequest, context: CallContext
    ) -> template_pb2.SetExtendsResponse:
        tenant = existing_tenant(self._mirror, request.tenant)
        service = _service(request.service)
        reason = validate_reason(request.reason)
        extends = _checked_refs(request.extends)
        state = self._guard.states.get(tenant)
        expanded = _expand(state, extends)
        self._guard.enforce_extends(tenant, service, extends)
        current = state.extends.get(service)
        expected = requests.expected_revision(request)
        if expected is None:
            expected = current.mod_revision if current is not None else 0
        actor = requests.actor(context)
        body = {
            "extends": extends,
            "updated_by": actor,
            "reason": reason,
            "update_time": records.timestamp_text(now_timestamp()),
        }
        audit = record_audit(records.EXTENDS, tenant, service, actor, reason, deleted=not extends)
        audit.attributes["extends"] = ",".join(extends)
        key = records.plain_key(self._ks, tenant, records.EXTENDS, service)
        revision = await self._writer.commit_records(
            tenant,
            [
                RecordChange(
                    key,
                    records.encode(body) if extends else None,
                    expected,
                    label=f"extends of service {service}",
                )
            ],
            [audit],
            options=self._write_options(context),
        )
        return template_pb2.SetExtendsResponse(
            extends=extends, expanded=expanded, revision=revision
        )

    async def GetExtends(
        self, request: template_pb2.GetExtendsRequest, context: CallContext
    ) -> template_pb2.GetExtendsResponse:
        tenant = existing_tenant(self._mirror, request.tenant)
        service = _service(request.service)
        state = self._guard.states.get(tenant)
        extends = list(state.extends_of(service))
        record = state.extends.get(service)
        return template_pb2.GetExtendsResponse(
            extends=extends,
            expanded=_expand(state, extends),
            extends_revision=record.mod_revision if record is not None else 0,
            revision=self._mirror.revision,
        )


def _service(value: str) -> str:
    service = require_segment("service", value)
    if service == ALL:
        raise InvalidArgumentError.single(
            "service",
            "templates are extended by a service, not by 'all' (put shared values "
            "in the global layer)",
        )
    return service


def _checked_values(values: Mapping[str, str]) -> dict[str, str]:
    found = dict(values)
    if len(found) > VALUES_MAX:
        raise InvalidArgumentError.single(
            "values", f"has {len(found)} keys; the limit is {VALUES_MAX}"
        )
    for key in sorted(found):
        violation = key_violation(f"values[{key[:40]!a}]", key)
        if violation:
            raise InvalidArgumentError([violation])
        validate_json_value(found[key], field=f"values[{key}]")
        parse_value(found[key], key=key)
    return found


def _check_schemas(state: TenantState, tenant: str, values: Mapping[str, str]) -> None:
    """Template values reach every service that extends them: they are checked like
    values written for every environment and service (so every schema of their key applies)."""
    violations = []
    for name in sorted(values):
        key = ConfigKey(tenant, ALL, ALL, name)
        if not state.registry.schemas_for(key):
            continue
        parsed = json.loads(values[name])
        if not is_tombstone(parsed):
            violations += [
                FieldViolation(f"values[{name}]{v.field.removeprefix('value')}", v.description)
                for v in outside_secret_places(state.registry.validate(key, parsed), parsed)
            ]
            # Template records are not encrypted: a sensitive place needs a reference.
            violations += [
                FieldViolation(
                    f"values[{name}]{place}",
                    "is marked x-sensitive by a schema, and template "
                    "values are stored as written: use a $secret reference here, or set the "
                    "value with Put (which stores it as transit ciphertext)",
                )
                for place in plain_sensitive_places(state.registry, key, parsed)
            ]
    if violations:
        raise InvalidArgumentError(violations)


def _checked_refs(refs: Iterable[str]) -> list[str]:
    found = list(refs)
    if len(found) > EXTENDS_MAX:
        raise InvalidArgumentError.single(
            "extends", f"has {len(found)} references; the limit is {EXTENDS_MAX}"
        )
    for i, ref in enumerate(found):
        parse_template_ref(ref, field_path=f"extends[{i}]")
    if len(set(found)) != len(found):
        raise InvalidArgumentError.single("extends", "names a template twice")
    return found


def _expand(state: TenantState, extends: list[str], proposed: Template | None = None) -> list[str]:
    """The expanded chain as references; INVALID_ARGUMENT (field extends) naming the chain."""

    def lookup(name: str, version: int) -> Template | None:
        if proposed is not None and (name, version) == (proposed.name, proposed.version):
            return proposed
        return state.template(name, version)

    return [t.ref for t in expand_templates(extends, lookup)]


def _message(tenant: str, record: StoredRecord) -> template_pb2.Template:
    body = record.body
    return template_pb2.Template(
        tenant=tenant,
        name=record.name,
        version=record.version,
        values=dict(body.get("values", {})),
        extends=list(body.get("extends", [])),
        description=body.get("description", ""),
        created_by=body.get("created_by", ""),
        create_time=records.parse_timestamp(body.get("create_time", "")),
        revision=record.mod_revision,
    )
