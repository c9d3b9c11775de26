"""Hand-built Watch framing decodes to exactly what the generated classes would build."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from configsvc.api.wire import RESPONSE_WIRE
from configsvc.model.keys import ConfigKey
from configsvc.store.mirror import ChangeBatch, Item
from configsvc.v1 import config_pb2, watch_pb2
from configsvc.watch import wire
from configsvc.watch.ring import Ring


def entry(key: str, value: str, revision: int) -> config_pb2.ConfigEntry:
    return config_pb2.ConfigEntry(
        key=config_pb2.ConfigKey(tenant="t", environment="prod", service="api", key=key),
        value=value,
        mod_revision=revision,
        version=1,
    )


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_varint_matches_protobuf(value: int) -> None:
    assert watch_pb2.Progress.FromString(b"\x08" + wire.varint(value)).revision == value


@given(
    st.lists(st.text(max_size=300), min_size=1, max_size=5),
    st.integers(min_value=1, max_value=2**40),
)
def test_changes_frame(values: list[str], revision: int) -> None:
    changes = [
        watch_pb2.Change(
            type=watch_pb2.CHANGE_TYPE_PUT,
            key=entry(f"k{i}", v, 1).key,
            entry=entry(f"k{i}", v, revision),
        )
        for i, v in enumerate(values)
    ]
    data = wire.changes(revision, (c.SerializeToString() for c in changes))
    expected = watch_pb2.WatchResponse(
        changes=watch_pb2.Changes(revision=revision, changes=changes)
    )
    assert watch_pb2.WatchResponse.FromString(data) == expected


def test_snapshot_progress_and_reset_frames() -> None:
    entries = [entry("a", "1", 3), entry("b", '"x"' * 5000, 4)]
    chunk = watch_pb2.WatchResponse.FromString(
        wire.snapshot_chunk(e.SerializeToString() for e in entries)
    )
    assert list(chunk.snapshot.entries) == entries
    assert watch_pb2.WatchResponse.FromString(wire.snapshot_end(9)).snapshot_end.revision == 9
    assert watch_pb2.WatchResponse.FromString(wire.progress(7)).progress.revision == 7
    reset = watch_pb2.WatchResponse.FromString(
        wire.reset(watch_pb2.RESET_REASON_SLOW_CONSUMER, 5, 9, "m")
    ).reset
    assert (reset.reason, reset.compact_revision, reset.revision, reset.message) == (
        watch_pb2.RESET_REASON_SLOW_CONSUMER,
        5,
        9,
        "m",
    )


def batch(revision: int) -> ChangeBatch:
    key = ConfigKey("t", "prod", "api", f"k{revision}")
    return ChangeBatch(revision, ((key, Item.of(key, entry(key.key, "1", revision))),))


def test_ring_keeps_the_newest_batches_and_moves_its_base() -> None:
    ring = Ring(3)
    for revision in (5, 7, 8):
        ring.append(batch(revision))
    assert ring.base == 0 and [b.revision for b in ring.since(6)] == [7, 8]
    ring.append(batch(10))
    assert ring.base == 5 and len(ring) == 3
    assert [b.revision for b in ring.since(0)] == [7, 8, 10]
    assert ring.since(11) == []


@given(st.text(max_size=500), st.integers(min_value=0, max_value=2**62))
def test_get_fast_path_frame_is_a_get_response(value: str, revision: int) -> None:
    key = ConfigKey("t", "prod", "api", "k")
    item = Item.of(key, entry("k", value, 3), RESPONSE_WIRE)
    data = item.encoded + RESPONSE_WIRE.revision(revision)
    assert config_pb2.GetResponse.FromString(data) == config_pb2.GetResponse(
        entry=item.entry, revision=revision
    )


def big_batch(revision: int, size: int) -> ChangeBatch:
    key = ConfigKey("t", "prod", "api", f"k{revision}")
    return ChangeBatch(revision, ((key, Item.of(key, entry(key.key, "x" * size, revision))),))


def test_ring_is_bounded_by_bytes_too() -> None:
    ring = Ring(1000, max_bytes=250_000)
    for revision in range(1, 6):
        ring.append(big_batch(revision, 100_000))
    assert len(ring) == 2 and ring.bytes <= 250_000
    assert ring.base == 3 and [b.revision for b in ring.since(0)] == [4, 5]
    # One batch larger than the budget is still kept: the newest change is always replayable.
    ring.append(big_batch(6, 400_000))
    assert [b.revision for b in ring.since(0)] == [6] and ring.base == 5
