"""The whole local stack (etcd, OpenBao, pulsar-lite) under one directory.

Start order is etcd, OpenBao, pulsar-lite (etcd is the store everything else
depends on), stop order is the reverse. Starting is all-or-nothing: ports are
checked before anything is spawned, and if a service fails to start the ones
already running are stopped, so a failed ``configsvc dev`` never leaves
processes behind holding ports.
"""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from configsvc.devstack.errors import DevStackError
from configsvc.devstack.etcd import EtcdServer
from configsvc.devstack.openbao import OpenBaoDevServer
from configsvc.devstack.ports import address_family, ensure_port_free
from configsvc.devstack.process import ManagedProcess
from configsvc.devstack.pulsar import PulsarLite

__all__ = ["LocalStack"]

_PORT_PICK_ATTEMPTS = 50


class LocalStack:
    """etcd, OpenBao (dev mode) and pulsar-lite as child processes.

    Layout: ``data_dir/etcd``, ``data_dir/openbao``, ``data_dir/pulsar``, each
    holding that service's log (and data). The individual services are exposed
    as :attr:`etcd`, :attr:`openbao` and :attr:`pulsar` so tests can stop, kill
    and restart one of them to simulate an outage.
    """

    def __init__(
        self,
        data_dir: Path,
        etcd_port: int = 2379,
        etcd_peer_port: int = 2380,
        bao_port: int = 8200,
        pulsar_port: int = 6650,
        host: str = "127.0.0.1",
    ) -> None:
        ports = {
            "--etcd-port": etcd_port,
            "--etcd-peer-port": etcd_peer_port,
            "--bao-port": bao_port,
            "--pulsar-port": pulsar_port,
        }
        seen: dict[int, str] = {}
        for flag, port in ports.items():
            if port in seen:
                raise DevStackError(f"{seen[port]} and {flag} are both set to port {port}")
            seen[port] = flag
        if bao_port + 1 in seen:
            raise DevStackError(
                f"OpenBao also listens on --bao-port + 1 ({bao_port + 1}) for its cluster "
                f"listener, which is the port given to {seen[bao_port + 1]}; pick another"
            )
        self._data_dir = Path(data_dir)
        self._host = host
        self.etcd = EtcdServer(self._data_dir / "etcd", etcd_port, etcd_peer_port, host=host)
        self.openbao = OpenBaoDevServer(self._data_dir / "openbao", bao_port, host=host)
        self.pulsar = PulsarLite(self._data_dir / "pulsar", pulsar_port, host=host)

    @classmethod
    def on_free_ports(cls, data_dir: Path, host: str = "127.0.0.1") -> Self:
        """A stack whose every port was free when chosen (for tests and parallel runs).

        All probe sockets stay open until every port is picked, so the four
        ports are distinct, and OpenBao's implicit cluster port (``bao_port + 1``)
        is reserved too so it cannot be handed to another service.
        """
        with contextlib.ExitStack() as held:

            def hold(port: int) -> int:
                sock = held.enter_context(socket.socket(address_family(host), socket.SOCK_STREAM))
                sock.bind((host, port))
                bound: int = sock.getsockname()[1]
                return bound

            etcd_port, etcd_peer_port, pulsar_port = hold(0), hold(0), hold(0)
            for _ in range(_PORT_PICK_ATTEMPTS):
                bao_port = hold(0)
                with contextlib.suppress(OSError, OverflowError):
                    hold(bao_port + 1)
                    break
            else:
                raise DevStackError("could not find two adjacent free ports for OpenBao")
        return cls(
            data_dir,
            etcd_port=etcd_port,
            etcd_peer_port=etcd_peer_port,
            bao_port=bao_port,
            pulsar_port=pulsar_port,
            host=host,
        )

    @property
    def data_dir(self) -> Path:
        """Root directory holding one subdirectory per service."""
        return self._data_dir

    @property
    def services(self) -> tuple[ManagedProcess, ...]:
        """The services in start order."""
        return (self.etcd, self.openbao, self.pulsar)

    @property
    def running(self) -> bool:
        """True if every service is running."""
        return all(s.running for s in self.services)

    def check_ports(self) -> None:
        """Raise :class:`PortInUseError` for the first busy port, naming its flag."""
        for service in self.services:
            for spec in service.port_specs():
                ensure_port_free(service.host, spec.port, spec.what, spec.flag)

    def start(self, timeout: float = 60.0) -> None:
        """Start all services in order within ``timeout`` seconds overall, or none.

        Raises :class:`PortInUseError` before spawning anything if a port is
        taken, and :class:`ServiceStartError` (with the log tail) if a service
        dies or does not become ready; in both cases nothing is left running.
        """
        already = [s.service for s in self.services if s.running]
        if already:
            # Checked first: our own listeners would otherwise be reported as
            # "port in use by another process".
            raise DevStackError(f"already running: {', '.join(already)}; stop() first")
        self.check_ports()
        deadline = time.monotonic() + timeout
        started: list[ManagedProcess] = []
        try:
            for service in self.services:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DevStackError(
                        f"the local stack did not start within {timeout:.1f}s "
                        f"({service.service} was not started)"
                    )
                service.start(timeout=remaining)
                started.append(service)
        except BaseException:
            for service in reversed(started):
                with contextlib.suppress(Exception):
                    service.stop()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every service in reverse start order; already-stopped ones are skipped.

        Every service gets its stop attempt even if an earlier one fails; the
        first such error is re-raised at the end.
        """
        first_error: Exception | None = None
        for service in reversed(self.services):
            try:
                service.stop(timeout=timeout)
            except Exception as exc:
                first_error = first_error or exc
        if first_error is not None:
            raise first_error

    def endpoints(self) -> dict[str, str]:
        """Addresses to print or export; the OpenBao token is deliberately not included."""
        return {
            "etcd": self.etcd.endpoint,
            "openbao": self.openbao.address,
            "pulsar": self.pulsar.url,
        }

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<LocalStack {self._data_dir} {self.endpoints()}>"
