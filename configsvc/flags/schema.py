"""The official flagd JSON schemas (flagd-schemas 0.2.15, Apache-2.0), shipped in ``schemas/``.

A flag set must satisfy ``flags.json`` (which pulls in ``targeting.json``).
Each violation names the offending place as a JSON Pointer below the request
field (``definition/flags/myFlag/state``), so an operator can find it in the
file they wrote. Failures inside ``oneOf``/``anyOf`` (flag types, targeting
rules) are reported at the deepest place jsonschema's ``best_match`` finds.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from configsvc.errors import FieldViolation, InvalidArgumentError
from configsvc.flags.evaluator import TARGETING_DEPTH_MAX, too_deep_targeting
from configsvc.model.values import check_tree
from configsvc.validate import pointer

FLAGS_SCHEMA = "https://flagd.dev/schema/v0/flags.json"
TARGETING_SCHEMA = "https://flagd.dev/schema/v0/targeting.json"
#: flagd's own superset of ``flags.json`` (flags may also be an array of keyed flags).
FLAGD_SCHEMA = "https://flagd.dev/schema/v0/flagd.json"
_FILES = {
    FLAGS_SCHEMA: "flags.json",
    TARGETING_SCHEMA: "targeting.json",
    FLAGD_SCHEMA: "flagd.json",
}
#: At most this many violations are reported for one document (each is one place).
MAX_VIOLATIONS = 20


@cache
def _registry() -> Registry[Any]:
    folder = resources.files("configsvc.flags").joinpath("schemas")
    loaded = {uri: json.loads(folder.joinpath(name).read_text()) for uri, name in _FILES.items()}
    return Registry().with_resources(
        (uri, Resource.from_contents(doc, default_specification=DRAFT7))
        for uri, doc in loaded.items()
    )


@cache
def validator(schema_id: str = FLAGS_SCHEMA) -> Draft7Validator:
    """The validator of one official schema (``FLAGS_SCHEMA`` or ``TARGETING_SCHEMA``)."""
    # A root ``$ref`` hides its sibling ``$id`` in draft 7, so the schema is entered by
    # reference: relative references (``./targeting.json``) then resolve against its URI.
    return Draft7Validator({"$ref": schema_id}, registry=_registry())


def schema_of(document: Any) -> str:
    """The schema a flag set declares with ``$schema`` (flagd.json or flags.json, the default).

    The official test documents name their schema this way, and so do files
    written for flagd's editor support; only the file name is looked at, since
    documents use relative paths and URLs alike.
    """
    declared = document.get("$schema") if isinstance(document, dict) else None
    if isinstance(declared, str) and declared.rstrip("/").endswith("/flagd.json"):
        return FLAGD_SCHEMA
    return FLAGS_SCHEMA


def _narrow(error: ValidationError) -> ValidationError:
    """Descend into ``anyOf``/``oneOf`` failures along the branch that failed least.

    A flag that is wrong in one place fails every branch of the flag-type
    ``anyOf``; the branch with the fewest errors is the one the author meant,
    so its error names the real place (``.../state``) instead of the flag.
    """
    while error.context:
        branches: dict[int, list[ValidationError]] = {}
        for sub in error.context:
            branch = sub.relative_schema_path[0] if sub.relative_schema_path else 0
            branches.setdefault(int(branch), []).append(sub)
        fewest = min(branches.items(), key=lambda item: (len(item[1]), item[0]))[1]
        error = best_match(fewest)
    return error


def _targeting_places(document: Any, field: str) -> list[tuple[str, Any]]:
    """(field path, rule) of every flag's targeting and every ``$evaluators`` entry."""
    places: list[tuple[str, Any]] = []
    flags = document.get("flags") if isinstance(document, dict) else None
    entries = (
        flags.items()
        if isinstance(flags, dict)
        else ((str(i), flag) for i, flag in enumerate(flags))
        if isinstance(flags, list)
        else ()
    )
    for key, flag in entries:
        if isinstance(flag, dict) and "targeting" in flag:
            places.append((f"{field}/flags/{pointer.escape(key)}/targeting", flag["targeting"]))
    evaluators = document.get("$evaluators") if isinstance(document, dict) else None
    if isinstance(evaluators, dict):
        places.extend(
            (f"{field}/$evaluators/{pointer.escape(name)}", rule)
            for name, rule in evaluators.items()
        )
    return places


def depth_violations(document: Any, *, field: str = "definition") -> list[FieldViolation]:
    """Nesting past ``MAX_JSON_DEPTH`` anywhere, or past ``TARGETING_DEPTH_MAX`` in a
    targeting rule or evaluator. Checked iteratively before the schema validator runs,
    because the validator recurses several frames per level of targeting (a
    RecursionError at about 55 nested operations)."""
    try:
        check_tree(document, field=field)
        for where, rule in _targeting_places(document, field):
            check_tree(rule, field=where, max_depth=TARGETING_DEPTH_MAX)
    except InvalidArgumentError as exc:
        return exc.violations
    return []


def violations(
    document: Any, *, schema_id: str = FLAGS_SCHEMA, field: str = "definition"
) -> list[FieldViolation]:
    """One violation per failing place of ``document``, sorted by place; empty if valid.

    Nesting is checked first (``depth_violations``) and, for a schema-valid document,
    last again with its ``$ref`` evaluators substituted (``too_deep_targeting``)."""
    too_deep = depth_violations(document, field=field)
    if too_deep:
        return too_deep
    by_place: dict[tuple[str, ...], list[ValidationError]] = {}
    for error in validator(schema_id).iter_errors(document):
        by_place.setdefault(tuple(str(p) for p in error.absolute_path), []).append(error)
    found: list[FieldViolation] = []
    for place in sorted(by_place)[:MAX_VIOLATIONS]:
        error = _narrow(best_match(by_place[place]))
        where = field + pointer.to_pointer(error.absolute_path)
        schema_path = "/".join(str(p) for p in error.absolute_schema_path)
        found.append(
            FieldViolation(
                where,
                f"{error.message} (flagd schema {_FILES[schema_id]}, keyword "
                f"{error.validator!r} at {schema_path})",
            )
        )
    if not found:
        found = [
            FieldViolation(f"{field}/flags/{pointer.escape(key)}/targeting", why)
            for key, why in too_deep_targeting(document).items()
        ]
    return found


def require_valid(document: Any, *, field: str = "definition") -> None:
    """Raise INVALID_ARGUMENT naming every failing place unless ``document`` is a valid flag set."""
    found = violations(document, schema_id=schema_of(document), field=field)
    if found:
        raise InvalidArgumentError(found)
