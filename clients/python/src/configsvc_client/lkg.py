"""The last-known-good cache file: what lets a service start while configsvc is down.

Format: one JSON document ``{"format", "version", "sha256", "payload"}``;
``payload`` holds the revision, the selectors it was taken with and the
entries (values as their JSON text, byte for byte). ``sha256`` covers the
canonical encoding of the payload and every entry's ``value_digest`` is
checked, so a truncated, edited or bit-flipped file is rejected as a whole
instead of serving half of it.

Writes are atomic: a temporary file in the same directory (same file
system, so the rename is atomic), fsync, ``os.replace``, then fsync of the
directory so the rename itself survives a power cut. A reader sees the old
file or the new one, never a torn one. The file is created with mode 0600:
configuration is often sensitive.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from configsvc_client.errors import ConfigError
from configsvc_client.keys import Key, Selector
from configsvc_client.model import Entry

__all__ = ["CacheFile", "CacheFileError", "load", "save"]

FORMAT = "configsvc-client-cache"
VERSION = 1


class CacheFileError(ConfigError):
    """The cache file exists but cannot be used (corrupt, foreign or of another version)."""


@dataclass(frozen=True, slots=True)
class CacheFile:
    """A cache file's content."""

    revision: int
    selectors: tuple[Selector, ...]
    entries: tuple[Entry, ...]
    target: str = ""
    """The server target the state came from (a resume point only for the same target)."""
    saved_at: str = ""


def _canonical(payload: Any) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode(
        "ascii"
    )


def _entry_to_json(entry: Entry) -> dict[str, Any]:
    return {
        "tenant": entry.key.tenant,
        "environment": entry.key.environment,
        "service": entry.key.service,
        "key": entry.key.key,
        "value": entry.value,
        "revision": entry.revision,
        "version": entry.version,
        "create_revision": entry.create_revision,
        "updated_by": entry.updated_by,
        "reason": entry.reason,
        "value_digest": entry.value_digest,
        "update_time": entry.update_time.isoformat() if entry.update_time else None,
    }


def _selector_to_json(selector: Selector) -> dict[str, Any]:
    return {
        "tenant": selector.tenant,
        "environment": selector.environment,
        "service": selector.service,
        "key_prefixes": list(selector.key_prefixes),
        "keys": list(selector.keys),
    }


def encode(
    revision: int, selectors: Sequence[Selector], entries: Iterable[Entry], target: str = ""
) -> bytes:
    """The file's bytes for a cache state."""
    payload = {
        "revision": revision,
        "target": target,
        "saved_at": datetime.now().astimezone().isoformat(),
        "selectors": [_selector_to_json(s) for s in selectors],
        "entries": [_entry_to_json(e) for e in sorted(entries, key=lambda e: e.key)],
    }
    document = {
        "format": FORMAT,
        "version": VERSION,
        "sha256": hashlib.sha256(_canonical(payload)).hexdigest(),
        "payload": payload,
    }
    return json.dumps(document, indent=1, ensure_ascii=True).encode("ascii") + b"\n"


def save(
    path: Path,
    revision: int,
    selectors: Sequence[Selector],
    entries: Iterable[Entry],
    target: str = "",
) -> None:
    """Write the cache file atomically (blocking; run it in a thread)."""
    data = encode(revision, selectors, entries, target)
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - file systems that refuse it
        pass
    finally:
        os.close(fd)


def _entry_from_json(item: dict[str, Any]) -> Entry:
    value = item["value"]
    if not isinstance(value, str):
        raise CacheFileError("an entry's value is not JSON text")
    digest = item.get("value_digest") or ""
    if digest and hashlib.sha256(value.encode("utf-8")).hexdigest() != digest:
        raise CacheFileError(f"value of {item.get('key')!r} does not match its digest")
    update_time = item.get("update_time")
    return Entry(
        key=Key(
            str(item["tenant"]), str(item["environment"]), str(item["service"]), str(item["key"])
        ),
        value=value,
        revision=int(item["revision"]),
        version=int(item["version"]),
        create_revision=int(item.get("create_revision", 0)),
        updated_by=str(item.get("updated_by", "")),
        reason=str(item.get("reason", "")),
        value_digest=digest,
        update_time=datetime.fromisoformat(update_time) if update_time else None,
    )


def decode(data: bytes) -> CacheFile:
    """Parse and verify a cache file's bytes; :class:`CacheFileError` when unusable."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CacheFileError(f"not a cache file (invalid JSON: {exc})") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CacheFileError("not a configsvc client cache file")
    if document.get("version") != VERSION:
        raise CacheFileError(f"cache file version {document.get('version')!r} is not {VERSION}")
    payload: Any = document.get("payload")
    if not isinstance(payload, dict):
        raise CacheFileError("cache file has no payload")
    if hashlib.sha256(_canonical(payload)).hexdigest() != document.get("sha256"):
        raise CacheFileError("checksum mismatch (the file is corrupt or was edited)")
    try:
        return CacheFile(
            revision=int(payload["revision"]),
            selectors=tuple(
                Selector(
                    tenant=s["tenant"],
                    environment=s["environment"],
                    service=s["service"],
                    key_prefixes=s["key_prefixes"],
                    keys=s["keys"],
                )
                for s in payload["selectors"]
            ),
            entries=tuple(_entry_from_json(item) for item in payload["entries"]),
            target=str(payload.get("target", "")),
            saved_at=str(payload.get("saved_at", "")),
        )
    except CacheFileError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CacheFileError(f"malformed cache file ({type(exc).__name__}: {exc})") from exc


def load(path: Path) -> CacheFile | None:
    """The cache file at ``path``, None if there is none; :class:`CacheFileError` if unusable."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CacheFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return decode(data)
