"""Merge rules, table-driven: every case states the whole document and whole provenance."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import pytest

from configsvc.errors import InvalidArgumentError
from configsvc.resolve import (
    MAX_VALUE_DEPTH,
    Layer,
    LayerValue,
    Resolved,
    Scope,
    Source,
    canonical_json,
    is_tombstone,
    parse_value,
    resolve,
    scope_layers,
)
from tests.unit.resolve.support import layer, source_key

G, E, S, SE = "global", "env", "service", "service-env"
T = '{"$unset":true}'

# (id, layers as (name, {key: json}), expected canonical document, expected pointer -> layer)
CASES: list[tuple[str, list[tuple[str, dict[str, str]]], str, dict[str, str]]] = [
    # -- objects merge recursively, higher wins per leaf
    (
        "nested-merge",
        [
            (G, {"db": '{"host":"a","pool":{"max":10,"min":1}}'}),
            (S, {"db": '{"pool":{"max":20},"port":5432}'}),
        ],
        '{"db":{"host":"a","pool":{"max":20,"min":1},"port":5432}}',
        {"/db/host": G, "/db/pool/max": S, "/db/pool/min": G, "/db/port": S},
    ),
    (
        "four-layers-each-win-one-leaf",
        [
            (G, {"k": '{"a":1,"b":1,"c":1,"d":1}'}),
            (E, {"k": '{"b":2,"c":2,"d":2}'}),
            (S, {"k": '{"c":3,"d":3}'}),
            (SE, {"k": '{"d":4}'}),
        ],
        '{"k":{"a":1,"b":2,"c":3,"d":4}}',
        {"/k/a": G, "/k/b": E, "/k/c": S, "/k/d": SE},
    ),
    (
        "keys-are-not-split-on-dots",
        [(G, {"db": '{"pool":{"max":1}}', "db.pool": '{"max":2}'}), (S, {"db.pool": '{"min":0}'})],
        '{"db":{"pool":{"max":1}},"db.pool":{"max":2,"min":0}}',
        {"/db/pool/max": G, "/db.pool/max": G, "/db.pool/min": S},
    ),
    (
        "keys-of-different-layers-side-by-side",
        [(G, {"a": "1"}), (E, {"b": "2"}), (S, {"c": "3"}), (SE, {"d": "4"})],
        '{"a":1,"b":2,"c":3,"d":4}',
        {"/a": G, "/b": E, "/c": S, "/d": SE},
    ),
    (
        "same-scalar-again-comes-from-the-higher-layer",
        [(G, {"k": '"x"'}), (S, {"k": '"x"'})],
        '{"k":"x"}',
        {"/k": S},
    ),
    (
        "empty-object-over-object-inherits-everything",
        [(G, {"k": '{"a":1}'}), (S, {"k": "{}"})],
        '{"k":{"a":1}}',
        {"/k/a": G},
    ),
    ("empty-object-alone-is-a-leaf", [(G, {"k": '{"a":{}}'})], '{"k":{"a":{}}}', {"/k/a": G}),
    (
        "empty-object-over-empty-object-comes-from-the-higher",
        [(G, {"k": '{"a":{}}'}), (S, {"k": '{"a":{}}'})],
        '{"k":{"a":{}}}',
        {"/k/a": S},
    ),
    (
        "members-are-sorted-at-every-level-also-in-arrays",
        [(G, {"k": '{"z":{"y":1,"x":[{"b":1,"a":2}]},"a":null}'})],
        '{"k":{"a":null,"z":{"x":[{"a":2,"b":1}],"y":1}}}',
        {"/k/a": G, "/k/z/x": G, "/k/z/y": G},
    ),
    (
        "pointer-escaping",
        [(G, {"k": '{"a/b":{"c~d":1},"":2}'})],
        '{"k":{"":2,"a/b":{"c~d":1}}}',
        {"/k/": G, "/k/a~1b/c~0d": G},
    ),
    (
        "null-is-a-value-not-a-removal",
        [(G, {"k": '{"a":1,"b":2}'}), (S, {"k": '{"a":null}'})],
        '{"k":{"a":null,"b":2}}',
        {"/k/a": S, "/k/b": G},
    ),
    # -- arrays replace as a whole
    (
        "array-replaces-array",
        [(G, {"k": '{"hosts":["a","b","c"]}'}), (S, {"k": '{"hosts":["d"]}'})],
        '{"k":{"hosts":["d"]}}',
        {"/k/hosts": S},
    ),
    (
        "arrays-of-objects-are-not-merged",
        [(G, {"k": '[{"a":1},{"b":2}]'}), (S, {"k": '[{"c":3}]'})],
        '{"k":[{"c":3}]}',
        {"/k": S},
    ),
    (
        "empty-array-replaces",
        [(G, {"k": '{"a":[1,2]}'}), (E, {"k": '{"a":[]}'})],
        '{"k":{"a":[]}}',
        {"/k/a": E},
    ),
    # -- tombstones
    (
        "tombstone-whole-key",
        [(G, {"k": '{"a":1}', "other": "1"}), (E, {"k": T})],
        '{"other":1}',
        {"/other": G},
    ),
    (
        "tombstone-whole-key-then-set-again-starts-afresh",
        [(G, {"k": '{"a":1}'}), (E, {"k": T}), (S, {"k": '{"b":2}'})],
        '{"k":{"b":2}}',
        {"/k/b": S},
    ),
    (
        "tombstone-nested-member-removes-subtree",
        [(G, {"k": '{"a":1,"b":{"c":1,"d":[1]}}'}), (E, {"k": '{"b":' + T + "}"})],
        '{"k":{"a":1}}',
        {"/k/a": G},
    ),
    (
        "tombstone-last-member-leaves-empty-object",
        [(G, {"k": '{"a":1,"b":{"c":1}}'}), (E, {"k": '{"b":{"c":' + T + "}}"})],
        '{"k":{"a":1,"b":{}}}',
        {"/k/a": G, "/k/b": E},
    ),
    (
        "tombstone-every-member-leaves-empty-key-object",
        [(G, {"k": '{"a":1}'}), (E, {"k": '{"a":' + T + "}"})],
        '{"k":{}}',
        {"/k": E},
    ),
    (
        "tombstone-scalar-member",
        [(G, {"k": '{"a":1,"b":2}'}), (S, {"k": '{"a":' + T + ',"c":3}'})],
        '{"k":{"b":2,"c":3}}',
        {"/k/b": G, "/k/c": S},
    ),
    (
        "tombstone-nothing-to-remove-member",
        [(G, {"k": '{"a":1}'}), (E, {"k": '{"z":' + T + "}"})],
        '{"k":{"a":1}}',
        {"/k/a": G},
    ),
    (
        "tombstone-nothing-to-remove-key",
        [(G, {"other": "1"}), (E, {"k": T})],
        '{"other":1}',
        {"/other": G},
    ),
    ("tombstone-alone", [(G, {"k": T})], "{}", {}),
    ("tombstone-in-lowest-layer-member", [(G, {"k": '{"a":' + T + "}"})], '{"k":{}}', {"/k": G}),
    (
        "tombstone-then-member-set-again",
        [
            (G, {"k": '{"a":{"x":1,"y":2}}'}),
            (E, {"k": '{"a":' + T + "}"}),
            (S, {"k": '{"a":{"y":3}}'}),
        ],
        '{"k":{"a":{"y":3}}}',
        {"/k/a/y": S},
    ),
    (
        "tombstone-inside-value-that-replaces-scalar-removes-nothing",
        [(G, {"k": "5"}), (E, {"k": '{"a":' + T + ',"b":1}'})],
        '{"k":{"b":1}}',
        {"/k/b": E},
    ),
    (
        "tombstone-under-a-replaced-array",
        [(G, {"k": '{"a":[1]}'}), (E, {"k": '{"a":{"b":' + T + "}}"})],
        '{"k":{"a":{}}}',
        {"/k/a": E},
    ),
    # -- type clashes: the higher value replaces, with its provenance
    (
        "clash-object-over-scalar",
        [(G, {"k": "1"}), (S, {"k": '{"a":1}'})],
        '{"k":{"a":1}}',
        {"/k/a": S},
    ),
    (
        "clash-scalar-over-object",
        [(G, {"k": '{"a":1,"b":{"c":2}}'}), (S, {"k": "3"})],
        '{"k":3}',
        {"/k": S},
    ),
    ("clash-array-over-object", [(G, {"k": '{"a":1}'}), (S, {"k": "[1]"})], '{"k":[1]}', {"/k": S}),
    (
        "clash-object-over-array",
        [(G, {"k": "[1,2]"}), (S, {"k": '{"a":1}'})],
        '{"k":{"a":1}}',
        {"/k/a": S},
    ),
    (
        "clash-null-over-object",
        [(G, {"k": '{"a":1}'}), (S, {"k": "null"})],
        '{"k":null}',
        {"/k": S},
    ),
    (
        "clash-object-over-null",
        [(G, {"k": "null"}), (S, {"k": '{"a":1}'})],
        '{"k":{"a":1}}',
        {"/k/a": S},
    ),
    ("clash-string-over-array", [(G, {"k": "[1]"}), (S, {"k": '"s"'})], '{"k":"s"}', {"/k": S}),
    (
        "clash-array-over-scalar",
        [(G, {"k": "true"}), (S, {"k": "[true]"})],
        '{"k":[true]}',
        {"/k": S},
    ),
    ("clash-bool-over-number", [(G, {"k": "1"}), (S, {"k": "true"})], '{"k":true}', {"/k": S}),
    ("clash-empty-object-over-scalar", [(G, {"k": "5"}), (S, {"k": "{}"})], '{"k":{}}', {"/k": S}),
    (
        "clash-empty-object-over-array",
        [(G, {"k": '{"a":[1]}'}), (S, {"k": '{"a":{}}'})],
        '{"k":{"a":{}}}',
        {"/k/a": S},
    ),
    (
        "clash-nested-object-over-scalar-keeps-siblings",
        [(G, {"k": '{"a":5,"b":1}'}), (E, {"k": '{"a":{"x":1}}'})],
        '{"k":{"a":{"x":1},"b":1}}',
        {"/k/a/x": E, "/k/b": G},
    ),
    (
        "clash-nested-scalar-over-object-drops-its-provenance",
        [
            (G, {"k": '{"a":{"x":1,"y":{"z":2}}}'}),
            (E, {"k": '{"a":{"w":3}}'}),
            (S, {"k": '{"a":"flat"}'}),
        ],
        '{"k":{"a":"flat"}}',
        {"/k/a": S},
    ),
    (
        "clash-then-merge-again",
        [(G, {"k": '{"a":{"x":1}}'}), (E, {"k": '{"a":2}'}), (S, {"k": '{"a":{"y":3}}'})],
        '{"k":{"a":{"y":3}}}',
        {"/k/a/y": S},
    ),
    # -- empty layers
    ("no-layers", [], "{}", {}),
    ("empty-layers", [(G, {}), (E, {}), (S, {}), (SE, {})], "{}", {}),
    (
        "empty-layers-around-values",
        [(G, {}), (E, {"k": '{"a":1}'}), (S, {}), (SE, {})],
        '{"k":{"a":1}}',
        {"/k/a": E},
    ),
]


@pytest.mark.parametrize(
    ("specs", "expected", "expected_layers"),
    [pytest.param(specs, expected, prov, id=case_id) for case_id, specs, expected, prov in CASES],
)
def test_merge_rules(
    specs: list[tuple[str, dict[str, str]]], expected: str, expected_layers: dict[str, str]
) -> None:
    revisions = {name: 10 * (i + 1) for i, (name, _) in enumerate(specs)}
    result = resolve([layer(name, entries, revisions[name]) for name, entries in specs])
    assert result.canonical_json() == expected
    # The canonical text is what json.dumps writes for the same document.
    assert expected == json.dumps(
        json.loads(expected), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    # Provenance: exactly the leaves, each with its layer, config key and revision.
    key_of = {p: json.loads('"' + p.split("/")[1] + '"') for p in expected_layers}
    assert dict(result.provenance) == {
        pointer: Source(name, source_key(name, key_of[pointer]), revisions[name])
        for pointer, name in expected_layers.items()
    }
    assert list(result.provenance) == sorted(result.provenance)
    assert "$unset" not in result.canonical_json()


def test_document_is_python_values_in_member_order() -> None:
    result = resolve([layer(G, {"b": '{"y":[1,{"d":2,"c":1.5}],"x":"s"}', "a": "null"})])
    assert result.document == {"a": None, "b": {"x": "s", "y": [1, {"c": Decimal("1.5"), "d": 2}]}}
    assert list(result.document) == ["a", "b"]
    inner = result.document["b"]
    assert isinstance(inner, dict) and list(inner) == ["x", "y"]
    assert isinstance(inner["y"], list) and list(inner["y"][1]) == ["c", "d"]


def test_revision_is_the_highest_of_all_entries() -> None:
    layers = [
        Layer(G, {"k": LayerValue('{"a":1}', 7, "t/all/all/k")}),
        Layer(E, {"k": LayerValue('{"a":2}', 3, "t/prod/all/k")}),  # overrides, older
        Layer(S, {"gone": LayerValue(T, 12, "t/all/web/gone")}),  # tombstone, newest
    ]
    result = resolve(layers)
    assert result.revision == 12
    assert dict(result.provenance) == {"/k/a": Source(E, "t/prod/all/k", 3)}
    assert resolve([]).revision == 0


# Exact numbers: literal in, text out.
NUMBERS = [
    ("9223372036854775807", "9223372036854775807"),
    ("-9223372036854775808", "-9223372036854775808"),
    ("18446744073709551616", "18446744073709551616"),
    ("123456789012345678901234567890", "123456789012345678901234567890"),
    ("1.10", "1.10"),
    ("1.1", "1.1"),
    ("1.0", "1.0"),
    ("0.1", "0.1"),
    ("-0.0", "-0.0"),
    ("3.141592653589793238462643383279", "3.141592653589793238462643383279"),
    ("123456789012345678901234567890.123456789", "123456789012345678901234567890.123456789"),
    ("1e400", "1E+400"),
    ("2.50e2", "250"),  # Decimal("2.50e2") is 250 with exponent 0
    ("2.5e-3", "0.0025"),
    ("1E-7", "1E-7"),
    ("0.0000001", "1E-7"),
]


@pytest.mark.parametrize(("literal", "text"), NUMBERS)
def test_numbers_keep_their_exact_value(literal: str, text: str) -> None:
    result = resolve([layer(G, {"k": '{"n":' + literal + ',"m":0}'}), layer(S, {"k": '{"m":1}'})])
    assert result.canonical_json() == '{"k":{"m":1,"n":' + text + "}}"
    value = result.document["k"]
    assert isinstance(value, dict)
    number = value["n"]
    # Integers parse to int, every other literal to Decimal (even one whose text is 250).
    assert type(number) is (Decimal if re.search("[.eE]", literal) else int)
    assert Decimal(literal) == Decimal(text) == Decimal(str(number))
    # Round trip: the canonical text parses back to the same text.
    assert canonical_json(parse_value(result.canonical_json())) == result.canonical_json()


def test_64_bit_integers_and_1_10_round_trip_through_a_merge() -> None:
    result = resolve(
        [
            layer(G, {"k": '{"max":9223372036854775807,"ratio":1.10,"min":-9223372036854775808}'}),
            layer(SE, {"k": '{"ratio":1.10,"id":18446744073709551615}'}),
        ]
    )
    assert result.canonical_json() == (
        '{"k":{"id":18446744073709551615,"max":9223372036854775807,'
        '"min":-9223372036854775808,"ratio":1.10}}'
    )


# Invalid values: (value, pointer named in the error, words of the reason)
INVALID = [
    ('{"$unset":false}', "/k", "invalid tombstone"),
    ('{"$unset":1}', "/k", "invalid tombstone"),
    ('{"$unset":"true"}', "/k", "invalid tombstone"),
    ('{"$unset":null}', "/k", "invalid tombstone"),
    ('{"$unset":true,"x":1}', "/k", "invalid tombstone"),
    ('{"a":{"$unset":{}}}', "/k/a", "invalid tombstone"),
    ('{"a":{"b":{"$unset":true,"c":{"$unset":true}}}}', "/k/a/b", "invalid tombstone"),
    ('[{"$unset":true}]', "/k/0", "inside an array"),
    ('[1,{"a":{"$unset":true}}]', "/k/1/a", "inside an array"),
    ('{"a":[[{"$unset":true}]]}', "/k/a/0/0", "inside an array"),
    (
        "[" * (MAX_VALUE_DEPTH + 1) + "]" * (MAX_VALUE_DEPTH + 1),
        "/k" + "/0" * MAX_VALUE_DEPTH,
        "nested deeper than 128",
    ),
    (
        '{"a":' * (MAX_VALUE_DEPTH + 1) + "1" + "}" * (MAX_VALUE_DEPTH + 1),
        "/k" + "/a" * MAX_VALUE_DEPTH,
        "nested deeper than 128",
    ),
]


@pytest.mark.parametrize(("value", "pointer", "reason"), INVALID)
def test_invalid_values_are_rejected_naming_the_path(value: str, pointer: str, reason: str) -> None:
    layers = [layer(G, {"k": '{"a":1}'}), layer(E, {"k": value}), layer(S, {"k": "1"})]
    with pytest.raises(InvalidArgumentError) as info:
        resolve(layers)
    [violation] = info.value.violations
    assert violation.field == "value"
    assert violation.description.startswith(f"t/env/k (layer env) at {pointer}: ")
    assert reason in violation.description


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "is not valid JSON"),
        ("{", "is not valid JSON"),
        ("NaN", "is not valid JSON"),
        ("[Infinity]", "is not valid JSON"),
        ("1" * 5000, "is not valid JSON"),
        ("[" * 100_000 + "]" * 100_000, "nested deeper than"),
    ],
)
def test_unparseable_values_are_rejected(value: str, reason: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        resolve([layer(G, {"k": value})])
    assert info.value.message.startswith("value: t/global/k (layer global) ")
    assert reason in info.value.message


def test_deepest_allowed_nesting_is_accepted() -> None:
    text = "[" * MAX_VALUE_DEPTH + "]" * MAX_VALUE_DEPTH
    assert resolve([layer(G, {"k": text})]).canonical_json() == '{"k":' + text + "}"


@pytest.mark.parametrize(
    "value",
    [
        '{"$ref":"x"}',
        '{"a":{"$x":1}}',
        '{"a/b":{"$":1}}',
        '{"a":[{"$x":1}]}',
        '{"$schema":"https://json-schema.org"}',
    ],
)
def test_dollar_members_other_than_unset_are_ordinary_data(value: str) -> None:
    result = resolve([layer(G, {"k": value})])
    assert json.loads(result.canonical_json())["k"] == json.loads(value)


def test_reserved_key_name_is_rejected() -> None:
    with pytest.raises(InvalidArgumentError, match=r"at /\$k: key names starting with '\$'"):
        resolve([layer(G, {"$k": "1"})])


def test_overridden_invalid_value_is_still_rejected() -> None:
    # Errors do not depend on what a higher layer does: every entry is checked.
    with pytest.raises(InvalidArgumentError, match="invalid tombstone"):
        resolve([layer(G, {"k": '{"$unset":false}'}), layer(S, {"k": "1"})])


def test_parse_value_for_the_write_path() -> None:
    assert parse_value('{"a":{"$unset":true}}') == {"a": {"$unset": True}}
    with pytest.raises(InvalidArgumentError) as info:
        parse_value('{"a":{"$unset":0}}', field="put.value")
    assert info.value.message == (
        'put.value: at /a: invalid tombstone: a tombstone must be exactly {"$unset": true}'
    )
    with pytest.raises(InvalidArgumentError, match=r"^value: at /: invalid tombstone"):
        parse_value('{"$unset":false}')


def test_is_tombstone_is_exact() -> None:
    assert is_tombstone({"$unset": True})
    others: list[object] = [
        {"$unset": 1},
        {"$unset": False},
        {"$unset": True, "a": 1},
        {},
        [],
        True,
    ]
    for other in others:
        assert not is_tombstone(other)


def test_duplicate_layer_names_are_a_caller_bug() -> None:
    with pytest.raises(ValueError, match="repeated: global"):
        resolve([layer(G, {}), layer(E, {}), layer(G, {})])


def test_equality_uses_canonical_text_not_python_equality() -> None:
    one = resolve([layer(G, {"k": "1"})])
    assert one == resolve([layer(G, {"k": "1"})])
    assert hash(one) == hash(resolve([layer(G, {"k": "1"})]))
    assert one != resolve([layer(G, {"k": "true"})])
    assert one != resolve([layer(G, {"k": "1.0"})])
    assert one != resolve([layer(G, {"k": "1"}, revision=2)])
    assert one != resolve([layer(S, {"k": "1"})])
    assert one != "1"


CANONICAL: list[tuple[Any, str]] = [
    (None, "null"),
    (
        [True, False, 0, -1, Decimal("1.10"), 'é\n"', (1, 2)],
        '[true,false,0,-1,1.10,"é\\n\\"",[1,2]]',
    ),
    ({"b": {}, "a": [], "é": 1, "z": "\U0001f600"}, '{"a":[],"b":{},"z":"\U0001f600","é":1}'),
    ("\ud800x\udfff", '"\\ud800x\\udfff"'),
]


@pytest.mark.parametrize(("value", "text"), CANONICAL)
def test_canonical_json(value: Any, text: str) -> None:
    assert canonical_json(value) == text
    text.encode("utf-8")


def test_lone_surrogates_stay_encodable_and_round_trip() -> None:
    result = resolve([layer(G, {"k": '"\\ud83d x \\ud83d\\ude00"'})])
    assert result.canonical_json() == '{"k":"\\ud83d x \U0001f600"}'
    result.canonical_json().encode("utf-8")
    assert resolve([layer(G, {"k": result.canonical_json()[5:-1]})]).document == result.document


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (1.5, TypeError),
        ({1: 2}, TypeError),
        (object(), TypeError),
        (Decimal("NaN"), ValueError),
        (Decimal("Infinity"), ValueError),
    ],
)
def test_canonical_json_rejects_non_json(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        canonical_json(value)


def test_scope_layers() -> None:
    assert scope_layers("prod", "web") == [
        Scope("global", "all", "all"),
        Scope("env", "prod", "all"),
        Scope("service", "all", "web"),
        Scope("service-env", "prod", "web"),
    ]
    assert scope_layers("all", "web") == [
        Scope("global", "all", "all"),
        Scope("service", "all", "web"),
    ]
    assert scope_layers("prod", "all") == [
        Scope("global", "all", "all"),
        Scope("env", "prod", "all"),
    ]
    assert scope_layers("all", "all") == [Scope("global", "all", "all")]
    with pytest.raises(InvalidArgumentError, match="environment"):
        scope_layers("Prod", "web")
    with pytest.raises(InvalidArgumentError, match="service"):
        scope_layers("prod", "")


def test_resolved_is_frozen() -> None:
    result = resolve([])
    with pytest.raises(AttributeError):
        result.revision = 3  # type: ignore[misc]
    assert isinstance(result, Resolved)
