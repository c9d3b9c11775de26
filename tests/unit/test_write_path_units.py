"""Units of the write path: per-key locks, waiting for the mirror, decoding entries."""

from __future__ import annotations

import asyncio
import contextlib

from aetcd import rpc

from configsvc.internal.v1 import storage_pb2
from configsvc.model.keys import ConfigKey
from configsvc.model.labels import validate_labels
from configsvc.store.codec import entry_from_stored, now_timestamp
from configsvc.store.keyspace import Keyspace
from configsvc.store.mirror import Mirror
from configsvc.store.writer import KeyLocks
from configsvc.v1 import config_pb2
from tests.unit.standins import UnreachableEtcd

KS = Keyspace("/unit")


def marker_event(revision: int) -> rpc.Event:
    return rpc.Event(
        type=rpc.Event.PUT,
        kv=rpc.KeyValue(key=KS.commit_marker, value=b"", create_revision=1, mod_revision=revision),
    )


async def test_key_locks_queue_writers_of_one_key_and_forget_unused_keys() -> None:
    locks = KeyLocks()
    order: list[str] = []

    async def writer(name: str, key: bytes, hold: float) -> None:
        async with locks.hold(key):
            order.append(f"{name}+")
            await asyncio.sleep(hold)
            order.append(f"{name}-")

    first = asyncio.create_task(writer("a", b"k", 0.05))
    await asyncio.sleep(0)
    await asyncio.gather(writer("b", b"k", 0), writer("c", b"other", 0), first)
    assert order.index("a-") < order.index("b+")  # b waited for a
    assert order.index("c+") < order.index("a-")  # another key did not
    assert len(locks) == 0


async def test_key_locks_a_writer_cancelled_while_queued_leaves_no_user_behind() -> None:
    locks = KeyLocks()
    entered = asyncio.Event()

    async def holder() -> None:
        async with locks.hold(b"k"):
            entered.set()
            await asyncio.sleep(0.05)

    held = asyncio.create_task(holder())
    await entered.wait()
    queued = asyncio.create_task(holder())
    await asyncio.sleep(0)
    queued.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await queued
    await held
    assert len(locks) == 0

    async def failing() -> None:
        async with locks.hold(b"k"):
            raise ValueError("inside")

    with contextlib.suppress(ValueError):
        await failing()
    assert len(locks) == 0
    async with locks.hold(b"k"):  # the lock is free again
        pass


async def test_wait_applied_answers_true_once_applied_false_on_timeout() -> None:
    mirror = Mirror(UnreachableEtcd(), KS)  # no etcd: events are fed by hand
    assert not await mirror.wait_applied(5, 0.01)
    waiting = asyncio.create_task(mirror.wait_applied(5, 10))
    await asyncio.sleep(0)
    mirror._apply([marker_event(4)])
    await asyncio.sleep(0)
    assert not waiting.done()
    mirror._apply([marker_event(5)])
    assert await waiting
    assert await mirror.wait_applied(3, 0)  # already applied: no wait at all
    assert all(future.done() for _, _, future in mirror._revision_waiters)


async def test_wait_applied_passes_the_callers_cancellation_on() -> None:
    mirror = Mirror(UnreachableEtcd(), KS)
    waiting = asyncio.create_task(mirror.wait_applied(9, 10))
    await asyncio.sleep(0)
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    assert waiting.cancelled()
    mirror._apply([marker_event(9)])  # releasing a cancelled waiter is harmless
    assert mirror._revision_waiters == []


def test_entry_from_stored_copies_every_field() -> None:
    stored = storage_pb2.StoredValue(
        value='{"a": 1}',
        version=7,
        updated_by="me",
        update_time=now_timestamp(),
        reason="why",
        operation=config_pb2.OPERATION_PUT,
        value_digest="d" * 64,
        labels={"team": "core"},
    )
    key = ConfigKey("t", "prod", "api", "k")
    entry = entry_from_stored(key, stored, create_revision=3, mod_revision=9)
    assert entry == config_pb2.ConfigEntry(
        key=config_pb2.ConfigKey(tenant="t", environment="prod", service="api", key="k"),
        value='{"a": 1}',
        create_revision=3,
        mod_revision=9,
        version=7,
        updated_by="me",
        update_time=stored.update_time,
        reason="why",
        value_digest="d" * 64,
        labels={"team": "core"},
    )
    bare = entry_from_stored(
        key, storage_pb2.StoredValue(value="1"), create_revision=1, mod_revision=1
    )
    assert not bare.labels and bare.update_time.seconds == 0


def test_validate_labels_empty_and_present() -> None:
    assert validate_labels({}) == {}
    assert validate_labels({"team": "core"}) == {"team": "core"}
