"""The asyncio event loop a server process runs on.

Every gRPC completion reaches Python through the event loop (grpc.aio's poller
thread hands each one over), so the loop's own cost per callback is a large
share of a request, and the bare grpc.aio Get handler serves measurably more
requests per second on uvloop than on the standard loop (README, "Running in
production"). uvloop is therefore the default; ``--event-loop asyncio`` keeps
the standard loop (for debugging with asyncio's debug mode, or on a platform
without a uvloop wheel).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

CHOICES = ("uvloop", "asyncio")
DEFAULT = "uvloop"

_T = TypeVar("_T")


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory for ``asyncio.Runner``; None means the standard loop."""
    if name == "asyncio":
        return None
    if name != "uvloop":
        raise ValueError(f"--event-loop must be one of {', '.join(CHOICES)}, not {name!r}")
    import uvloop  # noqa: PLC0415 - only the processes that choose it load libuv

    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, _T], name: str) -> _T:
    """``asyncio.run`` on the chosen loop."""
    with asyncio.Runner(loop_factory=loop_factory(name)) as runner:
        return runner.run(main)
