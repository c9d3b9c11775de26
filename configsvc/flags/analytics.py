"""Evaluation analytics: per flag, counts per variant and reason over time windows.

Counting is a dict increment on the evaluation path (no lock, no I/O: the
server is one asyncio loop). Counts go into one-minute buckets kept for
``retention`` minutes, so "the last 5 minutes" or "the last hour" is a sum of
buckets, plus cumulative totals for Prometheus counters. Counts are per
process (replicas are stateless); a Prometheus server adds them up.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

BUCKET_SECONDS = 60
#: How many minutes of history answer window queries (windows are capped to it).
DEFAULT_RETENTION = 60

#: (tenant, environment, flag, variant, reason); variant "" when none (default/disabled/error).
CountKey = tuple[str, str, str, str, str]

#: The flag name that evaluations of flags a set does not define are counted under. A caller
#: chooses the keys it asks for, so counting each under its own name would let any reader grow
#: these counters (and /metrics) without bound with random keys; defined flags are bounded by
#: the flag sets' own size limits.
UNKNOWN_FLAG = "(unknown)"
#: The reason evaluations of undefined flags carry (flagd's error code).
FLAG_NOT_FOUND = "FLAG_NOT_FOUND"


@dataclass(frozen=True, slots=True)
class Count:
    """One row of a window query."""

    flag: str
    variant: str
    reason: str
    count: int


class FlagAnalytics:
    """In-memory evaluation counters."""

    def __init__(
        self, retention: int = DEFAULT_RETENTION, clock: Callable[[], float] = time.time
    ) -> None:
        self.retention = retention
        self._clock = clock
        self._buckets: deque[tuple[int, Counter[CountKey]]] = deque()
        self._totals: Counter[CountKey] = Counter()

    def _bucket(self) -> Counter[CountKey]:
        minute = int(self._clock()) // BUCKET_SECONDS
        if not self._buckets or self._buckets[-1][0] != minute:
            self._buckets.append((minute, Counter()))
            while self._buckets and self._buckets[0][0] <= minute - self.retention:
                self._buckets.popleft()
        return self._buckets[-1][1]

    def record(
        self, tenant: str, environment: str, flag: str, variant: str | None, reason: str
    ) -> None:
        if reason == FLAG_NOT_FOUND:
            flag = UNKNOWN_FLAG
        key = (tenant, environment, flag, variant or "", reason)
        self._bucket()[key] += 1
        self._totals[key] += 1

    def window(self, tenant: str, environment: str, seconds: int, flag: str = "") -> list[Count]:
        """Counts of the last ``seconds`` (whole minutes, at least the current one)."""
        minute = int(self._clock()) // BUCKET_SECONDS
        oldest = minute - max(1, -(-seconds // BUCKET_SECONDS)) + 1
        summed: Counter[CountKey] = Counter()
        for bucket_minute, counts in self._buckets:
            if bucket_minute >= oldest:
                summed.update(
                    {
                        k: v
                        for k, v in counts.items()
                        if k[0] == tenant and k[1] == environment and (not flag or k[2] == flag)
                    }
                )
        return [Count(k[2], k[3], k[4], v) for k, v in sorted(summed.items())]

    def prometheus(self) -> str:
        """The totals in the Prometheus text exposition format."""
        lines = [
            "# HELP configsvc_flag_evaluations_total Flag evaluations by variant and reason.",
            "# TYPE configsvc_flag_evaluations_total counter",
        ]
        lines.extend(
            "configsvc_flag_evaluations_total{"
            + _labels(
                (
                    ("tenant", k[0]),
                    ("environment", k[1]),
                    ("flag", k[2]),
                    ("variant", k[3]),
                    ("reason", k[4]),
                )
            )
            + f"}} {v}"
            for k, v in sorted(self._totals.items())
        )
        return "\n".join(lines) + "\n"


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return ",".join(f'{name}="{escape(value)}"' for name, value in pairs)
