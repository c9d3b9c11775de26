"""configsvc.http on its own: a real HttpListener on loopback with a small test route."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import logging
import socket
import struct
import zlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from configsvc.cli.main import build_parser
from configsvc.cli.options import config_from_args
from configsvc.errors import NotFoundError
from configsvc.http import HttpListener, HttpSettings, guarded, read_body, read_json

LIMIT = 1000
SETTINGS = HttpSettings(
    header_timeout=1.0, body_timeout=1.0, send_timeout=1.0, max_body_bytes=LIMIT
)
BIG = 16 << 20


async def _echo(request: web.Request) -> web.Response:
    body = await read_body(request, SETTINGS)
    return web.json_response({"size": len(body), "sha": hashlib.sha256(body).hexdigest()})


async def _json(request: web.Request) -> web.Response:
    return web.json_response({"value": await read_json(request, SETTINGS, field="doc")})


async def _missing(request: web.Request) -> web.Response:
    raise NotFoundError("thing", request.match_info["name"])


async def _bug(request: web.Request) -> web.Response:
    raise ZeroDivisionError("a bug")


async def _big(request: web.Request) -> web.Response:
    return web.Response(body=b"b" * BIG)


@pytest.fixture
async def base() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/echo", guarded(_echo))
    app.router.add_post("/json", guarded(_json))
    app.router.add_get("/things/{name}", guarded(_missing))
    app.router.add_get("/bug", guarded(_bug))
    app.router.add_get("/big", guarded(_big))
    listener = HttpListener(app, SETTINGS)
    port = await listener.start("127.0.0.1:0")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await listener.stop()


async def _post(
    base: str, path: str, data: bytes, encoding: str | None = None
) -> tuple[int, dict[str, object]]:
    headers = {"Content-Encoding": encoding} if encoding else {}
    async with (
        aiohttp.ClientSession(auto_decompress=False) as http,
        http.post(base + path, data=data, headers=headers) as response,
    ):
        return response.status, await response.json()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_decoding(base: str) -> None:
    text = b"x" * 300 + b"y" * 300
    two_members = gzip.compress(text[:300]) + gzip.compress(text[300:])
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    raw_deflate = raw.compress(text) + raw.flush()
    for data, encoding in (
        (two_members, "gzip"),
        (gzip.compress(text), "x-gzip"),
        (zlib.compress(text), "deflate"),
        (raw_deflate, "deflate"),
        (text, None),
        (b"", "gzip"),
    ):
        status, body = await _post(base, "/echo", data, encoding)
        expected = b"" if not data else text
        assert (status, body["sha"]) == (200, _sha(expected)), (encoding, body)
    status, body = await _post(base, "/echo", zlib.compress(text) + b"junk", "deflate")
    assert status == 400 and "data follows the end" in str(body["message"])
    assert body["code"] == 3
    assert body["details"] == [
        {
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [
                {
                    "field": "body",
                    "description": "is not valid deflate data "
                    "(Content-Encoding: deflate): data follows the end of the "
                    "deflate stream",
                }
            ],
        }
    ]


async def test_the_body_limit_is_exact(base: str) -> None:
    for size, expected in ((LIMIT, 200), (LIMIT + 1, 413)):
        status, _ = await _post(base, "/echo", b"a" * size)
        assert status == expected
        status, _ = await _post(base, "/echo", gzip.compress(b"a" * size), "gzip")
        assert status == expected
    status, body = await _post(base, "/echo", gzip.compress(b"a" * 10_000_000), "gzip")
    assert status == 413 and f"larger than {LIMIT} bytes" in str(body["message"])


async def test_chunked_bodies_are_bounded_in_time(base: str) -> None:
    async def slow() -> AsyncIterator[bytes]:
        for _ in range(30):
            yield b"a"
            await asyncio.sleep(0.2)

    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/echo", data=b"abc", chunked=True) as response:
            assert (response.status, (await response.json())["size"]) == (200, 3)
        # The 408 comes after 1 s, while the client still has 5 s of body to send.
        async with http.post(f"{base}/echo", data=slow()) as response:
            assert response.status == 408
            assert "did not arrive within 1 s" in (await response.json())["message"]
            assert response.headers["Connection"] == "close"


async def test_json_and_errors(base: str, caplog: pytest.LogCaptureFixture) -> None:
    status, body = await _post(base, "/json", b'{"a": [1, 2.5]}')
    assert (status, body) == (200, {"value": {"a": [1, 2.5]}})
    status, body = await _post(base, "/json", b"[NaN]")
    assert status == 400 and str(body["message"]).startswith("doc: is not valid JSON")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/things/t1") as response:
            body = await response.json()
            assert response.status == 404 and body["code"] == 5
            assert body["details"][0]["resourceName"] == "t1"
        async with http.get(f"{base}/json") as response:
            assert response.status == 405 and response.headers["Allow"] == "POST"
            assert (await response.json())["code"] == 12
        caplog.clear()
        with caplog.at_level(logging.ERROR):
            async with http.get(f"{base}/bug") as response:
                body = await response.json()
        assert response.status == 500 and body["code"] == 13
        assert "incident" in body["message"] and "ZeroDivision" not in body["message"]
    # A bug (not bad input) is logged with its traceback, under the incident id.
    [record] = [r for r in caplog.records if r.exc_info]
    assert str(body["message"]).split("incident ")[1].split(")")[0] in record.getMessage()


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="header_timeout"):
        HttpSettings(header_timeout=0)
    with pytest.raises(ValueError, match="max_connections"):
        HttpSettings(max_connections=0)


def test_cli_options_reach_the_server_config() -> None:
    config = config_from_args(build_parser().parse_args(["serve"]))
    assert config.http == HttpSettings()
    config = config_from_args(
        build_parser().parse_args(
            [
                "serve",
                "--http-header-timeout",
                "2.5",
                "--http-body-timeout",
                "3",
                "--http-send-timeout",
                "4",
                "--http-max-body-bytes",
                "4096",
                "--http-max-connections",
                "7",
            ]
        )
    )
    assert config.http == HttpSettings(
        header_timeout=2.5,
        body_timeout=3.0,
        send_timeout=4.0,
        max_body_bytes=4096,
        max_connections=7,
    )


async def test_a_client_that_stops_reading_is_cut_off(
    base: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A 16 MiB answer to a client that reads 64 KiB and stops: after ``send_timeout``
    (1 s) the server aborts the connection instead of holding it and the answer."""
    port = int(base.rsplit(":", 1)[1])
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 16)
    try:
        writer.write(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
        await writer.drain()
        received = len(await reader.read(1 << 16))
        await asyncio.sleep(3)  # reading nothing
        try:
            while chunk := await asyncio.wait_for(reader.read(1 << 20), 10):
                received += len(chunk)
        except ConnectionResetError:
            pass
    finally:
        writer.close()
    assert 0 < received < BIG
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert any("did not read its answer" in r.getMessage() for r in caplog.records)


async def test_a_client_that_leaves_mid_body_leaves_no_traceback(
    base: str, caplog: pytest.LogCaptureFixture
) -> None:
    port = int(base.rsplit(":", 1)[1])
    for linger_reset in (False, True):
        sock = socket.socket()
        if linger_reset:  # close with a TCP reset instead of a FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.connect(("127.0.0.1", port))
        _, writer = await asyncio.open_connection(sock=sock)
        writer.write(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 900\r\n\r\n" + b"a" * 10)
        await writer.drain()
        await asyncio.sleep(0.3)  # the route is reading the body
        writer.close()
        await asyncio.sleep(0.3)
    async with aiohttp.ClientSession() as http, http.post(f"{base}/echo", data=b"ok") as response:
        assert response.status == 200
    assert not [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
