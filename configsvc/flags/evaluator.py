"""Flag evaluation to the official flagd semantics.

The JSON Logic engine and the ``starts_with``/``ends_with``/``sem_ver``
operators come from ``openfeature-flagd-core`` (they pass the official
suites); ``fractional`` is ours (see ``configsvc.flags.fractional``), and so is
the resolution around the rule, because the library's is tied to its own
``fractional`` and to process-wide state. Deviations from the library, each
covered by a test in ``tests/unit/flags/test_evaluator.py``:

* ``fractional`` buckets like flagd (murmur3 of the text, not of CBOR);
* ``$ref`` to shared ``$evaluators`` is substituted structurally, so any JSON
  spacing works, and a reference to a missing evaluator is a PARSE_ERROR of
  that flag only (the library leaves it to fail as an unknown operation).

A ``FlagSet`` is compiled once per stored revision and is immutable, so any
number of evaluations share it without locks.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from json_logic import builtins, jsonLogic
from openfeature.contrib.tools.flagd.core.targeting.custom_ops import (
    ends_with,
    sem_ver,
    starts_with,
)

from configsvc.flags import fractional
from configsvc.flags.fractional import Bucketing

_OPERATORS = {
    bucketing: {
        **builtins.BUILTINS,
        "fractional": fractional.operator(bucketing),
        "starts_with": starts_with,
        "ends_with": ends_with,
        "sem_ver": sem_ver,
    }
    for bucketing in fractional.BUCKETINGS
}

Metadata = Mapping[str, str | int | float | bool]


class Reason(StrEnum):
    """OpenFeature resolution reasons flagd reports."""

    STATIC = "STATIC"
    DEFAULT = "DEFAULT"
    TARGETING_MATCH = "TARGETING_MATCH"
    DISABLED = "DISABLED"
    ERROR = "ERROR"


class ErrorCode(StrEnum):
    """OpenFeature error codes flagd reports."""

    FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
    TYPE_MISMATCH = "TYPE_MISMATCH"
    PARSE_ERROR = "PARSE_ERROR"
    GENERAL = "GENERAL"


class FlagType(StrEnum):
    """The typed resolve calls (``None`` where any type is fine, as in ResolveAll)."""

    BOOLEAN = "boolean"
    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    OBJECT = "object"


@dataclass(frozen=True, slots=True)
class Flag:
    """One compiled flag: the definition with shared evaluators substituted."""

    key: str
    enabled: bool
    variants: Mapping[str, Any]
    default_variant: str | None
    targeting: Any
    metadata: Metadata
    problem: str = ""
    """Why the flag cannot be evaluated (a reference to a missing evaluator); empty if fine."""


@dataclass(frozen=True, slots=True)
class FlagSet:
    """A compiled flag set; ``definition`` is the stored flagd JSON, unchanged."""

    flags: Mapping[str, Flag]
    metadata: Metadata
    definition: Mapping[str, Any]
    bucketing: Bucketing = "current"


@dataclass(frozen=True, slots=True)
class Resolution:
    """The outcome of one evaluation; ``value`` None means "use the caller's default"."""

    key: str
    reason: Reason
    value: Any = None
    variant: str | None = None
    metadata: Metadata = field(default_factory=dict)
    error_code: ErrorCode | None = None
    error_message: str = ""


#: Deepest nesting (arrays and objects) of a flag's targeting, ``$ref`` evaluators
#: substituted; the figure configuration rules use (``validate.rules.LOGIC_DEPTH_MAX``).
#: The JSON Logic engine, the schema validator and the substitution below recurse per
#: level: bounded here (and checked when a flag set is written), none of them can reach
#: Python's recursion limit.
TARGETING_DEPTH_MAX = 64


class _MissingEvaluatorError(Exception):
    pass


class TargetingTooDeepError(_MissingEvaluatorError):
    """The targeting, its evaluators substituted, nests past ``TARGETING_DEPTH_MAX``."""


def _substitute(
    rule: Any, evaluators: Mapping[str, Any], seen: tuple[str, ...] = (), depth: int = 0
) -> Any:
    if isinstance(rule, list | dict) and depth >= TARGETING_DEPTH_MAX:
        raise TargetingTooDeepError(
            f"targeting is nested too deeply: more than {TARGETING_DEPTH_MAX} levels of "
            "arrays and objects" + (" with $evaluators substituted" if seen else "")
        )
    if isinstance(rule, list):
        return [_substitute(item, evaluators, seen, depth + 1) for item in rule]
    if not isinstance(rule, dict):
        return rule
    if set(rule) == {"$ref"} and isinstance(rule["$ref"], str):
        name = rule["$ref"]
        if name not in evaluators:
            raise _MissingEvaluatorError(
                f"targeting references evaluator {name!r}, which $evaluators does not define"
            )
        if name in seen:
            raise _MissingEvaluatorError(f"evaluator {name!r} references itself")
        return _substitute(evaluators[name], evaluators, (*seen, name), depth)
    return {key: _substitute(value, evaluators, seen, depth + 1) for key, value in rule.items()}


def too_deep_targeting(definition: Mapping[str, Any]) -> dict[str, str]:
    """Flag key -> why, for each flag of a schema-valid ``definition`` whose targeting nests
    past ``TARGETING_DEPTH_MAX`` once its ``$ref`` evaluators are substituted (refused
    when a flag set is written; a stored one evaluates to PARSE_ERROR)."""
    compiled = compile_flag_set(definition)
    return {
        key: flag.problem
        for key, flag in compiled.flags.items()
        if flag.problem.startswith("targeting is nested too deeply")
    }


def _variant_name(raw: Any) -> str | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return str(raw)


def compile_flag_set(definition: Mapping[str, Any], bucketing: Bucketing = "current") -> FlagSet:
    """Compile a schema-valid flagd definition (map or flagd's array form of ``flags``)."""
    raw_flags = definition.get("flags", {})
    if isinstance(raw_flags, list):
        raw_flags = {entry["key"]: entry for entry in raw_flags}
    evaluators = definition.get("$evaluators") or {}
    flags: dict[str, Flag] = {}
    for key, raw in raw_flags.items():
        targeting = raw.get("targeting")
        problem = ""
        try:
            targeting = _substitute(copy.deepcopy(targeting), evaluators)
        except _MissingEvaluatorError as exc:
            problem = str(exc)
        flags[key] = Flag(
            key=key,
            enabled=raw.get("state", "ENABLED") == "ENABLED",
            variants=dict(raw.get("variants", {})),
            default_variant=_variant_name(raw.get("defaultVariant")),
            targeting=targeting or None,
            metadata=dict(raw.get("metadata") or {}),
            problem=problem,
        )
    return FlagSet(flags, dict(definition.get("metadata") or {}), definition, bucketing)


def _type_ok(value: Any, flag_type: FlagType | None) -> bool:
    if flag_type is None:
        return True
    if flag_type is FlagType.BOOLEAN:
        return isinstance(value, bool)
    if flag_type is FlagType.STRING:
        return isinstance(value, str)
    if flag_type is FlagType.INTEGER:
        return isinstance(value, int) and not isinstance(value, bool)
    if flag_type is FlagType.FLOAT:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, dict | list)


