"""The last-known-good file: round trip, atomic replacement, corruption detection."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from configsvc_client import Entry, Key, Selector, lkg

SELECTORS = (
    Selector(tenant="acme", environment="prod", service="api", key_prefixes=["db."]),
    Selector(tenant="acme", environment="all", service="all"),
)


def entries() -> list[Entry]:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    return [
        Entry(
            Key("acme", "prod", "api", "db.pool"),
            '{"max": 9007199254740993}',
            revision=41,
            version=3,
            create_revision=7,
            updated_by="ops",
            reason="more",
            update_time=when,
            value_digest=hashlib.sha256(b'{"max": 9007199254740993}').hexdigest(),
        ),
        Entry(
            Key("acme", "all", "all", "greeting"),
            '"gr\u00fc\u00df dich \u2603"',
            revision=40,
            version=1,
        ),
        Entry(Key("acme", "prod", "api", "db.ratio"), "1.10", revision=42, version=2),
    ]


def test_round_trip_keeps_values_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    lkg.save(path, 42, SELECTORS, entries(), target="configsvc.prod:50051")
    loaded = lkg.load(path)
    assert loaded is not None
    assert loaded.revision == 42 and loaded.selectors == SELECTORS
    assert loaded.target == "configsvc.prod:50051" and loaded.saved_at
    assert sorted(loaded.entries, key=lambda e: e.key) == sorted(entries(), key=lambda e: e.key)
    by_key = {e.key.key: e for e in loaded.entries}
    assert by_key["db.ratio"].value == "1.10"
    assert by_key["db.pool"].decode() == {"max": 9007199254740993}
    assert by_key["db.pool"].update_time == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_file_is_private_and_no_temporary_is_left(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "cache.json"
    lkg.save(path, 1, SELECTORS, entries())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(path.parent) == ["cache.json"]


def test_missing_file_is_none(tmp_path: Path) -> None:
    assert lkg.load(tmp_path / "nope.json") is None


def test_a_failed_write_leaves_the_previous_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cache.json"
    lkg.save(path, 1, SELECTORS, entries())
    before = path.read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(lkg.os, "replace", broken_replace)
    with pytest.raises(OSError):
        lkg.save(path, 2, SELECTORS, entries()[:1])
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["cache.json"]  # the temporary file was removed


def test_a_write_that_dies_mid_file_never_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cache.json"
    lkg.save(path, 1, SELECTORS, entries())
    before = path.read_bytes()
    real_fsync = os.fsync
    calls = []

    def crash_in_fsync(fd: int) -> None:
        calls.append(fd)
        raise OSError(5, "I/O error")

    monkeypatch.setattr(lkg.os, "fsync", crash_in_fsync)
    with pytest.raises(OSError):
        lkg.save(path, 2, SELECTORS, entries())
    monkeypatch.setattr(lkg.os, "fsync", real_fsync)
    assert calls and path.read_bytes() == before


def _rewrite(path: Path, mutate) -> None:  # type: ignore[no-untyped-def]
    document = json.loads(path.read_bytes())
    mutate(document)
    path.write_text(json.dumps(document))


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),  # truncated
        lambda p: p.write_bytes(b""),
        lambda p: p.write_bytes(b"\xff\xfe garbage"),
        lambda p: p.write_text('{"format": "something-else"}'),
        lambda p: _rewrite(p, lambda d: d.update(version=99)),
        lambda p: _rewrite(p, lambda d: d["payload"].update(revision=43)),  # checksum mismatch
        lambda p: _rewrite(p, lambda d: d.pop("payload")),
    ],
    ids=["truncated", "empty", "binary", "foreign", "version", "edited", "no-payload"],
)
def test_corrupt_files_are_rejected(tmp_path: Path, damage) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "cache.json"
    lkg.save(path, 42, SELECTORS, entries())
    damage(path)
    with pytest.raises(lkg.CacheFileError):
        lkg.load(path)


def test_a_value_that_does_not_match_its_digest_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    lkg.save(path, 42, SELECTORS, entries())
    document = json.loads(path.read_bytes())
    document["payload"]["entries"][1]["value"] = '{"max": 1}'
    # A consistent checksum, as a tool that rewrote the file would produce.
    document["sha256"] = hashlib.sha256(lkg._canonical(document["payload"])).hexdigest()
    path.write_text(json.dumps(document))
    with pytest.raises(lkg.CacheFileError, match="digest"):
        lkg.load(path)
