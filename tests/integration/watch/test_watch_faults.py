"""Watch streams under faults: a client that stops reading, an expiring credential.

Each test runs a real server (in process) on real etcd and talks to it with a
plain grpc.aio client, the way any client library would.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from configsvc.auth.settings import AuthSettings, JwtSettings
from configsvc.v1 import auth_pb2, watch_pb2, watch_pb2_grpc
from configsvc.watch.hub import WatchLimits
from tests.helpers import ADMIN_KEY, Stack, auth_channel, bearer, close_stack, open_stack
from tests.integration.auth.support import admin, bind, unique
from tests.integration.watch.test_watch import put, sel


@pytest.fixture
async def stingy(stack: Stack) -> AsyncIterator[Stack]:
    """A server on the session etcd whose streams may lag only a little: a small queue and
    a short grace before a sender blocked behind a silent client is given up on."""
    other = await open_stack(
        stack.server.config.etcd_endpoints[0], stack.server.config.root_prefix,
        watch=WatchLimits(queue_limit=5, progress_interval=0.3, max_age=600,
                          stuck_grace=0.5))
    yield other
    await close_stack(other)


def resume_revision(err: grpc.aio.AioRpcError) -> int:
    """ErrorInfo.metadata["resume_revision"] of a STREAM_ENDED status."""
    status = rpc_status.from_call(err)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert status.details and status.details[0].Unpack(info)
    assert info.reason == "STREAM_ENDED"
    return int(info.metadata["resume_revision"])


async def read_all(call: Any, timeout: float) -> tuple[list[watch_pb2.WatchResponse],
                                                        grpc.aio.AioRpcError | None]:
    """Every message until the stream ends, and its error status (None: ended OK).
    Fails the test if the stream is still silent and open after ``timeout`` seconds."""
    got: list[watch_pb2.WatchResponse] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            try:
                message = await asyncio.wait_for(call.read(), max(0.01, left))
            except TimeoutError:
                raise AssertionError(
                    f"stream still open and silent after {timeout} s "
                    f"({len(got)} messages read)") from None
            if message is grpc.aio.EOF:
                return got, None
            got.append(message)
    except grpc.aio.AioRpcError as err:
        return got, err


async def test_a_stream_the_server_gives_up_on_ends_with_a_status_the_client_sees(
    stingy: Stack, stack: Stack, tenant: str
) -> None:
    """A client stops reading; its queue overflows and its sender stays blocked past the
    grace. When the client reads again it gets every message the server had handed to
    gRPC, then a terminal UNAVAILABLE whose resume revision continues without a gap."""
    hub = stingy.server.hub
    stalled = watch_pb2_grpc.WatchServiceStub(stingy.channel).Watch(
        watch_pb2.WatchRequest(selectors=[sel(tenant)]))
    first = await stalled.read()  # the stream is live; from here on the client reads nothing
    assert first.WhichOneof("kind") == "progress"
    big = '"' + "x" * 60_000 + '"'  # large messages exhaust HTTP/2 flow control quickly
    stuck_before = hub.stats.cancelled_stuck
    written = []
    for i in range(200):
        written.append(await put(stack, tenant, f"k{i % 10}", big))
        if hub.stats.slow_resets and i >= 40:
            break
    assert hub.stats.slow_resets >= 1
    for _ in range(100):  # bounded: the grace is 0.5 s
        if hub.stats.cancelled_stuck > stuck_before:
            break
        await asyncio.sleep(0.1)
    assert hub.stats.cancelled_stuck > stuck_before

    got, err = await read_all(stalled, timeout=30)  # the client reads again
    revisions = [m.changes.revision for m in got if m.WhichOneof("kind") == "changes"]
    assert revisions == written[:len(revisions)]  # a prefix, in order, no gap
    resets = [m for m in got if m.WhichOneof("kind") == "reset"]
    if resets:  # the reset made it in band
        assert resets[0].reset.reason == watch_pb2.RESET_REASON_SLOW_CONSUMER
    else:
        assert err is not None, "the stream ended OK without a reset"
        assert err.code() == grpc.StatusCode.UNAVAILABLE
        assert "stopped reading" in (err.details() or "")
        resume = resume_revision(err)
        assert resume == revisions[-1] + 1
        # Resuming there gives the rest, without a gap or a duplicate.
        rest = watch_pb2_grpc.WatchServiceStub(stingy.channel).Watch(
            watch_pb2.WatchRequest(selectors=[sel(tenant)], start_revision=resume))
        more: list[int] = []
        while len(more) < len(written) - len(revisions):
            message = await asyncio.wait_for(rest.read(), 30)
            assert message.WhichOneof("kind") in ("changes", "progress")
            if message.WhichOneof("kind") == "changes":
                more.append(message.changes.revision)
        rest.cancel()
        assert revisions + more == written


async def test_a_watch_held_with_an_expiring_key_ends_with_credential_expired(
    stack: Stack, tenant: str
) -> None:
    name = unique("watch-ttl")
    created = await admin(stack).CreateApiKey(auth_pb2.CreateApiKeyRequest(
        name=name, ttl=duration_pb2.Duration(seconds=2)))
    await bind(stack, f"key:{name}", auth_pb2.ROLE_VIEWER, tenant)
    async with auth_channel(stack.address, created.secret) as channel:
        call = watch_pb2_grpc.WatchServiceStub(channel).Watch(
            watch_pb2.WatchRequest(selectors=[sel(tenant)]))
        got, err = await read_all(call, timeout=30)
    assert got and got[0].WhichOneof("kind") == "progress"
    assert err is not None and err.code() == grpc.StatusCode.UNAVAILABLE
    details = err.details() or ""
    assert "credential expired" in details, details
    assert "maximum stream age" not in details
    assert resume_revision(err) > 0


async def test_a_watch_held_with_an_expiring_jwt_ends_with_credential_expired(
    stack: Stack, tenant: str, tmp_path: Path
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public: dict[str, object] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    public["kid"] = "k1"
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [public]}))
    issuer, audience = "https://issuer.test", "configsvc"
    settings = AuthSettings(bootstrap_admin_key=ADMIN_KEY, jwt=JwtSettings(
        issuer=issuer, audience=audience, jwks_file=jwks))
    other = await open_stack(stack.server.config.etcd_endpoints[0],
                             stack.server.config.root_prefix, auth=settings)
    try:
        subject = unique("watcher")
        await bind(other, f"jwt:{subject}", auth_pb2.ROLE_VIEWER, tenant)
        token = jwt.encode({"iss": issuer, "aud": audience, "sub": subject,
                            "exp": int(time.time()) + 3}, key, algorithm="RS256",
                           headers={"kid": "k1"})
        async with grpc.aio.insecure_channel(other.address) as channel:
            call = watch_pb2_grpc.WatchServiceStub(channel).Watch(
                watch_pb2.WatchRequest(selectors=[sel(tenant)]), metadata=bearer(token))
            got, err = await read_all(call, timeout=30)
    finally:
        await close_stack(other)
    assert got and got[0].WhichOneof("kind") == "progress"
    assert err is not None and err.code() == grpc.StatusCode.UNAVAILABLE
    assert "credential expired" in (err.details() or ""), err.details()
