"""The framework's ceiling: a bare grpc.aio unary handler answering from a dict.

    python -m bench.bare_server PORT [--reuse-port] [--event-loop uvloop|asyncio]

Serves ``configsvc.v1.ConfigService/Get`` with the smallest possible handler: the
request is decoded, the answer is a prebuilt ``GetResponse`` looked up in a dict
and serialized by gRPC. configsvc's own Get is measured against this, on the same
event loop (``configsvc serve``'s default unless ``--event-loop`` says otherwise).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import grpc

from configsvc.server import eventloop
from configsvc.v1 import config_pb2

VALUE = json.dumps({"blob": "x" * 244})


async def main(port: int, reuse_port: bool) -> None:
    key = ("bench", "prod", "api", "value256")
    table = {
        key: config_pb2.GetResponse(
            entry=config_pb2.ConfigEntry(
                key=config_pb2.ConfigKey(
                    tenant=key[0], environment=key[1], service=key[2], key=key[3]
                ),
                value=VALUE,
                version=1,
                mod_revision=2,
                create_revision=2,
            ),
            revision=2,
        )
    }

    async def get(request: config_pb2.GetRequest, context: object) -> config_pb2.GetResponse:
        k = request.key
        return table[(k.tenant, k.environment, k.service, k.key)]

    server = grpc.aio.server(options=[("grpc.so_reuseport", 1 if reuse_port else 0)])
    handlers = {
        "Get": grpc.unary_unary_rpc_method_handler(
            get,
            request_deserializer=config_pb2.GetRequest.FromString,
            response_serializer=config_pb2.GetResponse.SerializeToString,
        )
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("configsvc.v1.ConfigService", handlers),)
    )
    server.add_registered_method_handlers("configsvc.v1.ConfigService", handlers)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await server.stop(0)


if __name__ == "__main__":
    loop = (
        sys.argv[sys.argv.index("--event-loop") + 1]
        if "--event-loop" in sys.argv
        else eventloop.DEFAULT
    )
    eventloop.run(main(int(sys.argv[1]), "--reuse-port" in sys.argv), loop)
