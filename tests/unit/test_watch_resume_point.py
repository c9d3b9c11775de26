"""wire.resume_point: where a client resumes when a queued message is dropped."""

from __future__ import annotations

from configsvc.v1 import watch_pb2
from configsvc.watch import wire


def test_changes_resume_at_their_own_revision_and_progress_after_it() -> None:
    change = watch_pb2.Change(type=watch_pb2.CHANGE_TYPE_DELETE).SerializeToString()
    for revision in (1, 127, 128, 300_000, 2**40):
        assert wire.resume_point(wire.changes(revision, [change])) == revision
        assert wire.resume_point(wire.progress(revision)) == revision + 1


def test_other_kinds_have_no_resume_point() -> None:
    assert wire.resume_point(wire.snapshot_end(5)) is None
    assert wire.resume_point(wire.snapshot_chunk([])) is None
    assert wire.resume_point(wire.reset(watch_pb2.RESET_REASON_SLOW_CONSUMER, 1, 2, "x")) is None


def test_resume_after_the_last_message_a_client_got() -> None:
    change = watch_pb2.Change(type=watch_pb2.CHANGE_TYPE_DELETE).SerializeToString()
    for revision in (1, 127, 128, 2**40):
        assert wire.resume_after(wire.changes(revision, [change])) == revision + 1
        assert wire.resume_after(wire.progress(revision)) == revision + 1
        assert wire.resume_after(wire.snapshot_end(revision)) == revision + 1
    assert wire.resume_after(wire.snapshot_chunk([])) is None  # inside a snapshot: none
