"""One watcher process of bench.watch: many streams, per-revision receive times.

    .venv/bin/python -m bench.watch_worker --kind configsvc|etcd --target HOST:PORT

``configsvc``: each stream is one ``WatchService.Watch`` call with one
selector (the whole tenant) and ``send_snapshot``; it counts as established
when ``snapshot_end`` arrives. The same kind serves the bare memory-floor
server (bench/watch_bare_server.py), which answers with one ``snapshot_end``.
``etcd``: each stream is one etcd ``Watch`` bidi call through aetcd's
``rpc.WatchStub`` carrying one watch on one key; established when etcd says
``created``.

Streams are spread over HTTP/2 connections: the newest channel is filled up to
``--per-channel`` streams before another is opened, and every channel gets its
own TCP connection (``grpc.use_local_subchannel_pool``; gRPC would otherwise
share one connection between channels to the same target).

When a change arrives the stream decodes the whole response (the channel's
deserializer is the generated ``FromString``) and then records
``time.monotonic()`` against the change's revision. CLOCK_MONOTONIC is one
clock for every process on the machine, so the driver subtracts its own
``time.monotonic()`` taken when the write was acknowledged.

The driver sends line commands on stdin; each is answered with one line:

    open N       -> opened TOTAL FAILED   (after the N new streams are established)
    count REV    -> count K               (streams that have received revision REV)
    report PATH  -> reported              (samples written as JSON to PATH, then forgotten)
    quit         (cancel every stream, close the channels, exit)

End of stdin counts as ``quit``, and the process exits on its own after
``--max-seconds`` in any case.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from aetcd import rpc

from configsvc.server import eventloop
from configsvc.v1 import watch_pb2

WATCH_METHOD = "/configsvc.v1.WatchService/Watch"
OPEN_IN_FLIGHT = 200  # streams being established at once per worker
OPEN_TIMEOUT = 120.0


def raise_nofile_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Worker:
    """Owns this process's channels and streams and what they received."""

    def __init__(
        self, kind: str, target: str, tenant: str, etcd_key: bytes, per_channel: int
    ) -> None:
        self.kind = kind
        self.target = target
        self.per_channel = per_channel
        self.channels: list[grpc.aio.Channel] = []
        self.channel_streams: list[int] = []
        self._callables: list[Callable[..., Any]] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.samples: defaultdict[int, list[float]] = defaultdict(list)
        self.seen: Counter[int] = Counter()  # revision -> streams that received it
        self.counts: Counter[str] = Counter()
        self._request = watch_pb2.WatchRequest(
            selectors=[watch_pb2.WatchSelector(tenant=tenant)], send_snapshot=True
        )
        self._create = rpc.WatchRequest(create_request=rpc.WatchCreateRequest(key=etcd_key))
        self._open_slots = asyncio.Semaphore(OPEN_IN_FLIGHT)

    @property
    def streams(self) -> int:
        return sum(self.channel_streams)

    def _next_channel(self) -> int:
        if not self.channels or self.channel_streams[-1] >= self.per_channel:
            options = [
                ("grpc.use_local_subchannel_pool", 1),
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ]
            channel = grpc.aio.insecure_channel(self.target, options=options)
            self.channels.append(channel)
            self.channel_streams.append(0)
            if self.kind == "etcd":
                self._callables.append(rpc.WatchStub(channel).Watch)
            else:
                self._callables.append(
                    channel.unary_stream(
                        WATCH_METHOD,
                        request_serializer=watch_pb2.WatchRequest.SerializeToString,
                        response_deserializer=watch_pb2.WatchResponse.FromString,
                    )
                )
        self.channel_streams[-1] += 1
        return len(self.channels) - 1

    async def open(self, count: int) -> tuple[int, int]:
        """Open ``count`` more streams; returns (total streams, streams that failed)."""
        ready: list[asyncio.Future[bool]] = []
        loop = asyncio.get_running_loop()
        for _ in range(count):
            index = self._next_channel()
            future: asyncio.Future[bool] = loop.create_future()
            ready.append(future)
            stream = self._etcd_stream if self.kind == "etcd" else self._configsvc_stream
            task = loop.create_task(stream(self._callables[index], future))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        try:
            async with asyncio.timeout(OPEN_TIMEOUT):
                results = await asyncio.gather(*ready)
        except TimeoutError:
            results = [f.done() and f.result() for f in ready]
        failed = sum(1 for ok in results if not ok)
        return self.streams, failed

    def _established(self, ready: asyncio.Future[bool], ok: bool) -> None:
        if not ready.done():
            ready.set_result(ok)
            self._open_slots.release()

    async def _configsvc_stream(
        self, method: Callable[..., Any], ready: asyncio.Future[bool]
    ) -> None:
        await self._open_slots.acquire()
        call = method(self._request)
        samples, seen, counts = self.samples, self.seen, self.counts
        try:
            while True:
                message = await call.read()
                now = time.monotonic()
                if message is grpc.aio.EOF:
                    counts["ended"] += 1
                    return
                kind = message.WhichOneof("kind")
                if kind == "changes":
                    revision = message.changes.revision
                    samples[revision].append(now)
                    seen[revision] += 1
                elif kind == "snapshot_end":
                    self._established(ready, True)
                else:  # snapshot chunks, progress heartbeats, resets
                    counts[f"message_{kind}"] += 1
        except grpc.aio.AioRpcError as exc:
            counts[f"error_{exc.code().name}"] += 1
        finally:
            self._established(ready, False)
            call.cancel()

    async def _etcd_stream(self, method: Callable[..., Any], ready: asyncio.Future[bool]) -> None:
        await self._open_slots.acquire()
        call = method()
        samples, seen, counts = self.samples, self.seen, self.counts
        try:
            await call.write(self._create)
            while True:
                response = await call.read()
                now = time.monotonic()
                if response is grpc.aio.EOF:
                    counts["ended"] += 1
                    return
                if response.events:
                    revision = response.events[0].kv.mod_revision
                    samples[revision].append(now)
                    seen[revision] += 1
                elif response.created:
                    self._established(ready, True)
                elif response.canceled:
                    counts["message_canceled"] += 1
                    return
                else:
                    counts["message_progress"] += 1
        except grpc.aio.AioRpcError as exc:
            counts[f"error_{exc.code().name}"] += 1
        finally:
            self._established(ready, False)
            call.cancel()

    def report(self, path: Path) -> None:
        body = {
            "streams": self.streams,
            "channel_streams": self.channel_streams,
            "counts": dict(self.counts),
            "samples": {str(rev): times for rev, times in self.samples.items()},
        }
        path.write_text(json.dumps(body))
        self.samples.clear()

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=10)
        for channel in self.channels:
            with contextlib.suppress(Exception):
                await channel.close(grace=None)


