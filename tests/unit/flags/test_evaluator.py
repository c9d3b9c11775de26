"""The evaluator, above all where it deliberately deviates from ``openfeature-flagd-core``."""

from __future__ import annotations

import json
from typing import Any

import mmh3
import pytest
from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext

from configsvc.flags import fractional
from configsvc.flags.evaluator import (
    ErrorCode,
    FlagType,
    Reason,
    compile_flag_set,
    evaluate,
)
from tests.unit.flags.conformance import EVALUATOR_FLAGS

TESTKIT = json.loads(EVALUATOR_FLAGS.read_text())


def _string(flag_set: Any, key: str, context: dict[str, Any]) -> Any:
    return evaluate(flag_set, key, context, FlagType.STRING).value


# --------------------------------------------------------------- deviation 1: fractional


def test_library_fractional_deviates_from_the_testbed_and_ours_does_not() -> None:
    """The measured deviation: the suite expects hearts (current) / spades (legacy) for jack."""
    library = FlagdCore()
    library.set_flags(json.loads(json.dumps(TESTKIT)))
    context = {"user": {"name": "jack"}}
    assert (
        library.resolve_string_value(
            "fractional-flag", "x", EvaluationContext(attributes=context)
        ).value
        == "diamonds"
    )
    assert _string(compile_flag_set(TESTKIT), "fractional-flag", context) == "hearts"
    assert _string(compile_flag_set(TESTKIT, "legacy"), "fractional-flag", context) == "spades"


def test_current_bucketing_is_the_high_precision_formula() -> None:
    value = "fractional-flagjack"
    bucket = (mmh3.hash(value.encode(), signed=False) * 100) >> 32
    expected = (
        "clubs"
        if bucket < 25
        else "diamonds"
        if bucket < 50
        else "hearts"
        if bucket < 75
        else "spades"
    )
    buckets = [("clubs", 25), ("diamonds", 25), ("hearts", 25), ("spades", 25)]
    assert fractional.choose(value, buckets, "current") == expected


def test_shorthand_buckets_by_flag_key_plus_targeting_key() -> None:
    op = fractional.operator("current")
    data = {"targetingKey": "user-1", "$flagd": {"flagKey": "f"}}
    explicit = op({}, "fuser-1", ["a", 1], ["b", 1])
    assert op(data, ["a", 1], ["b", 1]) == explicit


@pytest.mark.parametrize(
    ("args", "data"),
    [
        ((), {}),
        ((["a", 1],), {}),  # shorthand without a targeting key
        ((None, ["a", 1]), {}),  # bucketing value missing from the context
        (("k", ["a", 0], ["b", 0]), {}),  # total weight 0
        (("k", ["a", 2**31]), {}),  # above MaxInt32
        (("k", ["a", "10"]), {}),  # weight not a number
        (("k", ["a", True]), {}),
        (("k", "not-a-bucket"), {}),
        (("k", [{"x": 1}, 5]), {}),
    ],
)
def test_fractional_errors_yield_null(args: tuple[Any, ...], data: dict[str, Any]) -> None:
    assert fractional.operator("current")(data, *args) is None


def test_negative_weights_count_as_zero_and_floats_as_integers() -> None:
    op = fractional.operator("current")
    assert op({}, "k", ["one", -50], ["two", 100]) == "two"
    assert op({}, "k", ["one", 0.0], ["two", 3.0]) == "two"


def test_non_string_bucketing_values_hash_their_json_text() -> None:
    op = fractional.operator("current")
    buckets = [["a", 1], ["b", 1], ["c", 1], ["d", 1]]
    assert op({}, 3, *buckets) == op({}, "3", *buckets)
    assert op({}, 3.0, *buckets) == op({}, "3", *buckets)
    assert op({}, True, *buckets) == op({}, "true", *buckets)


@pytest.mark.parametrize("bucketing", fractional.BUCKETINGS)
def test_bucketing_spreads_users_close_to_the_weights(bucketing: fractional.Bucketing) -> None:
    buckets = [("a", 10), ("b", 90)]
    counts = {"a": 0, "b": 0}
    for user in range(4000):
        counts[fractional.choose(f"flag{user}", buckets, bucketing)] += 1
    assert 300 <= counts["a"] <= 500


# ------------------------------------------------------------- deviation 2: $ref handling


def test_evaluator_refs_are_substituted_structurally() -> None:
    definition = {
        "flags": {
            "f": {
                "state": "ENABLED",
                "variants": {"on": True, "off": False},
                "defaultVariant": "off",
                "targeting": {"if": [{"$ref": "admins"}, "on", "off"]},
            }
        },
        "$evaluators": {"admins": {"in": [{"var": "role"}, ["admin"]]}},
    }
    flag_set = compile_flag_set(definition)
    assert evaluate(flag_set, "f", {"role": "admin"}).value is True
    assert evaluate(flag_set, "f", {"role": "dev"}).value is False


