"""WatchHub wakes the senders of a change a chunk per event-loop step.

Why it matters: with thousands of streams, waking every sender at once queues
thousands of task steps (each a gRPC write) ahead of anything the loop has not
polled yet, such as the etcd answer a writer's Put is waiting for. A pure unit:
a stand-in mirror, real subscriptions and a real event loop.
"""

from __future__ import annotations

import asyncio

from configsvc.model.keys import ConfigKey
from configsvc.store.mirror import ChangeBatch, Item
from configsvc.v1 import config_pb2, watch_pb2
from configsvc.watch.hub import WAKE_CHUNK, WatchHub, WatchLimits
from configsvc.watch.selectors import Selector
from tests.unit.standins import FixedWatchSource


def _revision(message: object) -> int:
    assert isinstance(message, bytes)
    return watch_pb2.WatchResponse.FromString(message).changes.revision


def _batch(revision: int) -> ChangeBatch:
    key = ConfigKey("t", "prod", "api", "k")
    return ChangeBatch(revision, ((key, Item.of(key, config_pb2.ConfigEntry(value="1"))),))


async def test_senders_are_woken_a_chunk_per_loop_step() -> None:
    hub = WatchHub(FixedWatchSource(), WatchLimits())  # a stand-in mirror at revision 1
    shape = hub.shape((Selector("t", "", "", (), ()),))
    streams = 2 * WAKE_CHUNK + 10
    subs = []
    for _ in range(streams):
        sub, first = hub.open(shape, start_revision=0, send_snapshot=False)
        assert list(first)  # a progress message: the stream is live
        subs.append(sub)
    waiters = [sub.wakeup() for sub in subs]

    hub.on_batch(_batch(2))
    # Every stream has the change queued at once (ordering is decided here) ...
    assert all(sub.queued() == 1 for sub in subs)
    assert all(sub.revision == 2 for sub in subs)
    # ... but only the first chunk of senders is woken in this step.
    assert sum(w.done() for w in waiters) == WAKE_CHUNK
    await asyncio.sleep(0)
    assert sum(w.done() for w in waiters) == 2 * WAKE_CHUNK
    await asyncio.sleep(0)
    assert all(w.done() for w in waiters)
    assert {_revision(sub.pop()) for sub in subs} == {2}


async def test_a_stream_in_a_later_chunk_gets_every_change_once_in_order() -> None:
    """Two changes before its chunk's turn: the stream is woken once and pops both, in
    revision order; a wake-up that finds its waiter done is a no-op."""
    hub = WatchHub(FixedWatchSource(), WatchLimits())
    shape = hub.shape((Selector("t", "", "", (), ()),))
    subs = [
        hub.open(shape, start_revision=0, send_snapshot=False)[0] for _ in range(WAKE_CHUNK + 1)
    ]
    waiters = {sub: sub.wakeup() for sub in subs}
    hub.on_batch(_batch(2))
    late = [sub for sub, waiter in waiters.items() if not waiter.done()]
    assert len(late) == 1  # the hub's fan order decides which one
    (last,) = late
    hub.on_batch(_batch(3))
    assert not waiters[last].done()  # still behind the first chunk
    await asyncio.sleep(0)
    assert waiters[last].done()
    await asyncio.sleep(0)  # batch 3's deferred chunk: the waiter is done already
    assert [_revision(last.pop()), _revision(last.pop()), last.pop()] == [2, 3, None]
