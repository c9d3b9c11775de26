"""One hardened aiohttp listener, and the wrapper every HTTP route runs in.

``HttpListener`` binds an ``aiohttp`` application with the limits of ``HttpSettings``:

* a connection that has not sent a complete request head ``header_timeout`` seconds
  after it opened (or after its previous answer) is closed. aiohttp 3.14 has no
  separate header read timeout (no ``read_timeout`` on the server side); its
  ``keepalive_timeout`` is armed at connect and re-armed after each answer, and closes
  a connection whose handler is still waiting for a complete request, which is exactly
  a header timeout that also covers idle keep-alive connections;
* the body is read by ``configsvc.http.body.read_body`` under ``body_timeout``, and the
  answer sent under ``send_timeout`` (a client that stops reading is cut off);
* at most ``max_connections`` connections: one more is answered 503 and closed
  before aiohttp sees it;
* aiohttp's log lines for malformed HTTP (it answers those itself, 400 or 431) become
  one rate-limited warning without a traceback: any client can cause them at will.

``guarded(handler, render)`` runs one route: headers that cannot be decoded are a 400,
typed errors are rendered (``google.rpc.Status`` JSON by default, or the route's own
protocol format), and anything else is a bug, logged with its traceback under an
incident id and answered 500 without details.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from google.rpc import code_pb2

from configsvc.errors import ConfigsvcError, InvalidArgumentError, UnauthenticatedError
from configsvc.http.settings import HttpSettings
from configsvc.http.status import (
    HttpRequestError,
    json_response,
    status_body,
    status_of,
    status_response,
)
from configsvc.ratelog import RateLimitedLog

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: Turns a typed error into the route's error answer.
Renderer = Callable[[ConfigsvcError, web.Request], web.StreamResponse]

#: Headers that carry a credential: checked at admission (401), not as plain headers.
CREDENTIAL_HEADERS = ("authorization", "x-api-key")


def _shown(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit and text.isprintable() else repr(text[:limit])


def check_credentials(headers: Mapping[str, str]) -> None:
    """A credential header with anything but printable ASCII cannot hold an API key or a
    JWT (both are ASCII by construction): UNAUTHENTICATED, before any credential code
    sees bytes it cannot encode."""
    for name in ("Authorization", "X-API-Key"):
        value = headers.get(name)
        if value is not None and not (value.isascii() and value.isprintable()):
            raise UnauthenticatedError(
                f"the {name} header holds bytes that are not printable ASCII; an API key "
                "or JWT is plain ASCII"
            )


def check_headers(headers: Mapping[str, str]) -> None:
    """aiohttp keeps header bytes that are not UTF-8 as surrogate escapes, which raise
    later wherever the text is encoded (an etcd key, a hash): refuse them up front,
    naming the header. Credential headers are left to ``check_credentials``."""
    for name, value in headers.items():
        if value.isascii() or name.lower() in CREDENTIAL_HEADERS:
            continue
        try:
            value.encode()
        except UnicodeEncodeError:
            raise InvalidArgumentError.single(
                f"header {_shown(name)}", "is not valid UTF-8"
            ) from None


def error_answer(exc: ConfigsvcError, request: web.Request, render: Renderer) -> web.StreamResponse:
    """``render``'s answer for ``exc``, with the headers and connection close an
    ``HttpRequestError`` asks for."""
    response = render(exc, request)
    if isinstance(exc, HttpRequestError):
        response.headers.update(exc.headers)
        if exc.close:
            response.force_close()
    return response


#: Where ``HttpListener`` keeps its settings in the application, for ``guarded``.
SETTINGS_KEY = web.AppKey("configsvc_http_settings", HttpSettings)


def guarded(handler: Handler, render: Renderer = status_response) -> Handler:
    """``handler`` as a route: bad headers, typed errors and bugs all answered cleanly,
    and the answer sent within the listener's ``send_timeout``."""

    async def route(request: web.Request) -> web.StreamResponse:
        try:
            check_headers(request.headers)
            response = await handler(request)
        except ConfigsvcError as exc:
            response = error_answer(exc, request, render)
        except ConnectionError:
            # The client left. Raising would make aiohttp log a traceback; an answer
            # meets the closed transport and aiohttp ends the connection quietly.
            return web.Response(status=499, reason="Client Closed Request")
        except web.HTTPException:
            raise  # a deliberate HTTP answer
        except Exception as exc:
            incident = uuid.uuid4().hex[:12]
            log.error(
                "unhandled error in HTTP %s %s (incident %s)",
                request.method,
                _shown(request.path, 200),
                incident,
                exc_info=exc,
            )
            response = error_answer(
                HttpRequestError(
                    500,
                    code_pb2.INTERNAL,
                    f"internal error (incident {incident}); the server log has the details",
                ),
                request,
                render,
            )
        settings = request.app.get(SETTINGS_KEY)
        if settings is not None:
            await _send(request, response, settings.send_timeout)
        return response

    return route


_SLOW_READERS = RateLimitedLog(log, interval=60.0)


