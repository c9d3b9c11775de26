"""Cache: atomic snapshot swap, the reported differences, per-revision changes."""

from __future__ import annotations

import json
import pickle
import threading

import pytest

from configsvc_client import ChangeType, Entry, Key
from configsvc_client.cache import Cache, RawChange, diff


def entry(name: str, value: str, revision: int, tenant: str = "acme") -> Entry:
    return Entry(Key(tenant, "prod", "api", name), value, revision=revision, version=1)


def test_diff_reports_new_changed_and_vanished_keys_in_revision_order() -> None:
    # Issue 17 item 4: revision order (deletes at the snapshot's revision, so last; ties
    # by key), as live changes come; key order (b, c, d) is what this test asserted before.
    old = {
        e.key: e
        for e in [entry("a", "1", 5), entry("b", "1", 5), entry("c", "1", 5), entry("k10", "1", 5)]
    }
    new = {
        e.key: e
        for e in [
            entry("a", "1", 5),
            entry("b", "2", 9),
            entry("d", "1", 8),
            entry("k10", "2", 7),
            entry("e", "1", 8),
        ]
    }
    changes = diff(old, new, revision=10)
    assert [(c.path.key, c.type, c.revision) for c in changes] == [
        ("k10", ChangeType.PUT, 7),
        ("d", ChangeType.PUT, 8),
        ("e", ChangeType.PUT, 8),
        ("b", ChangeType.PUT, 9),
        ("c", ChangeType.DELETE, 10),
    ]
    assert changes[3].previous == old[Key("acme", "prod", "api", "b")]
    assert changes[3].value == 2 and changes[4].value is None and changes[4].entry is None


def test_diff_sees_a_same_revision_value_change() -> None:
    # Only possible when the old state came from a foreign cache file; still reported.
    old = {e.key: e for e in [entry("a", "1", 5)]}
    new = {e.key: e for e in [entry("a", "2", 5)]}
    assert [c.value for c in diff(old, new, 6)] == [2]


def test_replace_swaps_in_one_step_and_leaves_the_old_state_untouched() -> None:
    cache = Cache()
    assert not cache.has_base and cache.revision == 0
    cache.replace([entry("a", "1", 3), entry("b", "1", 4)], 4)
    before = cache._entries
    changes = cache.replace([entry("a", "2", 7)], 7)
    assert cache._entries is not before  # a new dict, swapped in by one assignment
    assert set(before) == {Key("acme", "prod", "api", "a"), Key("acme", "prod", "api", "b")}
    assert cache.revision == 7 and cache.has_base
    assert [(c.path.key, c.type) for c in changes] == [
        ("a", ChangeType.PUT),
        ("b", ChangeType.DELETE),
    ]


def test_readers_on_other_threads_never_see_a_half_applied_snapshot() -> None:
    cache = Cache()
    generation = [entry(f"k{i}", "0", 1) for i in range(200)]
    cache.replace(generation, 1)
    stop = threading.Event()
    mixed: list[set[str]] = []

    def reader() -> None:
        while not stop.is_set():
            values = {e.value for e in cache.entries().values()}
            if len(values) > 1:
                mixed.append(values)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for rev in range(2, 300):
            cache.replace([entry(f"k{i}", str(rev), rev) for i in range(200)], rev)
    finally:
        stop.set()
        thread.join()
    assert not mixed


def test_apply_puts_and_deletes_of_one_revision() -> None:
    cache = Cache()
    cache.replace([entry("a", "1", 3)], 3)
    a, b = Key("acme", "prod", "api", "a"), Key("acme", "prod", "api", "b")
    changes = cache.apply(
        5,
        [
            RawChange(ChangeType.DELETE, a, None),
            RawChange(ChangeType.PUT, b, entry("b", "[1]", 5)),
            RawChange(ChangeType.DELETE, Key("acme", "prod", "api", "zz"), None),
        ],
    )
    # The delete of a key the cache never had is not reported.
    assert [(c.path.key, c.type, c.revision) for c in changes] == [
        ("a", ChangeType.DELETE, 5),
        ("b", ChangeType.PUT, 5),
    ]
    assert changes[0].previous is not None and changes[0].previous.value == "1"
    assert cache.get(a) is None and cache.get(b) is not None and cache.revision == 5


def test_apply_refuses_a_revision_that_is_not_newer() -> None:
    cache = Cache()
    cache.replace([], 10)
    with pytest.raises(ValueError):
        cache.apply(10, [])


def test_advance_only_moves_forward() -> None:
    cache = Cache()
    cache.replace([], 10)
    assert cache.advance(12) and cache.revision == 12
    assert not cache.advance(11) and cache.revision == 12


def test_entry_decode_is_exact_shared_and_read_only() -> None:
    big = entry("n", "9007199254740993", 1)
    assert big.decode() == 9007199254740993
    obj = entry("o", '{"a": [1, {"b": 2}]}', 1)
    first = obj.decode()
    assert first is obj.decode()  # parsed once, shared by every reader
    assert first == {"a": (1, {"b": 2})} and isinstance(first, dict)
    assert json.loads(json.dumps(first)) == {"a": [1, {"b": 2}]}
    for mutate in (
        lambda: first.__setitem__("x", 1),
        lambda: first.update(x=1),
        lambda: first.pop("a"),
        first["a"][1].clear,
        lambda: first.setdefault("y", 2),
        lambda: first.__delitem__("a"),
    ):
        with pytest.raises(TypeError, match="read-only"):
            mutate()
    copy = obj.decode_mutable()
    copy["a"].append(3)
    assert copy == {"a": [1, {"b": 2}, 3]} and obj.decode() == {"a": (1, {"b": 2})}
    assert pickle.loads(pickle.dumps(first)) == first
