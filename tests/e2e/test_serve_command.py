"""`configsvc serve` as a process: flags, health, SIGTERM drain, clear start-up errors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from configsvc.devstack import EtcdServer, free_port
from tests.helpers import child_processes

ROOT = Path(__file__).resolve().parents[2]


def serve(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "configsvc.cli.main", "serve", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_serving(address: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    raise AssertionError(f"{address} never reported SERVING")


def test_serve_runs_until_sigterm(etcd: EtcdServer) -> None:
    port = free_port()
    proc = serve(
        "--listen",
        f"127.0.0.1:{port}",
        "--etcd-endpoints",
        etcd.endpoint,
        "--root-prefix",
        "/serve-test",
        "--grace-period",
        "2",
    )
    try:
        wait_serving(f"127.0.0.1:{port}")
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert '"msg": "configsvc listening"' in stderr  # structured JSON logs by default
    assert "configsvc stopped" in stderr
    assert "has no admin yet" in stderr  # auth is on and nobody was bootstrapped


def test_serve_refuses_a_busy_port(etcd: EtcdServer) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        proc = serve("--listen", f"127.0.0.1:{port}", "--etcd-endpoints", etcd.endpoint)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "cannot listen on" in stderr and "--listen" in stderr


def test_serve_rejects_half_configured_tls() -> None:
    proc = serve("--etcd-cert-file", "/nonexistent/cert.pem")
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "--etcd-key-file" in stderr


def worker_pids(parent: int) -> set[int]:
    return set(child_processes(parent))


def test_workers_share_the_port_and_a_killed_worker_is_replaced(etcd: EtcdServer) -> None:
    port = free_port()
    proc = serve(
        "--listen",
        f"127.0.0.1:{port}",
        "--etcd-endpoints",
        etcd.endpoint,
        "--root-prefix",
        "/workers-test",
        "--workers",
        "2",
        "--grace-period",
        "2",
    )
    try:
        wait_serving(f"127.0.0.1:{port}")
        deadline = time.monotonic() + 20
        while len(worker_pids(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        first = worker_pids(proc.pid)
        assert len(first) == 2
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        while time.monotonic() < deadline:
            now = worker_pids(proc.pid)
            if len(now) == 2 and victim not in now:
                break
            time.sleep(0.1)
        assert victim not in worker_pids(proc.pid) and len(worker_pids(proc.pid)) == 2
        # Many fresh connections are all answered while the replacement starts.
        for _ in range(20):
            wait_serving(f"127.0.0.1:{port}", timeout=10)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert "2 workers started" in stderr and "restarting" in stderr
    assert not worker_pids(proc.pid)


def test_workers_argument_errors(etcd: EtcdServer) -> None:
    for args, text in (
        (["--workers", "0"], "--workers must be 1 or more"),
        (["--workers", "2", "--listen", "127.0.0.1:0"], "port 0 needs"),
    ):
        proc = serve("--etcd-endpoints", etcd.endpoint, *args)
        _, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 2 and text in stderr
