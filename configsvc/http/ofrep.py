"""OFREP (OpenFeature Remote Evaluation Protocol) over HTTP, plus ``/metrics``.

A small aiohttp server on its own port (``--ofrep-listen``), started by the
server beside its gRPC port:

``POST /ofrep/v1/evaluate/flags/{key}``
    ``{"context": {...}}`` -> 200 ``{"key", "value", "variant", "reason", "metadata"}``;
    404 ``FLAG_NOT_FOUND``, 400 ``PARSE_ERROR``/``INVALID_CONTEXT``/``GENERAL``
    with ``errorCode`` and ``errorDetails``. A disabled flag, or one without a
    default variant that no rule matched, answers without ``value``: the
    provider uses the caller's default.
``POST /ofrep/v1/evaluate/flags``
    Bulk: every flag of the flag set, errors inline per flag, with an ``ETag``
    (flag-set revision + context); ``If-None-Match`` with it answers 304.
``GET /metrics``
    Prometheus text: flag evaluation counts by variant and reason.

The flag set is chosen like for gRPC: the ``flagd-selector`` header
(``tenant/environment``) or the server's default selector. The context gets
the same enrichment (tenant, environment, ``x-configsvc-service``, static
context values).

With authentication on, every request needs ``Authorization: Bearer <API key
or JWT>`` or ``X-API-Key: <API key>`` (the OFREP providers' ``headers`` /
``apiKey`` options) and is admitted like the flagd RPCs: 401 without a valid
credential, 403 without read permission in the flag set's (tenant,
environment), 429 with ``Retry-After`` over the identity's rate limit.
``/metrics`` needs read permission on every tenant (it names them all).

The listener is a ``configsvc.http.HttpListener`` (timeouts, body and connection
limits of ``HttpSettings``). Bad requests keep OFREP's error body: a body or context
that is not bounded JSON (not UTF-8, ``NaN``/``Infinity``, nested deeper than 128,
an integer of more than 4,300 digits) or an undecodable header is 400
``INVALID_CONTEXT``; a body too large (after decompression) 413, in an encoding other
than gzip/deflate 415, too slow 408, all ``GENERAL``. ``/metrics`` and unknown routes
answer errors as ``google.rpc.Status`` JSON.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from configsvc.errors import (
    ConfigsvcError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    UnauthenticatedError,
)
from configsvc.flags.core import FlagsCore
from configsvc.flags.evaluator import ErrorCode, Resolution
from configsvc.flags.selector import FlagSetRef
from configsvc.http import (
    HttpListener,
    HttpRequestError,
    HttpSettings,
    check_credentials,
    guarded,
    read_body,
    status_response,
)
from configsvc.model.grants import CONFIG_READ, Scope
from configsvc.model.values import digest, loads_bounded

_ERROR_STATUS = {
    ErrorCode.FLAG_NOT_FOUND: 404,
    ErrorCode.TYPE_MISMATCH: 400,
    ErrorCode.PARSE_ERROR: 400,
    ErrorCode.GENERAL: 400,
}


def _error(status: int, code: str, details: str, key: str | None = None) -> web.Response:
    body: dict[str, Any] = {"errorCode": code, "errorDetails": details}
    if key is not None:
        body["key"] = key
    return web.json_response(body, status=status)


def success_body(resolution: Resolution) -> dict[str, Any]:
    """The OFREP body of one evaluation (also the per-flag entry of bulk answers)."""
    if resolution.error_code is not None:
        return {
            "key": resolution.key,
            "errorCode": str(resolution.error_code),
            "errorDetails": resolution.error_message,
        }
    body: dict[str, Any] = {
        "key": resolution.key,
        "reason": str(resolution.reason),
        "metadata": dict(resolution.metadata),
    }
    if resolution.variant is not None:
        body["value"] = resolution.value
        body["variant"] = resolution.variant
    return body


def ofrep_failure(exc: ConfigsvcError, request: web.Request) -> web.Response:
    """An error in OFREP's shape (``errorCode``, ``errorDetails``, the flag ``key``)."""
    key = request.match_info.get("key")
    if isinstance(exc, HttpRequestError):
        return _error(exc.http_status, "GENERAL", exc.message, key)
    if isinstance(exc, UnauthenticatedError):
        return _error(401, "GENERAL", exc.message, key)
    if isinstance(exc, PermissionDeniedError):
        return _error(403, "GENERAL", exc.message, key)
    if isinstance(exc, RateLimitedError):
        response = _error(429, "GENERAL", exc.message, key)
        response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        return response
    if isinstance(exc, NotFoundError):
        return _error(404, "FLAG_NOT_FOUND" if key else "GENERAL", exc.message, key)
    if isinstance(exc, InvalidArgumentError):
        return _error(400, "INVALID_CONTEXT", exc.message, key)
    return _error(503, "GENERAL", exc.message, key)


