"""Analytics windows, flag edits and selectors: pure units."""

from __future__ import annotations

from typing import Any

import pytest

from configsvc.errors import InvalidArgumentError, NotFoundError
from configsvc.flags import edits, selector
from configsvc.flags.analytics import FlagAnalytics


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_windows_sum_minute_buckets_and_forget_old_ones() -> None:
    clock = Clock()
    analytics = FlagAnalytics(retention=5, clock=clock)
    analytics.record("t", "prod", "f", "on", "TARGETING_MATCH")
    clock.now += 120
    analytics.record("t", "prod", "f", "on", "TARGETING_MATCH")
    analytics.record("t", "prod", "f", None, "DISABLED")
    analytics.record("t", "dev", "f", "on", "STATIC")
    assert [(c.variant, c.reason, c.count) for c in analytics.window("t", "prod", 60)] == [
        ("", "DISABLED", 1),
        ("on", "TARGETING_MATCH", 1),
    ]
    assert [c.count for c in analytics.window("t", "prod", 300, "f")] == [1, 2]
    assert analytics.window("t", "prod", 300, "other") == []
    clock.now += 600
    analytics.record("t", "prod", "g", "x", "STATIC")
    assert [c.flag for c in analytics.window("t", "prod", 3600)] == ["g"]  # retention 5 min
    text = analytics.prometheus()
    assert 'flag="f",variant="on",reason="TARGETING_MATCH"} 2' in text


def test_prometheus_labels_are_escaped() -> None:
    analytics = FlagAnalytics()
    analytics.record("t", "prod", 'we"ird\\', "v\n", "STATIC")
    assert 'flag="we\\"ird\\\\",variant="v\\n"' in analytics.prometheus()


def _definition() -> dict[str, Any]:
    return {
        "flags": [
            {
                "key": "f",
                "state": "ENABLED",
                "variants": {"a": 1, "b": 2},
                "defaultVariant": "a",
                "targeting": {"if": [True, {"fractional": [{"var": "id"}, ["a", 1]]}, "a"]},
            }
        ]
    }


def test_rollout_rewrites_the_first_fractional_and_keeps_its_bucketing_value() -> None:
    definition = _definition()
    edits.set_rollout("f", [("a", 30), ("b", 70)])(definition)
    flag = definition["flags"]["f"]  # the array form became a map
    assert flag["targeting"]["if"][1] == {"fractional": [{"var": "id"}, ["a", 30], ["b", 70]]}


@pytest.mark.parametrize(
    ("weights", "field"),
    [
        ([], "weights"),
        ([("a", -1)], "weights[0].weight"),
        ([("a", 1), ("a", 2)], "weights[1].variant"),
        ([("a", 0)], "weights"),
    ],
)
def test_rollout_checks_weights(weights: list[tuple[str, int]], field: str) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        edits.set_rollout("f", weights)
    assert raised.value.violations[0].field == field


def test_edits_of_missing_flags_are_not_found() -> None:
    for edit in (
        edits.set_state("nope", True),
        edits.delete_flag("nope"),
        edits.set_rollout("nope", [("a", 1)]),
    ):
        with pytest.raises(NotFoundError):
            edit(_definition())
    definition = _definition()
    edits.delete_flag("f")(definition)
    assert definition["flags"] == {}


def test_enrich_keeps_what_the_caller_set() -> None:
    ref = selector.FlagSetRef("acme", "prod")
    assert selector.enrich({"tenant": "x"}, ref, "api") == {
        "tenant": "x",
        "environment": "prod",
        "service": "api",
    }
    assert str(ref) == "acme/prod"
    assert selector.resolve((), "acme/dev", "").environment == "dev"
    assert selector.resolve((), "", "acme/prod") == ref


def test_undefined_flags_are_counted_under_one_name() -> None:
    """Random keys a caller asks for must not grow the counters (or /metrics) one row each."""
    analytics = FlagAnalytics(clock=lambda: 600.0)
    for index in range(1000):
        analytics.record("t", "prod", f"random-{index}", None, "FLAG_NOT_FOUND")
    analytics.record("t", "prod", "real", "on", "STATIC")
    rows = analytics.window("t", "prod", 60)
    assert [(r.flag, r.reason, r.count) for r in rows] == [
        ("(unknown)", "FLAG_NOT_FOUND", 1000),
        ("real", "STATIC", 1),
    ]
    assert analytics.prometheus().count("configsvc_flag_evaluations_total{") == 2
