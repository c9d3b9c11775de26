"""Structured logging: one JSON object per line, fields a log pipeline can index."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Renders a record and its ``extra`` fields as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                out[key] = value if isinstance(value, int | float | str | bool) else str(value)
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure(log_format: str, level: str) -> None:
    """Install the root handler once (idempotent, so tests can call it freely)."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_configsvc", False):
            root.removeHandler(existing)
    handler._configsvc = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())


class RateLimitedLog:
    """At most one log line per ``interval`` seconds for one kind of event, with a count.

    For events any caller can cause at will (undecodable requests, bad credentials): each
    is worth knowing about, but a line per event would let an anonymous client flood the
    log. The first event logs at once; later ones within the interval are only counted,
    and the next line that is written says how many were left out. ``clock`` is
    injectable so tests need not wait.
    """

    def __init__(self, logger: logging.Logger, interval: float = 60.0, *,
                 level: int = logging.WARNING,
                 clock: Callable[[], float] = time.monotonic) -> None:
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
        suffix = (f" ({left_out} more since the last such line, {self.interval:g} s "
                  "between lines)" if left_out else "")
        self.logger.log(self.level, message + suffix, *args,
                        extra={"suppressed": left_out})
        return True
