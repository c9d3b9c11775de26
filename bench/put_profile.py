"""CPU per Put of the server and of etcd, and where the server spends it.

    .venv/bin/python -m bench.put_profile [--writes 5000] [--concurrency 32]
        [--repeat 3] [--auth] [--profile put.raw] [--out put_profile.json]

Starts a real etcd (free ports) and ``configsvc serve --workers 1 --auth off
--log-level WARNING`` (one server process, whose pid is measured; ``--auth``
serves with ``--auth required`` and a bootstrap admin API key), creates a
tenant, then drives ``ConfigService.Put`` from a grpc.aio client in this
process (4 HTTP/2 connections, ``--concurrency`` calls in flight) in two kinds
of phase, each ``--repeat`` times:

* ``create``: every Put writes a new key (first version; as ``bench/native.py``);
* ``update``: Puts cycle over ``--keys`` existing keys (the usual write).

Per phase it reports req/s and the CPU seconds per Put of the server process
and of etcd (utime + stime deltas from ``/proc/<pid>/stat``). CPU per Put is
the figure to compare between versions: the machine is shared, so throughput
moves with other people's load while CPU per Put hardly does.

With ``--profile`` one more update phase runs under ``py-spy record --native
-f raw`` (py-spy slows the server; that phase's figures are not reported) and
the folded stacks are summarized as self and inclusive sample shares by
function. Every process started here is stopped by its pid at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc

from bench.watch import Children, cpu_seconds
from configsvc.devstack import EtcdServer, free_port
from configsvc.v1 import config_pb2, config_pb2_grpc, tenant_pb2, tenant_pb2_grpc

ROOT = Path(__file__).resolve().parents[1]
TENANT = "bench"
VALUE = json.dumps({"blob": "x" * 244})  # 256 bytes of JSON, as the other benchmarks
CHANNELS = 4
#: Bootstrap admin key of the server with ``--auth``: sent as a bearer token.
BENCH_KEY = "cs_00000000000000be_bench-admin-key"


@contextlib.contextmanager
def configsvc(
    etcd: EtcdServer, port: int, log: Path, auth: bool
) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "CONFIGSVC_BOOTSTRAP_ADMIN_KEY": BENCH_KEY}
    with log.open("ab") as out:
        proc = subprocess.Popen(
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
                "1",
                "--auth",
                "required" if auth else "off",
            ],
            cwd=ROOT,
            stdout=out,
            stderr=out,
            start_new_session=True,
            env=env,
        )
    try:
        yield proc
    finally:
        Children.stop(proc)


async def wait_ready(
    channels: list[grpc.aio.Channel],
    proc: subprocess.Popen[bytes],
    metadata: tuple[tuple[str, str], ...],
) -> None:
    """Create the tenant once the server answers (it retries until the mirror is synced)."""
    stub = tenant_pb2_grpc.TenantServiceStub(channels[0])
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError("configsvc serve exited; see its log")
        try:
            await stub.CreateTenant(
                tenant_pb2.CreateTenantRequest(name=TENANT), timeout=2, metadata=metadata
            )
            return
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.ALREADY_EXISTS:
                return
            if time.monotonic() > deadline:  # UNAVAILABLE or UNAUTHENTICATED while starting
                raise
            await asyncio.sleep(0.2)


async def drive(
    channels: list[grpc.aio.Channel],
    keys: list[str],
    concurrency: int,
    metadata: tuple[tuple[str, str], ...],
) -> float:
    """Put VALUE to every key of ``keys`` in order, ``concurrency`` at a time; wall seconds."""
    stubs = [config_pb2_grpc.ConfigServiceStub(c) for c in channels]
    requests = [
        config_pb2.PutRequest(
            key=config_pb2.ConfigKey(tenant=TENANT, environment="prod", service="api", key=k),
            value=VALUE,
        )
        for k in keys
    ]
    position = iter(range(len(requests)))
    errors: collections.Counter[str] = collections.Counter()

    async def worker(n: int) -> None:
        put = stubs[n % len(stubs)].Put
        for i in position:
            try:
                await put(requests[i], timeout=30, metadata=metadata)
            except grpc.aio.AioRpcError as exc:
                errors[f"{exc.code().name}: {exc.details()}"] += 1

    started = time.monotonic()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    wall = time.monotonic() - started
    if errors:
        raise RuntimeError(f"Put errors: {dict(errors)}")
    return wall


async def phase(
    name: str,
    channels: list[grpc.aio.Channel],
    keys: list[str],
    concurrency: int,
    pids: dict[str, int],
    metadata: tuple[tuple[str, str], ...],
) -> dict[str, float]:
    before = {n: cpu_seconds(p) for n, p in pids.items()}
    wall = await drive(channels, keys, concurrency, metadata)
    after = {n: cpu_seconds(p) for n, p in pids.items()}
    result = {"writes": len(keys), "rps": len(keys) / wall}
    for n in pids:
        result[f"{n}_cpu_us_per_put"] = (after[n] - before[n]) / len(keys) * 1e6
    print(
        f"  {name:8} {result['rps']:7.0f} req/s   "
        + "   ".join(f"{n} {result[f'{n}_cpu_us_per_put']:6.0f} us/put" for n in pids),
        flush=True,
    )
    return result


#: Leaf frames of a thread that waits for work (uvloop's and gRPC's pollers): not CPU.
IDLE = frozenset(
    {
        "epoll_wait",
        "epoll_pwait",
        "poll",
        "pthread_cond_wait",
        "pthread_cond_timedwait",
        "nanosleep",
        "clock_nanosleep",
    }
)


def summarize(raw: Path, top: int = 30) -> dict[str, list[tuple[str, float]]]:
    """Self and inclusive share of busy samples by function, from py-spy's folded stacks.

    Samples whose leaf is an idle wait are dropped; inclusive shares list
    Python functions only (the native frames above them are the event loop).
    """
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    busy = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not stack or frames[-1].split(" (")[0] in IDLE:
            continue
        samples = int(count)
        busy += samples
        own[_name(frames[-1])] += samples
        for frame in {_name(f) for f in frames if ".py:" in f}:
            inclusive[frame] += samples
    return {
        name: [(f, 100 * n / max(1, busy)) for f, n in counter.most_common(top)]
        for name, counter in (("self", own), ("inclusive", inclusive))
    }


def _name(frame: str) -> str:
    """``func (dir/file.py)`` of a folded frame ``func (path/dir/file.py:line)``."""
    if " (" not in frame:
        return frame
    func, place = frame.rsplit(" (", 1)
    place = place.rstrip(")").rsplit(":", 1)[0]
    return f"{func} ({'/'.join(place.split('/')[-2:])})"


async def profile(
    out: Path,
    pid: int,
    channels: list[grpc.aio.Channel],
    keys: list[str],
    concurrency: int,
    metadata: tuple[tuple[str, str], ...],
) -> str:
    """One more phase under py-spy; returns py-spy's stderr."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    proc = await asyncio.create_subprocess_exec(
        spy,
        "record",
        "-p",
        str(pid),
        "--native",
        "-f",
        "raw",
        "-r",
        "200",
        "-o",
        str(out),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await asyncio.sleep(1.0)  # py-spy attaches
        await drive(channels, keys, concurrency, metadata)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            _, err = await asyncio.wait_for(proc.communicate(), 60)
        except TimeoutError:
            proc.kill()
            _, err = await proc.communicate()
    return err.decode()


