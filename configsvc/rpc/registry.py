"""Registers servicers on the gRPC server, each handler wrapped once.

The error-mapping wrapper is applied here, when the server is assembled,
rather than by a ``grpc.aio`` interceptor: an interceptor runs on every call
and builds a new handler object each time, which the read path cannot
afford. Handlers are derived from the service descriptors, so a method added
to a proto is served (and wrapped) without touching this file. Methods named
in ``raw_responses`` return bytes that are already an encoded response; methods
in ``raw_requests`` receive the request's bytes and decode it themselves (so a
long-lived stream need not keep the decoded message alive).

Every deserializer here is total: bytes that do not decode become an
``UndecodableRequest`` (answered INVALID_ARGUMENT by the status wrappers, logged
rate-limited), because gRPC answers a deserializer that raises with UNKNOWN and a
logged traceback, before any configsvc code runs. ``GenericOnly`` gives the
generated services (health, reflection) the same deserializers and error mapping.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message_factory import GetMessageClass

from configsvc.rpc.status import BAD_REQUESTS, UndecodableRequest, wrap_stream, wrap_unary


def _identity(data: bytes) -> bytes:
    return data


def safe_deserializer(
    decode: Callable[[bytes], Any], type_name: str, method: str
) -> Callable[[bytes], Any]:
    """``decode``, answering bytes it refuses with an ``UndecodableRequest``.

    One Python call and a try block on top of the C parser: measured on Get, well
    within the run-to-run noise of the read path.
    """

    def deserialize(data: bytes) -> Any:
        try:
            return decode(data)
        except Exception:  # DecodeError, or any other refusal of the client's bytes
            BAD_REQUESTS.note(
                "undecodable %s request (%d bytes) to %s; answered INVALID_ARGUMENT",
                type_name,
                len(data),
                method,
            )
            return UndecodableRequest(type_name)

    return deserialize


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
        full_name = f"/{service.full_name}/{method.name}"
        deserializer = (
            _identity
            if method.name in raw_in
            else safe_deserializer(
                GetMessageClass(method.input_type).FromString, method.input_type.name, full_name
            )
        )
        serializer = (
            _identity
            if method.name in raw
            else GetMessageClass(method.output_type).SerializeToString
        )
        if method.server_streaming:
            # A streaming servicer may be an async generator (yields responses) or a
            # coroutine that writes with context.write; the wrapper must match.
            wrap = wrap_unary if inspect.iscoroutinefunction(behavior) else wrap_stream
            handlers[method.name] = grpc.unary_stream_rpc_method_handler(
                wrap(behavior, full_name),
                request_deserializer=deserializer,
                response_serializer=serializer,
            )
        else:
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                wrap_unary(behavior, full_name),
                request_deserializer=deserializer,
                response_serializer=serializer,
            )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),)
    )
    chosen = {name: handlers[name] for name in registered}
    if chosen:
        # gRPC "registered methods" make every call pay for every registered method
        # (measured with grpcio 1.85; figures in README's Benchmarks section), so
        # only the hottest call, Get, is registered.
        server.add_registered_method_handlers(service.full_name, chosen)


def guarded_handler(handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
    """``handler`` (from generated code) with a total deserializer and the status wrappers,
    so bad bytes and ConfigsvcErrors get the same answers as on configsvc's own services."""
    decode = handler.request_deserializer
    message_class = getattr(decode, "__self__", None)  # FromString is bound to its class
    type_name = getattr(getattr(message_class, "DESCRIPTOR", None), "name", "request message")
    deserializer = safe_deserializer(decode, type_name, method) if decode is not None else None
    serializer = handler.response_serializer
    for kind, factory in (
        ("unary_unary", grpc.unary_unary_rpc_method_handler),
        ("unary_stream", grpc.unary_stream_rpc_method_handler),
        ("stream_unary", grpc.stream_unary_rpc_method_handler),
        ("stream_stream", grpc.stream_stream_rpc_method_handler),
    ):
        behavior = getattr(handler, kind)
        if behavior is None:
            continue
        streams_out = kind.endswith("_stream")
        wrap = wrap_stream if streams_out and inspect.isasyncgenfunction(behavior) else wrap_unary
        return factory(
            wrap(behavior, method),
            request_deserializer=deserializer,  # type: ignore[no-any-return]
            response_serializer=serializer,
        )
    return handler


class _Guarded(grpc.GenericRpcHandler):  # type: ignore[misc]
    """A generated service's generic handler whose methods are ``guarded_handler``-ed
    (each once, on its first call)."""

    def __init__(self, inner: grpc.GenericRpcHandler) -> None:
        self._inner = inner
        self._handlers: dict[str, grpc.RpcMethodHandler | None] = {}

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        if method not in self._handlers:
            found = self._inner.service(handler_call_details)
            self._handlers[method] = guarded_handler(found, method) if found is not None else None
        return self._handlers[method]


class GenericOnly:
    """The server as seen by a generated ``add_*_to_server`` function: its generic handlers
    are added, its "registered methods" are not. Every registered method costs every call
    the server takes (see ``register_service``); health checks and reflection are served
    just as well by the generic lookup, which only their own calls pay for. Each handler
    is guarded (``guarded_handler``): undecodable bytes are INVALID_ARGUMENT there too."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(tuple(_Guarded(h) for h in handlers))

    def add_registered_method_handlers(
        self, service_name: str, handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        """Deliberately nothing: the generic handlers above serve these methods."""
