"""Shared helpers of the resolution tests: building layers, JSON text, applying patches."""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from configsvc.resolve import Layer, LayerValue, canonical_json, escape_pointer_token

TOMBSTONE: dict[str, Any] = {"$unset": True}


def source_key(layer: str, key: str) -> str:
    """The config key a test value is stored under (tenant t)."""
    return f"t/{layer}/{key}"


def layer(name: str, entries: Mapping[str, str], revision: int = 1) -> Layer:
    """A layer from key -> JSON text; every value gets ``revision`` and a derived source."""
    return Layer(
        name, {k: LayerValue(v, revision, source_key(name, k)) for k, v in entries.items()}
    )


def to_text(value: Any, rnd: random.Random | None = None) -> str:
    """JSON text of a test value; with ``rnd`` the member order and spacing are shuffled."""
    if isinstance(value, dict):
        names = list(value)
        if rnd is not None:
            rnd.shuffle(names)
        space = " " if rnd is not None and rnd.random() < 0.5 else ""
        members = [f"{canonical_json(n)}:{space}{to_text(value[n], rnd)}" for n in names]
        return "{" + f",{space}".join(members) + "}"
    if isinstance(value, list):
        return "[" + ",".join(to_text(v, rnd) for v in value) + "]"
    return canonical_json(value)


def leaf_paths(value: Any, pointer: str) -> set[str]:
    """Pointers a layer value defines as leaves: scalars, arrays, {} and tombstones."""
    if isinstance(value, dict) and value and value != TOMBSTONE:
        out: set[str] = set()
        for name, child in value.items():
            out |= leaf_paths(child, f"{pointer}/{escape_pointer_token(name)}")
        return out
    return {pointer}


def apply_patch(document: Any, patch: list[dict[str, Any]]) -> Any:
    """A strict RFC 6902 applier for add/remove/replace on object members."""
    result = copy.deepcopy(document)
    for op in patch:
        assert set(op) == ({"op", "path"} if op["op"] == "remove" else {"op", "path", "value"})
        path = op["path"]
        assert path.startswith("/")
        tokens = [t.replace("~1", "/").replace("~0", "~") for t in path.split("/")[1:]]
        parent = result
        for token in tokens[:-1]:
            parent = parent[token]
        assert isinstance(parent, dict), f"{path}: parent is not an object"
        last = tokens[-1]
        if op["op"] == "add":
            parent[last] = copy.deepcopy(op["value"])
        elif op["op"] == "remove":
            del parent[last]
        else:
            assert op["op"] == "replace" and last in parent, op
            parent[last] = copy.deepcopy(op["value"])
    return result


# Strategies ---------------------------------------------------------------------------

LAYER_NAMES = ["template:base@1", "template:web@2", "global", "env", "service", "service-env"]
#: Few names, so that layers collide often; "a" and "b" most of all.
MEMBER_NAMES = st.sampled_from(["a", "b", "a", "b", "c", "a.b", "x/y", "t~1", "", "é"])
KEY_NAMES = st.sampled_from(["k", "db", "k", "db.pool", "db_x"])

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([Decimal("1.10"), Decimal("1.1"), Decimal("1.0"), Decimal("1E+5"), 1, True]),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.text(max_size=4),
)
#: Values without tombstones (what may appear inside arrays).
PLAIN = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(MEMBER_NAMES, children, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def _values(draw: st.DrawFn, depth: int) -> Any:
    """Objects most of the time (so layers merge), else scalars, arrays and tombstones."""
    kind = draw(st.integers(min_value=0, max_value=9))
    if kind < 6:
        children = _values(depth - 1) if depth > 0 else st.one_of(SCALARS, st.just(TOMBSTONE))
        return draw(st.dictionaries(MEMBER_NAMES, children, min_size=1, max_size=3))
    if kind == 6:
        return draw(SCALARS)
    if kind == 7:
        return TOMBSTONE
    if kind == 8:
        return draw(st.lists(PLAIN, max_size=2))
    return {}


#: Whole layer values: tombstones allowed as the value and as object member values.
LAYER_VALUES = _values(3)


@st.composite
def layer_specs(draw: st.DrawFn) -> list[tuple[str, dict[str, tuple[Any, int]]]]:
    """Layers as (name, key -> (value, revision)), names unique and in layer order."""
    count = draw(st.integers(min_value=0, max_value=4))
    names = sorted(draw(st.permutations(LAYER_NAMES))[:count], key=LAYER_NAMES.index)
    revisions = st.integers(min_value=1, max_value=2**40)
    return [
        (name, draw(st.dictionaries(KEY_NAMES, st.tuples(LAYER_VALUES, revisions), max_size=4)))
        for name in names
    ]


def build(
    specs: list[tuple[str, dict[str, tuple[Any, int]]]], rnd: random.Random | None = None
) -> list[Layer]:
    """Layer objects from specs; with ``rnd`` entry order, member order and spacing vary."""
    layers = []
    for name, entries in specs:
        keys = list(entries)
        if rnd is not None:
            rnd.shuffle(keys)
        layers.append(
            Layer(
                name,
                {
                    k: LayerValue(to_text(entries[k][0], rnd), entries[k][1], source_key(name, k))
                    for k in keys
                },
            )
        )
    return layers
