"""`configsvc dev` as a user runs it, driven with grpcurl as an operator would.

The dev command starts etcd, OpenBao and pulsar-lite as children and the
server in its own process; Ctrl-C (SIGINT) must stop all of them. grpcurl is
installed by the Makefile (`go install`); a missing grpcurl fails this test,
it never skips.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import hvac
import pytest

from configsvc.cli.dev import READY_LINE
from configsvc.devstack import free_port
from configsvc.devstack.openbao import DEFAULT_ROOT_TOKEN
from tests.helpers import child_processes, grpcurl

ROOT = Path(__file__).resolve().parents[2]


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class DevProcess:
    def __init__(self, data_dir: Path, grpc_port: int) -> None:
        self.grpc_port = grpc_port
        ports = [free_port() for _ in range(3)]
        bao = free_port()
        while bao + 1 in ports or bao + 1 == grpc_port:
            bao = free_port()
        self.bao_port = bao
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "configsvc.cli.main",
                "dev",
                "--data-dir",
                str(data_dir),
                "--grpc-port",
                str(grpc_port),
                "--etcd-port",
                str(ports[0]),
                "--etcd-peer-port",
                str(ports[1]),
                "--pulsar-port",
                str(ports[2]),
                "--bao-port",
                str(bao),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []

    def wait_ready(self, timeout: float = 90) -> None:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError("dev exited early:\n" + "".join(self.output))
            self.output.append(line)
            if READY_LINE in line:
                return
        raise AssertionError("dev not ready in time:\n" + "".join(self.output))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevProcess]:
    process = DevProcess(tmp_path / "dev-data", free_port())
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


def call(
    *args: str, data: dict[str, object] | None = None, key: str = ""
) -> subprocess.CompletedProcess[str]:
    command = [grpcurl(), "-plaintext", "-max-time", "20"]
    if key:
        command += ["-H", f"authorization: Bearer {key}"]
    if data is not None:
        command += ["-d", json.dumps(data)]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_dev_stack_serves_grpcurl_and_stops_cleanly_on_ctrl_c(dev: DevProcess) -> None:
    banner = "".join(dev.output)
    address = f"127.0.0.1:{dev.grpc_port}"
    assert f"grpcurl -plaintext {address} list" in banner
    assert "token:" in banner and "etcd" in banner and "pulsar" in banner
    admin_key = re.search(r"admin API key +(cs_\S+)", banner)
    assert admin_key is not None, banner
    api_key = admin_key.group(1)
    assert f"Bearer {api_key}" in banner

    children = list(child_processes(dev.proc.pid))
    assert len(children) == 3, f"expected etcd, bao, pulsar-lite children, got {children}"

    listed = call(address, "list")
    assert listed.returncode == 0, listed.stderr
    services = set(listed.stdout.split())
    assert {
        "configsvc.v1.ConfigService",
        "configsvc.v1.TenantService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= services

    described = call(address, "describe", "configsvc.v1.ConfigService")
    assert described.returncode == 0, described.stderr
    for rpc_name in ("Get", "BatchGet", "List", "Put", "Delete", "History", "Rollback"):
        assert f"rpc {rpc_name} (" in described.stdout
    message = call(address, "describe", "configsvc.v1.PutRequest")
    assert "expected_revision" in message.stdout

    key = {"tenant": "default", "environment": "prod", "service": "api", "key": "db.pool"}
    anonymous = call(address, "configsvc.v1.ConfigService/Get", data={"key": key})
    assert anonymous.returncode != 0 and "Unauthenticated" in anonymous.stderr
    put = call(
        address,
        "configsvc.v1.ConfigService/Put",
        key=api_key,
        data={"key": key, "value": '{"max": 9007199254740993}', "reason": "grpcurl"},
    )
    assert put.returncode == 0, put.stderr
    put_body = json.loads(put.stdout)
    assert put_body["entry"]["version"] == "1"

    got = call(address, "configsvc.v1.ConfigService/Get", data={"key": key}, key=api_key)
    assert got.returncode == 0, got.stderr
    body = json.loads(got.stdout)
    assert body["entry"]["value"] == '{"max": 9007199254740993}'
    assert int(body["revision"]) >= int(put_body["revision"])

    health = call(address, "grpc.health.v1.Health/Check")
    assert json.loads(health.stdout)["status"] == "SERVING"

    bad = call(
        address, "configsvc.v1.ConfigService/Get", data={"key": {**key, "key": "a/b"}}, key=api_key
    )
    assert bad.returncode != 0 and "InvalidArgument" in bad.stderr

    # Secrets: the banner says how to create one; KV v2 and transit are on.
    assert "bao kv put secret/myapp password=s3cret" in banner and "--resolve-secrets" in banner
    bao = hvac.Client(url=f"http://127.0.0.1:{dev.bao_port}", token=DEFAULT_ROOT_TOKEN)
    bao.secrets.kv.v2.create_or_update_secret(path="myapp", secret={"password": "s3cret"})
    assert bao.secrets.transit.encrypt_data(name="probe", plaintext="YQ==")["data"]["ciphertext"]
    bao.adapter.close()
    secret_key = {**key, "key": "db"}
    ref = '{"password": {"$secret": {"mount": "secret", "path": "myapp", "field": "password"}}}'
    put = call(
        address,
        "configsvc.v1.ConfigService/Put",
        data={"key": secret_key, "value": ref},
        key=api_key,
    )
    assert put.returncode == 0, put.stderr
    got = call(
        address,
        "configsvc.v1.ConfigService/Get",
        data={"key": secret_key, "resolve_secrets": True},
        key=api_key,
    )
    assert got.returncode == 0, got.stderr
    assert json.loads(json.loads(got.stdout)["entry"]["value"]) == {"password": "s3cret"}

    # With auth on, dev still publishes change events to its pulsar-lite.
    status = call(address, "configsvc.v1.EventService/GetPublisherStatus", data={}, key=api_key)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout).get("topic"), status.stdout

    assert dev.stop() == 0
    assert not any(alive(pid) for pid in children), "a child outlived configsvc dev"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", dev.grpc_port))  # the port is free again


def test_dev_reports_busy_port_clearly(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "configsvc.cli.main",
                "dev",
                "--data-dir",
                str(tmp_path / "d"),
                "--grpc-port",
                str(port),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ},
        )
    assert result.returncode == 1
    assert f"port {port}" in result.stderr and "--grpc-port" in result.stderr
