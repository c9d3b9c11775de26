"""Reconnect delays: exponential growth with full jitter.

Full jitter (a uniformly random delay between 0 and the exponential ceiling)
is what keeps a fleet of clients from reconnecting in lock-step when a server
restarts: their attempts spread over the whole window instead of arriving in
synchronized waves (see the AWS architecture blog, "Exponential Backoff And
Jitter").
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before reconnect attempt ``n`` (0-based): uniform in ``[0, ceiling(n)]``.

    ``ceiling(n) = min(maximum, initial * multiplier ** n)``. The attempt
    counter restarts after a stream that reached the live state, so a server
    that moves its clients (shutdown, maximum stream age) gets them back within
    ``initial`` seconds.
    """

    initial: float = 0.1
    maximum: float = 10.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if not self.initial > 0:
            raise ValueError(f"backoff initial delay must be > 0, got {self.initial}")
        if self.maximum < self.initial:
            raise ValueError(f"backoff maximum {self.maximum} is below initial {self.initial}")
        if self.multiplier < 1:
            raise ValueError(f"backoff multiplier must be >= 1, got {self.multiplier}")

    def ceiling(self, attempt: int) -> float:
        """The largest delay attempt ``attempt`` may wait."""
        if attempt < 0:
            raise ValueError("attempt must be >= 0")
        # Stop growing once past the cap: avoids float overflow for long outages.
        ceiling = self.initial
        for _ in range(attempt):
            ceiling *= self.multiplier
            if ceiling >= self.maximum:
                return self.maximum
        return min(ceiling, self.maximum)

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """A full-jitter delay for ``attempt``; ``rand`` returns floats in [0, 1)."""
        return rand() * self.ceiling(attempt)
