"""pulsar-lite: a single-process, RocksDB-backed broker speaking the Pulsar protocol.

It replaces a JVM Pulsar standalone for development and tests (it starts in
milliseconds and needs no ZooKeeper/BookKeeper). ``public/default`` exists out
of the box, so no tenant or namespace setup is needed.

Quirks handled here:

* ``--db-path X.db`` is a *prefix*: the broker creates ``X.rocksdb/`` and
  ``X.metadata.json`` next to it, not a file called ``X.db``.
* Without ``--config`` it reads ``pulsar-lite.toml`` from its working
  directory, and by default it serves Prometheus metrics on ``0.0.0.0:8080``,
  i.e. on every interface, and a second broker logs "Address already in use".
  We therefore always pass our own config file, which disables metrics.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from pathlib import Path

from configsvc.devstack._binaries import find_binary
from configsvc.devstack.ports import PortSpec, format_hostport
from configsvc.devstack.process import ManagedProcess

__all__ = ["READINESS_TOPIC", "PulsarLite", "find_pulsar_lite_binary"]

READINESS_TOPIC = "persistent://public/default/configsvc-readiness"

_CONFIG = """\
# Written by configsvc.devstack on every start; edits are overwritten.
# Metrics are off: by default pulsar-lite binds 0.0.0.0:8080 for them.
[metrics]
enabled = false
"""

# The C++ client logs every connection at INFO to stdout unless given a logger.
_client_log = logging.getLogger("configsvc.devstack.pulsar_client")


def find_pulsar_lite_binary() -> str:
    """The pulsar-lite bundled with the pulsar-lite wheel, else the one on PATH."""
    return find_binary("pulsar-lite", "pulsar_lite", "bin", "pulsar-lite")


class PulsarLite(ManagedProcess):
    """pulsar-lite on ``host:port`` with its data under ``data_dir``.

    Layout under ``data_dir``: ``pulsar-lite.log``, ``pulsar-lite.toml``,
    ``pulsar.rocksdb/`` and ``pulsar.metadata.json``. Messages and cursors
    survive a stop/start of the same object.
    """

    service = "pulsar-lite"

    def __init__(self, data_dir: Path, port: int, host: str = "127.0.0.1") -> None:
        super().__init__(data_dir, host)
        self._port = port

    @property
    def port(self) -> int:
        """Port of the Pulsar binary protocol."""
        return self._port

    @property
    def url(self) -> str:
        """``pulsar://host:port`` for ``pulsar.Client``."""
        return f"pulsar://{format_hostport(self.host, self._port)}"

    @property
    def db_path(self) -> Path:
        """Value passed as ``--db-path`` (a prefix, see the module docstring)."""
        return self.data_dir / "pulsar.db"

    @property
    def config_path(self) -> Path:
        """Config file passed as ``--config``."""
        return self.data_dir / "pulsar-lite.toml"

    def port_specs(self) -> Sequence[PortSpec]:
        return (PortSpec(self._port, "pulsar-lite broker", "--pulsar-port"),)

    def prepare(self) -> None:
        self.config_path.write_text(_CONFIG, encoding="utf-8")

    def command(self) -> list[str]:
        return [
            find_pulsar_lite_binary(),
            "--config", str(self.config_path),
            "--addr", format_hostport(self.host, self._port),
            "--db-path", str(self.db_path),
            "--log-level", "info",
        ]  # fmt: skip

    def is_ready(self) -> bool:
        """The port accepts TCP *and* a producer can publish one persistent message.

        The listener comes up before storage is guaranteed usable, so a TCP
        connect alone would not prove a client can publish. The round trip is
        cheap (about 20 ms), so it is always done; one small message per start
        lands on :data:`READINESS_TOPIC`.
        """
        try:
            with socket.create_connection((self.host, self._port), timeout=0.5):
                pass
        except OSError as exc:
            return self._not_ready(f"TCP connect: {exc}")
        return self._publish_probe()

    def _publish_probe(self) -> bool:
        import pulsar  # noqa: PLC0415 - optional dev dependency, only needed here

        client = pulsar.Client(
            self.url,
            operation_timeout_seconds=5,
            connection_timeout_ms=2000,
            logger=_client_log,
        )
        try:
            producer = client.create_producer(READINESS_TOPIC, send_timeout_millis=5000)
            producer.send(b"configsvc devstack readiness probe")
            producer.close()
        except Exception as exc:  # pulsar raises its own hierarchy; any failure = not ready
            return self._not_ready(f"publish to {READINESS_TOPIC}: {exc!r}")
        finally:
            client.close()
        return True
