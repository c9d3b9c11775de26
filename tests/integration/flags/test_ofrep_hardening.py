"""Hostile HTTP input on the OFREP listener: every attack gets a 4xx with a clear body.

A real server (real etcd, auth on) with OFREP enabled; the attacks go over raw sockets
where an HTTP client library would refuse to send them (undecodable header bytes, a lying
``Content-Encoding``, bytes dribbled one at a time).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import time
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from configsvc.devstack.etcd import EtcdServer
from configsvc.http import HttpSettings
from tests.helpers import ADMIN_KEY, Stack
from tests.integration.flags.support import ofrep_stack

FLAGS = {
    "flags": {
        "banner": {
            "state": "ENABLED",
            "variants": {"a": "A", "b": "B"},
            "defaultVariant": "a",
            "targeting": {"if": [{"==": [{"var": "plan"}, "gold"]}, "b", "a"]},
        }
    }
}
SINGLE = "/ofrep/v1/evaluate/flags/banner"
BULK = "/ofrep/v1/evaluate/flags"
#: Short enough that the slow-client tests finish quickly.
SETTINGS = HttpSettings(header_timeout=1.0, body_timeout=1.0, max_connections=200)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, object]:
        loaded = json.loads(self.body)
        assert isinstance(loaded, dict)
        return loaded


@pytest.fixture
async def port(etcd: EtcdServer, stack: Stack, tenant: str) -> AsyncIterator[int]:
    async with ofrep_stack(etcd, stack, tenant, FLAGS, http=SETTINGS) as served:
        yield served.server.flags.ofrep_port


def request(
    path: str,
    body: bytes = b"",
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    raw_headers: bytes = b"",
    credential: bool = True,
) -> bytes:
    """One HTTP/1.1 request as bytes (``Connection: close``)."""
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Connection: close",
        f"Content-Length: {len(body)}",
    ]
    if credential:
        lines.append(f"X-API-Key: {ADMIN_KEY}")
    if body:
        lines.append("Content-Type: application/json")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return "\r\n".join(lines).encode() + b"\r\n" + raw_headers + b"\r\n" + body


async def exchange(port: int, data: bytes) -> Answer:
    """Send ``data``, read the whole answer (the server closes: ``Connection: close``)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(status_line.split()[1]), headers, body)


def nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def assert_ofrep_error(answer: Answer, status: int, code: str, *phrases: str) -> str:
    assert answer.status == status, answer
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert body["errorCode"] == code, body
    details = body["errorDetails"]
    assert isinstance(details, str)
    for phrase in phrases:
        assert phrase in details, details
    return details


def assert_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage() for r in bad]


async def test_deep_nesting_big_numbers_and_nan_are_invalid_context(
    port: int, caplog: pytest.LogCaptureFixture
) -> None:
    cases = [
        (f'{{"context": {nested(1000)}}}', "nested too deeply"),
        ("[" * 1000 + "]" * 1000, "nested too deeply"),
        ('{"context": {"n": ' + "7" * 5000 + "}}", "5000 digits"),
        ('{"context": {"n": NaN}}', "NaN"),
        ('{"context": {"n": Infinity}}', "Infinity"),
        ('{"context": {"n": -Infinity}}', "Infinity"),
        ('{"context": {"n": 1e999}}', "64-bit float"),
        ('{"context": "plan"}', "JSON object"),
        ("{not json", "not valid JSON"),
    ]
    for path in (SINGLE, BULK):
        for text, phrase in cases:
            answer = await exchange(port, request(path, text.encode()))
            assert_ofrep_error(answer, 400, "INVALID_CONTEXT", phrase)
        answer = await exchange(port, request(path, b'{"context": {"p": "\xff"}}'))
        assert_ofrep_error(answer, 400, "INVALID_CONTEXT", "UTF-8")
        # Depth 100 is deep, but inside the bound: evaluated normally.
        answer = await exchange(port, request(path, f'{{"context": {nested(100)}}}'.encode()))
        assert answer.status == 200, answer
    answer = await exchange(port, request(SINGLE, b'{"context": {"plan": "gold", "n": 1.5}}'))
    assert (answer.status, answer.json()["value"]) == (200, "B")
    assert_no_traceback(caplog)


