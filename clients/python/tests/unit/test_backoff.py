"""Backoff: exponential ceilings, full jitter bounds, validation."""

from __future__ import annotations

import random
import statistics

import pytest

from configsvc_client import Backoff


def test_ceiling_grows_exponentially_then_caps() -> None:
    backoff = Backoff(initial=0.1, maximum=10.0)
    assert [backoff.ceiling(n) for n in range(4)] == pytest.approx([0.1, 0.2, 0.4, 0.8])
    assert backoff.ceiling(7) == 10.0  # 12.8 capped
    assert backoff.ceiling(10_000) == 10.0  # no float overflow on long outages


def test_full_jitter_spans_zero_to_ceiling() -> None:
    backoff = Backoff(initial=0.5, maximum=4.0)
    assert backoff.delay(3, rand=lambda: 0.0) == 0.0
    assert backoff.delay(3, rand=lambda: 0.999999) == pytest.approx(4.0, rel=1e-5)
    assert backoff.delay(1, rand=lambda: 0.5) == pytest.approx(0.5)


def test_random_delays_stay_in_bounds_and_are_spread() -> None:
    rng = random.Random(7)
    backoff = Backoff(initial=0.1, maximum=2.0)
    for attempt in range(12):
        delays = [backoff.delay(attempt, rng.random) for _ in range(2000)]
        ceiling = backoff.ceiling(attempt)
        assert all(0.0 <= d <= ceiling for d in delays)
        # Full jitter: uniform over [0, ceiling], so mean ~ ceiling / 2 and a wide spread.
        assert statistics.fmean(delays) == pytest.approx(ceiling / 2, rel=0.1)
        assert min(delays) < ceiling * 0.05 and max(delays) > ceiling * 0.95


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial": 0.0},
        {"initial": -1.0},
        {"initial": 2.0, "maximum": 1.0},
        {"multiplier": 0.5},
    ],
)
def test_invalid_settings_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)


def test_negative_attempt_is_rejected() -> None:
    with pytest.raises(ValueError):
        Backoff().ceiling(-1)
