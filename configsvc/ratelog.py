"""Rate-limited log lines for events any caller can cause at will.

A leaf module (standard library only) so the transports (``configsvc.api``,
``configsvc.http``) and the domain can use it without importing ``configsvc.server``,
which sits above them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class RateLimitedLog:
    """At most one log line per ``interval`` seconds for one kind of event, with a count.

    For events any caller can cause at will (undecodable requests, bad credentials): each
    is worth knowing about, but a line per event would let an anonymous client flood the
    log. The first event logs at once; later ones within the interval are only counted,
    and the next line that is written says how many were left out. ``clock`` is
    injectable so tests need not wait.
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 60.0,
        *,
        level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.interval = interval
        self.level = level
        self._clock = clock
        self._last: float | None = None
        #: Events counted but not logged since the last line.
        self.suppressed = 0

    def reset(self) -> None:
        self._last = None
        self.suppressed = 0

    def note(self, message: str, *args: object) -> bool:
        """Log ``message % args`` unless a line was written less than ``interval`` ago
        (then only count it); True when a line was written."""
        now = self._clock()
        if self._last is not None and now - self._last < self.interval:
            self.suppressed += 1
            return False
        left_out, self.suppressed, self._last = self.suppressed, 0, now
        suffix = (
            f" ({left_out} more since the last such line, {self.interval:g} s between lines)"
            if left_out
            else ""
        )
        self.logger.log(self.level, message + suffix, *args, extra={"suppressed": left_out})
        return True
