"""Comparing resolved documents: a leaf diff with provenance, and an RFC 6902 patch."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

from configsvc.resolve.jsonvalue import JsonValue, canonical_json, escape_pointer_token
from configsvc.resolve.merge import Resolved, Source


@dataclass(frozen=True)
class DiffRow:
    """One leaf whose value differs: canonical JSON and source on each side (None if absent)."""

    path: str
    left_json: str | None
    right_json: str | None
    left_source: Source | None
    right_source: Source | None


def _leaves(value: Mapping[str, JsonValue], pointer: str, out: dict[str, str]) -> None:
    for name, child in value.items():
        child_pointer = f"{pointer}/{escape_pointer_token(name)}"
        if isinstance(child, Mapping) and child:
            _leaves(child, child_pointer, out)
        else:
            out[child_pointer] = canonical_json(child)


def leaves(resolved: Resolved) -> dict[str, str]:
    """Every leaf of the document (scalar, array, empty object): pointer -> canonical JSON.

    In pointer (string) order, like ``Resolved.provenance``, which has the same pointers.
    """
    out: dict[str, str] = {}
    _leaves(resolved.document, "", out)
    return dict(sorted(out.items()))


def diff(left: Resolved, right: Resolved) -> list[DiffRow]:
    """The leaves whose value differs (by canonical JSON text), sorted by pointer string.

    A leaf on one side only has None on the other. Leaves with the same value
    but a different source are not listed. Because only leaves are compared, a
    leaf on one side can sit where the other side has an object: ``/a`` = 1 on
    the left and ``/a/b`` = 2 on the right give two rows.
    """
    left_leaves, right_leaves = leaves(left), leaves(right)
    rows = []
    for path in sorted(left_leaves.keys() | right_leaves.keys()):
        left_json, right_json = left_leaves.get(path), right_leaves.get(path)
        if left_json != right_json:
            rows.append(
                DiffRow(
                    path,
                    left_json,
                    right_json,
                    left.provenance.get(path) if left_json is not None else None,
                    right.provenance.get(path) if right_json is not None else None,
                )
            )
    return rows


def _patch_objects(
    before: Mapping[str, JsonValue],
    after: Mapping[str, JsonValue],
    pointer: str,
    ops: list[dict[str, JsonValue]],
) -> None:
    for name in sorted(before.keys() | after.keys()):
        path = f"{pointer}/{escape_pointer_token(name)}"
        if name not in after:
            ops.append({"op": "remove", "path": path})
        elif name not in before:
            ops.append({"op": "add", "path": path, "value": copy.deepcopy(after[name])})
        else:
            old, new = before[name], after[name]
            if isinstance(old, Mapping) and isinstance(new, Mapping):
                _patch_objects(old, new, path, ops)
            elif canonical_json(old) != canonical_json(new):
                ops.append({"op": "replace", "path": path, "value": copy.deepcopy(new)})


def json_patch(before: Resolved, after: Resolved) -> list[dict[str, JsonValue]]:
    """An RFC 6902 patch that turns ``before.document`` into ``after.document``.

    Only ``add``, ``remove`` and ``replace`` on object members, in pointer
    order; objects are patched member by member, arrays and values of another
    type are replaced whole. Values are compared by canonical text, so 1 -> 1.0,
    1.1 -> 1.10 and 1 -> true are replacements. ``value``s are copies and keep
    exact numbers (int / Decimal): serialize the patch with ``canonical_json``.
    """
    ops: list[dict[str, JsonValue]] = []
    _patch_objects(before.document, after.document, "", ops)
    return ops