async def test_content_encoding(port: int, caplog: pytest.LogCaptureFixture) -> None:
    body = b'{"context": {"plan": "gold"}}'
    # Compressed bodies are decompressed (gzip and deflate, the encodings HTTP clients send).
    for encoding, data in (
        ("gzip", gzip.compress(body)),
        ("deflate", zlib.compress(body)),
        ("GZip", gzip.compress(body)),
        ("identity", body),
    ):
        answer = await exchange(port, request(SINGLE, data, headers={"Content-Encoding": encoding}))
        assert (answer.status, answer.json()["value"]) == (200, "B"), (encoding, answer)
    # A plain body that claims to be gzip: the body is not what it says.
    answer = await exchange(port, request(SINGLE, body, headers={"Content-Encoding": "gzip"}))
    assert_ofrep_error(answer, 400, "INVALID_CONTEXT", "gzip")
    truncated = gzip.compress(body)[:-6]
    answer = await exchange(port, request(SINGLE, truncated, headers={"Content-Encoding": "gzip"}))
    assert_ofrep_error(answer, 400, "INVALID_CONTEXT", "gzip")
    # Encodings the server does not decode: 415, naming what it accepts.
    for encoding in ("br", "zstd", "compress", "gzip, gzip", "x-custom"):
        answer = await exchange(port, request(SINGLE, body, headers={"Content-Encoding": encoding}))
        assert_ofrep_error(answer, 415, "GENERAL", "gzip", "deflate")
        assert "gzip, deflate" in answer.headers["accept-encoding"]
    # A zip bomb: 64 MiB of zeros in 64 KiB; decompression stops at the body limit.
    bomb = gzip.compress(b" " * (64 << 20), compresslevel=9)
    assert len(bomb) < 256 << 10
    for path in (SINGLE, BULK):
        answer = await exchange(port, request(path, bomb, headers={"Content-Encoding": "gzip"}))
        assert_ofrep_error(answer, 413, "GENERAL", "262144 bytes")
    # The same limit without compression.
    answer = await exchange(port, request(SINGLE, b" " * (300 << 10)))
    assert_ofrep_error(answer, 413, "GENERAL", "262144 bytes")
    assert_no_traceback(caplog)


async def test_undecodable_and_non_ascii_headers(
    port: int, caplog: pytest.LogCaptureFixture
) -> None:
    body = b'{"context": {}}'
    # A credential is ASCII by construction: anything else is not a credential (401).
    for raw in (
        b"X-API-Key: cs_\xff\xfe\r\n",
        b"X-API-Key: cl\xc3\xa9\r\n",
        b"Authorization: Bearer \xff\r\n",
        b"Authorization: Bearer \xc3\xa9t\xc3\xa9\r\n",
    ):
        answer = await exchange(port, request(SINGLE, body, raw_headers=raw, credential=False))
        assert_ofrep_error(answer, 401, "GENERAL", "ASCII")
        answer = await exchange(
            port, request("/metrics", method="GET", raw_headers=raw, credential=False)
        )
        assert answer.status == 401, answer
        assert "ASCII" in str(answer.json()["message"])
    # Other headers the server reads: undecodable bytes are a bad request (400).
    answer = await exchange(port, request(SINGLE, body, raw_headers=b"flagd-selector: t\xff/p\r\n"))
    assert_ofrep_error(answer, 400, "INVALID_CONTEXT", "flagd-selector", "UTF-8")
    answer = await exchange(
        port, request(SINGLE, body, raw_headers=b"x-configsvc-service: \xff\xff\r\n")
    )
    assert_ofrep_error(answer, 400, "INVALID_CONTEXT", "x-configsvc-service", "UTF-8")
    # A flag key that is not UTF-8 once percent-decoded is just an unknown flag.
    answer = await exchange(port, request("/ofrep/v1/evaluate/flags/%FF%FE%0A", body))
    assert_ofrep_error(answer, 404, "FLAG_NOT_FOUND")
    answer = await exchange(port, request("/metrics", method="GET"))
    assert answer.status == 200
    assert_no_traceback(caplog)


async def test_status_json_outside_ofrep(port: int, caplog: pytest.LogCaptureFixture) -> None:
    """Routes without an OFREP error format answer ``google.rpc.Status`` JSON."""
    answer = await exchange(port, request("/metrics", method="GET", credential=False))
    assert answer.status == 401
    status = answer.json()
    assert status["code"] == 16 and "X-API-Key" in str(status["message"])
    assert status["details"] == []
    answer = await exchange(port, request("/nowhere", method="GET"))
    assert answer.status == 404
    assert answer.json()["code"] == 5
    answer = await exchange(port, request("/metrics", method="POST"))
    assert answer.status == 405
    assert answer.json()["code"] == 12
    answer = await exchange(port, request("/metrics", method="GET"))
    assert answer.status == 200 and b"configsvc_flag_evaluations_total" in answer.body
    assert_no_traceback(caplog)


