"""Business rules: JSON Logic over the resolved configuration of one service in one environment.

A ``Rule`` is a JSON Logic expression (evaluated by ``panzi-json-logic``, the
engine openfeature-flagd uses) that must be truthy for every resolved
document in its scope. A JSON Schema checks one value; a rule relates values,
e.g. ``db.pool``'s ``min`` to its ``max``, or a client timeout to the
upstream one. A rule is *broken* for a document when its logic is falsy
there (JavaScript truthiness: ``false``, ``null``, ``0``, ``""``, ``[]``).

Addressing configuration: ``cfg``
    Config key names contain dots (``db.pool``) and JSON Logic's ``var``
    splits its argument on dots, so ``{"var": "db.pool.min"}`` would look for
    member ``min`` of member ``pool`` of a key ``db``. Rules therefore read
    configuration with one extra operation instead:

    ``{"cfg": "<key name>[<JSON Pointer>]"}``

    The text up to the first ``/`` is the key name (key names never contain
    ``/``); the rest is an RFC 6901 JSON Pointer into that key's value:

    - ``{"cfg": "db.pool"}``: the whole value of key ``db.pool``;
    - ``{"cfg": "db.pool/min"}``: its member ``min``;
    - ``{"cfg": "http.routes/0/timeout_ms"}``: an array item's member;
    - ``{"cfg": "labels/app.kubernetes.io~1name"}``: member
      ``app.kubernetes.io/name`` (``~1`` is ``/``, ``~0`` is ``~``);
    - ``{"cfg": ["db.pool/min", 1]}``: with a default, like ``var``;
    - ``{"cfg": {"cat": ["feature.", {"var": ""}, "/enabled"]}}``: a
      computed address (null reads as null; any other non-string is an error).

    ``{"cfg_missing": ["db.pool/min", "db.pool/max"]}`` is the counterpart
    of ``missing``: the list of those addresses that are absent (or null), so
    ``{"if": [{"cfg_missing": [...]}, true, <check>]}`` makes a rule apply
    only where its keys are set.

    A missing key, member or array item reads as ``null`` (or the default).
    JSON Logic turns ``null`` into ``0`` in arithmetic and comparisons, so a
    rule over optional keys should guard with ``cfg_missing`` or ``if``.

    ``cfg`` always reads the document, also inside ``map``, ``filter``,
    ``reduce``, ``all``, ``some`` and ``none``. Inside those (and only there)
    ``var``, ``missing`` and ``missing_some`` keep their JSON Logic meaning
    and read the current item; elsewhere they are refused, because there they
    would read the document with dot-splitting.

Checked when a rule is created (``InvalidArgumentError``)
    ``name`` (the segment grammar: ``a-z``, ``0-9``, ``-``), ``message``
    (1 to 1024 characters), and ``logic``: a JSON object; every object in it
    an operation with exactly one key (object literals are not supported);
    only known operations (JSON Logic's, less ``log``, plus ``cfg`` and
    ``cfg_missing``); literal ``cfg`` addresses well formed; at most
    ``LOGIC_DEPTH_MAX`` levels of nesting (objects and arrays) and
    ``LOGIC_NODES_MAX`` values; and it must evaluate on an empty document
    without raising. Fields are ``name``,
    ``message`` and ``logic`` plus the JSON Pointer of the problem inside the
    logic, e.g. ``logic/and/1/cfg``.

A rule that raises when evaluated on a real document (say a division by a
zero setting) counts as broken there, its message saying why.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from json_logic.apply import apply  # type: ignore[import-untyped]
from json_logic.builtins import BUILTINS, to_bool  # type: ignore[import-untyped]

from configsvc.errors import FieldViolation, InvalidArgumentError
from configsvc.model.keys import key_violation, segment_violation
from configsvc.validate import pointer
from configsvc.validate.scope import DocumentScope, Scope

MESSAGE_MAX = 1024
LOGIC_DEPTH_MAX = 64
LOGIC_NODES_MAX = 2000

#: Operations the engine evaluates itself, with their arguments unevaluated.
_SPECIAL_FORMS = frozenset(
    {"if", "?:", "and", "or", "filter", "reduce", "map", "all", "some", "none"}
)
#: Of those, the ones evaluating their second argument once per item, with the item as data.
_ITERATING = frozenset({"filter", "reduce", "map", "all", "some", "none"})
#: Operations reading ``data``: allowed only where data is an item, never the document.
_ITEM_ONLY = frozenset({"var", "missing", "missing_some"})
#: ``log`` prints to stdout: a side effect no rule needs.
_BUILTINS: dict[str, Callable[..., Any]] = {
    name: op for name, op in BUILTINS.items() if name != "log"
}
OPERATIONS = frozenset(_BUILTINS) | _SPECIAL_FORMS | {"cfg", "cfg_missing"}

LogicPath = tuple[str | int, ...]


def split_address(address: str) -> tuple[str, str]:
    """``"db.pool/min"`` -> ``("db.pool", "/min")``; ValueError if it is malformed."""
    problem = address_violation(address)
    if problem:
        raise ValueError(problem)
    key, slash, rest = address.partition("/")
    return key, slash + rest


def address_violation(address: str) -> str | None:
    """Why ``address`` is not ``<key name>[<JSON Pointer>]``, or None."""
    key, slash, rest = address.partition("/")
    bad_key = key_violation("key", key)
    if bad_key:
        return f"config address {address!r}: key name {bad_key.description}"
    bad_pointer = pointer.pointer_violation(slash + rest)
    return f"config address {address!r}: {bad_pointer}" if bad_pointer else None


def _cfg(
    document: Mapping[str, object],
    address: object = None,
    default: object = None,
    *_ignored: object,
) -> object:
    if address is None:  # a computed address that came out null
        return default
    if not isinstance(address, str):
        raise TypeError(f"cfg takes a config address such as 'db.pool/min', not {address!r}")
    key, where = split_address(address)
    if key not in document:
        return default
    found = pointer.resolve(document[key], where)
    return default if found is pointer.MISSING or found is None else found


def _cfg_missing(document: Mapping[str, object], *addresses: object) -> list[object]:
    if addresses and isinstance(addresses[0], list):
        addresses = tuple(addresses[0])
    return [address for address in addresses if _cfg(document, address) is None]


def _operations(document: Mapping[str, object]) -> dict[str, Callable[..., Any]]:
    return {
        **_BUILTINS,
        "cfg": lambda _data, *args: _cfg(document, *args),
        "cfg_missing": lambda _data, *args: _cfg_missing(document, *args),
    }


def _field(path: LogicPath) -> str:
    return "logic" + pointer.to_pointer(path)


def _arguments(node_path: LogicPath, op: str, args: object) -> list[tuple[LogicPath, object]]:
    """The arguments of an operation with their paths (one non-list argument is ``[arg]``)."""
    if isinstance(args, list):
        return [((*node_path, op, i), arg) for i, arg in enumerate(args)]
    return [((*node_path, op), args)]


def _address_arguments(
    op: str, arguments: list[tuple[LogicPath, object]]
) -> list[tuple[LogicPath, object]]:
    """The arguments of ``cfg``/``cfg_missing`` that are config addresses."""
    if op == "cfg":
        return arguments[:1]
    if arguments:
        path, first = arguments[0]
        if isinstance(first, list):
            return [((*path, i), item) for i, item in enumerate(first)]
    return arguments


class _LogicChecker:
    """The static checks of a rule's logic, collecting every violation with its path."""

    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []
        self.nodes = 0

    def add(self, path: LogicPath, description: str) -> None:
        self.violations.append(FieldViolation(_field(path), description))

    def check(self, node: object, path: LogicPath, in_item: bool, depth: int) -> None:
        if self.nodes > LOGIC_NODES_MAX:
            return
        self.nodes += 1
        if self.nodes > LOGIC_NODES_MAX:
            self.add((), f"has more than {LOGIC_NODES_MAX} values and operations")
            return
        if isinstance(node, list | Mapping) and depth == LOGIC_DEPTH_MAX:
            self.add(path, f"is nested more than {LOGIC_DEPTH_MAX} levels deep")
        elif isinstance(node, list):
            for i, item in enumerate(node):
                self.check(item, (*path, i), in_item, depth + 1)
        elif isinstance(node, Mapping):
            self.check_operation(node, path, in_item, depth + 1)
        elif not (node is None or isinstance(node, str | int | float)):
            self.add(path, f"is {type(node).__name__}, not JSON")

    def check_operation(
        self, node: Mapping[object, object], path: LogicPath, in_item: bool, depth: int
    ) -> None:
        if len(node) != 1:
            self.add(
                path,
                f"is an object with {len(node)} keys: an operation has exactly one "
                "key, the operator (object literals are not supported)",
            )
            return
        op, args = next(iter(node.items()))
        if not isinstance(op, str) or op not in OPERATIONS:
            self.add(
                (*path, str(op)),
                f"{op!r} is not a known operation; use one of {', '.join(sorted(OPERATIONS))}",
            )
            return
        if op in _ITEM_ONLY and not in_item:
            self.add(
                (*path, op),
                f"{op!r} reads the current item inside map, filter, reduce, "
                "all, some and none only; read configuration with "
                '{"cfg": "key.name/member"} and {"cfg_missing": [...]}',
            )
            return
        arguments = _arguments(path, op, args)
        if op in ("cfg", "cfg_missing"):
            if op == "cfg" and not arguments:
                self.add((*path, op), "needs a config address such as 'db.pool/min'")
            for where, address in _address_arguments(op, arguments):
                self.check_address(where, address)
        for i, (where, arg) in enumerate(arguments):
            self.check(arg, where, in_item or (op in _ITERATING and i == 1), depth)

    def check_address(self, path: LogicPath, address: object) -> None:
        if isinstance(address, Mapping):
            return  # computed when the rule runs
        if not isinstance(address, str):
            self.add(
                path,
                f"is {address!r}: a config address is a string such as "
                "'db.pool/min' (key name, then a JSON Pointer into its value)",
            )
            return
        problem = address_violation(address)
        if problem:
            self.add(path, problem)


