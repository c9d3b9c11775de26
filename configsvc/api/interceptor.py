"""The gRPC face of admission: a ``grpc.aio`` server interceptor around every RPC.

A server interceptor sees every method, whichever way its service was registered, so
nothing can be added unguarded. It wraps each method's handler once (cached by method
name) with the method's ``MethodPlan``; per call it hands the call's metadata, its
context (as the peer) and the request to ``Admission.admit_planned``, the one admission
function every transport calls (``configsvc.auth.admission``), and maps a refusal to
its status through the one table in ``configsvc.rpc.status``. What stays here is what
only gRPC has: handler kinds, request streams, and the generator-served streams it
ends when their caller's credential expires or loses its grants.

It lives with the transports (``api``), not in ``auth``: the domain knows no gRPC. The
server builds it from ``auth.admission`` and ``auth.streams``
(``configsvc.server.lifecycle.auth_interceptors``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from configsvc.auth.admission import Admission, MethodPlan, no_rule
from configsvc.auth.limits import StreamCaps
from configsvc.auth.rules import PUBLIC
from configsvc.errors import ConfigsvcError, StreamEndedError
from configsvc.rpc import principal as principals
from configsvc.rpc.principal import Caller
from configsvc.rpc.status import abort_with

log = logging.getLogger(__name__)


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Admits every RPC through ``admission``; see the module docstring."""

    def __init__(self, admission: Admission, streams: StreamCaps) -> None:
        self.admission = admission
        self.streams = streams
        #: The admission's scope readers (``AuthRuntime.add_scoper`` registers them).
        self.scopers = admission.scopers
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}
        #: Streams served by async generators (not the watch hub): task -> stream.
        self._open: dict[asyncio.Task[Any], _OpenStream] = {}

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], details: Any
    ) -> Any:
        handler = self._handlers.get(details.method)
        if handler is None:
            handler = await continuation(details)
            if handler is None:
                return None
            handler = self._wrap(details.method, handler)
            self._handlers[details.method] = handler
        return handler

    # -------------------------------------------------------------- wrapping

    def _wrap(self, name: str, handler: Any) -> Any:
        rule = self.admission.rules.get(name)
        if rule is not None and rule.permission == PUBLIC:
            return handler
        if rule is None:
            log.error("RPC %s has no authorization rule; denied to everyone", name)
            return _denied(name, handler)
        if handler.unary_unary is not None or handler.unary_stream is not None:
            method = self.admission.plan(name)
            assert method is not None  # not public: checked above
            if handler.unary_unary is not None:
                return grpc.unary_unary_rpc_method_handler(
                    self._unary(method, handler.unary_unary),
                    request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer,
                )
            return grpc.unary_stream_rpc_method_handler(
                self._stream(method, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        # Request streams: authenticated and authorized installation-wide before
        # the first message is read.
        wrap = self._unary if handler.stream_unary is not None else self._stream
        factory = (
            grpc.stream_unary_rpc_method_handler
            if handler.stream_unary is not None
            else grpc.stream_stream_rpc_method_handler
        )
        inner = handler.stream_unary or handler.stream_stream
        method = self.admission.plan(name, installation_wide=True)
        assert method is not None
        return factory(
            wrap(method, inner),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _unary(self, method: MethodPlan, inner: Callable[..., Any]) -> Callable[..., Any]:
        admit = self.admission.admit_planned

        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                caller = await admit(method, context.invocation_metadata(), context, request)
            except ConfigsvcError as exc:
                await abort_with(context, exc)
                raise
            principals.enter(caller)
            return await inner(request, context)

        return guarded

    async def _open_stream(
        self, method: MethodPlan, request: Any, context: grpc.aio.ServicerContext
    ) -> Caller:
        """Admit a stream and count it against its identity's cap (released by the caller)."""
        try:
            caller = await self.admission.admit_planned(
                method, context.invocation_metadata(), context, request
            )
            self.streams.acquire(caller.principal.name)
        except ConfigsvcError as exc:
            await abort_with(context, exc)
            raise
        principals.enter(caller)
        return caller

    def _stream(self, method: MethodPlan, inner: Callable[..., Any]) -> Callable[..., Any]:
        open_stream = self._open_stream
        release = self.streams.release

        if inspect.isasyncgenfunction(inner):
            registry = self._open

            async def guarded_gen(
                request: Any, context: grpc.aio.ServicerContext
            ) -> AsyncIterator[Any]:
                caller = await open_stream(method, request, context)
                task = asyncio.current_task()
                assert task is not None
                stream = registry[task] = _OpenStream(caller)
                if caller.principal.expires_at is not None:
                    stream.expiry = asyncio.get_running_loop().call_later(
                        max(0.0, caller.principal.expires_at - time.time()),
                        _end,
                        task,
                        stream,
                        "the credential expired",
                    )
                try:
                    async for response in inner(request, context):
                        yield response
                except asyncio.CancelledError:
                    if not stream.ended:
                        raise  # the client went away
                    task.uncancel()
                    await abort_with(
                        context,
                        StreamEndedError(
                            f"{stream.ended}; reconnect (the stream is re-authorized)", 0
                        ),
                    )
                finally:
                    registry.pop(task, None)
                    if stream.expiry is not None:
                        stream.expiry.cancel()
                    release(caller.principal.name)

            return guarded_gen

        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            caller = await open_stream(method, request, context)
            try:
                return await inner(request, context)
            finally:
                release(caller.principal.name)

        return guarded

    def end_streams_where(self, predicate: Callable[[object], bool], message: str) -> int:
        """End the generator-served streams (flag syncs, audit exports) whose caller
        ``predicate`` picks, with UNAVAILABLE: the client reconnects and is admitted under
        the grants now in force. Watch streams are reset by the hub instead."""
        count = 0
        for task, stream in list(self._open.items()):
            if not stream.ended and predicate(stream.caller):
                _end(task, stream, message)
                count += 1
        return count


class _OpenStream:
    """A generator-served stream: its caller and why it is being ended."""

    __slots__ = ("caller", "ended", "expiry")

    def __init__(self, caller: Caller) -> None:
        self.caller = caller
        self.ended = ""
        self.expiry: asyncio.TimerHandle | None = None


def _end(task: asyncio.Task[Any], stream: _OpenStream, message: str) -> None:
    if not stream.ended:
        stream.ended = message
        task.cancel()


def _denied(name: str, handler: Any) -> Any:
    async def deny(request: Any, context: grpc.aio.ServicerContext) -> None:
        await abort_with(context, no_rule(name))

    factory = (
        grpc.unary_unary_rpc_method_handler
        if handler.unary_unary is not None
        else grpc.unary_stream_rpc_method_handler
        if handler.unary_stream is not None
        else grpc.stream_unary_rpc_method_handler
        if handler.stream_unary is not None
        else grpc.stream_stream_rpc_method_handler
    )
    return factory(
        deny,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
