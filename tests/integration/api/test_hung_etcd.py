"""A hung etcd (SIGSTOP: connections stay open, nothing answers) is noticed, then recovered from.

A killed etcd closes its connections and every failure is immediate; a stopped one
(a frozen VM, a disk stall, a GC pause) leaves them open, so only an active probe
can tell. These tests stop the test's own etcd with SIGSTOP and always SIGCONT it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from configsvc.devstack.etcd import EtcdServer
from configsvc.store.mirror import MirrorLiveness
from configsvc.v1 import config_pb2, tenant_pb2, watch_pb2, watch_pb2_grpc
from configsvc.watch.hub import WatchLimits
from tests.helpers import Stack, backend_of, ckey, close_stack, open_stack, rich_status

#: The liveness setting under test: a probe every 0.2 s, etcd lost after 1 s of silence.
LIVENESS = MirrorLiveness(interval=0.2, grace=1.0)
#: Streams end this long after the mirror reports etcd lost.
LOST_ETCD_GRACE = 0.5
#: Generous correctness bound for "noticed" and "recovered" (not a timing assertion).
BOUND = 20.0

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@contextlib.contextmanager
def stopped(etcd: EtcdServer) -> Iterator[Callable[[], None]]:
    """SIGSTOP ``etcd`` (our own child, by its pid); SIGCONT on exit whatever happens.

    Yields a function that resumes it early (idempotent)."""
    pid = etcd.pid
    assert pid is not None and etcd.running
    paused = True
    os.kill(pid, signal.SIGSTOP)

    def resume() -> None:
        nonlocal paused
        if paused:
            os.kill(pid, signal.SIGCONT)
            paused = False

    try:
        yield resume
    finally:
        resume()


@pytest.fixture
async def hung_stack(own_etcd: EtcdServer) -> AsyncIterator[tuple[Stack, EtcdServer]]:
    stack = await open_stack(
        own_etcd.endpoint,
        "/configsvc",
        etcd_timeout=2.0,
        mirror_backoff=(0.05, 0.5),
        mirror_liveness=LIVENESS,
        watch=WatchLimits(lost_etcd_grace=LOST_ETCD_GRACE),
    )
    try:
        yield stack, own_etcd
    finally:
        await close_stack(stack)


async def health(stack: Stack, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(stack.channel)
    response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return int(response.status)


async def eventually(
    predicate: Callable[[], Awaitable[bool]], what: str, timeout: float = BOUND
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


async def unavailable(call: Awaitable[Any]) -> grpc.aio.AioRpcError | None:
    """The call's error if it is UNAVAILABLE; None if it answered."""
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.UNAVAILABLE:
            return exc
        raise
    return None


def assert_names_etcd(exc: grpc.aio.AioRpcError) -> None:
    assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc
    assert "etcd" in (exc.details() or ""), exc.details()
    assert backend_of(exc) == "etcd"


def resume_revision(exc: grpc.aio.AioRpcError) -> int:
    status = rich_status(exc)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert status.details and status.details[0].Unpack(info)
    return int(info.metadata["resume_revision"])


async def read_to_end(call: Any, timeout: float = BOUND) -> list[watch_pb2.WatchResponse]:
    got: list[watch_pb2.WatchResponse] = []
    deadline = time.monotonic() + timeout
    while True:
        message = await asyncio.wait_for(call.read(), max(0.0, deadline - time.monotonic()))
        if message is grpc.aio.EOF:
            return got
        got.append(message)


