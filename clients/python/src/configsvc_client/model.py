"""What the cache holds and what subscribers receive: entries and changes."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from configsvc_client._gen.configsvc.v1 import config_pb2
from configsvc_client.keys import Key

__all__ = ["Change", "ChangeType", "DeleteResult", "Entry", "decode_json"]

_SCALARS = (int, float, str, bool, type(None))


def decode_json(text: str) -> Any:
    """``json.loads``: integers of any size come back exact (Python ints)."""
    return json.loads(text)


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored value and its metadata, as the server sent it.

    ``value`` is the JSON text byte for byte; :meth:`decode` parses it. Scalar
    values are parsed once and remembered; objects and arrays are parsed on
    every call so a caller that mutates the result cannot corrupt the cache.
    """

    key: Key
    value: str
    revision: int
    """etcd revision of the last change to the key (``mod_revision``)."""
    version: int
    """configsvc's version counter (1, 2, ... across puts, deletes, rollbacks)."""
    create_revision: int = 0
    updated_by: str = ""
    reason: str = ""
    value_digest: str = ""
    update_time: datetime | None = None
    _scalar: list[Any] = field(default_factory=list, init=False, repr=False, compare=False)

    @property
    def path(self) -> str:
        return self.key.path

    def decode(self) -> Any:
        """The value as Python data (``json.loads`` of :attr:`value`)."""
        if self._scalar:
            return self._scalar[0]
        decoded = decode_json(self.value)
        if isinstance(decoded, _SCALARS):
            self._scalar.append(decoded)
        return decoded

    @classmethod
    def from_proto(cls, entry: config_pb2.ConfigEntry) -> Entry:
        key = entry.key
        update_time = (entry.update_time.ToDatetime(tzinfo=UTC)
                       if entry.HasField("update_time") else None)
        return cls(
            key=Key(key.tenant, key.environment, key.service, key.key),
            value=entry.value,
            revision=entry.mod_revision,
            version=entry.version,
            create_revision=entry.create_revision,
            updated_by=entry.updated_by,
            reason=entry.reason,
            value_digest=entry.value_digest,
            update_time=update_time,
        )

    def same_as(self, other: Entry) -> bool:
        """Same value at the same revision (what decides whether a change is reported)."""
        return self.revision == other.revision and self.value == other.value


class ChangeType(enum.Enum):
    """What happened to an entry."""

    PUT = "put"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Change:
    """One entry's change, as delivered to subscribers.

    ``revision`` is the etcd revision the change belongs to. For changes
    derived from a re-snapshot (after RESET), puts carry the entry's own
    revision and deletes the snapshot's revision, because the exact revision
    of a deletion the client never saw is unknown.
    """

    path: Key
    type: ChangeType
    revision: int
    entry: Entry | None = None
    """The entry after a put; None for a delete."""
    previous: Entry | None = None
    """The entry as the cache had it before, if it had it."""

    @property
    def value(self) -> Any:
        """The decoded new value; None for a delete."""
        return self.entry.decode() if self.entry is not None else None


@dataclass(frozen=True, slots=True)
class DeleteResult:
    """What ``delete`` removed."""

    previous: Entry
    revision: int
    version: int
