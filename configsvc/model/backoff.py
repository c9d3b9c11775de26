"""One retry/backoff policy for every loop that waits before trying again.

The mirror's resync, the writer's lost-race retries and webhook redelivery all
wait an exponentially growing, capped, jittered delay; they differ only in the
numbers and in how the jitter spreads the wait, so those are the policy's
fields and the formula is written once. Pure (no clock, no I/O): it lives in
the model layer so that every layer may import it.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass


class Jitter(enum.Enum):
    """How a delay is drawn below the attempt's ceiling ``c``."""

    FULL = "full"
    """Uniform in [0, c]: colliding writers spread out the most (AWS "full jitter")."""
    HALF = "half"
    """Uniform in [c/2, c]: the wait still grows each attempt, replicas do not sync up."""
    FLOOR = "floor"
    """Uniform in [base, c]: never retries sooner than ``base`` (reconnect loops)."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry ``n``: ceiling ``min(cap, base * 2**min(n, max_doublings))``,
    jittered as ``jitter`` says.

    ``n`` is the caller's retry counter: 0 gives ``base`` as the ceiling, each
    later retry doubles it until ``cap``.
    """

    base: float
    """Seconds: the first retry's ceiling (and the floor of ``Jitter.FLOOR``)."""
    cap: float
    """Seconds: the longest ceiling, however many retries failed."""
    jitter: Jitter = Jitter.FULL
    max_doublings: int = 62
    """Doublings after which the ceiling stops growing even below ``cap`` (also keeps
    ``2**n`` small for a counter that never resets)."""

    def __post_init__(self) -> None:
        if not (0 <= self.base <= self.cap):
            raise ValueError(
                f"backoff needs 0 <= base <= cap seconds (got base {self.base}, cap {self.cap})"
            )
        if self.max_doublings < 0:
            raise ValueError("backoff max_doublings must be 0 or more")

    def ceiling(self, retry: int) -> float:
        """The longest delay before retry ``retry`` (jitter draws at or below it)."""
        return float(min(self.cap, self.base * 2 ** min(max(retry, 0), self.max_doublings)))

    def delay(self, retry: int, uniform: Callable[[float, float], float] = random.uniform) -> float:
        """A jittered delay before retry ``retry``; ``uniform`` is injectable for tests."""
        high = self.ceiling(retry)
        if self.jitter is Jitter.FULL:
            return float(uniform(0.0, high))
        if self.jitter is Jitter.HALF:
            return float(high * uniform(0.5, 1.0))
        return float(uniform(self.base, max(self.base, high)))

    def bounds(self, retry: int) -> tuple[float, float]:
        """The range ``delay(retry)`` draws from (for documentation and tests)."""
        high = self.ceiling(retry)
        if self.jitter is Jitter.FULL:
            return 0.0, high
        if self.jitter is Jitter.HALF:
            return high / 2, high
        return self.base, max(self.base, high)