async def test_malformed_http_is_answered_without_a_traceback(
    port: int, caplog: pytest.LogCaptureFixture
) -> None:
    for data in (
        b"GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n",
        b"POST /x HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\n\r\n",
    ):
        answer = await exchange(port, data)
        assert 400 <= answer.status < 500, answer
    assert_no_traceback(caplog)
    # One warning line (rate-limited), not one per request.
    lines = [r for r in caplog.records if "malformed HTTP request" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING


async def dribble(port: int, head: bytes, drip: bytes, deadline: float) -> tuple[float, bytes]:
    """Send ``head``, then one byte of ``drip`` every 0.2 s; return when the server closed
    the connection (seconds taken, what it answered)."""
    start = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    received = b""
    try:
        writer.write(head)
        for byte in drip:
            if time.monotonic() - start > deadline:
                break
            writer.write(bytes([byte]))
            try:
                await writer.drain()
                chunk = await asyncio.wait_for(reader.read(65536), 0.2)
            except TimeoutError:
                continue
            except ConnectionError:
                break
            if not chunk:
                break
            received += chunk
        else:
            raise AssertionError("the drip ran dry before the server closed")
        received += await asyncio.wait_for(reader.read(), 5)
    except ConnectionError:
        pass
    finally:
        writer.close()
    return time.monotonic() - start, received


async def test_slow_clients_are_disconnected(port: int) -> None:
    """50 clients dribbling their headers and 50 dribbling their bodies, one byte per
    0.2 s: the server closes every one within a bound (header/body timeout 1 s here),
    and answers a normal request meanwhile."""
    deadline = 20.0
    slow_head = request(SINGLE, b"").split(b"Content-Length")[0]
    headers_drip = b"X-Slow: " + b"a" * 1000
    body = b'{"context": {"plan": "gold"}}' + b" " * 1000
    body_head = request(SINGLE, body)[: -len(body)]
    tasks = [
        asyncio.create_task(dribble(port, slow_head, headers_drip, deadline)) for _ in range(50)
    ]
    tasks += [asyncio.create_task(dribble(port, body_head, body, deadline)) for _ in range(50)]
    await asyncio.sleep(0.5)
    answer = await exchange(port, request(SINGLE, b'{"context": {"plan": "gold"}}'))
    assert (answer.status, answer.json()["value"]) == (200, "B")
    results = await asyncio.gather(*tasks)
    assert all(taken < deadline for taken, _ in results), sorted(t for t, _ in results)[-3:]
    body_answers = [received for _, received in results[50:]]
    assert all(received.startswith(b"HTTP/1.1 408") for received in body_answers), body_answers[:3]
    assert b"body" in body_answers[0].partition(b"\r\n\r\n")[2]
    # An idle connection (no request at all) is closed too, and so is a keep-alive
    # connection left idle after its answer.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        assert await asyncio.wait_for(reader.read(), deadline) == b""
    finally:
        writer.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request(SINGLE, b"{}").replace(b"Connection: close", b"X-Keep: 1"))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), deadline)
        assert head.startswith(b"HTTP/1.1 200") and b"Connection: close" not in head
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        assert await asyncio.wait_for(reader.read(), deadline) == b""
    finally:
        writer.close()


async def test_connection_cap(etcd: EtcdServer, stack: Stack, tenant: str) -> None:
    async with ofrep_stack(
        etcd, stack, tenant, FLAGS, http=HttpSettings(max_connections=10)
    ) as served:
        idle = []
        try:
            port = served.server.flags.ofrep_port
            for _ in range(10):
                idle.append(await asyncio.open_connection("127.0.0.1", port))
            await asyncio.sleep(0.2)
            answer = await exchange(port, request(SINGLE, b"{}"))
            assert answer.status == 503
            assert "10 connections" in str(answer.json()["message"])
            assert answer.headers["retry-after"] == "1"
            for _, writer in idle:
                writer.close()
            idle.clear()
            for _ in range(50):  # the server notices the closed connections
                answer = await exchange(port, request(SINGLE, b"{}"))
                if answer.status != 503:
                    break
                await asyncio.sleep(0.1)
            assert answer.status == 200, answer
        finally:
            for _, writer in idle:
                writer.close()
