"""Streams that stop delivering: a client whose callbacks are slow, a server that goes silent.

Issue 17, item 1: a stream the server gave up on may end with nothing the client sees
(its reset is never delivered), and a server may stop answering without closing the
connection. Either way the client must not report itself fresh while its keys fall
behind: within a bound it is current or reports stale, and once the cause is gone it
converges to the latest values by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from clients.python.tests.integration.support import Server, eventually, start_server
from configsvc.devstack.etcd import EtcdServer
from configsvc.devstack.ports import free_port
from configsvc.watch.hub import WatchLimits
from configsvc_client import Backoff, Change, ConfigClient, Selector, SyncConfigClient
from tests.helpers import child_processes, serve_argv

ROOT = Path(__file__).resolve().parents[4]
FAST = Backoff(initial=0.05, maximum=0.5)
#: The servers here heartbeat every PROGRESS seconds; the clients are told so, and treat
#: SILENCE_INTERVALS of them without a message as a dead stream (1.5 s).
PROGRESS = 0.5
SILENCE_INTERVALS = 3.0
#: The bound within which a client must be current or report stale (generous: 1.5 s
#: silence limit plus a loaded machine).
BOUND = 10.0
#: Values big enough that a few dozen of them fill the HTTP/2 windows and the server's
#: per-stream queue, so a stream that is not read really backs up on the server.
PADDING = "x" * 200_000
WRITES = 60
KEYS = 5


def _limits() -> WatchLimits:
    # A small queue and stuck grace: the server resets the unread stream and, its sender
    # being blocked on flow control, gives up on it within a second (the case where the
    # reset is never delivered).
    return WatchLimits(queue_limit=4, progress_interval=PROGRESS, stuck_grace=0.5)


def _value(i: int) -> str:
    return f'{{"i": {i}, "pad": "{PADDING}"}}'


def _current(client: ConfigClient | SyncConfigClient, expected: dict[str, str]) -> bool:
    held = {f"{e.key.environment}/{e.key.service}/{e.key.key}": e.value for e in client.entries()}
    return held == expected


def _ok_within_bound(client: ConfigClient | SyncConfigClient, expected: dict[str, str]) -> bool:
    """The acceptance condition: the client reports stale, or all its keys are current."""
    return client.status.stale or _current(client, expected)


async def _write_overflow(server: Server, tenant: str) -> dict[str, str]:
    for i in range(WRITES):
        await server.put(tenant, f"k{i % KEYS}", _value(i))
    return await server.values(tenant)


def _latest_by_key(changes: list[Change]) -> dict[str, int]:
    last: dict[str, int] = {}
    for change in changes:
        last[change.path.key] = change.value["i"]
    return last


EXPECTED_LAST = {f"k{i % KEYS}": i for i in range(WRITES - KEYS, WRITES)}


async def test_a_slow_async_callback_does_not_stall_the_stream(etcd: EtcdServer) -> None:
    """An async callback that sleeps long: the stream is still read, so the cache is current
    within the bound (or the client says stale), and the callback hears the latest values."""
    server = await start_server(etcd.endpoint, f"/client-slow-cb-{os.getpid()}", watch=_limits())
    try:
        await server.create_tenant("acme")
        await server.put("acme", "k0", _value(-1))
        async with ConfigClient.connect(
            server.address,
            selectors=[Selector(tenant="acme")],
            backoff=FAST,
            progress_interval=PROGRESS,
            silence_intervals=SILENCE_INTERVALS,
            max_pending_changes=8,
        ) as client:
            release = asyncio.Event()
            seen: list[Change] = []

            async def slow(change: Change) -> None:
                if not release.is_set():
                    # Sleeps long (bounded: the test releases it, or 60 s pass).
                    await asyncio.wait_for(release.wait(), 60)
                seen.append(change)

            client.subscribe("acme/prod/api/", slow, prefix=True)
            expected = await _write_overflow(server, "acme")
            await eventually(
                lambda: _ok_within_bound(client, expected),
                timeout=BOUND,
                what="stale or current while the callback sleeps",
            )
            release.set()
            await eventually(
                lambda: _current(client, expected), timeout=30, what="the cache converged"
            )
            assert await client.wait_fresh(timeout=15)
            await eventually(
                lambda: _latest_by_key(seen) == EXPECTED_LAST,
                timeout=30,
                what="the callback heard the latest values",
            )
            # The callbacks fell more than max_pending_changes behind: they got the net
            # difference, still one at a time in revision order.
            assert client.stats.deliveries_coalesced >= 1, client.stats
            revisions = [c.revision for c in seen]
            assert revisions == sorted(revisions)
    finally:
        await server.stop()


def _blocking_scenario(
    address: str,
    expected_ready: threading.Event,
    expected: dict[str, str],
    blocked: threading.Event,
    release: threading.Event,
) -> list[str]:
    """A SyncConfigClient whose (blocking) callback holds its thread, and so its event loop
    and the stream, for up to 20 s; returns the failed checks."""
    failures: list[str] = []
    seen: list[Change] = []

    def sleepy(change: Change) -> None:
        if not release.is_set():
            blocked.set()
            release.wait(20)  # time.sleep-like: the client's loop cannot run meanwhile
        seen.append(change)

    with SyncConfigClient.connect(
        address,
        selectors=[Selector(tenant="acme")],
        backoff=FAST,
        progress_interval=PROGRESS,
        silence_intervals=SILENCE_INTERVALS,
    ) as client:
        client.subscribe("acme/prod/api/", sleepy, prefix=True)
        expected_ready.set()  # the test's loop now writes (the first write blocks sleepy)
        if not blocked.wait(30):
            return ["the callback never ran"]
        deadline = time.monotonic() + BOUND
        while not _ok_within_bound(client, expected):
            if time.monotonic() > deadline:
                failures.append(
                    f"neither stale nor current within {BOUND}s while the "
                    f"callback blocks: {client.status}"
                )
                break
            time.sleep(0.05)
        release.set()
        deadline = time.monotonic() + 30
        while not (
            _current(client, expected)
            and not client.status.stale
            and _latest_by_key(seen) == EXPECTED_LAST
        ):
            if time.monotonic() > deadline:
                failures.append(
                    f"no convergence after the callback let go: {client.status}, "
                    f"{client.stats}, heard {_latest_by_key(seen)}"
                )
                break
            time.sleep(0.05)
    return failures


async def test_a_callback_that_blocks_the_client_thread_reports_stale_then_converges(
    etcd: EtcdServer,
) -> None:
    """The issue's case: a blocking callback holds the client's only thread, the server
    resets the unread stream and gives up on it without a status the client sees. While
    blocked the client reports stale (from any thread), afterwards it converges."""
    server = await start_server(etcd.endpoint, f"/client-blocked-cb-{os.getpid()}", watch=_limits())
    try:
        await server.create_tenant("acme")
        await server.put("acme", "k0", _value(-1))
        ready, blocked, release = threading.Event(), threading.Event(), threading.Event()
        expected: dict[str, str] = {}
        scenario = asyncio.ensure_future(
            asyncio.to_thread(_blocking_scenario, server.address, ready, expected, blocked, release)
        )
        try:
            await eventually(ready.is_set, timeout=30, what="the sync client subscribed")
            expected.update(await _write_overflow(server, "acme"))
            failures = await asyncio.wait_for(scenario, 90)
        finally:
            release.set()
        assert failures == []
    finally:
        await server.stop()


# -- a server that goes silent without closing ---------------------------------------------


@contextmanager
def _serve(etcd: EtcdServer, root: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``configsvc serve`` as a process (it can be SIGSTOPped), auth off, fast heartbeats."""
    port = free_port()
    process = subprocess.Popen(
        serve_argv(
            etcd.endpoint,
            root,
            port,
            "--auth",
            "off",
            "--grace-period",
            "1",
            "--watch-progress-interval",
            str(PROGRESS),
        ),
        cwd=ROOT,
    )
    try:
        yield f"127.0.0.1:{port}", process
    finally:
        for pid in [process.pid, *child_processes(process.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _signal_all(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    for pid in [process.pid, *child_processes(process.pid)]:
        os.kill(pid, sig)


async def test_a_server_that_goes_silent_without_closing(etcd: EtcdServer) -> None:
    """SIGSTOP the client's server: the connection stays open but nothing comes. The client
    reports stale within the bound (long before TCP keepalive would notice), keeps trying,
    and once the server runs again it converges to the writes made meanwhile."""
    root = f"/client-sigstop-{os.getpid()}"
    writer = await start_server(etcd.endpoint, root)  # a second replica on the same etcd
    try:
        await writer.create_tenant("acme")
        for i in range(KEYS):
            await writer.put("acme", f"k{i}", str(i))
        with _serve(etcd, root) as (address, process):
            async with ConfigClient.connect(
                address,
                selectors=[Selector(tenant="acme")],
                backoff=FAST,
                connect_timeout=30,
                progress_interval=PROGRESS,
                silence_intervals=SILENCE_INTERVALS,
            ) as client:
                seen: list[Change] = []
                client.subscribe("acme/prod/api/", seen.append, prefix=True)
                assert await client.wait_fresh(timeout=15)
                await asyncio.sleep(3 * PROGRESS)  # heartbeats keep a quiet stream fresh
                await eventually(
                    lambda: not client.status.stale, timeout=15, what="fresh on a quiet stream"
                )

                _signal_all(process, signal.SIGSTOP)
                try:
                    for i in range(3 * KEYS):
                        await writer.put("acme", f"k{i % KEYS}", str(100 + i))
                    expected = await writer.values("acme")
                    await eventually(
                        lambda: _ok_within_bound(client, expected),
                        timeout=BOUND,
                        what="stale while the server is stopped",
                    )
                    # The stale status comes from the clock; the watchdog that cancels the
                    # call and names the silence runs right after.
                    await eventually(
                        lambda: "silence" in (client.status.last_error or ""),
                        timeout=BOUND,
                        what="the silence named",
                    )
                    assert client.status.stale and not client.status.connected
                    # And it stays stale while the server is stopped (the kernel still
                    # accepts new streams; none of them may count as live), 2 s of samples.
                    fresh_samples = []
                    for _ in range(40):
                        await asyncio.sleep(0.05)
                        if not client.status.stale:
                            fresh_samples.append(client.status)
                    assert fresh_samples == []
                finally:
                    _signal_all(process, signal.SIGCONT)

                await eventually(
                    lambda: _current(client, expected),
                    timeout=30,
                    what="the cache converged after SIGCONT",
                )
                assert await client.wait_fresh(timeout=15)
                await eventually(
                    lambda: (
                        {c.path.key: c.value for c in seen}
                        == {f"k{i % KEYS}": 100 + i for i in range(2 * KEYS, 3 * KEYS)}
                    ),
                    timeout=15,
                    what="the callback heard the latest values",
                )
                assert client.stats.silent_streams >= 1, client.stats
    finally:
        await writer.stop()
