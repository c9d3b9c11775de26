"""Resolution of (service, environment) from stored layers, templates included.

The pure engine (``configsvc.resolve``) merges layers; this module finds
them: the four scope layers from the mirror (or from an etcd snapshot at an
older revision, for Diff), below them the templates the service extends,
and optionally *proposed* changes laid over the stored entries, so a write
can be judged on the document it would produce before it is committed.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from configsvc.errors import FailedPreconditionError, InvalidArgumentError
from configsvc.hier.state import TenantState
from configsvc.model.keys import ALL, ConfigKey
from configsvc.resolve import Layer, LayerValue, Resolved, resolve, scope_layers
from configsvc.resolve.templates import expand_templates, template_layers
from configsvc.store.keyspace import Keyspace
from configsvc.store.ports import MirrorPort

#: Proposed changes: config key -> new JSON text, or None for a deletion.
Changes = Mapping[ConfigKey, "str | None"]


class LayerSource(Protocol):
    """Where the entries of one (environment, service) scope come from."""

    def scope_entries(self, environment: str, service: str) -> dict[str, LayerValue]:
        """Key name -> value of the entries stored exactly at (environment, service)."""
        ...


@dataclass
class MirrorSource:
    """The live entries in the mirror, with proposed ``changes`` laid over them."""

    mirror: MirrorPort
    ks: Keyspace
    tenant: str
    changes: Changes = field(default_factory=dict)
    pending_revision: int = 0

    def scope_entries(self, environment: str, service: str) -> dict[str, LayerValue]:
        prefix = self.ks.scope_prefix(self.tenant, environment, service)
        entries = {
            item.key.key: LayerValue(item.entry.value, item.entry.mod_revision, str(item.key))
            for item in self.mirror.items(prefix)
        }
        for key, value in self.changes.items():
            if (key.environment, key.service) != (environment, service):
                continue
            if value is None:
                entries.pop(key.key, None)
            else:
                entries[key.key] = LayerValue(value, self.pending_revision, str(key))
        return entries


@dataclass
class SnapshotSource:
    """Entries read at one etcd revision: (environment, service) -> key name -> value."""

    scopes: dict[tuple[str, str], dict[str, LayerValue]]

    def scope_entries(self, environment: str, service: str) -> dict[str, LayerValue]:
        return dict(self.scopes.get((environment, service), {}))


def template_chain(state: TenantState, extends: Iterable[str]) -> list[Layer]:
    """The template layers behind ``extends``, lowest first (INVALID_ARGUMENT names the chain)."""
    return template_layers(expand_templates(list(extends), state.template))


def layers(source: LayerSource, state: TenantState, environment: str, service: str) -> list[Layer]:
    """Every layer of (service, environment), lowest first: templates, then the four scopes."""
    found: list[Layer] = []
    if service != ALL:
        extends = state.extends_of(service)
        if extends:
            try:
                found.extend(template_chain(state, extends))
            except InvalidArgumentError as exc:
                # Stored lists were checked when set; templates are immutable.
                raise FailedPreconditionError(
                    f"the templates of service {service!r} cannot be expanded: {exc.message}"
                ) from None
    for scope in scope_layers(environment, service):
        found.append(Layer(scope.layer, source.scope_entries(scope.environment, scope.service)))
    return found


def resolve_scope(
    source: LayerSource,
    state: TenantState,
    environment: str,
    service: str,
    *,
    proposed: bool = False,
) -> Resolved:
    """The resolved document of (service, environment) from ``source``.

    A stored value that cannot be resolved is FAILED_PRECONDITION (it predates
    a rule); with ``proposed`` the source holds values under judgement, so the
    engine's INVALID_ARGUMENT (naming key, layer and pointer) passes through.
    """
    try:
        return resolve(layers(source, state, environment, service))
    except InvalidArgumentError as exc:
        if proposed:
            raise
        raise FailedPreconditionError(f"a stored value cannot be resolved: {exc}") from None


def raw_scope(source: LayerSource, environment: str, service: str) -> Resolved:
    """The entries stored exactly at (environment, service) as a one-layer document."""
    try:
        return resolve([Layer("raw", source.scope_entries(environment, service))])
    except InvalidArgumentError as exc:
        raise FailedPreconditionError(f"a stored value cannot be resolved: {exc}") from None


def known_scopes(
    mirror: MirrorPort, ks: Keyspace, state: TenantState, extra: Iterable[ConfigKey] = ()
) -> tuple[set[str], set[str]]:
    """The concrete services and environments of a tenant: those with entries,
    extends lists or declarations, plus those of ``extra`` keys."""
    services = {s for s in state.extends if s != ALL}
    environments = {e for e in state.environments if e != ALL}
    for item in mirror.items(ks.cfg_prefix(state.tenant)):
        if item.key.service != ALL:
            services.add(item.key.service)
        if item.key.environment != ALL:
            environments.add(item.key.environment)
    for key in extra:
        if key.service != ALL:
            services.add(key.service)
        if key.environment != ALL:
            environments.add(key.environment)
    return services, environments


def affected_documents(
    keys: Iterable[ConfigKey], services: set[str], environments: set[str]
) -> list[tuple[str, str]]:
    """The concrete (service, environment) documents that changes to ``keys`` can alter.

    A key of (E, S) alters (S, E); "all" in either place stands for every
    known service or environment, so a global key alters every document.
    """
    found: set[tuple[str, str]] = set()
    for key in keys:
        for service in services if key.service == ALL else {key.service}:
            for environment in environments if key.environment == ALL else {key.environment}:
                found.add((service, environment))
    return sorted(found)


def document_of(resolved: Resolved) -> dict[str, object]:
    """The resolved document as ``json.loads`` data (floats, not Decimals), as rules expect."""
    loaded: dict[str, object] = json.loads(resolved.canonical_json())
    return loaded


def input_fingerprint(
    mirror: MirrorPort,
    ks: Keyspace,
    tenant: str,
    environment: str,
    service: str,
    state_generation: int,
) -> tuple[int, int, int]:
    """What the resolution of (service, environment) depends on, cheaply.

    (highest mod_revision, number of entries) over the scope layers, plus the
    generation of the tenant's records (``StateCache.generation``: templates,
    extends). Any put into a layer raises the
    highest revision; a delete lowers the count; so equal fingerprints mean
    equal inputs, and a write elsewhere in the tenant leaves it unchanged.
    """
    highest = count = 0
    for scope in scope_layers(environment, service):
        for item in mirror.items(ks.scope_prefix(tenant, scope.environment, scope.service)):
            count += 1
            highest = max(highest, item.entry.mod_revision)
    return highest, count, state_generation


class ScopeCache:
    """Encoded resolutions per (tenant, service, environment), reused while the
    scope's input fingerprint is unchanged; least recently used beyond ``max_entries``."""

    def __init__(self, max_entries: int = 1024) -> None:
        self.max_entries = max_entries
        self.hits = 0
        self._entries: OrderedDict[tuple[str, str, str], tuple[tuple[int, int, int], bytes]] = (
            OrderedDict()
        )

    def get_or_build(
        self,
        scope: tuple[str, str, str],
        fingerprint: tuple[int, int, int],
        build: Callable[[], bytes],
    ) -> bytes:
        found = self._entries.get(scope)
        if found is not None and found[0] == fingerprint:
            self.hits += 1
            self._entries.move_to_end(scope)
            return found[1]
        body = build()
        self._entries[scope] = (fingerprint, body)
        self._entries.move_to_end(scope)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return body
