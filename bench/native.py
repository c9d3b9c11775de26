"""Read and write path with native load generators, against baselines in the same run.

Three servers answer the same 256-byte value: configsvc ``Get`` (``serve --workers
N``), etcd's own ``KV/Range`` (serializable) and a bare ``grpc.aio`` handler that
returns the value from a dict (the framework's ceiling, ``bench/bare_server.py``),
configsvc and bare each with 1 and 2 processes. ``h2load`` (Debian
``nghttp2-client``, gRPC framing by hand) gives throughput at saturation with 4
connections x 16 streams; ``ghz`` (``go install``) gives latency at a fixed 1,000
requests per second and drives the write path (configsvc ``Put`` with its history
and audit Txn against a raw etcd ``Put``). configsvc and bare alternate over three
rounds (one with ``--quick``), a fresh process each; their figures are the medians,
with ``_lowest`` and ``_highest`` beside them. Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import matplotlib
import matplotlib.pyplot as plt
from aetcd import rpc
from aetcd.rpc import rpc_pb2
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FileDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc

from configsvc.devstack import EtcdServer, free_port
from configsvc.v1 import config_pb2, tenant_pb2

matplotlib.use("Agg")  # files only; no display here
ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / ".tools" / "bin"
VALUE = json.dumps({"blob": "x" * 244})
KEY = config_pb2.ConfigKey(tenant="bench", environment="prod", service="api", key="value256")
ETCD_KEY = b"/bench/value256"
assert len(VALUE) == 256
#: Bootstrap admin key of the bench servers with authentication on; the load
#: generators send it as a bearer token.
BENCH_KEY = "cs_00000000000000be_bench-admin-key"
AUTH_HEADER = ("authorization", f"Bearer {BENCH_KEY}")


def tool(name: str) -> str:
    found = shutil.which(name) or str(TOOLS / name)
    if not Path(found).exists():
        raise SystemExit(f"{name} is missing: run `make bench-tools`")
    return found


def protoset(*files: FileDescriptor) -> bytes:
    """A FileDescriptorSet (with dependencies) for ghz, from the Python descriptors."""
    out = descriptor_pb2.FileDescriptorSet()
    seen: set[str] = set()

    def add(fd: FileDescriptor) -> None:
        if fd.name in seen:
            return
        for dep in fd.dependencies:
            add(dep)
        seen.add(fd.name)
        proto = descriptor_pb2.FileDescriptorProto()
        fd.CopyToProto(proto)
        out.file.append(proto)

    for fd in files:
        add(fd)
    return bytes(out.SerializeToString())


def grpc_frame(payload: bytes) -> bytes:
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


def h2load(
    port: int, path: str, body: bytes, requests: int, workdir: Path, auth: bool = False
) -> float:
    """Requests per second at saturation (4 connections x 16 streams, one thread)."""
    data = workdir / "body.bin"
    data.write_bytes(grpc_frame(body))
    out = subprocess.run(
        [
            tool("h2load"),
            *(["-H", ": ".join(AUTH_HEADER)] if auth else []),
            "-n",
            str(requests),
            "-c",
            "4",
            "-m",
            "16",
            "-t",
            "1",
            "-d",
            str(data),
            "-H",
            "content-type: application/grpc",
            "-H",
            "te: trailers",
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    succeeded = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded", out)
    if not succeeded or int(succeeded.group(1)) != requests:
        raise RuntimeError(f"h2load did not complete every request:\n{out}")
    rate = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    assert rate is not None, out
    return float(rate.group(1))


def ghz(
    target: str,
    call: str,
    protos: Path,
    data: str,
    *,
    requests: int,
    concurrency: int,
    rps: int = 0,
    auth: bool = False,
) -> dict[str, Any]:
    command = [
        tool("ghz"),
        "--insecure",
        "--protoset",
        str(protos),
        "--call",
        call,
        *(["--metadata", json.dumps(dict([AUTH_HEADER]))] if auth else []),
        "-d",
        data,
        "-n",
        str(requests),
        "-c",
        str(concurrency),
        "--connections",
        "4",
        "--format",
        "json",
        "--skipFirst",
        str(min(500, requests // 10)),
    ]
    if rps:
        command += ["--rps", str(rps)]
    report: dict[str, Any] = json.loads(
        subprocess.run(
            [*command, target], capture_output=True, text=True, timeout=600, check=True
        ).stdout
    )
    errors = report.get("errorDistribution") or {}
    if errors:
        raise RuntimeError(f"ghz {call} errors: {errors}")
    return report


def percentile_ms(report: dict[str, Any], pct: int) -> float:
    for row in report["latencyDistribution"]:
        if row["percentage"] == pct:
            return float(row["latency"]) / 1e6
    raise KeyError(pct)


def _in_a_row(
    address: str,
    count: int,
    probe: Callable[[grpc.Channel], bool],
    timeout: float,
    proc: subprocess.Popen[bytes] | None = None,
) -> bool:
    """Whether ``probe`` succeeded on ``count`` fresh connections in a row before the
    deadline. The kernel hands each new connection to some process of the port (``serve
    --workers N``), so a run of them has likely met every process; calls over one
    connection would all reach the same one. Gives up early when ``proc`` has exited."""
    deadline = time.monotonic() + timeout
    passed = 0
    while time.monotonic() < deadline and passed < count and (proc is None or proc.poll() is None):
        with grpc.insecure_channel(
            address, options=[("grpc.use_local_subchannel_pool", 1)]
        ) as channel:
            try:
                ok = probe(channel)
            except grpc.RpcError:
                ok = False
        passed = passed + 1 if ok else 0
        if not ok:
            time.sleep(0.1)
    return passed >= count


def wait_healthy(
    address: str,
    timeout: float = 30,
    *,
    proc: subprocess.Popen[bytes] | None = None,
    connections: int = 1,
) -> None:
    """SERVING on ``connections`` fresh connections in a row (see ``_in_a_row``)."""

    def serving(channel: grpc.Channel) -> bool:
        return bool(
            health_pb2_grpc.HealthStub(channel)
            .Check(health_pb2.HealthCheckRequest(), timeout=1)
            .status
            == 1
        )

    if not _in_a_row(address, connections, serving, timeout, proc):
        raise RuntimeError(f"{address} did not become healthy")


def wait_answers(address: str, timeout: float = 30) -> None:
    """The bench key's value from a Get on 20 fresh connections in a row (every process
    of the port has likely answered; see ``_in_a_row``)."""

    def answers(channel: grpc.Channel) -> bool:
        get = channel.unary_unary(
            "/configsvc.v1.ConfigService/Get",
            request_serializer=config_pb2.GetRequest.SerializeToString,
            response_deserializer=config_pb2.GetResponse.FromString,
        )
        return bool(
            get(config_pb2.GetRequest(key=KEY), timeout=2, metadata=(AUTH_HEADER,)).entry.value
            == VALUE
        )

    if not _in_a_row(address, 20, answers, timeout):
        raise RuntimeError(f"{address} never answered the bench key")


@contextmanager
def processes(commands: list[list[str]]) -> Iterator[None]:
    procs = [
        subprocess.Popen(c, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for c in commands
    ]
    try:
        yield
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def configsvc(etcd: EtcdServer, port: int, workers: int, auth: bool = False) -> list[list[str]]:
    """``serve``; with ``auth`` as in production (bootstrap key ``BENCH_KEY``), else
    ``--auth off`` so the figures stay comparable with runs before authentication."""
    os.environ["CONFIGSVC_BOOTSTRAP_ADMIN_KEY"] = BENCH_KEY  # inherited by the servers
    return [
        [
            sys.executable,
            "-m",
            "configsvc.cli.main",
            "serve",
            "--listen",
            f"127.0.0.1:{port}",
            "--etcd-endpoints",
            etcd.endpoint,
            "--log-level",
            "WARNING",
            "--workers",
            str(workers),
            "--auth",
            "required" if auth else "off",
        ]
    ]


def bare(port: int, workers: int) -> list[list[str]]:
    flag = ["--reuse-port"] if workers > 1 else []
    return [[sys.executable, "-m", "bench.bare_server", str(port), *flag] for _ in range(workers)]


def seed(etcd: EtcdServer, port: int) -> None:
    """Run against a server with authentication on (the bootstrap key is admin)."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        create = channel.unary_unary(
            "/configsvc.v1.TenantService/CreateTenant",
            request_serializer=tenant_pb2.CreateTenantRequest.SerializeToString,
            response_deserializer=tenant_pb2.CreateTenantResponse.FromString,
        )
        put = channel.unary_unary(
            "/configsvc.v1.ConfigService/Put",
            request_serializer=config_pb2.PutRequest.SerializeToString,
            response_deserializer=config_pb2.PutResponse.FromString,
        )
        create(tenant_pb2.CreateTenantRequest(name="bench"), timeout=10, metadata=(AUTH_HEADER,))
        put(config_pb2.PutRequest(key=KEY, value=VALUE), timeout=10, metadata=(AUTH_HEADER,))
    with grpc.insecure_channel(etcd.endpoint) as channel:
        rpc.KVStub(channel).Put(rpc.PutRequest(key=ETCD_KEY, value=VALUE.encode()), timeout=10)


