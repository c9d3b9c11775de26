"""What every configuration write must pass before it is committed.

Three checks, in this order, shared by Put, Delete, Rollback, Promote and the
Validate dry run:

1. Protected environments: a write into a declared environment marked
   ``protected`` must carry a non-empty reason (INVALID_ARGUMENT on
   ``reason``). Undeclared environments are ordinary.
2. Schemas: each new value must satisfy every schema bound to its key
   (INVALID_ARGUMENT, one field violation per failing JSON pointer). A value
   that is a whole tombstone (``{"$unset": true}``) removes the key from the
   resolved view and is not checked; places holding a secret reference or a
   transit ciphertext are not checked either (``hier.sensitive``).
3. Rules (also for a new extends list of a service): every rule is evaluated
   on the resolved document of every concrete
   (service, environment) the changes can alter, before and after the
   changes. A rule that held before and is broken after refuses the write
   (``rules/<name>`` naming the scopes). A rule that was already broken does
   not block unrelated writes -- otherwise one bad value would freeze a
   whole tenant; Validate and PutRule report such documents.

The checks read the mirror, not a transaction: two concurrent writes to
different keys can each pass and together break a rule (the same window as
admission control in Kubernetes). Writes to one key are serialized.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from configsvc.errors import FieldViolation, InvalidArgumentError
from configsvc.hier.records import StoredRecord
from configsvc.hier.resolver import (
    Changes,
    MirrorSource,
    affected_documents,
    document_of,
    known_scopes,
    resolve_scope,
)
from configsvc.hier.sensitive import outside_secret_places
from configsvc.hier.state import StateCache, TenantState
from configsvc.model.keys import ConfigKey
from configsvc.resolve import is_tombstone
from configsvc.store.keyspace import Keyspace
from configsvc.store.ports import MirrorPort
from configsvc.validate import DocumentScope, Rule, RuleViolation, evaluate_rules
from configsvc.validate.rules import rule_violations_to_error
from configsvc.validate.schemas import violations_of


@dataclass
class Report:
    """Everything a set of changes would break."""

    values: list[tuple[ConfigKey, FieldViolation]] = field(default_factory=list)
    rules: list[RuleViolation] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.values and not self.rules


def protected_violation(
    state: TenantState, keys: Iterable[ConfigKey], reason: str
) -> FieldViolation | None:
    """Why ``reason`` is not enough for writes into these keys' environments, or None."""
    if reason.strip():
        return None
    protected = sorted({k.environment for k in keys if state.protected(k.environment)})
    if not protected:
        return None
    return FieldViolation(
        "reason",
        f"is required: environment {protected[0]!r} is protected "
        "(EnvironmentService); say why the change is made",
    )


def _newly_broken(
    tenant: str,
    rules: list[Rule],
    before: dict[tuple[str, str], dict[str, object]],
    after: dict[tuple[str, str], dict[str, object]],
) -> list[RuleViolation]:
    """The violations in ``after`` of a rule that held for the same scope in ``before``."""
    held = {(v.rule, v.scope) for v in evaluate_rules(rules, before, tenant=tenant)}
    return [v for v in evaluate_rules(rules, after, tenant=tenant) if (v.rule, v.scope) not in held]


class WriteGuard:
    """Judges proposed config changes against the tenant's environments, schemas and rules."""

    def __init__(self, mirror: MirrorPort, ks: Keyspace, states: StateCache) -> None:
        self._mirror = mirror
        self._ks = ks
        self.states = states

    def documents(
        self, tenant: str, changes: Changes, state: TenantState, rules: list[Rule]
    ) -> list[tuple[str, str]]:
        """The documents ``changes`` can alter that at least one of ``rules`` covers."""
        services, environments = known_scopes(self._mirror, self._ks, state, changes.keys())
        return [
            doc
            for doc in affected_documents(changes.keys(), services, environments)
            if any(rule.applies_to(DocumentScope(*doc)) for rule in rules)
        ]

    def resolved_documents(
        self,
        tenant: str,
        state: TenantState,
        documents: Iterable[tuple[str, str]],
        changes: Changes | None = None,
    ) -> dict[tuple[str, str], dict[str, object]]:
        """(service, environment) -> resolved document, with ``changes`` laid over the store."""
        source = MirrorSource(
            self._mirror, self._ks, tenant, changes or {}, self._mirror.revision + 1
        )
        return {
            (service, environment): document_of(
                resolve_scope(source, state, environment, service, proposed=changes is not None)
            )
            for service, environment in documents
        }

    def report(
        self,
        tenant: str,
        changes: Changes,
        state: TenantState | None = None,
        *,
        value_checks: bool = True,
    ) -> Report:
        """What ``changes`` would break (see the module docstring); writes nothing."""
        state = state or self.states.get(tenant)
        report = Report()
        if value_checks and state.bindings:
            for key in sorted(changes):
                value = changes[key]
                if value is None:
                    continue
                bindings = state.registry.schemas_for(key)
                if not bindings:
                    continue  # the common case costs no parse
                parsed = json.loads(value)
                if is_tombstone(parsed):
                    continue
                report.values.extend(
                    (key, v) for v in outside_secret_places(violations_of(bindings, parsed), parsed)
                )
        rules = state.rule_objects
        if rules and changes:
            documents = self.documents(tenant, changes, state, rules)
            report.rules = _newly_broken(
                tenant,
                rules,
                self.resolved_documents(tenant, state, documents),
                self.resolved_documents(tenant, state, documents, changes),
            )
        return report

    def enforce_extends(self, tenant: str, service: str, extends: list[str]) -> None:
        """Refuse a new extends list of ``service`` that would newly break a rule."""
        state = self.states.get(tenant)
        rules = state.rule_objects
        if not rules:
            return
        record = StoredRecord(service, 0, {"extends": extends}, 0, 0)
        proposed = dataclasses.replace(state, extends={**state.extends, service: record})
        _, environments = known_scopes(self._mirror, self._ks, state)
        documents = [
            (service, env)
            for env in sorted(environments)
            if any(rule.applies_to(DocumentScope(service, env)) for rule in rules)
        ]
        broken = _newly_broken(
            tenant,
            rules,
            self.resolved_documents(tenant, state, documents),
            self.resolved_documents(tenant, proposed, documents),
        )
        if broken:
            raise rule_violations_to_error(broken)

    def enforce(self, tenant: str, changes: Changes, reason: str) -> None:
        """Raise INVALID_ARGUMENT if ``changes`` may not be written (see the module docstring)."""
        state = self.states.get(tenant)
        refused = protected_violation(state, changes.keys(), reason)
        if refused is not None:
            raise InvalidArgumentError([refused])
        report = self.report(tenant, changes, state)
        if report.values:
            several = len(changes) > 1
            raise InvalidArgumentError(
                [
                    FieldViolation(f"{key.key}: {v.field}" if several else v.field, v.description)
                    for key, v in report.values
                ]
            )
        if report.rules:
            raise rule_violations_to_error(report.rules)
