"""EventDeduplicator: per-key revisions only grow; memory is bounded."""

from __future__ import annotations

import pytest

from configsvc_client.events import EventDeduplicator


def test_repeats_and_older_revisions_are_duplicates() -> None:
    dedup = EventDeduplicator()
    assert dedup.accept("a", 5)
    assert dedup.accept("b", 3)
    assert not dedup.accept("a", 5)
    assert not dedup.accept("a", 4)
    assert dedup.accept("a", 9)
    assert dedup.accept("b", 4)
    assert dedup.duplicates == 2


def test_forgets_least_recently_seen_keys_beyond_the_bound() -> None:
    dedup = EventDeduplicator(max_keys=2)
    assert dedup.accept("a", 1)
    assert dedup.accept("b", 1)
    assert not dedup.accept("a", 1)  # refreshes "a"
    assert dedup.accept("c", 1)  # forgets "b"
    assert dedup.accept("b", 1)  # let through again
    assert not dedup.accept("c", 1)
    with pytest.raises(ValueError, match="max_keys"):
        EventDeduplicator(max_keys=0)
