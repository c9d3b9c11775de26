"""What the cache holds and what subscribers receive: entries and changes."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from configsvc_client._gen.configsvc.v1 import config_pb2
from configsvc_client.keys import Key

__all__ = ["Change", "ChangeType", "DeleteResult", "Entry", "FrozenDict", "decode_json", "freeze"]


def decode_json(text: str) -> Any:
    """``json.loads``: integers of any size come back exact (Python ints)."""
    return json.loads(text)


class FrozenDict(dict[str, Any]):
    """A JSON object from the cache: a real ``dict`` (``json.dumps`` and ``isinstance``
    work) whose mutating methods raise, so every reader can share one decoded value."""

    __slots__ = ()

    def _read_only(self, *_args: object, **_kwargs: object) -> Any:
        raise TypeError("configuration values are read-only; get_json() returns a mutable copy")

    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))


def freeze(value: Any) -> Any:
    """JSON data made immutable: objects become FrozenDict, arrays tuples."""
    if isinstance(value, dict):
        return FrozenDict((k, freeze(v)) for k, v in value.items())
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    return value


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored value and its metadata, as the server sent it.

    ``value`` is the JSON text byte for byte. :meth:`decode` parses it once
    into immutable data (objects as :class:`FrozenDict`, arrays as tuples) that
    every reader shares, so a read is a dictionary lookup and no caller can
    corrupt the cache; :meth:`decode_mutable` parses a fresh, mutable copy.
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
    _decoded: list[Any] = field(default_factory=list, init=False, repr=False, compare=False)

    @property
    def path(self) -> str:
        return self.key.path

    def decode(self) -> Any:
        """The value as immutable Python data, parsed once and shared."""
        if not self._decoded:
            self._decoded.append(freeze(decode_json(self.value)))
        return self._decoded[0]

    def decode_mutable(self) -> Any:
        """The value as fresh, mutable Python data (``json.loads`` of :attr:`value`)."""
        return decode_json(self.value)

    @classmethod
    def from_proto(cls, entry: config_pb2.ConfigEntry) -> Entry:
        key = entry.key
        update_time = (
            entry.update_time.ToDatetime(tzinfo=UTC) if entry.HasField("update_time") else None
        )
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
