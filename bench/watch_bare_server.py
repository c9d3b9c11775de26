"""The memory floor for bench.watch: a bare ``grpc.aio`` server holding idle streams.

    .venv/bin/python -m bench.watch_bare_server --port PORT

It serves the same method path as configsvc (``/configsvc.v1.WatchService/Watch``)
with raw bytes in and out and the same server options as ``configsvc serve``:
each call sends one ``snapshot_end`` message (so a client knows the stream is
established, exactly as with configsvc's ``send_snapshot`` on an empty scope)
and then waits forever on a future. The handler is a coroutine writing with
``context.write`` (``--style generator``: an async generator that yields; that
costs about 0.25 KiB more per idle stream). It runs on the same event loop as
``configsvc serve`` (uvloop by default, ``--event-loop``). It prints ``ready PORT`` once
serving and stops on SIGTERM or SIGINT.

``--fanout``: the propagation floor for bench.watch. The server also serves
``bench.BareFanout/Publish`` (raw bytes: a revision as 8 big-endian bytes) which
encodes ONE ``WatchResponse`` carrying a put change of a 256-byte value at that
revision, queues the same bytes on every open stream, wakes each stream's
coroutine and answers; each stream writes what it has queued with
``context.write``, visiting the streams connection by connection (so gRPC can
coalesce one connection's writes). That is the least a grpc.aio server can do per
change and per stream (configsvc's hub does the same plus selectors, limits and
heartbeats; the fan-out server uses configsvc's garbage-collector settings, without
which it needed 527 ms of CPU per write at 10,000 streams instead of 280),
so its latency and CPU per stream message are the framework's own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator

import grpc

from configsvc.server import eventloop, lifecycle
from configsvc.server.app import tune_gc
from configsvc.v1 import config_pb2, watch_pb2
from configsvc.watch import wire

SERVICE = "configsvc.v1.WatchService"
FANOUT_SERVICE = "bench.BareFanout"
VALUE = json.dumps({"blob": "x" * 244})  # as bench.watch writes
# The options configsvc's own server has (keepalive and message size), one process per port.
SERVER_OPTIONS = [("grpc.so_reuseport", 0), *lifecycle.SERVER_OPTIONS]


def _identity(data: bytes) -> bytes:
    return data


async def watch(_request: bytes, _context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    yield wire.snapshot_end(0)
    await asyncio.get_running_loop().create_future()  # idle until cancelled


async def watch_writer(_request: bytes, context: grpc.aio.ServicerContext) -> None:
    await context.write(wire.snapshot_end(0))
    await asyncio.get_running_loop().create_future()  # idle until cancelled


class Fanout:
    """Every open stream's outbox and waiter; one encoding per published change."""

    def __init__(self) -> None:
        key = config_pb2.ConfigKey(tenant="bench", environment="prod", service="api", key="watched")
        self._change = bytes(
            watch_pb2.Change(
                type=watch_pb2.CHANGE_TYPE_PUT,
                key=key,
                entry=config_pb2.ConfigEntry(key=key, value=VALUE, version=1),
            ).SerializeToString()
        )
        self._streams: dict[int, tuple[str, list[bytes], list[asyncio.Future[None] | None]]] = {}
        self._order: list[tuple[list[bytes], list[asyncio.Future[None] | None]]] | None = None

    async def watch(self, _request: bytes, context: grpc.aio.ServicerContext) -> None:
        await context.write(wire.snapshot_end(0))
        outbox: list[bytes] = []
        waiter: list[asyncio.Future[None] | None] = [None]
        self._streams[id(outbox)] = (context.peer(), outbox, waiter)
        self._order = None
        loop = asyncio.get_running_loop()
        try:
            while True:
                while not outbox:
                    waiter[0] = loop.create_future()
                    await waiter[0]
                    waiter[0] = None
                await context.write(outbox.pop(0))
        finally:
            del self._streams[id(outbox)]
            self._order = None

    async def publish(self, request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
        data = wire.changes(int.from_bytes(request, "big"), [self._change])
        if self._order is None:  # connection by connection, as configsvc's hub does
            self._order = [(o, w) for _, o, w in sorted(self._streams.values(), key=lambda s: s[0])]
        for outbox, waiter in self._order:
            outbox.append(data)
            if waiter[0] is not None and not waiter[0].done():
                waiter[0].set_result(None)
        return b""


async def serve(port: int, style: str, fanout: bool = False) -> None:
    server = grpc.aio.server(options=SERVER_OPTIONS)
    hub = Fanout() if fanout else None
    handler = hub.watch if hub is not None else watch if style == "generator" else watch_writer
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                SERVICE,
                {
                    "Watch": grpc.unary_stream_rpc_method_handler(
                        handler, request_deserializer=_identity, response_serializer=_identity
                    ),
                },
            ),
        )
    )
    if hub is not None:
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    FANOUT_SERVICE,
                    {
                        "Publish": grpc.unary_unary_rpc_method_handler(
                            hub.publish,
                            request_deserializer=_identity,
                            response_serializer=_identity,
                        ),
                    },
                ),
            )
        )
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    if fanout:  # the same collector settings as configsvc serve (it allocates per message)
        tune_gc()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"ready {bound}", flush=True)
    await stop.wait()
    await server.stop(0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--event-loop",
        choices=eventloop.CHOICES,
        default=eventloop.DEFAULT,
        help="as configsvc serve's --event-loop (default %(default)s)",
    )
    parser.add_argument(
        "--style",
        choices=("coroutine", "generator"),
        default="coroutine",
        help="handler: a coroutine using context.write (the default, the "
        "cheaper of the two), or an async generator",
    )
    parser.add_argument(
        "--fanout",
        action="store_true",
        help="also serve bench.BareFanout/Publish (the propagation floor)",
    )
    args = parser.parse_args()
    eventloop.run(serve(args.port, args.style, args.fanout), args.event_loop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
