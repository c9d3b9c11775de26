"""JSON Schema (Draft 2020-12) bindings: which schema a configuration value must satisfy.

A ``SchemaBinding`` ties a schema to the config keys whose names match a glob
``pattern`` within a ``Scope``. Everything a binding holds is checked when it
is constructed (pattern grammar, the schema against the Draft 2020-12
meta-schema, every ``$ref`` resolvable inside the schema, ``x-sensitive``
flags boolean), so a binding that exists can always validate.

Patterns
    The key grammar's characters plus ``*`` (any run of characters, dots
    included: ``db.*`` matches ``db.pool`` and ``db.pool.max``) and ``?``
    (exactly one character). A pattern without wildcards binds one exact key.

Precedence (``SchemaRegistry.schemas_for``)
    Every binding that covers a key applies; a value must satisfy all of
    them. They are listed most specific first, which is also the order in
    which their messages are preferred when several fail at one place:

    1. exact keys before patterns;
    2. narrower scope before wider: environment and service, then service
       only, then environment only, then the whole tenant;
    3. among patterns, more literal (non-wildcard) characters first, then
       fewer wildcards (``db.pool.*`` before ``db.*`` before ``*``);
    4. then by pattern, scope, source and version, so the order is total.

    A binding scoped to environment ``prod`` also applies to values written
    for every environment (``all``): they resolve into ``prod`` as well.

Violations
    ``validate`` returns one ``FieldViolation`` per failing place in the
    value, named ``value`` plus the JSON Pointer of that place
    (``value/pool/max``, ``value/items/3``; ``value`` for the whole value),
    sorted by place (array indexes numerically). A failure inside
    ``anyOf``/``oneOf`` is reported at the deepest place jsonschema's
    ``best_match`` finds. ``required`` and ``additionalProperties`` failures
    name the object that lacks or has the member. Each description ends
    with the schema (source, version), the keyword and its schema path.
    Messages about places marked ``x-sensitive`` do not repeat the value.

Formats
    The formats in ``configsvc.validate.formats.ENFORCED_FORMATS`` are
    asserted (date-time, date, time, email, idn-email, ipv4, ipv6, uri,
    uuid, regex); any other ``format`` is an annotation only.

Sensitive fields
    A subschema with ``"x-sensitive": true`` marks the places it applies to
    as secret. ``sensitive_pointers`` lists those places in a given value.
    It is deliberately conservative: a place counts as sensitive when any
    subschema that may apply to it says so (every branch of ``anyOf``,
    ``oneOf``, ``allOf``, ``if``/``then``/``else``, ``dependentSchemas``,
    ``contains`` is considered, and ``$ref`` is followed). A place below a
    sensitive place is not listed separately.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match, relevance
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from configsvc.errors import FieldViolation, InvalidArgumentError
from configsvc.model.keys import KEY_MAX, ConfigKey
from configsvc.validate import pointer
from configsvc.validate.formats import FORMAT_CHECKER
from configsvc.validate.scope import Scope

if TYPE_CHECKING:
    # referencing exports Resolver for type checking only.
    from referencing._core import Resolver

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
SENSITIVE_KEYWORD = "x-sensitive"
SOURCE_MAX = 256

_PATTERN_RE = re.compile(r"[A-Za-z0-9_*?][A-Za-z0-9_.*?-]*")
_PATTERN_RULE = (
    f"must be 1 to {KEY_MAX} characters of A-Z, a-z, 0-9, '_', '-', '.' and the wildcards "
    "'*' and '?', starting with a letter, digit, '_' or a wildcard, without '..'"
)
_META_VALIDATOR = Draft202012Validator(
    Draft202012Validator.META_SCHEMA, format_checker=FORMAT_CHECKER
)

# Where Draft 2020-12 keeps subschemas: one schema, a list of them, a map of them.
_ONE_SUBSCHEMA = (
    "additionalProperties",
    "contains",
    "contentSchema",
    "else",
    "if",
    "items",
    "not",
    "propertyNames",
    "then",
    "unevaluatedItems",
    "unevaluatedProperties",
)
_LIST_OF_SUBSCHEMAS = ("allOf", "anyOf", "oneOf", "prefixItems")
_MAP_OF_SUBSCHEMAS = ("$defs", "definitions", "dependentSchemas", "patternProperties", "properties")
_REF_KEYWORDS = ("$ref", "$dynamicRef")
# Keywords whose messages name members but never repeat the instance itself.
_MESSAGE_SAFE = frozenset(
    {"required", "additionalProperties", "unevaluatedProperties", "dependentRequired"}
)

Path = tuple[str | int, ...]


def pattern_violation(pattern: str, field_path: str = "pattern") -> FieldViolation | None:
    """Why ``pattern`` is not a key glob (see the module docstring), or None."""
    if not pattern:
        return FieldViolation(field_path, f"is required; {_PATTERN_RULE}")
    if len(pattern) > KEY_MAX:
        return FieldViolation(
            field_path, f"is {len(pattern)} characters long; the limit is {KEY_MAX}"
        )
    if not _PATTERN_RE.fullmatch(pattern) or ".." in pattern:
        shown = pattern if len(pattern) <= 40 else pattern[:40] + "..."
        return FieldViolation(field_path, f"{shown!a} is invalid: {_PATTERN_RULE}")
    return None


def glob_matcher(pattern: str) -> re.Pattern[str]:
    """The regular expression a key glob stands for (match it with ``fullmatch``)."""
    return re.compile(
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.DOTALL
    )


def _root_resolver(schema: Mapping[str, Any]) -> Resolver[Any]:
    """A resolver for ``$ref`` inside ``schema`` only: no other document, no retrieval."""
    resource = DRAFT202012.create_resource(schema)
    uri = resource.id() or ""
    registry: Registry[Any] = Registry().with_resource(uri, resource).crawl()
    return registry.resolver(base_uri=uri)


def _enter(node: Mapping[str, Any], resolver: Resolver[Any]) -> Resolver[Any]:
    """The resolver inside ``node``: a subschema with ``$id`` changes the base URI."""
    if "$id" in node:
        return resolver.in_subresource(DRAFT202012.create_resource(node))
    return resolver


def _subschemas(
    schema: Mapping[str, Any], resolver: Resolver[Any]
) -> Iterator[tuple[Path, Mapping[str, Any], Resolver[Any]]]:
    """Every object subschema of ``schema`` with its schema path and resolver."""
    stack: list[tuple[Path, object, Resolver[Any]]] = [((), schema, resolver)]
    while stack:
        path, node, outer = stack.pop()
        if not isinstance(node, Mapping):
            continue
        inner = _enter(node, outer)
        yield path, node, inner
        for keyword in _ONE_SUBSCHEMA:
            if keyword in node:
                stack.append(((*path, keyword), node[keyword], inner))
        for keyword in _LIST_OF_SUBSCHEMAS:
            if isinstance(node.get(keyword), list):
                stack.extend(
                    ((*path, keyword, i), sub, inner) for i, sub in enumerate(node[keyword])
                )
        for keyword in _MAP_OF_SUBSCHEMAS:
            if isinstance(node.get(keyword), Mapping):
                stack.extend(
                    ((*path, keyword, name), sub, inner) for name, sub in node[keyword].items()
                )


def _group_errors(errors: Iterable[ValidationError]) -> dict[Path, list[ValidationError]]:
    """Errors keyed by the instance path they are about, each descended to its best match."""
    groups: dict[Path, list[ValidationError]] = {}
    for error in errors:
        best = best_match([error]) or error
        groups.setdefault(tuple(best.absolute_path), []).append(best)
    for group in groups.values():
        group.sort(key=relevance, reverse=True)
    return groups


def schema_violations(schema: object) -> list[FieldViolation]:
    """Why ``schema`` cannot be bound, one violation per place in it; empty if it can.

    Fields are ``schema`` plus the JSON Pointer of the problem in the schema,
    e.g. ``schema/properties/pool/type``.
    """
    if not isinstance(schema, Mapping):
        return [FieldViolation("schema", "must be a JSON object (a JSON Schema)")]
    declared = schema.get("$schema")
    if declared is not None and str(declared).rstrip("#") != DRAFT_2020_12:
        return [
            FieldViolation(
                "schema/$schema",
                f"is {declared!r}; only Draft 2020-12 ({DRAFT_2020_12!r}) is "
                "supported: remove '$schema' or set it to that URI",
            )
        ]
    try:
        groups = _group_errors(_META_VALIDATOR.iter_errors(schema))
    except RecursionError:
        return [FieldViolation("schema", "is nested too deeply")]
    violations = []
    for path, group in sorted(groups.items(), key=lambda item: pointer.sort_key(item[0])):
        best = group[0]
        violations.append(
            FieldViolation(
                "schema" + pointer.to_pointer(path),
                f"is not valid JSON Schema (Draft 2020-12): {best.message} "
                f"(meta-schema keyword {best.validator!r})",
            )
        )
    if violations:
        return violations
    for path, node, resolver in _subschemas(schema, _root_resolver(schema)):
        flag = node.get(SENSITIVE_KEYWORD)
        if flag is not None and not isinstance(flag, bool):
            violations.append(
                FieldViolation(
                    "schema" + pointer.to_pointer((*path, SENSITIVE_KEYWORD)),
                    f"is {flag!r}; it must be true or false",
                )
            )
        for keyword in _REF_KEYWORDS:
            ref = node.get(keyword)
            if isinstance(ref, str):
                try:
                    resolver.lookup(ref)
                except Unresolvable:
                    violations.append(
                        FieldViolation(
                            "schema" + pointer.to_pointer((*path, keyword)),
                            f"{ref!r} cannot be resolved: references must point inside this "
                            "schema (e.g. '#/$defs/name'); nothing is fetched",
                        )
                    )
    violations.sort(key=lambda v: v.field)
    return violations


def _sensitive_paths(
    schema: Mapping[str, Any], value: object, resolver: Resolver[Any]
) -> list[Path]:
    found: set[Path] = set()
    seen: set[tuple[int, Path]] = set()
    stack: list[tuple[object, Resolver[Any], object, Path]] = [(schema, resolver, value, ())]

    while stack:
        node, outer, instance, path = stack.pop()
        if not isinstance(node, Mapping) or (id(node), path) in seen:
            continue
        seen.add((id(node), path))
        if node.get(SENSITIVE_KEYWORD) is True:
            found.add(path)
            continue
        inner = _enter(node, outer)
        for keyword in _REF_KEYWORDS:
            ref = node.get(keyword)
            if isinstance(ref, str):
                try:
                    resolved = inner.lookup(ref)
                except Unresolvable:
                    raise InvalidArgumentError.single(
                        "schema", f"has a {keyword} that cannot be resolved: {ref!r}"
                    ) from None
                stack.append((resolved.contents, resolved.resolver, instance, path))
        # Subschemas that apply to this same place.
        same_place = [
            sub for keyword in ("allOf", "anyOf", "oneOf") for sub in node.get(keyword) or ()
        ]
        same_place += [node[keyword] for keyword in ("if", "then", "else") if keyword in node]
        same_place += list((node.get("dependentSchemas") or {}).values())
        stack.extend((sub, inner, instance, path) for sub in same_place)

        if isinstance(instance, Mapping):
            properties = node.get("properties") or {}
            patterns = node.get("patternProperties") or {}
            for name, member in instance.items():
                subs = [properties[name]] if name in properties else []
                subs += [sub for regex, sub in patterns.items() if re.search(regex, name)]
                if not subs:
                    subs = [
                        node[keyword]
                        for keyword in ("additionalProperties", "unevaluatedProperties")
                        if keyword in node
                    ]
                stack.extend((sub, inner, member, (*path, name)) for sub in subs)
        elif isinstance(instance, list):
            prefix = node.get("prefixItems") or []
            for i, item in enumerate(instance):
                if i < len(prefix):
                    subs = [prefix[i]]
                else:
                    subs = [
                        node[keyword]
                        for keyword in ("items", "unevaluatedItems")
                        if keyword in node
                    ]
                if "contains" in node:
                    subs.append(node["contains"])
                stack.extend((sub, inner, item, (*path, i)) for sub in subs)

    # A place below a sensitive place is covered by it.
    ordered = sorted(found, key=lambda p: (len(p), pointer.sort_key(p)))
    kept: list[Path] = []
    for path in ordered:
        if not any(path[: len(k)] == k for k in kept):
            kept.append(path)
    return sorted(kept, key=pointer.sort_key)


def sensitive_pointers(schema: Mapping[str, Any], value: object) -> list[str]:
    """JSON Pointers of the places in ``value`` that ``schema`` marks ``x-sensitive``.

    ``""`` means the whole value. Sorted, and minimal: no pointer lies below
    another. ``schema`` should be one a ``SchemaBinding`` accepts; a ``$ref``
    that cannot be resolved raises ``InvalidArgumentError``.
    """
    paths = _sensitive_paths(schema, value, _root_resolver(schema))
    return [pointer.to_pointer(p) for p in paths]


@dataclass(frozen=True)
class SchemaBinding:
    """A JSON Schema that values of keys matching ``pattern`` in ``scope`` must satisfy.

    Raises ``InvalidArgumentError`` on construction for a bad pattern,
    version, source or schema; fields are ``pattern``, ``version``,
    ``source`` and ``schema/<pointer into the schema>``. The schema is
    copied, so later changes to the caller's mapping do not affect it.
    """

    pattern: str
    schema: Mapping[str, Any]
    version: int
    source: str
    scope: Scope
    _matcher: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _validator: Draft202012Validator = field(init=False, repr=False, compare=False)
    _resolver: Resolver[Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        found = [pattern_violation(self.pattern)]
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1:
            found.append(FieldViolation("version", f"is {self.version!r}; it must be 1 or more"))
        if not self.source or len(self.source) > SOURCE_MAX or not self.source.isprintable():
            found.append(
                FieldViolation(
                    "source",
                    f"must be 1 to {SOURCE_MAX} printable characters naming where the "
                    "schema comes from",
                )
            )
        violations = [v for v in found if v is not None] + schema_violations(self.schema)
        if violations:
            raise InvalidArgumentError(violations)
        schema = copy.deepcopy(dict(self.schema))
        object.__setattr__(self, "schema", schema)
        object.__setattr__(self, "_matcher", glob_matcher(self.pattern))
        object.__setattr__(
            self,
            "_validator",
            Draft202012Validator(schema, format_checker=FORMAT_CHECKER, registry=Registry()),
        )
        object.__setattr__(self, "_resolver", _root_resolver(schema))

    @property
    def is_pattern(self) -> bool:
        """True for a glob, False for a binding of one exact key name."""
        return "*" in self.pattern or "?" in self.pattern

    @property
    def name(self) -> str:
        """How messages name this schema: its source and version."""
        return f"{self.source!r} version {self.version}"

    def matches_name(self, key_name: str) -> bool:
        """True if the key name matches ``pattern``."""
        return self._matcher.fullmatch(key_name) is not None

    def applies_to(self, key: ConfigKey) -> bool:
        """True if values of ``key`` must satisfy this schema."""
        return self.scope.covers_key(key) and self.matches_name(key.key)

    def specificity(self) -> tuple[object, ...]:
        """Sort key: smaller is more specific (see the module docstring)."""
        wildcards = self.pattern.count("*") + self.pattern.count("?")
        return (
            self.is_pattern,
            -self.scope.rank,
            -(len(self.pattern) - wildcards),
            wildcards,
            self.pattern,
            self.scope.environment,
            self.scope.service,
            self.source,
            self.version,
        )

    def errors(self, value: object) -> Iterator[ValidationError]:
        """The raw jsonschema errors of ``value`` (``validate`` is what callers want)."""
        return self._validator.iter_errors(value)

    def sensitive_pointers(self, value: object) -> list[str]:
        """``sensitive_pointers(self.schema, value)``, with the resolver built once."""
        return [pointer.to_pointer(p) for p in _sensitive_paths(self.schema, value, self._resolver)]

    def validate(self, value: object) -> list[FieldViolation]:
        """This schema's violations for ``value`` alone (see ``SchemaRegistry.validate``)."""
        return violations_of([self], value)


