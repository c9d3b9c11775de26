"""Registers servicers on the gRPC server, each handler wrapped once.

The error-mapping wrapper is applied here, when the server is assembled,
rather than by a ``grpc.aio`` interceptor: an interceptor runs on every call
and builds a new handler object each time, which the read path cannot
afford. Handlers are derived from the service descriptors, so a method added
to a proto is served (and wrapped) without touching this file. Methods named
in ``raw_responses`` return bytes that are already an encoded response; methods
in ``raw_requests`` receive the request's bytes and decode it themselves (so a
long-lived stream need not keep the decoded message alive).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message_factory import GetMessageClass

from configsvc.api.status import wrap_stream, wrap_unary


def _identity(data: bytes) -> bytes:
    return data


def register_service(
    server: grpc.aio.Server,
    service: ServiceDescriptor,
    servicer: Any,
    *,
    raw_responses: Iterable[str] = (),
    raw_requests: Iterable[str] = (),
    registered: Iterable[str] = (),
) -> None:
    raw = frozenset(raw_responses)
    raw_in = frozenset(raw_requests)
    handlers: dict[str, grpc.RpcMethodHandler] = {}
    for method in service.methods:
        behavior = getattr(servicer, method.name)
        deserializer = (_identity if method.name in raw_in
                        else GetMessageClass(method.input_type).FromString)
        serializer = (_identity if method.name in raw
                      else GetMessageClass(method.output_type).SerializeToString)
        full_name = f"/{service.full_name}/{method.name}"
        if method.server_streaming:
            # A streaming servicer may be an async generator (yields responses) or a
            # coroutine that writes with context.write; the wrapper must match.
            wrap = wrap_unary if inspect.iscoroutinefunction(behavior) else wrap_stream
            handlers[method.name] = grpc.unary_stream_rpc_method_handler(
                wrap(behavior, full_name),
                request_deserializer=deserializer,
                response_serializer=serializer)
        else:
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                wrap_unary(behavior, full_name),
                request_deserializer=deserializer,
                response_serializer=serializer)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),))
    chosen = {name: handlers[name] for name in registered}
    if chosen:
        # gRPC "registered methods" make every call pay for every registered method
        # (measured with grpcio 1.85: a bare Get handler drops from about 6,400 to
        # 4,300 req/s with 160 more registered methods, and stays at 6,300 when those
        # are generic handlers only; configsvc's Get gained 9-10 % when its 12 other
        # registered methods, Watch, health and reflection included, became generic
        # only), so only the hottest call, Get, is registered.
        server.add_registered_method_handlers(service.full_name, chosen)


class GenericOnly:
    """The server as seen by a generated ``add_*_to_server`` function: its generic handlers
    are added, its "registered methods" are not. Every registered method costs every call
    the server takes (see ``register_service``); health checks and reflection are served
    just as well by the generic lookup, which only their own calls pay for."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(
            self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(
            self, service_name: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        """Deliberately nothing: the generic handlers above serve these methods."""
