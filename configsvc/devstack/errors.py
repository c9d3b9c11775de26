"""Exceptions raised while running the local backing services.

Every failure a developer can hit while starting the dev stack (a busy port, a
missing binary, a service that crashes or never becomes ready) is a
:class:`DevStackError`, so the CLI can catch one type and print the message
without a traceback: the messages are written to be acted on, not debugged.
"""

from __future__ import annotations

from pathlib import Path


class DevStackError(Exception):
    """Base class for everything that goes wrong while managing the local services."""


class PortInUseError(DevStackError):
    """A port a service needs is already taken by some other process.

    Raised *before* any child is started, so the stack never ends up half-running
    because of a port clash. The attributes let callers build their own message.
    """

    def __init__(self, host: str, port: int, what: str, flag: str) -> None:
        self.host = host
        self.port = port
        self.what = what
        self.flag = flag
        super().__init__(
            f"port {port} ({what}) on {host} is already in use; "
            f"stop the process using it or pass {flag}"
        )


class BinaryNotFoundError(DevStackError):
    """The executable for a service is neither bundled in its wheel nor on PATH."""


class ServiceStartError(DevStackError):
    """A service exited during startup or did not become ready in time.

    The message embeds the tail of the service's own log because that is almost
    always where the real reason is (bad data dir, port clash, corrupt state).
    """

    def __init__(self, service: str, summary: str, log_path: Path, log_tail: str) -> None:
        self.service = service
        self.summary = summary
        self.log_path = log_path
        self.log_tail = log_tail
        tail = log_tail if log_tail.strip() else "(the log is empty)"
        super().__init__(f"{summary}\n--- last lines of {log_path} ---\n{tail}")
