"""The configsvc.v1.ValidationService servicer: schemas and rules in etcd, and dry runs."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from configsvc.api.records_common import (
    RecordServicer,
    existing_tenant,
    json_document,
    optional_scope_part,
    record_audit,
)
from configsvc.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from configsvc.hier import records
from configsvc.hier.guard import Report
from configsvc.hier.records import StoredRecord
from configsvc.hier.resolver import Changes, known_scopes
from configsvc.hier.sensitive import outside_secret_places
from configsvc.hier.state import TenantState
from configsvc.model.keys import ConfigKey, require_segment
from configsvc.model.values import validate_json_value, validate_reason
from configsvc.resolve import is_tombstone, parse_value
from configsvc.rpc import requests
from configsvc.rpc.context import CallContext
from configsvc.store.codec import key_message, now_timestamp
from configsvc.store.writer import RecordChange
from configsvc.v1 import validation_pb2, validation_pb2_grpc
from configsvc.validate import (
    DocumentScope,
    Rule,
    RuleViolation,
    SchemaBinding,
    SchemaRegistry,
    Scope,
    check_values,
    evaluate_rules,
)

WRITES_MAX = 1000
_SHOWN = 3  # existing violations named in a refusal's message


class ValidationService(RecordServicer, validation_pb2_grpc.ValidationServiceServicer):  # type: ignore[misc]
    """Stores schema and rule versions as records; see validation.proto for the contract."""

    # ------------------------------------------------------------ proposals

    def _binding(
        self, tenant: str, request: validation_pb2.PutSchemaRequest, version: int
    ) -> SchemaBinding:
        name = require_segment("name", request.name)
        scope = Scope(
            tenant,
            optional_scope_part("environment", request.environment),
            optional_scope_part("service", request.service),
        )
        return SchemaBinding(
            pattern=request.pattern,
            schema=json_document("schema", request.schema),
            version=version,
            source=name,
            scope=scope,
        )

    def _rule(self, tenant: str, request: validation_pb2.PutRuleRequest) -> Rule:
        scope = Scope(
            tenant,
            optional_scope_part("environment", request.environment),
            optional_scope_part("service", request.service),
        )
        return Rule(
            name=request.name,
            logic=json_document("logic", request.logic),
            message=request.message,
            scope=scope,
        )

    def _stored_values(
        self, tenant: str, binding: SchemaBinding, skip: Changes
    ) -> dict[ConfigKey, object]:
        found: dict[ConfigKey, object] = {}
        for item in self._mirror.items(self._ks.cfg_prefix(tenant)):
            if item.key in skip or not binding.applies_to(item.key):
                continue
            value = json.loads(item.entry.value)
            if not is_tombstone(value):
                found[item.key] = value
        return found

    def _schema_impact(
        self, tenant: str, binding: SchemaBinding, skip: Changes
    ) -> list[validation_pb2.ValueViolation]:
        stored = self._stored_values(tenant, binding, skip)
        report = check_values(binding, stored)
        # Stored values hold ciphertext at sensitive places: never a violation.
        return [
            validation_pb2.ValueViolation(
                key=key_message(key), field=v.field, description=v.description
            )
            for key, violations in report.items()
            for v in outside_secret_places(violations, stored[key])
        ]

    def _rule_impact(
        self, tenant: str, rule: Rule, state: TenantState, changes: Changes
    ) -> list[RuleViolation]:
        services, environments = known_scopes(self._mirror, self._ks, state, changes.keys())
        documents = [
            (s, e)
            for s in sorted(services)
            for e in sorted(environments)
            if rule.applies_to(DocumentScope(s, e))
        ]
        resolved = self._guard.resolved_documents(tenant, state, documents, changes or None)
        return evaluate_rules([rule], resolved, tenant=tenant)

    # --------------------------------------------------------------- schemas

    async def PutSchema(
        self, request: validation_pb2.PutSchemaRequest, context: CallContext
    ) -> validation_pb2.PutSchemaResponse:
        tenant = existing_tenant(self._mirror, request.tenant)
        name = require_segment("name", request.name)
        reason = validate_reason(request.reason)
        description = validate_reason(request.description, field="description")
        state = self._guard.states.get(tenant)
        current = state.schemas.get(name)
        version = records.next_version(current, _expected(request), f"schema {name!r}")
        binding = self._binding(tenant, request, version)
        existing = self._schema_impact(tenant, binding, {})
        if existing and not request.force:
            shown = "; ".join(
                f"{_key_text(v.key)} {v.field}: {v.description}" for v in existing[:_SHOWN]
            )
            raise FailedPreconditionError(
                f"{len(existing)} stored value(s) violate schema {name!r}: {shown}. Fix them "
                "first, check with Validate, or set force to store the schema anyway"
            )
        actor = requests.actor(context)
        stamp = now_timestamp()
        body = {
            "pattern": binding.pattern,
            "environment": binding.scope.environment,
            "service": binding.scope.service,
            "schema": request.schema,
            "description": description,
            "updated_by": actor,
            "reason": reason,
            "update_time": records.timestamp_text(stamp),
        }
        revision = await self._commit(
            tenant, records.SCHEMA, name, version, body, actor, reason, context
        )
        stored = StoredRecord(name, version, body, revision, revision)
        return validation_pb2.PutSchemaResponse(
            schema=_schema_message(tenant, stored), revision=revision, existing_violations=existing
        )

    async def _commit(
        self,
        tenant: str,
        kind: str,
        name: str,
        version: int,
        body: dict[str, Any],
        actor: str,
        reason: str,
        context: CallContext,
    ) -> int:
        audit = record_audit(
            kind,
            tenant,
            name,
            actor,
            reason,
            deleted=bool(body.get("deleted")),
            before_version=version - 1,
            after_version=version,
        )
        key = records.version_key(self._ks, tenant, kind, name, version)
        return await self._writer.commit_records(
            tenant,
            [
                RecordChange(
                    key, records.encode(body), 0, label=f"{kind} {name!r} version {version}"
                )
            ],
            [audit],
            options=self._write_options(context),
        )

    async def GetSchema(
        self, request: validation_pb2.GetSchemaRequest, context: CallContext
    ) -> validation_pb2.GetSchemaResponse:
        tenant = existing_tenant(self._mirror, request.tenant)
        name = require_segment("name", request.name)
        chosen = self._version(tenant, records.SCHEMA, name, request.version)
        return validation_pb2.GetSchemaResponse(
            schema=_schema_message(tenant, chosen), revision=self._mirror.revision
        )

    async def ListSchemas(
        self, request: validation_pb2.ListSchemasRequest, context: CallContext
    ) -> validation_pb2.ListSchemasResponse:
        tenant = existing_tenant(self._mirror, request.tenant)
        state = self._guard.states.get(tenant)
        return validation_pb2.ListSchemasResponse(
            schemas=[
                _schema_message(tenant, r)
                for _, r in sorted(state.schemas.items())
                if not r.body.get("deleted")
            ],
            revision=self._mirror.revision,
        )

    async def DeleteSchema(
        self, request: validation_pb2.DeleteSchemaRequest, context: CallContext
    ) -> validation_pb2.DeleteSchemaResponse:
        tenant, name, version, body, actor, reason = self._deletion(
            request, context, records.SCHEMA
        )
        revision = await self._commit(
            tenant, records.SCHEMA, name, version, body, actor, reason, context
        )
        return validation_pb2.DeleteSchemaResponse(version=version, revision=revision)

    def _deletion(
        self, request: Any, context: CallContext, kind: str
    ) -> tuple[str, str, int, dict[str, Any], str, str]:
        tenant = existing_tenant(self._mirror, request.tenant)
        name = require_segment("name", request.name)
        reason = validate_reason(request.reason)
        state = self._guard.states.get(tenant)
        current = (state.schemas if kind == records.SCHEMA else state.rules).get(name)
        if current is None or current.body.get("deleted"):
            raise NotFoundError(kind, name)
        version = records.next_version(current, _expected(request), f"{kind} {name!r}")
        actor = requests.actor(context)
        body = {
            **current.body,
            "deleted": True,
            "updated_by": actor,
            "reason": reason,
            "update_time": records.timestamp_text(now_timestamp()),
        }
        return tenant, name, version, body, actor, reason

    # ----------------------------------------------------------------- rules

    async def PutRule(
        self, request: validation_pb2.PutRuleRequest, context: CallContext
    ) -> validation_pb2.PutRuleResponse:
        tenant = existing_tenant(self._mirror, request.tenant)
        name = require_segment("name", request.name)
        reason = validate_reason(request.reason)
        rule = self._rule(tenant, request)
        state = self._guard.states.get(tenant)
        version = records.next_version(state.rules.get(name), _expected(request), f"rule {name!r}")
        broken = self._rule_impact(tenant, rule, state, {})
        if broken and not request.force:
            shown = ", ".join(str(v.scope) for v in broken[:_SHOWN])
            raise FailedPreconditionError(
                f"rule {name!r} is already broken in {len(broken)} resolved document(s): "
                f"{shown}. Fix the configuration first, check with Validate, or set force"
            )
        actor = requests.actor(context)
        body = {
            "logic": request.logic,
            "message": rule.message,
            "environment": rule.scope.environment,
            "service": rule.scope.service,
            "updated_by": actor,
            "reason": reason,
            "update_time": records.timestamp_text(now_timestamp()),
        }
        revision = await self._commit(
            tenant, records.RULE, name, version, body, actor, reason, context
        )
        return validation_pb2.PutRuleResponse(
            rule=_rule_message(tenant, StoredRecord(name, version, body, revision, revision)),
            revision=revision,
            existing_violations=[_rule_violation(v) for v in broken],
        )

    async def ListRules(
        self, request: validation_pb2.ListRulesRequest, context: CallContext
    ) -> validation_pb2.ListRulesResponse:
        tenant = existing_tenant(self._mirror, request.tenant)
        state = self._guard.states.get(tenant)
        return validation_pb2.ListRulesResponse(
            rules=[
                _rule_message(tenant, r)
                for _, r in sorted(state.rules.items())
                if not r.body.get("deleted")
            ],
            revision=self._mirror.revision,
        )

    async def DeleteRule(
        self, request: validation_pb2.DeleteRuleRequest, context: CallContext
    ) -> validation_pb2.DeleteRuleResponse:
        tenant, name, version, body, actor, reason = self._deletion(request, context, records.RULE)
        revision = await self._commit(
            tenant, records.RULE, name, version, body, actor, reason, context
        )
        return validation_pb2.DeleteRuleResponse(version=version, revision=revision)

    # -------------------------------------------------------------- dry run

    async def Validate(
        self, request: validation_pb2.ValidateRequest, context: CallContext
    ) -> validation_pb2.ValidateResponse:
        tenant = existing_tenant(self._mirror, request.tenant)
        changes = _proposed_writes(tenant, request)
        state = self._guard.states.get(tenant)
        value_violations: list[validation_pb2.ValueViolation] = []
        rule_violations: list[RuleViolation] = []
        if request.HasField("schema"):
            proposal = request.schema
            proposal.tenant = proposal.tenant or tenant
            if proposal.tenant != tenant:
                raise InvalidArgumentError.single("schema.tenant", f"must be {tenant!r}")
            name = require_segment("schema.name", proposal.name)
            current = state.schemas.get(name)
            binding = self._binding(tenant, proposal, (current.version if current else 0) + 1)
            bindings = [b for b in state.bindings if b.source != name] + [binding]
            state = dataclasses.replace(state, bindings=bindings, registry=SchemaRegistry(bindings))
            value_violations += self._schema_impact(tenant, binding, changes)
        if request.HasField("rule"):
            proposal_rule = request.rule
            if proposal_rule.tenant not in ("", tenant):
                raise InvalidArgumentError.single("rule.tenant", f"must be {tenant!r}")
            rule = self._rule(tenant, proposal_rule)
            state = dataclasses.replace(
                state, rule_objects=[r for r in state.rule_objects if r.name != rule.name] + [rule]
            )
            rule_violations += self._rule_impact(tenant, rule, state, changes)
        report: Report = self._guard.report(tenant, changes, state)
        value_violations += [
            validation_pb2.ValueViolation(
                key=key_message(key), field=v.field, description=v.description
            )
            for key, v in report.values
        ]
        seen = {(v.rule, v.scope) for v in rule_violations}
        rule_violations += [v for v in report.rules if (v.rule, v.scope) not in seen]
        return validation_pb2.ValidateResponse(
            valid=not value_violations and not rule_violations,
            value_violations=value_violations,
            rule_violations=[_rule_violation(v) for v in sorted(rule_violations)],
            revision=self._mirror.revision,
        )


def _expected(request: Any) -> int | None:
    return int(request.expected_version) if request.HasField("expected_version") else None


def _key_text(key: Any) -> str:
    return f"{key.tenant}/{key.environment}/{key.service}/{key.key}"


def _proposed_writes(tenant: str, request: validation_pb2.ValidateRequest) -> Changes:
    if len(request.writes) > WRITES_MAX:
        raise InvalidArgumentError.single(
            "writes", f"has {len(request.writes)} writes; the limit is {WRITES_MAX}"
        )
    changes: dict[ConfigKey, str | None] = {}
    for i, write in enumerate(request.writes):
        key = requests.config_key_at(write.key, f"writes[{i}].key")
        if key.tenant != tenant:
            raise InvalidArgumentError.single(f"writes[{i}].key.tenant", f"must be {tenant!r}")
        if write.delete:
            changes[key] = None
            continue
        validate_json_value(write.value, field=f"writes[{i}].value")
        parse_value(write.value, key=key.key)
        changes[key] = write.value
    return changes


def _scope_fields(body: Any) -> dict[str, str]:
    return {"environment": body.get("environment", ""), "service": body.get("service", "")}


def _schema_message(tenant: str, record: StoredRecord) -> validation_pb2.Schema:
    body = record.body
    return validation_pb2.Schema(
        tenant=tenant,
        name=record.name,
        version=record.version,
        pattern=body["pattern"],
        schema=body["schema"],
        description=body.get("description", ""),
        updated_by=body.get("updated_by", ""),
        update_time=records.parse_timestamp(body.get("update_time", "")),
        revision=record.mod_revision,
        deleted=bool(body.get("deleted")),
        **_scope_fields(body),
    )


def _rule_message(tenant: str, record: StoredRecord) -> validation_pb2.Rule:
    body = record.body
    return validation_pb2.Rule(
        tenant=tenant,
        name=record.name,
        version=record.version,
        logic=body["logic"],
        message=body["message"],
        updated_by=body.get("updated_by", ""),
        update_time=records.parse_timestamp(body.get("update_time", "")),
        revision=record.mod_revision,
        deleted=bool(body.get("deleted")),
        **_scope_fields(body),
    )


def _rule_violation(violation: RuleViolation) -> validation_pb2.RuleViolation:
    return validation_pb2.RuleViolation(
        rule=violation.rule,
        service=violation.scope.service,
        environment=violation.scope.environment,
        message=violation.message,
    )