async def _send(request: web.Request, response: web.StreamResponse, timeout: float) -> None:
    """Send ``response`` here rather than after the route returns (aiohttp then finds it
    sent), so a client that stops reading is cut off after ``timeout``: aiohttp itself
    waits for a full send buffer to drain for ever."""
    try:
        async with asyncio.timeout(timeout):
            await response.prepare(request)
            await response.write_eof()
    except ConnectionError:
        pass  # the client left while the answer went out: aiohttp ends quietly
    except TimeoutError:
        transport = request.transport
        if transport is not None:
            transport.abort()  # close() would wait for the unread answer to drain
        _SLOW_READERS.note(
            "HTTP client %s did not read its answer within %g s; connection aborted",
            request.remote,
            timeout,
        )
        # Returned all the same: aiohttp's own send then meets the aborted transport and
        # ends the connection quietly (raising here would log an "Error handling request").


_FRAMEWORK_CODES = {
    404: code_pb2.NOT_FOUND,
    405: code_pb2.UNIMPLEMENTED,
    413: code_pb2.INVALID_ARGUMENT,
}


@web.middleware
async def framework_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own error answers (no such route, method not allowed) as Status JSON."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        path = _shown(request.path, 200)
        if exc.status == 404:
            message = f"no route for {request.method} {path}"
        elif exc.status == 405:
            message = (
                f"{request.method} is not allowed on {path}; allowed: "
                f"{exc.headers.get('Allow', '')}"
            )
        else:
            message = exc.text or exc.reason
        code = _FRAMEWORK_CODES.get(
            exc.status, code_pb2.INVALID_ARGUMENT if exc.status < 500 else code_pb2.INTERNAL
        )
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return error_answer(
            HttpRequestError(exc.status, code, message, headers=headers), request, status_response
        )


class _ProtocolLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's server logger: its "Error handling request" lines for malformed HTTP
    (bad request line or header, oversized head) carry a traceback each, and any client
    can send such bytes at will, so they become one rate-limited warning with the
    reason. Every other line (a real fault) passes through with its traceback."""

    def __init__(self) -> None:
        super().__init__(log, {})
        self.malformed = RateLimitedLog(log, interval=60.0)

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        if isinstance(exc_info, HttpProcessingError):
            reason = " ".join(str(exc_info.message).split()) or type(exc_info).__name__
            self.malformed.note(
                "malformed HTTP request from %s answered %s: %s",
                args[0] if args else "?",
                exc_info.code,
                _shown(reason, 200),
            )
            return
        self.logger.error(msg, *args, exc_info=exc_info, **kwargs)


class _Refused(asyncio.Protocol):
    """A connection over the limit: answered 503 at once and closed."""

    def __init__(self, answer: bytes) -> None:
        self._answer = answer
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.write(self._answer)
        # Half-close, and close for good after a moment: closing at once with the
        # client's request unread would reset the connection before it reads the answer.
        transport.write_eof()
        asyncio.get_running_loop().call_later(1.0, transport.close)

    def data_received(self, data: bytes) -> None:
        pass  # the request is not served; its bytes are dropped

    def eof_received(self) -> bool:
        return False  # close now


def _refusal(limit: int) -> bytes:
    status = HttpRequestError(
        503,
        code_pb2.UNAVAILABLE,
        f"this server has {limit} connections open, its limit (max_connections); retry "
        "shortly or elsewhere",
    )
    _, proto = status_of(status)
    body = json_response(status_body(proto), 503).body
    assert isinstance(body, bytes)
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


class _CappedSite(web.BaseSite):
    """A TCP site whose protocol factory refuses connections over ``limit``."""

    def __init__(self, runner: web.AppRunner, host: str | None, port: int, limit: int) -> None:
        super().__init__(runner)
        self._host = host
        self._port = port
        self._limit = limit
        self._refused = _refusal(limit)
        self.bound_port = port

    @property
    def name(self) -> str:
        return f"http://{self._host or '0.0.0.0'}:{self.bound_port}"

    def _protocol(self) -> asyncio.BaseProtocol:
        server = self._runner.server
        assert server is not None
        if len(server.connections) >= self._limit:
            return _Refused(self._refused)
        return server()

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._protocol, self._host, self._port, backlog=self._backlog, reuse_address=True
        )
        sockets = self._server.sockets
        if sockets:
            self.bound_port = int(sockets[0].getsockname()[1])


class HttpListener:
    """One aiohttp application on one address, with ``settings``' limits."""

    def __init__(self, app: web.Application, settings: HttpSettings) -> None:
        self.settings = settings
        app.middlewares.append(framework_errors)
        app[SETTINGS_KEY] = settings
        self._runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            handler_cancellation=True,
            keepalive_timeout=settings.header_timeout,
            lingering_time=settings.linger,
            auto_decompress=False,
            logger=_ProtocolLog(),
        )
        self.port = 0

    async def start(self, listen: str) -> int:
        """Bind ``host:port`` (port 0 picks one; ``[::]`` for IPv6); return the port."""
        host, _, port = listen.rpartition(":")
        await self._runner.setup()
        site = _CappedSite(
            self._runner, host.strip("[]") or None, int(port), self.settings.max_connections
        )
        try:
            await site.start()
        except BaseException:
            await self._runner.cleanup()
            raise
        self.port = site.bound_port
        return self.port

    async def stop(self) -> None:
        await self._runner.cleanup()
