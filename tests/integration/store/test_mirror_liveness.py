"""The mirror's liveness probe against a real etcd: a hung etcd and a watch that stops
delivering are both reported as lost etcd, and the mirror comes back by itself."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aetcd import rpc

from configsvc.devstack.etcd import EtcdServer
from configsvc.store.etcd import EtcdClient
from configsvc.store.keyspace import Keyspace
from configsvc.store.mirror import Mirror, MirrorLiveness

KS = Keyspace("/configsvc")
LIVENESS = MirrorLiveness(interval=0.1, grace=0.5)
BOUND = 15.0  # correctness bound, not a timing assertion


class DeafMirror(Mirror):
    """A mirror whose watch silently stops delivering while ``deaf`` is set.

    Only the mirror's own apply step is bypassed (etcd, its watch and the probe
    are real): the failure it stands for, a watch stream that stays open but
    carries nothing, cannot be produced on demand with a real etcd.
    """

    deaf = False

    def _apply(self, events: Any) -> None:
        if not self.deaf:
            super()._apply(events)


async def until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + BOUND
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {BOUND} s: {what}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def following(
    etcd: EtcdServer, cls: type[Mirror] = Mirror
) -> AsyncIterator[tuple[Mirror, EtcdClient, list[bool]]]:
    client = EtcdClient([etcd.endpoint], timeout=2.0)
    mirror = cls(client, KS, backoff_min=0.05, backoff_max=0.3, liveness=LIVENESS)
    events: list[bool] = []
    mirror.add_sync_listener(events.append)
    mirror.start()
    try:
        assert await mirror.wait_synced(BOUND)
        yield mirror, client, events
    finally:
        await mirror.stop()
        await client.close()


async def test_a_hung_etcd_is_reported_lost_then_the_mirror_resyncs(
    own_etcd: EtcdServer,
) -> None:
    async with following(own_etcd) as (mirror, _, events):
        await until(lambda: mirror.stats.probes >= 3, "probes complete while etcd answers")
        assert mirror.synced and mirror.stats.liveness_losses == 0
        pid = own_etcd.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        try:
            await until(lambda: not mirror.synced, "the mirror reports etcd lost")
            assert mirror.stats.liveness_losses == 1
            assert "no probe completed for 0.5 s" in mirror.stats.last_error
            # While etcd stays hung the resync keeps failing within its deadlines: no flapping.
            await asyncio.sleep(1.0)
            assert not mirror.synced and events == [True, False]
        finally:
            os.kill(pid, signal.SIGCONT)
        resyncs = mirror.stats.resyncs
        assert await mirror.wait_synced(BOUND)
        assert events == [True, False, True] and mirror.stats.resyncs == resyncs + 1
        probes = mirror.stats.probes
        await until(lambda: mirror.stats.probes > probes, "probes complete again")


async def test_a_watch_that_stops_delivering_is_reported_lost(own_etcd: EtcdServer) -> None:
    async with following(own_etcd, DeafMirror) as (mirror, client, events):
        assert isinstance(mirror, DeafMirror)
        mirror.deaf = True
        # etcd answers, but the watch never shows the marker's new revision.
        put = await client.txn(
            rpc.TxnRequest(
                success=[rpc.RequestOp(request_put=rpc.PutRequest(key=KS.commit_marker, value=b""))]
            )
        )
        revision = int(put.header.revision)
        await until(lambda: not mirror.synced, "the mirror reports etcd lost")
        assert mirror.stats.liveness_losses == 1
        assert f"did not deliver revision {revision}" in mirror.stats.last_error
        mirror.deaf = False
        assert await mirror.wait_synced(BOUND)  # the rebuilt watch starts from a resync
        assert mirror.revision >= revision and events == [True, False, True]


@pytest.mark.parametrize(("interval", "grace"), [(0, 1), (1, 0), (-1, 1)])
def test_liveness_settings_must_be_positive(interval: float, grace: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        MirrorLiveness(interval=interval, grace=grace)