def answer(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def serve_commands(worker: Worker, max_seconds: float) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    deadline = loop.time() + max_seconds
    try:
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                print("watch_worker: --max-seconds reached; exiting", file=sys.stderr)
                return
            try:
                async with asyncio.timeout(remaining):
                    raw = await reader.readline()
            except TimeoutError:
                continue
            words = raw.decode().split()
            if not words or words[0] == "quit":
                return
            command, argument = words[0], words[1] if len(words) > 1 else ""
            if command == "open":
                total, failed = await worker.open(int(argument))
                answer(f"opened {total} {failed}")
            elif command == "count":
                answer(f"count {worker.seen.get(int(argument), 0)}")
            elif command == "report":
                worker.report(Path(argument))
                answer("reported")
            else:
                answer(f"error unknown command {command!r}")
    finally:
        await worker.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=("configsvc", "etcd"), required=True)
    parser.add_argument("--target", required=True, help="host:port")
    parser.add_argument("--tenant", default="bench", help="configsvc tenant to watch")
    parser.add_argument("--etcd-key", default="/bench/watch/k", help="etcd key to watch")
    parser.add_argument(
        "--per-channel",
        type=int,
        default=500,
        help="streams per HTTP/2 connection (default %(default)s)",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=900.0,
        help="exit on its own after this long (default %(default)s)",
    )
    parser.add_argument("--event-loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = parser.parse_args()
    raise_nofile_limit()

    async def run() -> None:
        worker = Worker(
            args.kind, args.target, args.tenant, args.etcd_key.encode(), args.per_channel
        )
        await serve_commands(worker, args.max_seconds)

    with contextlib.suppress(KeyboardInterrupt):
        eventloop.run(run(), args.event_loop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