def _redact(sensitive: Sequence[str], path: Path, error: ValidationError) -> bool:
    """True if ``error``'s message may show a secret: its place and a sensitive one overlap."""
    if error.validator in _MESSAGE_SAFE:
        return False
    here = pointer.to_pointer(path)
    return any(pointer.is_within(here, s) or pointer.is_within(s, here) for s in sensitive)


_Failure = tuple[SchemaBinding, list[ValidationError], list[str]]


def _explain(
    binding: SchemaBinding, error: ValidationError, sensitive: Sequence[str], path: Path
) -> str:
    """One error as a person reads it: what is wrong, then which schema and keyword said so."""
    keyword = str(error.validator)
    if _redact(sensitive, path, error):
        message = f"fails {keyword!r}; the value is marked x-sensitive and not shown"
    else:
        message = error.message
    where = "#" + pointer.to_pointer(error.absolute_schema_path)
    return f"{message} (schema {binding.name}, keyword {keyword!r} at {where})"


def _describe(path: Path, failures: Sequence[_Failure]) -> str:
    """All failures at one place: the most relevant error of the most specific schema first."""
    texts = [
        _explain(binding, error, sensitive, path)
        for binding, errors, sensitive in failures
        for error in errors
    ]
    return "; also ".join(texts)


def violations_of(bindings: Sequence[SchemaBinding], value: object) -> list[FieldViolation]:
    """One violation per failing place of ``value`` under all of ``bindings``, sorted by place.

    ``bindings`` should be most specific first: the first binding failing at
    a place gives the message, the others are named after it.
    """
    failures: dict[Path, list[_Failure]] = {}
    for binding in bindings:
        try:
            groups = _group_errors(binding.errors(value))
        except RecursionError:
            return [FieldViolation("value", "is nested too deeply to validate")]
        sensitive = binding.sensitive_pointers(value) if groups else []
        for path, errors in groups.items():
            failures.setdefault(path, []).append((binding, errors, sensitive))
    return [
        FieldViolation("value" + pointer.to_pointer(path), _describe(path, failures[path]))
        for path in sorted(failures, key=pointer.sort_key)
    ]


