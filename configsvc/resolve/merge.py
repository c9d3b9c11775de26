"""Layer merging with provenance: the rules are in the package docstring."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from configsvc.model.keys import ALL, require_segment
from configsvc.resolve.jsonvalue import (
    JsonValue,
    canonical_json,
    escape_pointer_token,
    is_tombstone,
    parse_value,
    sorted_copy,
)

#: Layer names of the four scopes, lowest first (templates are "template:<name>@<version>").
GLOBAL = "global"
ENV = "env"
SERVICE = "service"
SERVICE_ENV = "service-env"


@dataclass(frozen=True)
class LayerValue:
    """One stored value of a layer: its JSON text, etcd mod_revision and config key.

    ``source`` names where the value is stored, e.g. ``"acme/prod/all/db.pool"``
    (``str(ConfigKey)``) or a template entry.
    """

    value_json: str
    revision: int
    source: str


@dataclass(frozen=True)
class Layer:
    """A named layer: config key name -> value. ``name`` is the provenance layer identity."""

    name: str
    entries: Mapping[str, LayerValue] = field(default_factory=dict)


@dataclass(frozen=True)
class Source:
    """Where a resolved leaf came from: layer identity, config key and etcd revision."""

    layer: str
    key: str
    revision: int


@dataclass(frozen=True)
class Scope:
    """Where one scope layer is stored: its layer name and (environment, service)."""

    layer: str
    environment: str
    service: str


def scope_layers(environment: str, service: str) -> list[Scope]:
    """The scope layers of (service, environment), lowest first.

    global ("all", "all"), env (E, "all"), service ("all", S), service-env (E, S).
    When E or S is itself "all", scopes that would repeat a lower one are left
    out, so every stored entry is applied once, under its lowest layer name.
    """
    require_segment("environment", environment)
    require_segment("service", service)
    scopes = (
        Scope(GLOBAL, ALL, ALL),
        Scope(ENV, environment, ALL),
        Scope(SERVICE, ALL, service),
        Scope(SERVICE_ENV, environment, service),
    )
    seen: set[tuple[str, str]] = set()
    result = []
    for scope in scopes:
        if (scope.environment, scope.service) not in seen:
            seen.add((scope.environment, scope.service))
            result.append(scope)
    return result


@dataclass(frozen=True, slots=True)
class _Leaf:
    value: JsonValue
    source: Source


@dataclass(frozen=True, slots=True)
class _Object:
    members: dict[str, _Node]
    #: The highest layer that supplied an object at this path (the provenance of {}).
    source: Source


_Node = _Leaf | _Object

#: Secret references and transit ciphertexts (``configsvc.secrets.refs``) are one value
#: each: a higher layer replaces them whole, never member by member (a merged reference
#: could otherwise pair one layer's path with another layer's pinned version).
ATOMIC_MEMBERS = frozenset({"$secret", "$encrypted"})


def _is_atomic(value: Mapping[str, JsonValue]) -> bool:
    return len(value) == 1 and next(iter(value)) in ATOMIC_MEMBERS


def _merge(lower: _Node | None, value: JsonValue, source: Source) -> _Node | None:
    """Apply one (checked) value over the inherited node; None means "no value"."""
    if is_tombstone(value):
        return None
    if isinstance(value, Mapping) and not _is_atomic(value):
        members = dict(lower.members) if isinstance(lower, _Object) else {}
        for name, child in value.items():
            merged = _merge(members.get(name), child, source)
            if merged is None:
                members.pop(name, None)
            else:
                members[name] = merged
        return _Object(members, source)
    return _Leaf(value, source)


def _document(node: _Node) -> JsonValue:
    if isinstance(node, _Leaf):
        return sorted_copy(node.value)
    return {name: _document(node.members[name]) for name in sorted(node.members)}


def _provenance(node: _Node, pointer: str, out: dict[str, Source]) -> None:
    if isinstance(node, _Object) and node.members:
        for name, child in node.members.items():
            _provenance(child, f"{pointer}/{escape_pointer_token(name)}", out)
    else:
        out[pointer] = node.source


@dataclass(frozen=True, eq=False)
class Resolved:
    """A resolved document with the provenance of every leaf.

    ``document`` maps each config key name to its merged value (objects are
    dicts in member-name order, arrays lists, numbers int or Decimal). It may
    be shared through a cache: treat it as read-only.

    ``provenance`` maps the JSON pointer of every leaf (scalar, array or empty
    object) to its Source, in pointer (string) order.

    ``revision`` is the highest etcd revision among all entries of the layers,
    including values that were overridden and tombstones, so it changes with
    every write that can change the document; 0 when there are no entries.

    Two results are equal when their canonical JSON, provenance and revision are.
    """

    document: dict[str, JsonValue]
    provenance: Mapping[str, Source]
    revision: int

    @cached_property
    def _canonical(self) -> str:
        return canonical_json(self.document)

    def canonical_json(self) -> str:
        """The document as canonical JSON text (byte-identical for identical inputs)."""
        return self._canonical

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Resolved):
            return NotImplemented
        return (
            self.revision == other.revision
            and self.canonical_json() == other.canonical_json()
            and list(self.provenance.items()) == list(other.provenance.items())
        )

    def __hash__(self) -> int:
        return hash((self.revision, self.canonical_json()))


def resolve(layers: Sequence[Layer]) -> Resolved:
    """Merge ``layers`` (lowest first) into one document with provenance.

    Raises InvalidArgumentError naming the source key, layer and JSON pointer
    when a value is not valid JSON or breaks the tombstone / reserved-name
    rules; ValueError when two layers have the same name (a caller bug).
    """
    names = [layer.name for layer in layers]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"layer names must be unique; repeated: {', '.join(duplicates)}")
    roots: dict[str, _Node] = {}
    revision = 0
    for layer in layers:
        for key in sorted(layer.entries):
            entry = layer.entries[key]
            revision = max(revision, entry.revision)
            value = parse_value(
                entry.value_json, key=key, origin=f"{entry.source} (layer {layer.name})"
            )
            merged = _merge(roots.get(key), value, Source(layer.name, entry.source, entry.revision))
            if merged is None:
                roots.pop(key, None)
            else:
                roots[key] = merged
    document = {key: _document(roots[key]) for key in sorted(roots)}
    provenance: dict[str, Source] = {}
    for key, node in roots.items():
        _provenance(node, "/" + escape_pointer_token(key), provenance)
    return Resolved(document, dict(sorted(provenance.items())), revision)