def _read_path(
    etcd: EtcdServer,
    work: Path,
    protos: Path,
    n: int,
    fixed: int,
    figures: dict[str, float],
    distributions: dict[str, Any],
    rounds: int = 3,
) -> None:
    etcd_port = int(etcd.endpoint.rsplit(":", 1)[1])
    range_body = rpc.RangeRequest(key=ETCD_KEY, serializable=True).SerializeToString()
    figures["etcd_range_rps_max"] = h2load(
        etcd_port, "/etcdserverpb.KV/Range", range_body, n * 4, work
    )
    report = ghz(
        etcd.endpoint,
        "etcdserverpb.KV/Range",
        protos,
        json.dumps({"key": base64.b64encode(ETCD_KEY).decode(), "serializable": True}),
        requests=fixed,
        concurrency=16,
        rps=1000,
    )
    figures["etcd_range_p50_ms_at_1000rps"] = percentile_ms(report, 50)
    figures["etcd_range_p99_ms_at_1000rps"] = percentile_ms(report, 99)
    distributions["etcd Range"] = report["latencyDistribution"]

    get_body = config_pb2.GetRequest(key=KEY).SerializeToString()
    get_json = json.dumps(
        {"key": {"tenant": "bench", "environment": "prod", "service": "api", "key": "value256"}}
    )
    # configsvc and the bare handler alternate, a fresh process each time, and each figure
    # is the median of its rounds: a single run moves by about 5 % on this machine, which
    # is as much as the difference being measured.
    samples: dict[str, list[float]] = {}
    for round_ in range(rounds):
        for workers in (1, 2):
            for name in ("get", "bare_grpc"):
                port = free_port()
                commands = configsvc(etcd, port, workers) if name == "get" else bare(port, workers)
                with processes(commands):
                    wait_answers(f"127.0.0.1:{port}")
                    rps = h2load(port, "/configsvc.v1.ConfigService/Get", get_body, n, work)
                    report = ghz(
                        f"127.0.0.1:{port}",
                        "configsvc.v1.ConfigService/Get",
                        protos,
                        get_json,
                        requests=fixed,
                        concurrency=16,
                        rps=1000,
                    )
                for figure, value in (
                    (f"{name}_rps_max_{workers}proc", rps),
                    (f"{name}_p50_ms_at_1000rps_{workers}proc", percentile_ms(report, 50)),
                    (f"{name}_p99_ms_at_1000rps_{workers}proc", percentile_ms(report, 99)),
                ):
                    samples.setdefault(figure, []).append(value)
                if workers == 1 and round_ == 0:
                    label = "configsvc Get" if name == "get" else "bare grpc.aio"
                    distributions[label] = report["latencyDistribution"]
    for figure, values in samples.items():
        figures[figure] = statistics.median(values)
        figures[f"{figure}_lowest"] = min(values)
        figures[f"{figure}_highest"] = max(values)
    figures["read_path_rounds"] = rounds


