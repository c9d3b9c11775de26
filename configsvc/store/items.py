"""The values the mirror hands out: items, change batches and records.

Separate from ``configsvc.store.mirror`` so that the protocols of
``configsvc.store.ports`` (and the watch ring, the hub, the caches) can name
them without importing the mirror itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from configsvc.model.keys import ConfigKey
from configsvc.v1 import config_pb2


class WireEncoder(Protocol):
    """Bytes a transport derives from each item and each revision, made once per change.

    The mirror does not know what they are (the gRPC API frames a Get answer with
    them, ``configsvc.api.config_service``); it only computes them when an entry
    changes or the revision advances, so a reader's answer costs a concatenation
    instead of an encoding. Installed before the mirror loads (``use_encoder``).
    """

    def item(self, data: bytes) -> bytes:
        """The transport's bytes for an entry whose ``SerializeToString()`` is ``data``."""
        ...

    def revision(self, revision: int) -> bytes:
        """The transport's bytes for the revision the mirror is exact at."""
        ...


class _NoEncoding:
    """The encoder of a mirror no transport asked for bytes (tools, tests)."""

    def item(self, data: bytes) -> bytes:
        return b""

    def revision(self, revision: int) -> bytes:
        return b""


NO_ENCODING = _NoEncoding()


@dataclass(frozen=True, slots=True)
class Item:
    """One config entry and its serialized form, made once when the change is applied.

    Watch fan-out and snapshots write ``data`` as it is, so an entry is encoded
    once per change, not once per reader; ``encoded`` is the installed
    ``WireEncoder``'s bytes for it, made at the same moment.
    """

    key: ConfigKey
    entry: config_pb2.ConfigEntry
    data: bytes
    encoded: bytes = b""

    @classmethod
    def of(
        cls, key: ConfigKey, entry: config_pb2.ConfigEntry, encoder: WireEncoder = NO_ENCODING
    ) -> Item:
        data = entry.SerializeToString()
        return cls(key, entry, data, encoder.item(data))


@dataclass(frozen=True, slots=True)
class ChangeBatch:
    """The config changes of one etcd revision; ``item`` None means deleted."""

    revision: int
    changes: tuple[tuple[ConfigKey, Item | None], ...]


@dataclass(frozen=True, slots=True)
class Record:
    """One mirrored non-config key (see ``keyspace.RECORD_KINDS``): raw value and revisions."""

    value: bytes
    mod_revision: int
    create_revision: int


@dataclass(frozen=True, slots=True)
class RecordBatch:
    """The record changes of one etcd revision; a None record means deleted."""

    revision: int
    changes: tuple[tuple[bytes, Record | None], ...]