def report_profile(out: Path, spy_err: str) -> None:
    if not out.exists():
        raise RuntimeError(f"py-spy wrote nothing: {spy_err[-2000:]}")
    for name, rows in summarize(out).items():
        print(f"\n  {name} share of busy samples (py-spy --native, {out})")
        for frame, share in rows:
            print(f"    {share:5.1f}%  {frame}")


async def run(args: argparse.Namespace, etcd: EtcdServer, work: Path) -> dict[str, Any]:
    port = free_port()
    metadata = (("authorization", f"Bearer {BENCH_KEY}"),) if args.auth else ()
    with configsvc(etcd, port, work / "configsvc.log", args.auth) as server:
        channels = [
            grpc.aio.insecure_channel(
                f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]
            )
            for _ in range(CHANNELS)
        ]
        try:
            await wait_ready(channels, server, metadata)
            pids = {"server": server.pid, "etcd": etcd.pid or 0}
            hot = [f"u{i}" for i in range(args.keys)]
            # Warm-up; creates the update keys.
            await drive(channels, hot, args.concurrency, metadata)
            results: dict[str, list[dict[str, float]]] = {"create": [], "update": []}
            for rep in range(args.repeat):
                results["create"].append(
                    await phase(
                        "create",
                        channels,
                        [f"c{rep}-{i}" for i in range(args.writes)],
                        args.concurrency,
                        pids,
                        metadata,
                    )
                )
                results["update"].append(
                    await phase(
                        "update",
                        channels,
                        [hot[i % len(hot)] for i in range(args.writes)],
                        args.concurrency,
                        pids,
                        metadata,
                    )
                )
            spy_err = ""
            if args.profile:
                spy_err = await profile(
                    args.profile,
                    server.pid,
                    channels,
                    [hot[i % len(hot)] for i in range(args.writes)],
                    args.concurrency,
                    metadata,
                )
        finally:
            for channel in channels:
                await channel.close()
    return {
        "spy_err": spy_err,
        "config": {
            "writes": args.writes,
            "concurrency": args.concurrency,
            "keys": args.keys,
            "value_bytes": len(VALUE),
            "auth": args.auth,
        },
        "phases": results,
        "summary": {
            f"{kind}_{figure}": [min(r[figure] for r in rows), max(r[figure] for r in rows)]
            for kind, rows in results.items()
            for figure in ("rps", "server_cpu_us_per_put", "etcd_cpu_us_per_put")
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=5000, help="Puts per phase")
    parser.add_argument("--concurrency", type=int, default=32, help="Puts in flight")
    parser.add_argument("--keys", type=int, default=1000, help="keys the update phase cycles")
    parser.add_argument("--repeat", type=int, default=3, help="create+update phases to run")
    parser.add_argument(
        "--auth",
        action="store_true",
        help="serve with --auth required (calls send the bootstrap admin key)",
    )
    parser.add_argument("--profile", type=Path, help="py-spy raw output (one more phase)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    if not 1 <= args.writes <= 100_000 or not 1 <= args.concurrency <= 256:
        parser.error("--writes must be 1..100000 and --concurrency 1..256")
    with tempfile.TemporaryDirectory(prefix="configsvc-put-") as tmp:
        work = Path(tmp)
        etcd = EtcdServer(work / "etcd", free_port(), free_port())
        etcd.start()
        try:
            report = asyncio.run(run(args, etcd, work))
        finally:
            etcd.stop()
    if args.profile:
        report_profile(args.profile, report.pop("spy_err"))
    report.pop("spy_err", None)
    print(json.dumps(report["summary"], indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
