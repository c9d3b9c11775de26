"""Hand-built protobuf framing for Watch messages, so each change is encoded once.

A ``WatchResponse`` sent to many streams is assembled from bytes encoded
once per change: protobuf's wire format lets a length-delimited field be
written as ``tag, length, bytes``, so ``Changes`` and ``SnapshotChunk`` are
concatenations of already-serialized ``Change`` and ``ConfigEntry`` bytes.
Tests decode these bytes with the generated classes to prove equivalence.
"""

from __future__ import annotations

from collections.abc import Iterable

from configsvc.model.keys import ConfigKey
from configsvc.model.protowire import field, varint
from configsvc.store.codec import key_message
from configsvc.store.mirror import Item
from configsvc.v1 import watch_pb2

__all__ = [
    "changes",
    "encode_change",
    "progress",
    "reset",
    "resume_after",
    "resume_point",
    "snapshot_chunk",
    "snapshot_end",
    "varint",
]

# Field tags: (field_number << 3) | wire_type; wire type 2 = length-delimited, 0 = varint.
_RESP_SNAPSHOT = b"\x0a"
_RESP_SNAPSHOT_END = b"\x12"
_RESP_CHANGES = b"\x1a"
_RESP_PROGRESS = b"\x22"
_CHANGES_REVISION = b"\x08"
_CHANGES_CHANGE = b"\x12"
_CHUNK_ENTRY = b"\x0a"
_REVISION = b"\x08"


def encode_change(key: ConfigKey, item: Item | None) -> bytes:
    """One ``Change`` (a put with its entry, or a delete: ``item`` None), encoded once for
    every stream that gets it."""
    if item is None:
        change = watch_pb2.Change(type=watch_pb2.CHANGE_TYPE_DELETE, key=key_message(key))
    else:
        change = watch_pb2.Change(
            type=watch_pb2.CHANGE_TYPE_PUT, key=item.entry.key, entry=item.entry
        )
    return bytes(change.SerializeToString())


def changes(revision: int, encoded_changes: Iterable[bytes]) -> bytes:
    """A WatchResponse{changes: Changes{revision, changes...}} from encoded Change bytes."""
    body = (
        _CHANGES_REVISION
        + varint(revision)
        + b"".join(field(_CHANGES_CHANGE, change) for change in encoded_changes)
    )
    return field(_RESP_CHANGES, body)


def snapshot_chunk(encoded_entries: Iterable[bytes]) -> bytes:
    """A WatchResponse{snapshot: SnapshotChunk{entries...}} from encoded ConfigEntry bytes."""
    return field(_RESP_SNAPSHOT, b"".join(field(_CHUNK_ENTRY, e) for e in encoded_entries))


def snapshot_end(revision: int) -> bytes:
    return field(_RESP_SNAPSHOT_END, _REVISION + varint(revision))


def progress(revision: int) -> bytes:
    return field(_RESP_PROGRESS, _REVISION + varint(revision))


def reset(reason: int, compact_revision: int, revision: int, message: str) -> bytes:
    return bytes(
        watch_pb2.WatchResponse(
            reset=watch_pb2.Reset(
                reason=reason,  # type: ignore[arg-type]
                compact_revision=compact_revision,
                revision=revision,
                message=message,
            )
        ).SerializeToString()
    )


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def resume_after(message: bytes) -> int | None:
    """Where a client resumes once ``message`` (built here) is the last it got: the revision
    after a ``changes``, ``progress`` or ``snapshot_end`` message's; None for other kinds
    (a snapshot chunk: the client has no complete state to resume from)."""
    tag = message[:1]
    if tag not in (_RESP_CHANGES, _RESP_PROGRESS, _RESP_SNAPSHOT_END):
        return None
    _, at = _read_varint(message, 1)
    if message[at : at + 1] != _REVISION:
        return None
    revision, _ = _read_varint(message, at + 1)
    return revision + 1


def resume_point(message: bytes) -> int | None:
    """Where a client resumes if ``message`` (built here) is the first it does not get:
    a ``changes`` message's own revision, the revision after a ``progress``; None for
    other kinds. Used when a queue is dropped, so nothing is decoded in the hot path."""
    tag = message[:1]
    if tag not in (_RESP_CHANGES, _RESP_PROGRESS):
        return None
    _, at = _read_varint(message, 1)
    if message[at : at + 1] != _REVISION:
        return None
    revision, _ = _read_varint(message, at + 1)
    return revision if tag == _RESP_CHANGES else revision + 1