def targeting_data(flag_key: str, context: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON Logic data: the context plus flagd's ``$flagd`` properties."""
    data = dict(context)
    data["$flagd"] = {"flagKey": flag_key, "timestamp": int(time.time())}
    data.setdefault("targetingKey", None)
    return data


def evaluate(
    flag_set: FlagSet, key: str, context: Mapping[str, Any], flag_type: FlagType | None = None
) -> Resolution:
    """Evaluate one flag; errors come back as a Resolution with ``error_code``, never raised."""
    flag = flag_set.flags.get(key)
    if flag is None:
        return Resolution(
            key,
            Reason.ERROR,
            error_code=ErrorCode.FLAG_NOT_FOUND,
            error_message=f"flag {key!r} not found in the flag set",
        )
    metadata = {**flag_set.metadata, **flag.metadata}
    if not flag.enabled:
        return Resolution(key, Reason.DISABLED, metadata=metadata)
    if flag.problem:
        return Resolution(
            key,
            Reason.ERROR,
            metadata=metadata,
            error_code=ErrorCode.PARSE_ERROR,
            error_message=flag.problem,
        )
    variant, reason = flag.default_variant, Reason.STATIC
    if flag.targeting is not None:
        reason = Reason.DEFAULT
        try:
            chosen = jsonLogic(
                flag.targeting, targeting_data(key, context), _OPERATORS[flag_set.bucketing]
            )
        except ReferenceError as exc:
            return Resolution(
                key,
                Reason.ERROR,
                metadata=metadata,
                error_code=ErrorCode.PARSE_ERROR,
                error_message=str(exc),
            )
        except Exception as exc:
            return Resolution(
                key,
                Reason.ERROR,
                metadata=metadata,
                error_code=ErrorCode.GENERAL,
                error_message=f"targeting failed: {exc}",
            )
        name = _variant_name(chosen)
        if name is not None:
            variant, reason = name, Reason.TARGETING_MATCH
    if variant is None:
        return Resolution(key, Reason.DEFAULT, metadata=metadata)
    if variant not in flag.variants:
        return Resolution(
            key,
            Reason.ERROR,
            metadata=metadata,
            error_code=ErrorCode.GENERAL,
            error_message=f"flag {key!r} resolved to variant {variant!r}, "
            "which its variants do not define",
        )
    value = flag.variants[variant]
    if not _type_ok(value, flag_type):
        return Resolution(
            key,
            Reason.ERROR,
            metadata=metadata,
            error_code=ErrorCode.TYPE_MISMATCH,
            error_message=f"flag {key!r} is not of type {flag_type}: variant "
            f"{variant!r} is {type(value).__name__}",
        )
    if flag_type is FlagType.FLOAT and isinstance(value, int):
        value = float(value)
    return Resolution(key, reason, value, variant, metadata)