def read_path_auth(
    etcd: EtcdServer,
    work: Path,
    protos: Path,
    n: int,
    fixed: int,
    figures: dict[str, float],
    distributions: dict[str, Any],
) -> None:
    """configsvc Get with one process, authentication on (API key) and off, same run."""
    get_body = config_pb2.GetRequest(key=KEY).SerializeToString()
    get_json = json.dumps(
        {"key": {"tenant": "bench", "environment": "prod", "service": "api", "key": "value256"}}
    )
    for auth in (False, True):
        name = "get_auth_on" if auth else "get_auth_off"
        port = free_port()
        with processes(configsvc(etcd, port, 1, auth=auth)):
            wait_answers(f"127.0.0.1:{port}")
            figures[f"{name}_rps_max_1proc"] = h2load(
                port, "/configsvc.v1.ConfigService/Get", get_body, n, work, auth=auth
            )
            report = ghz(
                f"127.0.0.1:{port}",
                "configsvc.v1.ConfigService/Get",
                protos,
                get_json,
                requests=fixed,
                concurrency=16,
                rps=1000,
                auth=auth,
            )
        figures[f"{name}_p50_ms_at_1000rps_1proc"] = percentile_ms(report, 50)
        figures[f"{name}_p99_ms_at_1000rps_1proc"] = percentile_ms(report, 99)
        distributions[f"configsvc Get, auth {'on' if auth else 'off'}"] = report[
            "latencyDistribution"
        ]


