"""Property tests: determinism, locality, patches, canonical text."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from configsvc.resolve import (
    Resolved,
    canonical_json,
    diff,
    json_patch,
    leaves,
    parse_value,
    resolve,
)
from tests.unit.resolve.support import (
    KEY_NAMES,
    LAYER_VALUES,
    PLAIN,
    apply_patch,
    build,
    layer_specs,
    leaf_paths,
    source_key,
)

Specs = list[tuple[str, dict[str, tuple[Any, int]]]]
#: The machine is shared and noisy: no health check or deadline on generation time.
_UNTIMED = settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)


def fingerprint(result: Resolved) -> tuple[str, list[Any], int]:
    return result.canonical_json(), list(result.provenance.items()), result.revision


def walk(value: Any) -> list[Any]:
    """Every value inside ``value``, itself included."""
    out = [value]
    if isinstance(value, dict):
        for child in value.values():
            out += walk(child)
    elif isinstance(value, list):
        for child in value:
            out += walk(child)
    return out


@_UNTIMED
@given(specs=layer_specs(), rnd=st.randoms(use_true_random=False))
def test_resolution_is_deterministic(specs: Specs, rnd: random.Random) -> None:
    first = resolve(build(specs))
    assert fingerprint(resolve(build(specs))) == fingerprint(first)
    # Other entry order, member order and whitespace in the input: same bytes out.
    assert fingerprint(resolve(build(specs, rnd))) == fingerprint(first)
    assert resolve(build(specs, rnd)) == first


@_UNTIMED
@given(specs=layer_specs())
def test_resolved_document_invariants(specs: Specs) -> None:
    result = resolve(build(specs))
    text = result.canonical_json()
    text.encode("utf-8")
    # The canonical text parses back to itself and has no tombstones or reserved names.
    assert canonical_json(parse_value(text)) == text
    for value in walk(result.document):
        if isinstance(value, dict):
            assert list(value) == sorted(value)
            assert not any(name.startswith("$") for name in value)
    # Provenance covers exactly the leaves, in pointer order, each from a layer that has the key.
    assert list(result.provenance) == list(leaves(result)) == sorted(result.provenance)
    entries = {(name, source_key(name, key)) for name, spec in specs for key in spec}
    for pointer, source in result.provenance.items():
        assert (source.layer, source.key) in entries
        assert source.key.endswith("/" + pointer.split("/")[1])
    assert result.revision == max(
        (revision for _, spec in specs for _, revision in spec.values()), default=0
    )


@_UNTIMED
@given(data=st.data(), specs=layer_specs())
def test_changing_one_value_changes_only_paths_that_value_defines(
    data: st.DataObject, specs: Specs
) -> None:
    """Locality: a change to (layer L, key k) only changes resolved leaves under /k that are
    at, above or below a leaf position L defines for k before or after the change."""
    specs = specs or [("global", {})]
    index = data.draw(st.integers(min_value=0, max_value=len(specs) - 1), label="layer")
    name, entries = specs[index]
    key = data.draw(KEY_NAMES, label="key")
    new = data.draw(st.none() | st.tuples(LAYER_VALUES, st.integers(1, 2**40)), label="new")
    changed_entries = dict(entries)
    if new is None:
        changed_entries.pop(key, None)  # deleting the entry is a change too
    else:
        changed_entries[key] = new
    changed_specs = [*specs[:index], (name, changed_entries), *specs[index + 1 :]]

    before, after = resolve(build(specs)), resolve(build(changed_specs))
    root = "/" + key
    defined: set[str] = set()
    for entry in (entries.get(key), changed_entries.get(key)):
        if entry is not None:
            defined |= leaf_paths(entry[0], root)
    leaves_before, leaves_after = leaves(before), leaves(after)
    changed = {
        path
        for path in leaves_before.keys() | leaves_after.keys()
        if (leaves_before.get(path), before.provenance.get(path))
        != (leaves_after.get(path), after.provenance.get(path))
    }
    for path in changed:
        assert path == root or path.startswith(root + "/"), path
        assert any(
            path == d or path.startswith(d + "/") or d.startswith(path + "/") for d in defined
        ), (path, defined)
    # Other keys are untouched, value and provenance.
    for other in before.document.keys() - {key}:
        assert canonical_json(before.document[other]) == canonical_json(after.document[other])


@_UNTIMED
@given(before_specs=layer_specs(), after_specs=layer_specs())
def test_json_patch_turns_before_into_after(before_specs: Specs, after_specs: Specs) -> None:
    before, after = resolve(build(before_specs)), resolve(build(after_specs))
    before_text = before.canonical_json()
    patch = json_patch(before, after)
    assert canonical_json(apply_patch(before.document, patch)) == after.canonical_json()
    # The patch as text (what a client receives) applies the same way.
    parsed = json.loads(canonical_json(patch), parse_float=Decimal)
    assert canonical_json(apply_patch(before.document, parsed)) == after.canonical_json()
    assert before.canonical_json() == before_text  # nothing was modified in place
    assert (patch == []) == (before_text == after.canonical_json())
    # diff lists exactly the leaves whose value differs.
    rows = diff(before, after)
    assert [row.path for row in rows] == sorted(
        p
        for p in leaves(before).keys() | leaves(after).keys()
        if leaves(before).get(p) != leaves(after).get(p)
    )


@_UNTIMED
@given(st.one_of(st.integers(-(2**64), 2**64), st.decimals(allow_nan=False, allow_infinity=False)))
def test_numbers_round_trip_exactly(number: int | Decimal) -> None:
    text = canonical_json(number)
    result = resolve(build([("global", {"k": ({"n": number}, 1)})]))
    assert result.canonical_json() == '{"k":{"n":' + text + "}}"
    parsed = json.loads(text, parse_float=Decimal)
    assert parsed == number and canonical_json(parsed) == text


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(PLAIN)
def test_canonical_json_is_json_dumps_for_plain_values(value: Any) -> None:
    if any(isinstance(v, Decimal) for v in walk(value)):
        return  # json.dumps cannot write Decimal; checked by the number tests instead
    assert canonical_json(value) == json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
