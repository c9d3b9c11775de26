"""Writes and their retries: one request id per logical write, the same on every attempt.

A write whose answer is lost (the deadline passed, the connection or the
server died after the commit) may or may not have happened. The server
remembers each write's ``request_id`` with the change itself, so a retry that
carries the same id is answered with the first result and writes nothing: the
client can retry UNAVAILABLE and DEADLINE_EXCEEDED without writing a second
version (or getting ABORTED for its own compare-and-swap). Other errors are
answers and are never retried.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from configsvc_client.backoff import Backoff
from configsvc_client.errors import DeadlineExceededError, UnavailableError

__all__ = ["DEFAULT_WRITE_ATTEMPTS", "new_request_id", "send_write"]

#: Attempts of one write (the first and two retries) unless the caller says otherwise.
DEFAULT_WRITE_ATTEMPTS = 3
#: Retry delays of writes: short, since a retry is safe and the caller is waiting.
WRITE_BACKOFF = Backoff(initial=0.1, maximum=2.0)

_Response = TypeVar("_Response")


def new_request_id() -> str:
    """A fresh request id: a random UUID (122 random bits; never reused by accident)."""
    return str(uuid.uuid4())


async def send_write(
    attempt: Callable[[], Awaitable[_Response]], *, attempts: int, backoff: Backoff = WRITE_BACKOFF
) -> _Response:
    """Call ``attempt`` (the same request, same request id, each time) until it answers,
    at most ``attempts`` times; UNAVAILABLE and DEADLINE_EXCEEDED are retried after a
    full-jitter delay, the last one is raised."""
    if attempts < 1:
        raise ValueError(f"write_attempts must be at least 1, got {attempts}")
    for tried in range(attempts):
        try:
            return await attempt()
        except (UnavailableError, DeadlineExceededError):
            if tried + 1 >= attempts:
                raise
            await asyncio.sleep(backoff.delay(tried))
    raise AssertionError("unreachable")  # pragma: no cover