def _evaluate(logic: object, document: Mapping[str, object]) -> object:
    return apply(logic, document, _operations(document))


def _raising_part(node: object, path: LogicPath) -> tuple[LogicPath, Exception] | None:
    """The deepest operation in ``node`` that raises on an empty document, with the error."""
    if isinstance(node, Mapping):
        op, args = next(iter(node.items()))
        parts = _arguments(path, op, args)
    elif isinstance(node, list):
        parts = [((*path, i), item) for i, item in enumerate(node)]
    else:
        return None  # a plain value cannot raise
    try:
        _evaluate(node, {})
    except Exception as exc:  # any failure of the engine is a broken rule
        for where, part in parts:
            deeper = _raising_part(part, where)
            if deeper:
                return deeper
        return path, exc
    return None


def logic_violations(logic: object) -> list[FieldViolation]:
    """Why ``logic`` cannot be a rule's logic, each with its path inside the logic; empty if OK."""
    if not isinstance(logic, Mapping):
        return [FieldViolation("logic", "must be a JSON Logic operation (a JSON object)")]
    checker = _LogicChecker()
    checker.check(logic, (), in_item=False, depth=0)
    if checker.violations:
        return checker.violations
    failure = _raising_part(logic, ())
    if failure:
        path, exc = failure
        return [
            FieldViolation(
                _field(path),
                f"fails on an empty configuration: {_error(exc)}; "
                "guard optional keys with cfg_missing or if",
            )
        ]
    return []