async def read_change(call: Any, timeout: float = BOUND) -> watch_pb2.WatchResponse:
    """The next ``changes`` message (progress heartbeats are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        message = await asyncio.wait_for(call.read(), max(0.0, deadline - time.monotonic()))
        assert message is not grpc.aio.EOF
        if message.WhichOneof("kind") == "changes":
            return message


async def test_hung_etcd_is_noticed_and_everything_recovers_by_itself(
    hung_stack: tuple[Stack, EtcdServer],
) -> None:
    stack, etcd = hung_stack
    watch = watch_pb2_grpc.WatchServiceStub(stack.channel)
    await stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="acme"))
    key = ckey("acme", "k")
    await stack.config.Put(config_pb2.PutRequest(key=key, value="1"))
    # Only "k": the writes tried while etcd is stopped go to "w" (an UNAVAILABLE write's
    # outcome is unknown; etcd may still apply it once it runs again).
    selector = watch_pb2.WatchSelector(tenant="acme", environment="prod", service="api", keys=["k"])
    stream = watch.Watch(watch_pb2.WatchRequest(selectors=[selector]))
    assert (await stream.read()).WhichOneof("kind") == "progress"
    written = await stack.config.Put(config_pb2.PutRequest(key=key, value="2"))
    seen = await read_change(stream)
    assert seen.changes.revision == written.revision
    assert await health(stack) == SERVING

    with stopped(etcd):
        # Mirror reads: UNAVAILABLE naming etcd, once the grace has passed.
        async def get_fails() -> bool:
            return (
                await unavailable(stack.config.Get(config_pb2.GetRequest(key=key), timeout=5))
                is not None
            )

        await eventually(get_fails, "Get answers UNAVAILABLE")
        exc = await unavailable(stack.config.Get(config_pb2.GetRequest(key=key), timeout=5))
        assert exc is not None
        assert_names_etcd(exc)
        assert "READ_CONSISTENCY_STALE_OK" in (exc.details() or "")

        # A caller that accepts old data gets it, marked stale.
        old = await stack.config.Get(
            config_pb2.GetRequest(key=key, consistency=config_pb2.READ_CONSISTENCY_STALE_OK),
            timeout=5,
        )
        assert old.stale and old.entry.value == "2"
        assert old.revision >= written.revision

        # Health: NOT_SERVING for the server and its services.
        assert await health(stack) == NOT_SERVING
        assert await health(stack, "configsvc.v1.ConfigService") == NOT_SERVING

        # The open stream ends with UNAVAILABLE and a resume point right after what it saw.
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await read_to_end(stream)
        assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "lost etcd" in (ended.value.details() or "")
        resume = resume_revision(ended.value)
        assert resume == written.revision + 1

        # Writes and strong reads fail within their deadline with UNAVAILABLE naming etcd
        # (not DEADLINE_EXCEEDED), whether the server's etcd timeout (2 s) or the caller's
        # deadline (1.5 s) is the shorter.
        for deadline in (4.0, 1.5):
            for name, call in (
                (
                    "Put",
                    stack.config.Put(
                        config_pb2.PutRequest(key=ckey("acme", "w"), value='"lost"'),
                        timeout=deadline,
                    ),
                ),
                (
                    "strong Get",
                    stack.config.Get(
                        config_pb2.GetRequest(
                            key=key, consistency=config_pb2.READ_CONSISTENCY_STRONG
                        ),
                        timeout=deadline,
                    ),
                ),
            ):
                failed = await unavailable(call)
                assert failed is not None, (name, deadline)
                assert_names_etcd(failed)

    # etcd answers again (SIGCONT): everything comes back without anybody restarting anything.
    async def serving() -> bool:
        return await health(stack) == SERVING

    await eventually(serving, "health SERVING again")
    assert await health(stack, "configsvc.v1.ConfigService") == SERVING
    got = await stack.config.Get(config_pb2.GetRequest(key=key), timeout=5)
    assert got.entry.value == "2" and not got.stale
    after = await stack.config.Put(config_pb2.PutRequest(key=key, value="3"), timeout=5)
    got = await stack.config.Get(config_pb2.GetRequest(key=key), timeout=5)
    assert got.entry.value == "3" and not got.stale and got.revision >= after.revision
    # Resuming the ended stream: the new write, and nothing it had already seen.
    resumed = watch.Watch(watch_pb2.WatchRequest(selectors=[selector], start_revision=resume))
    try:
        change = await read_change(resumed)
        assert change.changes.revision == after.revision
        assert [(c.key.key, c.entry.value) for c in change.changes.changes] == [("k", "3")]
    finally:
        resumed.cancel()
