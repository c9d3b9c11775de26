"""Watch streams under faults: a client that stops reading, an expiring credential.

Each test runs a real server (in process) on real etcd and talks to it with a
plain grpc.aio client, the way any client library would.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import hvac
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2

from configsvc.auth.settings import AuthSettings, JwtSettings
from configsvc.devstack.etcd import EtcdServer
from configsvc.devstack.openbao import OpenBaoDevServer
from configsvc.secrets.settings import VaultAuth, VaultSettings
from configsvc.v1 import auth_pb2, config_pb2, tenant_pb2, watch_pb2, watch_pb2_grpc
from configsvc.watch.hub import WatchLimits
from tests.helpers import (
    ADMIN_KEY,
    Stack,
    auth_channel,
    bearer,
    ckey,
    close_stack,
    open_stack,
    rich_status,
    secret_settings,
)
from tests.integration.auth.support import admin, bind, unique
from tests.integration.secrets.support import READER, install_callers, ref, text
from tests.integration.watch.test_watch import changed_keys, put, sel


@pytest.fixture
async def stingy(stack: Stack) -> AsyncIterator[Stack]:
    """A server on the session etcd whose streams may lag only a little: a small queue and
    a short grace before a sender blocked behind a silent client is given up on."""
    other = await open_stack(
        stack.server.config.etcd_endpoints[0],
        stack.server.config.root_prefix,
        watch=WatchLimits(queue_limit=5, progress_interval=0.3, max_age=600, stuck_grace=0.5),
    )
    yield other
    await close_stack(other)


def resume_revision(err: grpc.aio.AioRpcError) -> int:
    """ErrorInfo.metadata["resume_revision"] of a STREAM_ENDED status."""
    status = rich_status(err)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert status.details and status.details[0].Unpack(info)
    assert info.reason == "STREAM_ENDED"
    return int(info.metadata["resume_revision"])


async def read_all(
    call: Any, timeout: float
) -> tuple[list[watch_pb2.WatchResponse], grpc.aio.AioRpcError | None]:
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
                    f"stream still open and silent after {timeout} s ({len(got)} messages read)"
                ) from None
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
        watch_pb2.WatchRequest(selectors=[sel(tenant)])
    )
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
    assert revisions == written[: len(revisions)]  # a prefix, in order, no gap
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
            watch_pb2.WatchRequest(selectors=[sel(tenant)], start_revision=resume)
        )
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
    created = await admin(stack).CreateApiKey(
        auth_pb2.CreateApiKeyRequest(name=name, ttl=duration_pb2.Duration(seconds=2))
    )
    await bind(stack, f"key:{name}", auth_pb2.ROLE_VIEWER, tenant)
    async with auth_channel(stack.address, created.secret) as channel:
        call = watch_pb2_grpc.WatchServiceStub(channel).Watch(
            watch_pb2.WatchRequest(selectors=[sel(tenant)])
        )
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
    settings = AuthSettings(
        bootstrap_admin_key=ADMIN_KEY,
        jwt=JwtSettings(issuer=issuer, audience=audience, jwks_file=jwks),
    )
    other = await open_stack(
        stack.server.config.etcd_endpoints[0], stack.server.config.root_prefix, auth=settings
    )
    try:
        subject = unique("watcher")
        await bind(other, f"jwt:{subject}", auth_pb2.ROLE_VIEWER, tenant)
        token = jwt.encode(
            {"iss": issuer, "aud": audience, "sub": subject, "exp": int(time.time()) + 3},
            key,
            algorithm="RS256",
            headers={"kid": "k1"},
        )
        async with grpc.aio.insecure_channel(other.address) as channel:
            call = watch_pb2_grpc.WatchServiceStub(channel).Watch(
                watch_pb2.WatchRequest(selectors=[sel(tenant)]), metadata=bearer(token)
            )
            got, err = await read_all(call, timeout=30)
    finally:
        await close_stack(other)
    assert got and got[0].WhichOneof("kind") == "progress"
    assert err is not None and err.code() == grpc.StatusCode.UNAVAILABLE
    assert "credential expired" in (err.details() or ""), err.details()


@contextmanager
def stopped(process: OpenBaoDevServer) -> Iterator[None]:
    """SIGSTOP the test's own OpenBao (by its pid: it answers nothing, connections stay
    open); SIGCONT on exit whatever happens."""
    pid = process.pid
    assert pid is not None and process.running
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def test_a_stream_given_up_on_while_vault_stalls_resumes_at_the_unsent_change(
    etcd: EtcdServer, openbao: OpenBaoDevServer, own_bao: OpenBaoDevServer
) -> None:
    """A resolving stream's sender waits on a hung Vault while changes pile up behind it:
    the stream ends with the revision of the change it never handed to gRPC (not the
    first one the queue dropped), so resuming there skips nothing."""
    root = f"/configsvc-vault-stall-{os.getpid()}"
    for bao in (openbao, own_bao):  # the writer checks references against the other one
        client = hvac.Client(url=bao.address, token=bao.token)
        client.secrets.kv.v2.create_or_update_secret(
            path="app/stall", secret={"password": "s3cret"}
        )
        client.adapter.close()
    writer = await open_stack(etcd.endpoint, root, secrets=secret_settings(openbao))
    watcher = await open_stack(
        etcd.endpoint,
        root,
        secrets=secret_settings(
            own_bao,
            cache_ttl=0.0,
            vault=VaultSettings(
                address=own_bao.address, auth=VaultAuth(token=own_bao.token), timeout=20.0
            ),
        ),
        watch=WatchLimits(queue_limit=5, progress_interval=0.3, max_age=600, stuck_grace=0.5),
    )
    try:
        await install_callers(writer)
        await writer.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="acme"))
        stub = watch_pb2_grpc.WatchServiceStub(watcher.channel)
        call = stub.Watch(
            watch_pb2.WatchRequest(selectors=[sel("acme")], resolve_secrets=True), metadata=READER
        )
        assert (await call.read()).WhichOneof("kind") == "progress"
        hub = watcher.server.hub
        with stopped(own_bao):
            secret = await writer.config.Put(
                config_pb2.PutRequest(key=ckey("acme", "db"), value=text(ref("app/stall")))
            )
            plain = [await put(writer, "acme", f"k{i}") for i in range(10)]
            for _ in range(100):  # bounded: the grace is 0.5 s
                if hub.stats.cancelled_stuck:
                    break
                await asyncio.sleep(0.1)
            assert hub.stats.cancelled_stuck == 1
            got, err = await read_all(call, timeout=30)
        assert changed_keys(got) == []
        assert err is not None and err.code() == grpc.StatusCode.UNAVAILABLE
        assert resume_revision(err) == secret.revision
        resumed = stub.Watch(
            watch_pb2.WatchRequest(
                selectors=[sel("acme")], resolve_secrets=True, start_revision=secret.revision
            ),
            metadata=READER,
        )
        more: list[watch_pb2.WatchResponse] = []
        while (
            not more
            or more[-1].WhichOneof("kind") != "changes"
            or (more[-1].changes.revision < plain[-1])
        ):
            message = await asyncio.wait_for(resumed.read(), 30)
            assert message.WhichOneof("kind") in ("changes", "progress"), message
            more.append(message)
        resumed.cancel()
        assert [r for r, _, _ in changed_keys(more)] == [secret.revision, *plain]
        first = more[0].changes.changes[0]
        assert first.key.key == "db" and json.loads(first.entry.value) == "s3cret"
    finally:
        await close_stack(watcher)
        await close_stack(writer)
