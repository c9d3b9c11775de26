"""Error answers of the HTTP routes: ``google.rpc.Status`` JSON with the standard mapping.

A REST route answers an error the way gRPC-gateway and Google's JSON APIs do: the HTTP
status from the gRPC code (``google/rpc/code.proto``'s mapping) and the body
``{"code", "message", "details"}``, the same status ``configsvc.rpc.status`` puts in
a gRPC trailer, so a client sees one error model on both transports. Routes whose
protocol defines its own error body (OFREP) render errors themselves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2

from configsvc.errors import ConfigsvcError
from configsvc.rpc.status import status_proto

#: google.rpc code -> HTTP status (the mapping in google/rpc/code.proto).
HTTP_STATUS: Mapping[int, int] = {
    code_pb2.OK: 200,
    code_pb2.CANCELLED: 499,
    code_pb2.UNKNOWN: 500,
    code_pb2.INVALID_ARGUMENT: 400,
    code_pb2.DEADLINE_EXCEEDED: 504,
    code_pb2.NOT_FOUND: 404,
    code_pb2.ALREADY_EXISTS: 409,
    code_pb2.PERMISSION_DENIED: 403,
    code_pb2.UNAUTHENTICATED: 401,
    code_pb2.RESOURCE_EXHAUSTED: 429,
    code_pb2.FAILED_PRECONDITION: 400,
    code_pb2.ABORTED: 409,
    code_pb2.OUT_OF_RANGE: 400,
    code_pb2.UNIMPLEMENTED: 501,
    code_pb2.INTERNAL: 500,
    code_pb2.UNAVAILABLE: 503,
    code_pb2.DATA_LOSS: 500,
}


class HttpRequestError(ConfigsvcError):
    """The HTTP request itself is unusable, apart from what it asks: its body too large,
    too slow or in an encoding the server does not decode; too many connections. Only
    the HTTP edge raises it; it carries its own HTTP status, the ``google.rpc`` code
    for the Status body, headers for the answer (``Accept-Encoding``,
    ``Retry-After``) and whether the connection must close after the answer (the rest
    of the request cannot be trusted to be read)."""

    def __init__(
        self,
        http_status: int,
        code: int,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        close: bool = False,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.code = code
        self.headers = dict(headers or {})
        self.close = close


def status_of(exc: ConfigsvcError) -> tuple[int, status_pb2.Status]:
    """The HTTP status and the ``google.rpc.Status`` of ``exc``."""
    if isinstance(exc, HttpRequestError):
        return exc.http_status, status_pb2.Status(code=exc.code, message=exc.message)
    status = status_proto(exc)
    return HTTP_STATUS.get(status.code, 500), status


def status_body(status: status_pb2.Status) -> dict[str, Any]:
    """``status`` as JSON (proto3 JSON mapping; ``code``, ``message`` and ``details``
    always present, empty fields inside the details left out)."""
    body = json_format.MessageToDict(status)
    return {
        "code": body.get("code", 0),
        "message": body.get("message", ""),
        "details": body.get("details", []),
    }


def status_response(exc: ConfigsvcError, request: web.Request | None = None) -> web.Response:
    """The error answer of a route without a protocol-defined error body."""
    http_status, status = status_of(exc)
    return json_response(status_body(status), http_status)


def json_response(
    body: object, status: int, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON answer (UTF-8, compact)."""
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )
