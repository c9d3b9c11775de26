"""What the client reports about itself: :class:`Status` and :class:`Stats`."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Stats", "Status"]


@dataclass(frozen=True, slots=True)
class Status:
    """The client's state, for health checks and dashboards.

    ``stale`` is True whenever the cache is not known to follow the server:
    before the first snapshot, while serving a cache file, from the moment
    the stream breaks until it is live again, and while a live stream has been
    silent for longer than the silence limit (``silence_intervals`` times the
    server's ``progress_interval``: the server sends a heartbeat on every
    quiet stream, so silence means the stream or the server is stuck, or this
    client's own thread is blocked). ``connected`` is False then too; the
    client cancels such a stream and resumes on a new one. ``revision`` is the etcd
    revision the cache is exact at; ``last_error`` describes the most recent
    stream failure (kept after recovery, for diagnosis).
    """

    connected: bool
    stale: bool
    revision: int
    last_error: str | None


@dataclass(slots=True)
class Stats:
    """Counters since the client started."""

    streams_opened: int = 0
    """Watch calls made (the first, then every reconnect)."""
    snapshots: int = 0
    """Snapshots applied (the first one and every re-snapshot)."""
    resets: int = 0
    """RESET messages received."""
    revisions_applied: int = 0
    """``changes`` messages applied."""
    duplicates_ignored: int = 0
    """``changes`` messages ignored because their revision was not after the cache's."""
    progress_behind: int = 0
    """Progress messages below the cache's revision (ignored; see the README)."""
    protocol_errors: int = 0
    """Messages out of the contract's order (each forces a re-snapshot)."""
    silent_streams: int = 0
    """Streams cancelled because nothing arrived within the silence limit."""
    deliveries_coalesced: int = 0
    """Times callbacks fell ``max_pending_changes`` behind and got the net difference."""
    callback_errors: int = 0
    """Exceptions raised by subscription callbacks (logged)."""
    persist_writes: int = 0
    """Cache file writes."""
    persist_errors: int = 0
    """Cache file writes that failed (logged)."""