#: ``AuthRuntime.admit_http``: (headers, permission, scopes, what, partial=...) -> None.
Admit = Callable[..., Awaitable[None]]


class OfrepServer:
    """The HTTP listener; ``start`` binds and returns the port."""

    def __init__(
        self, core: FlagsCore, admit: Admit | None = None, settings: HttpSettings | None = None
    ) -> None:
        self._core = core
        self._admit = admit
        self._settings = settings or HttpSettings()
        app = web.Application(client_max_size=self._settings.max_body_bytes)
        app.router.add_post("/ofrep/v1/evaluate/flags/{key}", guarded(self._single, ofrep_failure))
        app.router.add_post("/ofrep/v1/evaluate/flags", guarded(self._bulk, ofrep_failure))
        app.router.add_get("/metrics", guarded(self._metrics, status_response))
        self._listener = HttpListener(app, self._settings)

    @property
    def port(self) -> int:
        return self._listener.port

    async def start(self, listen: str) -> int:
        return await self._listener.start(listen)

    async def stop(self) -> None:
        await self._listener.stop()

    async def _context(self, request: web.Request) -> tuple[dict[str, Any], bytes]:
        raw = await read_body(request, self._settings)
        if not raw:
            return {}, raw
        body = loads_bounded(raw, field="body")
        context = body.get("context", {}) if isinstance(body, dict) else None
        if not isinstance(context, dict):
            raise InvalidArgumentError.single("context", "must be a JSON object")
        return context, raw

    async def _single(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        ref = await self._selected(request)  # admit before reading the body
        raw_context, _ = await self._context(request)
        context = self._core.context(ref, raw_context, request.headers.items())
        resolution = self._core.evaluate(ref, key, context, None)
        if resolution.error_code is not None:
            return web.json_response(
                success_body(resolution), status=_ERROR_STATUS[resolution.error_code]
            )
        return web.json_response(success_body(resolution))

    async def _bulk(self, request: web.Request) -> web.Response:
        ref = await self._selected(request)  # admit before reading the body
        raw_context, raw = await self._context(request)
        stored = self._core.flag_set(ref)
        etag = f'"{stored.revision}-{digest(raw)[:16]}"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        context = self._core.context(ref, raw_context, request.headers.items())
        results = self._core.evaluate_all(ref, stored, context)
        return web.json_response(
            {
                "flags": [success_body(r) for r in results],
                "metadata": dict(stored.flag_set.metadata),
            },
            headers={"ETag": etag},
        )

    async def _selected(self, request: web.Request) -> FlagSetRef:
        """The selected flag set, once the caller may read it (any read grant in its
        tenant and environment, as for the flagd RPCs)."""
        ref = self._core.select(request.headers.items())
        if self._admit is not None:
            check_credentials(request.headers)
            await self._admit(
                request.headers,
                CONFIG_READ,
                [Scope(ref.tenant, ref.environment)],
                "OFREP",
                partial=True,
            )
        return ref

    async def _metrics(self, request: web.Request) -> web.Response:
        if self._admit is not None:
            check_credentials(request.headers)
            await self._admit(request.headers, CONFIG_READ, [Scope()], "/metrics")
        return web.Response(
            text=self._core.analytics.prometheus(), content_type="text/plain", charset="utf-8"
        )
