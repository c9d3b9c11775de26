"""Debounced cache file writes; the package is self-contained and its stubs are current."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from configsvc_client import Entry, Key, Selector, lkg
from configsvc_client._persist import Persister
from configsvc_client.cache import Cache
from configsvc_client.status import Stats

CLIENT_DIR = Path(__file__).resolve().parents[2]
SELECTORS = (Selector(tenant="acme"),)


def cache_at(revision: int) -> Cache:
    cache = Cache()
    cache.replace([Entry(Key("acme", "prod", "api", "k"), str(revision), revision, 1)], revision)
    return cache


async def test_changes_are_debounced_and_close_writes_the_last_state(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    cache, stats = cache_at(1), Stats()
    persister = Persister(path, SELECTORS, cache, stats, interval=0.3)
    persister.start()
    persister.mark(urgent=True)
    for _ in range(50):
        await asyncio.sleep(0.01)
        if stats.persist_writes:
            break
    assert stats.persist_writes == 1  # the snapshot was written at once
    for revision in range(2, 40):
        cache.replace(
            [Entry(Key("acme", "prod", "api", "k"), str(revision), revision, 1)], revision
        )
        persister.mark()
        await asyncio.sleep(0.01)
    assert stats.persist_writes <= 3  # ~0.4 s of changes, at most one write per 0.3 s
    await persister.close()
    loaded = lkg.load(path)
    assert loaded is not None and loaded.revision == 39
    assert stats.persist_errors == 0


async def test_write_errors_are_counted_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    stats = Stats()
    persister = Persister(blocker / "cache.json", SELECTORS, cache_at(1), stats, interval=0.01)
    persister.start()
    persister.mark(urgent=True)
    await persister.close()
    assert stats.persist_errors == 1 and stats.persist_writes == 0


def test_generated_stubs_are_current() -> None:
    result = subprocess.run(
        [sys.executable, str(CLIENT_DIR / "tools" / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_generation_is_deterministic(tmp_path: Path) -> None:
    for out in (tmp_path / "a", tmp_path / "b"):
        subprocess.run(
            [sys.executable, str(CLIENT_DIR / "tools" / "generate.py"), str(out)], check=True
        )
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.py*"))
    assert files and all(
        (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files
    )
    assert not any(b"from configsvc.v1" in (tmp_path / "a" / f).read_bytes() for f in files)


def test_the_client_does_not_import_the_server_package() -> None:
    code = (
        "import sys, configsvc_client, configsvc_client.sync;"
        "bad = [m for m in sys.modules if m == 'configsvc' or m.startswith('configsvc.')];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=CLIENT_DIR)


def test_server_and_client_stubs_load_in_one_process() -> None:
    code = (
        "import configsvc.v1.watch_pb2 as s, configsvc_client._gen.configsvc.v1.watch_pb2 as c;"
        "assert s.DESCRIPTOR.name == c.DESCRIPTOR.name;"
        "m = c.WatchRequest(start_revision=5);"
        "assert s.WatchRequest.FromString(m.SerializeToString()).start_revision == 5"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=CLIENT_DIR.parent.parent)
