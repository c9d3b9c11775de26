"""The resource scope of a request, found by field names.

Adding an RPC should cost one line in ``rules``, not an extractor, so the
scope is read generically from the request message: fields named ``tenant``,
``environment``, ``service``, ``key`` and ``key_prefix`` (plus ``keys`` and
``key_prefixes`` lists, as in watch selectors) on the request itself, and on
every message field, singular or repeated, whose type has a ``tenant`` field
(``ConfigKey``, ``WatchSelector``, ...). A rule may rename fields (``name``
-> ``tenant``; a dotted name reads a nested field: ``left.environment``),
declare the RPC installation-wide, or tenant-wide (only the tenant counts). The plan is worked out
once per method from its descriptor; per call it is a few attribute reads.

Every non-empty value is checked against the address grammar here, before
authorization, so a crafted name (``..``, ``/``, NUL, look-alike unicode, a
very long segment) is INVALID_ARGUMENT and can never satisfy a prefix
pattern by accident.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from configsvc.errors import FieldViolation, InvalidArgumentError
from configsvc.model.grants import Scope
from configsvc.model.keys import key_violation, segment_violation

_SEGMENTS = ("tenant", "environment", "service")
_KEYS = ("key", "key_prefix")
_LISTS = {"keys": "key", "key_prefixes": "key_prefix"}
_STRING = FieldDescriptor.TYPE_STRING
_MESSAGE = FieldDescriptor.TYPE_MESSAGE


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


@dataclass(frozen=True)
class _Flat:
    """Scope parts read from one message: scope part -> field name."""

    parts: tuple[tuple[str, str, Callable[[Any], str]], ...]  # (scope part, field, getter)
    lists: tuple[tuple[str, str], ...]  # (scope part, repeated string field)

    def scopes(
        self, message: Any, path: str, out: list[Scope], violations: list[FieldViolation]
    ) -> None:
        values: dict[str, str | None] = {}
        for part, name, get in self.parts:
            value = get(message)
            if value:
                _check(part, path, name, value, violations)
            values[part] = value or None
        base = Scope(**values)
        listed = False
        for part, name in self.lists:
            for i, value in enumerate(getattr(message, name)):
                listed = True
                _check(part, path, f"{name}[{i}]", value, violations)
                out.append(Scope(base.tenant, base.environment, base.service, **{part: value}))
        if not listed:
            out.append(base)


#: Values that passed their grammar, per grammar: the read path checks a
#: handful of names over and over. Bounded; cleared when full.
_GOOD_SEGMENTS: set[str] = set()
_GOOD_KEYS: set[str] = set()
_GOOD_MAX = 100_000


def _check(part: str, path: str, name: str, value: str, violations: list[FieldViolation]) -> None:
    segment = part in _SEGMENTS
    good = _GOOD_SEGMENTS if segment else _GOOD_KEYS
    if value in good:
        return
    field = path + name
    found = segment_violation(field, value) if segment else key_violation(field, value)
    if found is not None:
        violations.append(found)
        return
    if len(good) >= _GOOD_MAX:
        good.clear()
    good.add(value)


def _field(descriptor: Descriptor, path: str) -> FieldDescriptor | None:
    """The field at a dotted path of singular message fields (``left.environment``)."""
    found: FieldDescriptor | None = None
    for name in path.split("."):
        if found is not None:
            if found.type != _MESSAGE or _is_repeated(found) or found.message_type is None:
                return None
            descriptor = found.message_type
        found = descriptor.fields_by_name.get(name)
        if found is None:
            return None
    return found


def _flat(descriptor: Descriptor, aliases: Mapping[str, str]) -> _Flat | None:
    fields = descriptor.fields_by_name
    renamed = {aliases.get(name, name): name for name in fields}
    # Dotted aliases read a scope part from a nested message (DiffRequest.left.environment).
    renamed.update({part: path for path, part in aliases.items() if "." in path})
    typed = {part: _field(descriptor, name) for part, name in renamed.items()}
    parts = tuple(
        (part, renamed[part], attrgetter(renamed[part]))
        for part in (*_SEGMENTS, *_KEYS)
        if (found := typed.get(part)) is not None
        and found.type == _STRING
        and not _is_repeated(found)
    )
    lists = tuple(
        (part, name)
        for name, part in _LISTS.items()
        if name in fields and fields[name].type == _STRING and _is_repeated(fields[name])
    )
    if not any(part == "tenant" for part, _, _ in parts):
        return None
    return _Flat(parts, lists)


@dataclass(frozen=True)
class ScopePlan:
    """How to read the scopes of one method's requests."""

    own: _Flat | None
    nested: tuple[tuple[str, bool, _Flat], ...]  # (field, repeated, plan)
    tenant_wide: bool = False

    def scopes(self, request: Any) -> list[Scope]:
        """Every scope the request names; [Scope()] (everything) when it names none."""
        out: list[Scope] = []
        violations: list[FieldViolation] = []
        if self.own is not None:
            self.own.scopes(request, "", out, violations)
        for name, repeated, plan in self.nested:
            if repeated:
                for i, item in enumerate(getattr(request, name)):
                    plan.scopes(item, f"{name}[{i}].", out, violations)
            elif request.HasField(name):
                plan.scopes(getattr(request, name), f"{name}.", out, violations)
        if violations:
            raise InvalidArgumentError(violations)
        if self.tenant_wide:
            return [Scope(scope.tenant) for scope in out] or [Scope()]
        return out or [Scope()]


def plan_none() -> ScopePlan:
    """The plan of a method whose scopes are read elsewhere (``Rule.scope_from``)."""
    return ScopePlan(None, ())


def plan(
    descriptor: Descriptor,
    aliases: Mapping[str, str] | None = None,
    *,
    installation_wide: bool = False,
    tenant_wide: bool = False,
) -> ScopePlan:
    """Work out once where a request message keeps its scope.

    ``tenant_wide`` keeps only the tenants of the scopes (environment, service
    and key fields are still checked against the grammar): for tenant-level
    objects whose environment/service fields are filters, not addresses.
    """
    if installation_wide:
        return ScopePlan(None, ())
    aliases = aliases or {}
    nested = []
    for field in descriptor.fields:
        if field.type != _MESSAGE or field.message_type is None:
            continue
        inner = _flat(field.message_type, {})
        if inner is not None:
            nested.append((field.name, _is_repeated(field), inner))
    return ScopePlan(_flat(descriptor, aliases), tuple(nested), tenant_wide)
