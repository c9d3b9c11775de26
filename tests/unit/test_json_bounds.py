"""The bounded JSON reader every request's JSON goes through (configsvc.model.values)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from configsvc.errors import InvalidArgumentError
from configsvc.model.values import (
    MAX_INT_DIGITS,
    MAX_JSON_DEPTH,
    check_tree,
    json_depth,
    loads_bounded,
)


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("1", 0),
        ("[]", 1),
        ('{"a": [1, {"b": 2}]}', 3),
        ('"[[[[{"', 0),
        ('["\\"[[[", [[]]]', 3),
        ('{"a\\\\": [[]]}', 3),
    ],
)
def test_json_depth_counts_brackets_outside_strings(text: str, depth: int) -> None:
    assert json_depth(text) == depth


def test_json_depth_stops_past_the_limit() -> None:
    assert json_depth("[" * 10_000, limit=5) == 6


def test_loads_bounded_parses_ordinary_json() -> None:
    assert loads_bounded('{"a": [1, 2.5, null, true]}', field="body") == {"a": [1, 2.5, None, True]}
    assert loads_bounded(b"1.10", field="v", parse_float=Decimal) == Decimal("1.10")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1),
            "nested too deeply: more than 128",
        ),
        ("[" * 5000, "nested too deeply: more than 128"),
        ("NaN", "NaN is not valid JSON"),
        ('{"x": -Infinity}', "-Infinity is not valid JSON"),
        ("1" * (MAX_INT_DIGITS + 1), f"has {MAX_INT_DIGITS + 1} digits"),
        ("-" + "9" * 5000, "has 5000 digits"),
        ("1e400", "outside the 64-bit float range"),
        ("{", "is not valid JSON"),
    ],
)
def test_loads_bounded_refuses_with_invalid_argument(text: str, reason: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        loads_bounded(text, field="body")
    assert caught.value.violations[0].field == "body"
    assert reason in caught.value.violations[0].description


def test_loads_bounded_refuses_bytes_that_are_not_utf8() -> None:
    with pytest.raises(InvalidArgumentError, match="not UTF-8"):
        loads_bounded(b'"\xff"', field="body")


def test_the_largest_accepted_integer_parses_exactly() -> None:
    assert loads_bounded("7" * MAX_INT_DIGITS, field="v") == int("7" * MAX_INT_DIGITS)


def test_check_tree_refuses_non_finite_numbers_and_deep_nesting() -> None:
    check_tree({"a": [1.5, {"b": "c"}]}, field="context")
    with pytest.raises(InvalidArgumentError, match="only finite numbers"):
        check_tree({"a": [float("nan")]}, field="context")
    deep: object = 1
    for _ in range(MAX_JSON_DEPTH + 1):
        deep = [deep]
    with pytest.raises(InvalidArgumentError, match="nested too deeply"):
        check_tree(deep, field="context")