def _error(exc: Exception) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(frozen=True)
class Rule:
    """A named JSON Logic check over resolved documents of ``scope``; checked on construction."""

    name: str
    logic: Mapping[str, Any]
    message: str
    scope: Scope

    def __post_init__(self) -> None:
        found = [segment_violation("name", self.name)]
        if not self.message.strip() or len(self.message) > MESSAGE_MAX:
            found.append(
                FieldViolation(
                    "message", f"must be 1 to {MESSAGE_MAX} characters saying what is wrong"
                )
            )
        violations = [v for v in found if v is not None] + logic_violations(self.logic)
        if violations:
            raise InvalidArgumentError(violations)
        object.__setattr__(self, "logic", copy.deepcopy(dict(self.logic)))

    def applies_to(self, document: DocumentScope) -> bool:
        """True if this rule must hold for the resolved document of ``document``."""
        return self.scope.covers_document(document)

    def holds(self, document: Mapping[str, object]) -> bool:
        """True if the logic is truthy for ``document``; exceptions of the engine propagate."""
        return bool(to_bool(_evaluate(self.logic, document)))


@dataclass(frozen=True, order=True)
class RuleViolation:
    """Rule ``rule`` is broken in the resolved document of ``scope``."""

    rule: str
    scope: DocumentScope
    message: str


def evaluate_rules(
    rules: Iterable[Rule],
    documents: Mapping[tuple[str, str], Mapping[str, object]],
    *,
    tenant: str | None = None,
) -> list[RuleViolation]:
    """Every (rule, document) pair where the rule is broken, sorted by rule, service, environment.

    ``documents`` maps ``(service, environment)`` to that resolved document:
    config key name to parsed JSON value. Each rule runs on every document its
    scope covers. Documents are of one tenant: pass ``tenant`` to skip the
    rules of others; without it, rules of several tenants are a ValueError.
    """
    rules = list(rules)
    if tenant is None:
        tenants = {rule.scope.tenant for rule in rules}
        if len(tenants) > 1:
            raise ValueError(f"rules of several tenants {sorted(tenants)}: pass tenant=")
    else:
        rules = [rule for rule in rules if rule.scope.tenant == tenant]
    broken = []
    for (service, environment), document in documents.items():
        where = DocumentScope(service, environment)
        for rule in rules:
            if not rule.applies_to(where):
                continue
            try:
                if rule.holds(document):
                    continue
                message = rule.message
            except Exception as exc:  # any failure of the engine is a broken rule
                message = f"{rule.message} (the rule could not be evaluated: {_error(exc)})"
            broken.append(RuleViolation(rule.name, where, message))
    return sorted(broken)


def rule_violations_to_error(violations: Iterable[RuleViolation]) -> InvalidArgumentError:
    """One INVALID_ARGUMENT error for broken rules: a field ``rules/<name>`` per rule.

    Each description is the rule's message and the documents it is broken
    for, e.g. ``db.pool min must not exceed max (broken for service 'api' in
    environment 'prod', service 'worker' in environment 'prod')``.
    """
    by_rule: dict[str, dict[str, list[DocumentScope]]] = {}
    for violation in sorted(violations):
        messages = by_rule.setdefault(violation.rule, {})
        messages.setdefault(violation.message, []).append(violation.scope)
    if not by_rule:
        raise ValueError("no rule violations to report")
    return InvalidArgumentError(
        [
            FieldViolation(
                f"rules/{name}",
                "; ".join(
                    f"{message} (broken for {', '.join(str(s) for s in scopes)})"
                    for message, scopes in messages.items()
                ),
            )
            for name, messages in by_rule.items()
        ]
    )