def _write_path(etcd: EtcdServer, protos: Path, writes: int, figures: dict[str, float]) -> None:
    port = free_port()
    with processes(configsvc(etcd, port, 2)):
        wait_healthy(f"127.0.0.1:{port}")
        put_json = json.dumps(
            {
                "key": {
                    "tenant": "bench",
                    "environment": "prod",
                    "service": "api",
                    "key": "w{{.RequestNumber}}",
                },
                "value": VALUE,
            }
        )
        report = ghz(
            f"127.0.0.1:{port}",
            "configsvc.v1.ConfigService/Put",
            protos,
            put_json,
            requests=writes,
            concurrency=32,
        )
    figures["put_rps_max"] = float(report["rps"])
    figures["put_p99_ms"] = percentile_ms(report, 99)
    report = ghz(
        etcd.endpoint,
        "etcdserverpb.KV/Put",
        protos,
        json.dumps(
            {
                "key": base64.b64encode(b"/bench/w").decode(),
                "value": base64.b64encode(VALUE.encode()).decode(),
            }
        ),
        requests=writes * 2,
        concurrency=32,
    )
    figures["etcd_put_rps_max"] = float(report["rps"])
    figures["etcd_put_p99_ms"] = percentile_ms(report, 99)


def _ratios(figures: dict[str, float]) -> None:
    for name in ("get", "bare_grpc"):
        figures[f"{name}_rps_max"] = max(
            figures[f"{name}_rps_max_1proc"], figures[f"{name}_rps_max_2proc"]
        )
    figures["get_p99_ms_at_1000rps"] = figures["get_p99_ms_at_1000rps_1proc"]
    for workers in (1, 2):
        figures[f"get_vs_bare_rps_ratio_{workers}proc"] = (
            figures[f"get_rps_max_{workers}proc"] / figures[f"bare_grpc_rps_max_{workers}proc"]
        )
    figures["get_vs_etcd_range_rps_ratio"] = figures["get_rps_max"] / figures["etcd_range_rps_max"]
    figures["put_vs_etcd_put_rps_ratio"] = figures["put_rps_max"] / figures["etcd_put_rps_max"]


@contextmanager
def seeded_etcd() -> Iterator[tuple[EtcdServer, Path, Path]]:
    """A fresh etcd with the bench tenant and value, a work directory and the protoset."""
    with tempfile.TemporaryDirectory(prefix="configsvc-bench-") as tmp:
        work = Path(tmp)
        protos = work / "protos.bin"
        protos.write_bytes(protoset(config_pb2.DESCRIPTOR, rpc_pb2.DESCRIPTOR))
        etcd = EtcdServer(work / "etcd", free_port(), free_port())
        etcd.start()
        try:
            port = free_port()
            with processes(configsvc(etcd, port, 1, auth=True)):
                wait_healthy(f"127.0.0.1:{port}")
                seed(etcd, port)
            yield etcd, work, protos
        finally:
            etcd.stop()


def measure(quick: bool) -> tuple[dict[str, float], dict[str, Any]]:
    """All figures, plus the ghz latency distributions for the chart."""
    figures: dict[str, float] = {}
    distributions: dict[str, Any] = {}
    n, fixed = (20_000, 3_000) if quick else (100_000, 10_000)
    with seeded_etcd() as (etcd, work, protos):
        read_path_auth(etcd, work, protos, n, fixed, figures, distributions)
        _read_path(etcd, work, protos, n, fixed, figures, distributions, rounds=1 if quick else 3)
        _write_path(etcd, protos, 2_000 if quick else 10_000, figures)
    _ratios(figures)
    return figures, distributions


def chart(distributions: dict[str, Any], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for label, rows in distributions.items():
        ax.plot(
            [r["percentage"] for r in rows],
            [r["latency"] / 1e6 for r in rows],
            marker="o",
            label=label,
        )
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (ms)")
    ax.set_title("Unary read latency at a fixed 1,000 req/s (ghz, 16 workers, 4 connections)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def auth_comparison(quick: bool) -> dict[str, float]:
    """Only the read path with authentication on and off (``python -m bench.native``)."""
    figures: dict[str, float] = {}
    with seeded_etcd() as (etcd, work, protos):
        read_path_auth(
            etcd,
            work,
            protos,
            20_000 if quick else 100_000,
            3_000 if quick else 10_000,
            figures,
            {},
        )
    return figures


if __name__ == "__main__":
    print(json.dumps(auth_comparison("--quick" in sys.argv), indent=2))