class SchemaRegistry:
    """The schema bindings in force, answering which apply to a key and what fails."""

    def __init__(self, bindings: Iterable[SchemaBinding]) -> None:
        by_tenant: dict[str, list[SchemaBinding]] = {}
        for binding in bindings:
            by_tenant.setdefault(binding.scope.tenant, []).append(binding)
        self._by_tenant = {
            tenant: tuple(sorted(found, key=SchemaBinding.specificity))
            for tenant, found in by_tenant.items()
        }

    @property
    def bindings(self) -> tuple[SchemaBinding, ...]:
        """Every binding, by tenant, each tenant's most specific first."""
        return tuple(b for tenant in sorted(self._by_tenant) for b in self._by_tenant[tenant])

    def schemas_for(self, key: ConfigKey) -> list[SchemaBinding]:
        """The bindings whose schemas a value of ``key`` must satisfy, most specific first."""
        return [b for b in self._by_tenant.get(key.tenant, ()) if b.applies_to(key)]

    def validate(self, key: ConfigKey, value: object) -> list[FieldViolation]:
        """Every failing place of ``value`` (parsed JSON) under every schema of ``key``.

        Empty when the value is valid or no schema applies. Raise
        ``InvalidArgumentError(violations)`` with the result to refuse a write.
        """
        return violations_of(self.schemas_for(key), value)

    def sensitive_pointers(self, key: ConfigKey, value: object) -> list[str]:
        """The places of ``value`` that any schema of ``key`` marks sensitive (minimal, sorted)."""
        found: set[Path] = set()
        for binding in self.schemas_for(key):
            found.update(_sensitive_paths(binding.schema, value, binding._resolver))
        minimal = [p for p in found if not any(p[: len(q)] == q and p != q for q in found)]
        return [pointer.to_pointer(p) for p in sorted(minimal, key=pointer.sort_key)]


def check_values(
    binding: SchemaBinding, existing: Mapping[ConfigKey, object]
) -> dict[ConfigKey, list[FieldViolation]]:
    """Which stored values a proposed binding would make invalid, and why.

    ``existing`` maps keys to their parsed values; keys the binding does not
    cover are ignored. The result holds only the failing keys, in key order,
    each with the violations ``binding.validate`` gives. For the dry run of a
    schema change: an empty result means the change breaks nothing stored.
    """
    report: dict[ConfigKey, list[FieldViolation]] = {}
    for key in sorted(existing):
        if binding.applies_to(key):
            violations = binding.validate(existing[key])
            if violations:
                report[key] = violations
    return report
