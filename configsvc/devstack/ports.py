"""Port helpers: pick free ports for tests and refuse to start on a busy port.

Starting a service on a port something else already listens on fails in
confusing ways (etcd exits with a zap JSON line, OpenBao prints a listener
error, and a readiness probe might even succeed against the *other* process).
Checking up front turns all of that into one actionable message.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from configsvc.devstack.errors import DevStackError, PortInUseError

__all__ = ["PortSpec", "address_family", "ensure_port_free", "format_hostport", "free_port"]


@dataclass(frozen=True, slots=True)
class PortSpec:
    """A port a service listens on, with the words used when it is busy.

    ``what`` names the listener for a human ("etcd client"); ``flag`` is the
    command-line option that moves it ("--etcd-port").
    """

    port: int
    what: str
    flag: str


def format_hostport(host: str, port: int) -> str:
    """Join host and port, bracketing IPv6 literals so URLs stay valid."""
    if ":" in host and not host.startswith("["):
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def address_family(host: str) -> socket.AddressFamily:
    """IPv6 for literals containing a colon, IPv4 otherwise."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def free_port(host: str = "127.0.0.1") -> int:
    """Return a port that was free a moment ago, chosen by the kernel.

    The socket is closed before returning, so another process could grab the
    port in between; that race is acceptable for tests and dev runs, and far
    rarer than clashes with hard-coded ports.
    """
    with socket.socket(address_family(host), socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def ensure_port_free(host: str, port: int, what: str, flag: str) -> None:
    """Raise :class:`PortInUseError` if ``host:port`` cannot be listened on.

    The probe binds with ``SO_REUSEADDR``, like the Go and Rust servers we run,
    so sockets left in TIME_WAIT by a service we just stopped do not count as
    "in use" (restarting on the same port must work), while a live listener does.
    """
    with socket.socket(address_family(host), socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(host, port, what, flag) from exc
            raise DevStackError(
                f"cannot listen on port {port} ({what}) on {host}: {exc.strerror}; "
                f"check the host address or pass {flag}"
            ) from exc
