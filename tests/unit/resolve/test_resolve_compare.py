"""diff and json_patch."""

from __future__ import annotations

from typing import Any

import pytest

from configsvc.resolve import (
    DiffRow,
    Resolved,
    Source,
    canonical_json,
    diff,
    json_patch,
    leaves,
    parse_value,
    resolve,
)
from tests.unit.resolve.support import apply_patch, layer


def doc(text: str, name: str = "global", revision: int = 1) -> Resolved:
    """A resolved document with one layer holding each member of ``text`` as a key."""
    value = parse_value(text)
    assert isinstance(value, dict)
    return resolve([layer(name, {k: canonical_json(v) for k, v in value.items()}, revision)])


def test_diff_rows_with_sources() -> None:
    left = resolve(
        [
            layer("global", {"db": '{"host":"a","port":1,"pool":{"max":1}}', "log": '"info"'}, 3),
        ]
    )
    right = resolve(
        [
            layer("global", {"db": '{"host":"a","port":1,"pool":{"max":1}}', "log": '"info"'}, 3),
            layer("env", {"db": '{"port":2,"pool":5,"tls":true}', "log": '"info"'}, 7),
        ]
    )
    g = Source("global", "t/global/db", 3)
    e = Source("env", "t/env/db", 7)
    assert diff(left, right) == [
        DiffRow("/db/pool", None, "5", None, e),
        DiffRow("/db/pool/max", "1", None, g, None),
        DiffRow("/db/port", "1", "2", g, e),
        DiffRow("/db/tls", None, "true", None, e),
    ]  # /log: same value from another layer is not a difference
    assert diff(right, left)[0] == DiffRow("/db/pool", "5", None, e, None)
    assert diff(left, left) == []


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("1", "1.0"),
        ("1.1", "1.10"),
        ("1", "true"),
        ("0", "false"),
        ("[]", "{}"),
        ("null", "0"),
        ('""', "null"),
        ("[1]", "[1.0]"),
        ('{"x":1}', '{"x":true}'),
        ("9223372036854775807", "9223372036854775806"),
    ],
)
def test_values_that_python_thinks_equal_still_differ(a: str, b: str) -> None:
    left, right = doc('{"k":' + a + "}"), doc('{"k":' + b + "}")
    rows = diff(left, right)
    assert rows and all(r.left_json != r.right_json for r in rows)
    assert canonical_json(apply_patch(left.document, json_patch(left, right))) == (
        right.canonical_json()
    )


def test_diff_is_sorted_by_pointer_string() -> None:
    left = doc('{"db":{"host":"a"},"db.pool":{"max":1}}')
    right = doc('{"db":{"host":"b"},"db.pool":{"max":2}}')
    paths = [row.path for row in diff(left, right)]
    assert paths == ["/db.pool/max", "/db/host"] == sorted(paths)


def test_leaves_match_provenance() -> None:
    result = doc('{"a":{"b":[1,{"c":2}],"d":{},"e":{"f":null}},"g":1}')
    assert leaves(result) == {"/a/b": '[1,{"c":2}]', "/a/d": "{}", "/a/e/f": "null", "/g": "1"}
    assert list(leaves(result)) == list(result.provenance)


PATCHES: list[tuple[str, str, list[dict[str, Any]]]] = [
    ('{"a":1}', '{"a":1}', []),
    ('{"a":1}', '{"a":2}', [{"op": "replace", "path": "/a", "value": 2}]),
    ('{"a":1}', "{}", [{"op": "remove", "path": "/a"}]),
    ("{}", '{"a":{"b":[1]}}', [{"op": "add", "path": "/a", "value": {"b": [1]}}]),
    (
        '{"a":{"x":1,"y":2}}',
        '{"a":{"y":3,"z":4}}',
        [
            {"op": "remove", "path": "/a/x"},
            {"op": "replace", "path": "/a/y", "value": 3},
            {"op": "add", "path": "/a/z", "value": 4},
        ],
    ),
    ('{"a":[1,2,3]}', '{"a":[1,2]}', [{"op": "replace", "path": "/a", "value": [1, 2]}]),
    ('{"a":{"b":1}}', '{"a":5}', [{"op": "replace", "path": "/a", "value": 5}]),
    ('{"a":5}', '{"a":{}}', [{"op": "replace", "path": "/a", "value": {}}]),
    (
        '{"k/~":{"a/b":1,"c~d":2}}',
        '{"k/~":{"a/b":3}}',
        [
            {"op": "replace", "path": "/k~1~0/a~1b", "value": 3},
            {"op": "remove", "path": "/k~1~0/c~0d"},
        ],
    ),
]


@pytest.mark.parametrize(("before", "after", "expected"), PATCHES)
def test_json_patch(before: str, after: str, expected: list[dict[str, Any]]) -> None:
    b, a = doc(before), doc(after)
    patch = json_patch(b, a)
    assert canonical_json(patch) == canonical_json(expected)
    assert canonical_json(apply_patch(b.document, patch)) == a.canonical_json()


def test_json_patch_keeps_exact_numbers_and_copies_values() -> None:
    before = doc('{"k":{"n":1}}')
    after = doc('{"k":{"n":1.10,"big":18446744073709551615,"list":[{"x":1.0}]}}')
    patch = json_patch(before, after)
    assert canonical_json(patch) == (
        '[{"op":"add","path":"/k/big","value":18446744073709551615},'
        '{"op":"add","path":"/k/list","value":[{"x":1.0}]},'
        '{"op":"replace","path":"/k/n","value":1.10}]'
    )
    value = patch[1]["value"]
    assert isinstance(value, list) and isinstance(value[0], dict)
    value[0]["x"] = 2  # mutating the patch does not touch the resolved document
    assert after.canonical_json() == (
        '{"k":{"big":18446744073709551615,"list":[{"x":1.0}],"n":1.10}}'
    )
