"""Reading request bodies: bounded in time and size, decompressed safely, JSON bounded.

aiohttp's own decompression is off on every listener (``auto_decompress=False``):
with it on, a ``Content-Encoding`` it cannot decode fails inside its parser (a
logged traceback and a text/plain 400 before any route runs) and a body that lies
about being gzip fails in the middle of ``request.read()``. Here the body is read
raw and decoded in steps of bounded output, so a "zip bomb" stops at the size limit
instead of filling memory, and every failure is a typed error with a clear message.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError
from google.rpc import code_pb2

from configsvc.errors import InvalidArgumentError
from configsvc.http.settings import HttpSettings
from configsvc.http.status import HttpRequestError
from configsvc.model.values import loads_bounded

#: The content codings request bodies may use (``identity`` is no coding at all).
ENCODINGS = ("gzip", "deflate")
_ALIASES = {"gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate"}


class _Inflater:
    """Incremental gzip/deflate decoding whose output per call is capped."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._obj: Any = None

    def _start(self, first: bytes) -> Any:
        if self.encoding == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        # RFC 9110's "deflate" is the zlib format; some clients send raw deflate
        # (no zlib header): told apart by the header check, as browsers do.
        zlib_header = (
            len(first) >= 2 and first[0] & 0x0F == 8 and ((first[0] << 8) | first[1]) % 31 == 0
        )
        return zlib.decompressobj(zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS)

    def feed(self, chunk: bytes, room: int) -> bytes:
        """Decoded bytes of ``chunk``: at most ``room + 1`` of them (one more than fits
        tells the caller the body is too large, without decoding the rest)."""
        out = b""
        while chunk:
            if self._obj is None:
                self._obj = self._start(chunk)
            elif self._obj.eof:
                if self.encoding != "gzip":
                    raise self._invalid("data follows the end of the deflate stream")
                self._obj = self._start(chunk)  # the next member of a multi-member gzip
            try:
                piece: bytes = self._obj.decompress(chunk, room + 1 - len(out))
            except zlib.error as exc:
                raise self._invalid(str(exc)) from None
            out += piece
            if len(out) > room:
                return out
            chunk = self._obj.unused_data if self._obj.eof else b""
        return out

    def finish(self) -> None:
        if self._obj is not None and not self._obj.eof:
            raise self._invalid("it ends before its compressed stream does (truncated?)")

    def _invalid(self, why: str) -> InvalidArgumentError:
        return InvalidArgumentError.single(
            "body", f"is not valid {self.encoding} data (Content-Encoding: {self.encoding}): {why}"
        )


def _inflater(request: web.Request) -> _Inflater | None:
    value = request.headers.get("Content-Encoding", "").strip().lower()
    if value in ("", "identity"):
        return None
    encoding = _ALIASES.get(value)
    if encoding is None:
        shown = value if value.isprintable() and len(value) <= 40 else repr(value[:40])
        raise HttpRequestError(
            415,
            code_pb2.INVALID_ARGUMENT,
            f"Content-Encoding {shown!r} is not supported: send the body uncompressed or "
            f"with one of {', '.join(ENCODINGS)}",
            headers={"Accept-Encoding": ", ".join(ENCODINGS)},
            close=True,
        )
    return _Inflater(encoding)


def _first_line(exc: BaseException) -> str:
    """aiohttp's parser errors read "400, message:\n  <what>": keep the what."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def _too_large(limit: int) -> HttpRequestError:
    return HttpRequestError(
        413,
        code_pb2.INVALID_ARGUMENT,
        f"the request body is larger than {limit} bytes (after decompression); send less",
        close=True,
    )


async def read_body(request: web.Request, settings: HttpSettings) -> bytes:
    """The request body, decoded: within ``settings.body_timeout`` (else 408) and
    ``settings.max_body_bytes`` both before and after decompression (else 413)."""
    inflater = _inflater(request)
    limit = settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    received = 0
    body = bytearray()
    try:
        async with asyncio.timeout(settings.body_timeout):
            while chunk := await request.content.readany():
                received += len(chunk)
                if received > limit:
                    raise _too_large(limit)
                body += inflater.feed(chunk, limit - len(body)) if inflater else chunk
                if len(body) > limit:
                    raise _too_large(limit)
    except TimeoutError:
        raise HttpRequestError(
            408,
            code_pb2.DEADLINE_EXCEEDED,
            f"the request body did not arrive within {settings.body_timeout:g} s "
            f"({received} bytes received); send it at once",
            close=True,
        ) from None
    except RequestPayloadError as exc:
        raise HttpRequestError(
            400,
            code_pb2.INVALID_ARGUMENT,
            f"the request body is malformed: {_first_line(exc)}",
            close=True,
        ) from None
    if inflater is not None:
        inflater.finish()
    return bytes(body)


async def read_json(request: web.Request, settings: HttpSettings, *, field: str = "body") -> Any:
    """The body as bounded JSON (``configsvc.model.values.loads_bounded``: depth,
    ``NaN``/``Infinity``, huge integers and floats are INVALID_ARGUMENT naming
    ``field``); None for an empty body."""
    raw = await read_body(request, settings)
    return loads_bounded(raw, field=field) if raw else None
