"""The one backoff policy reproduces the ranges of the four formulas it replaced."""

from __future__ import annotations

import random

import pytest

from configsvc.events.settings import WebhookSettings
from configsvc.model.backoff import Backoff, Jitter
from configsvc.store.writer import RACE_BACKOFF


def _ends(policy: Backoff, retry: int) -> tuple[float, float]:
    """The smallest and largest delay the policy can draw (uniform at its ends)."""
    low = policy.delay(retry, lambda a, _b: a)
    high = policy.delay(retry, lambda _a, b: b)
    return low, high


@pytest.mark.parametrize("attempt", range(0, 20))
def test_writer_race_retries_keep_their_full_jitter_range(attempt: int) -> None:
    # Before: random.uniform(0, min(0.05, 0.001 * 2**attempt))
    assert _ends(RACE_BACKOFF, attempt) == (0.0, min(0.05, 0.001 * 2**attempt))


@pytest.mark.parametrize(("low", "high"), [(0.1, 2.0), (0.01, 0.05), (0.001, 100.0), (2.0, 1.0)])
@pytest.mark.parametrize("attempt", range(1, 16))
def test_mirror_resync_keeps_its_range(low: float, high: float, attempt: int) -> None:
    # Before: delay = min(max, min * 2**min(attempt, 10)); uniform(min, max(min, delay))
    delay = min(high, low * 2 ** min(attempt, 10))
    policy = Backoff(low, max(low, high), Jitter.FLOOR, max_doublings=10)
    assert _ends(policy, attempt) == pytest.approx((low, max(low, delay)))


@pytest.mark.parametrize(("base", "cap"), [(1.0, 600.0), (0.05, 0.2), (600.0, 600.0), (5, 1)])
@pytest.mark.parametrize("attempts", range(1, 12))
def test_webhook_redelivery_keeps_its_range(base: float, cap: float, attempts: int) -> None:
    # Before: min(retry_max, retry_base * 2**(attempts - 1)) * uniform(0.5, 1.0)
    raw = min(cap, base * 2 ** (attempts - 1))
    policy = WebhookSettings(retry_base=base, retry_max=cap).backoff
    assert _ends(policy, attempts - 1) == pytest.approx((raw * 0.5, raw))
    assert policy.bounds(attempts - 1) == pytest.approx((raw * 0.5, raw))


@pytest.mark.parametrize("jitter", list(Jitter))
def test_random_delays_stay_inside_the_bounds(jitter: Jitter) -> None:
    policy = Backoff(0.01, 1.0, jitter)
    rng = random.Random(7)
    for retry in range(200):
        low, high = policy.bounds(retry)
        assert low <= policy.delay(retry, rng.uniform) <= high


def test_a_counter_that_never_resets_does_not_overflow() -> None:
    assert Backoff(0.5, 3.0).ceiling(10**6) == 3.0
    assert Backoff(0.5, 3.0).ceiling(-4) == 0.5


@pytest.mark.parametrize(("base", "cap", "doublings"), [(-1, 1, 3), (2, 1, 3), (0, 1, -1)])
def test_nonsense_policies_are_refused(base: float, cap: float, doublings: int) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(base, cap, max_doublings=doublings)