def test_missing_or_cyclic_evaluator_is_a_parse_error_of_that_flag_only() -> None:
    definition = {
        "flags": {
            "broken": {
                "state": "ENABLED",
                "variants": {"a": 1},
                "defaultVariant": "a",
                "targeting": {"if": [{"$ref": "nope"}, "a", None]},
            },
            "loop": {
                "state": "ENABLED",
                "variants": {"a": 1},
                "defaultVariant": "a",
                "targeting": {"$ref": "self"},
            },
            "fine": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a"},
        },
        "$evaluators": {"self": {"$ref": "self"}},
    }
    flag_set = compile_flag_set(definition)
    assert evaluate(flag_set, "broken", {}).error_code is ErrorCode.PARSE_ERROR
    assert "nope" in evaluate(flag_set, "broken", {}).error_message
    assert evaluate(flag_set, "loop", {}).error_code is ErrorCode.PARSE_ERROR
    assert evaluate(flag_set, "fine", {}).value == 1


# ---------------------------------------------------------------- resolution semantics


def test_array_form_metadata_and_reasons() -> None:
    definition = {
        "metadata": {"team": "core", "version": 1},
        "flags": [
            {
                "key": "a",
                "state": "ENABLED",
                "variants": {"x": 1, "y": 2.5},
                "defaultVariant": "x",
                "metadata": {"version": 2},
            },
            {"key": "d", "state": "DISABLED", "variants": {"x": 1}, "defaultVariant": "x"},
        ],
    }
    flag_set = compile_flag_set(definition)
    a = evaluate(flag_set, "a", {}, FlagType.FLOAT)
    assert (a.value, a.variant, a.reason) == (1.0, "x", Reason.STATIC)
    assert isinstance(a.value, float)
    assert a.metadata == {"team": "core", "version": 2}
    d = evaluate(flag_set, "d", {}, FlagType.INTEGER)
    assert (d.value, d.variant, d.reason) == (None, None, Reason.DISABLED)
    missing = evaluate(flag_set, "zzz", {})
    assert missing.error_code is ErrorCode.FLAG_NOT_FOUND


def test_targeting_errors_and_unknown_variants() -> None:
    definition = {
        "flags": {
            "ghost": {
                "state": "ENABLED",
                "variants": {"a": 1},
                "defaultVariant": "a",
                "targeting": {"if": [True, "nope", "a"]},
            },
            "op": {
                "state": "ENABLED",
                "variants": {"a": 1},
                "defaultVariant": "a",
                "targeting": {"no_such_op": [1]},
            },
            "boom": {
                "state": "ENABLED",
                "variants": {"a": 1},
                "defaultVariant": "a",
                "targeting": {"/": [1, 0]},
            },
        }
    }
    flag_set = compile_flag_set(definition)
    assert evaluate(flag_set, "ghost", {}).error_code is ErrorCode.GENERAL
    assert evaluate(flag_set, "op", {}).error_code is ErrorCode.PARSE_ERROR
    assert evaluate(flag_set, "boom", {}).error_code is ErrorCode.GENERAL


def test_context_attributes_target_service_environment_and_tenant() -> None:
    definition = {
        "flags": {
            "f": {
                "state": "ENABLED",
                "variants": {"on": True, "off": False},
                "defaultVariant": "off",
                "targeting": {
                    "if": [
                        {
                            "and": [
                                {"==": [{"var": "service"}, "api"]},
                                {"==": [{"var": "environment"}, "prod"]},
                                {"==": [{"var": "tenant"}, "acme"]},
                            ]
                        },
                        "on",
                        "off",
                    ]
                },
            }
        }
    }
    flag_set = compile_flag_set(definition)
    context = {"service": "api", "environment": "prod", "tenant": "acme"}
    assert evaluate(flag_set, "f", context, FlagType.BOOLEAN).value is True
    assert evaluate(flag_set, "f", {**context, "service": "web"}).value is False


def test_type_checks_follow_the_openfeature_types() -> None:
    definition = {
        "flags": {
            "b": {"state": "ENABLED", "variants": {"t": True}, "defaultVariant": "t"},
            "i": {"state": "ENABLED", "variants": {"n": 3}, "defaultVariant": "n"},
            "o": {"state": "ENABLED", "variants": {"o": {"k": 1}}, "defaultVariant": "o"},
        }
    }
    flag_set = compile_flag_set(definition)
    assert evaluate(flag_set, "b", {}, FlagType.INTEGER).error_code is ErrorCode.TYPE_MISMATCH
    assert evaluate(flag_set, "i", {}, FlagType.BOOLEAN).error_code is ErrorCode.TYPE_MISMATCH
    assert evaluate(flag_set, "i", {}, FlagType.INTEGER).value == 3
    assert evaluate(flag_set, "o", {}, FlagType.OBJECT).value == {"k": 1}
    assert evaluate(flag_set, "o", {}, FlagType.STRING).error_code is ErrorCode.TYPE_MISMATCH
