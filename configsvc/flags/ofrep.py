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
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from configsvc.auth.grants import CONFIG_READ, Scope
from configsvc.errors import (
    ConfigsvcError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    UnauthenticatedError,
)
from configsvc.flags.api import FlagsCore
from configsvc.flags.evaluator import ErrorCode, Resolution
from configsvc.flags.selector import FlagSetRef
from configsvc.model.values import digest

MAX_BODY = 256 * 1024
_ERROR_STATUS = {ErrorCode.FLAG_NOT_FOUND: 404, ErrorCode.TYPE_MISMATCH: 400,
                 ErrorCode.PARSE_ERROR: 400, ErrorCode.GENERAL: 400}


def _error(status: int, code: str, details: str, key: str | None = None) -> web.Response:
    body: dict[str, Any] = {"errorCode": code, "errorDetails": details}
    if key is not None:
        body["key"] = key
    return web.json_response(body, status=status)


def success_body(resolution: Resolution) -> dict[str, Any]:
    """The OFREP body of one evaluation (also the per-flag entry of bulk answers)."""
    if resolution.error_code is not None:
        return {"key": resolution.key, "errorCode": str(resolution.error_code),
                "errorDetails": resolution.error_message}
    body: dict[str, Any] = {"key": resolution.key, "reason": str(resolution.reason),
                            "metadata": dict(resolution.metadata)}
    if resolution.variant is not None:
        body["value"] = resolution.value
        body["variant"] = resolution.variant
    return body


#: ``AuthRuntime.admit_http``: (headers, permission, scopes, what, partial=...) -> None.
Admit = Callable[..., Awaitable[None]]


class OfrepServer:
    """The HTTP listener; ``start`` binds and returns the port."""

    def __init__(self, core: FlagsCore, admit: Admit | None = None) -> None:
        self._core = core
        self._admit = admit
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post("/ofrep/v1/evaluate/flags/{key}", self._single)
        app.router.add_post("/ofrep/v1/evaluate/flags", self._bulk)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        self.port = 0

    async def start(self, listen: str) -> int:
        host, _, port = listen.rpartition(":")
        await self._runner.setup()
        site = web.TCPSite(self._runner, host.strip("[]") or None, int(port))
        await site.start()
        server = site._server  # aiohttp keeps the bound sockets here
        sockets = getattr(server, "sockets", None) or ()
        self.port = int(sockets[0].getsockname()[1]) if sockets else int(port)
        return self.port

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _context(self, request: web.Request) -> tuple[dict[str, Any], bytes]:
        raw = await request.read()
        if not raw:
            return {}, raw
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidArgumentError.single("body", f"is not JSON: {exc}") from exc
        context = body.get("context", {}) if isinstance(body, dict) else None
        if not isinstance(context, dict):
            raise InvalidArgumentError.single("context", "must be a JSON object")
        return context, raw

    async def _single(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        try:
            ref = await self._selected(request)  # admit before reading the body
            raw_context, _ = await self._context(request)
            context = self._core.context(ref, raw_context, request.headers.items())
            resolution = self._core.evaluate(ref, key, context, None)
        except ConfigsvcError as exc:
            return self._failure(exc, key)
        if resolution.error_code is not None:
            return web.json_response(success_body(resolution),
                                     status=_ERROR_STATUS[resolution.error_code])
        return web.json_response(success_body(resolution))

    async def _bulk(self, request: web.Request) -> web.Response:
        try:
            ref = await self._selected(request)  # admit before reading the body
            raw_context, raw = await self._context(request)
            stored = self._core.flag_set(ref)
            etag = f'"{stored.revision}-{digest(raw)[:16]}"'
            if request.headers.get("If-None-Match") == etag:
                return web.Response(status=304, headers={"ETag": etag})
            context = self._core.context(ref, raw_context, request.headers.items())
            results = self._core.evaluate_all(ref, stored, context)
        except ConfigsvcError as exc:
            return self._failure(exc, None)
        return web.json_response(
            {"flags": [success_body(r) for r in results],
             "metadata": dict(stored.flag_set.metadata)}, headers={"ETag": etag})

    async def _selected(self, request: web.Request) -> FlagSetRef:
        """The selected flag set, once the caller may read it (any read grant in its
        tenant and environment, as for the flagd RPCs)."""
        ref = self._core.select(request.headers.items())
        if self._admit is not None:
            await self._admit(request.headers, CONFIG_READ, [Scope(ref.tenant, ref.environment)],
                              "OFREP", partial=True)
        return ref

    @staticmethod
    def _failure(exc: ConfigsvcError, key: str | None) -> web.Response:
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

    async def _metrics(self, request: web.Request) -> web.Response:
        if self._admit is not None:
            try:
                await self._admit(request.headers, CONFIG_READ, [Scope()], "/metrics")
            except ConfigsvcError as exc:
                return self._failure(exc, None)
        return web.Response(text=self._core.analytics.prometheus(),
                            content_type="text/plain", charset="utf-8")
