"""Limits every HTTP listener of the server applies to its clients."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HttpSettings:
    """How long and how much an HTTP client may take; one record for every HTTP route.

    The bounds exist because an HTTP connection costs the server memory and a slot in
    its connection table for as long as the client keeps it: without them a client that
    sends one byte a second (slowloris) holds a connection forever, and a few hundred
    such clients hold the listener.
    """

    header_timeout: float = 10.0
    """Seconds a connection may go without a complete request head (request line and
    headers): counted from the connection's start, and after each answer on a keep-alive
    connection, so it also bounds an idle keep-alive connection. Past it the server closes
    the connection. (aiohttp's ``keepalive_timeout``, which aiohttp starts at connect.)"""
    body_timeout: float = 10.0
    """Seconds the request body may take to arrive once its head has: past it the answer
    is 408 and the connection is closed."""
    max_body_bytes: int = 256 * 1024
    """Largest request body accepted, counted after decompression (a small gzip body may
    inflate to gigabytes: a "zip bomb"); larger is 413."""
    max_connections: int = 1000
    """Open connections per listener; one more is answered 503 (``Retry-After: 1``) and
    closed at once, so a flood of idle connections cannot take every file descriptor."""
    send_timeout: float = 30.0
    """Seconds an answer may take to go out: a client that stops reading would hold its
    connection, and the answer in memory, for ever (a slow read). Past it the connection
    is aborted."""
    linger: float = 1.0
    """Seconds the server keeps reading (and discarding) a body it answered without
    reading fully (an error answer), so the client sees the answer instead of a reset."""

    def __post_init__(self) -> None:
        for name in ("header_timeout", "body_timeout", "send_timeout", "linger"):
            if not getattr(self, name) > 0:
                raise ValueError(f"HttpSettings.{name} must be > 0 seconds")
        if self.max_body_bytes < 1 or self.max_connections < 1:
            raise ValueError("HttpSettings.max_body_bytes and max_connections must be >= 1")
