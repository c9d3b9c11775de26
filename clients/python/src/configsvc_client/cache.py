"""The local cache: entries by key, and the revision they are exact at.

Two ways in, both of which return the :class:`Change` list to report:

* :meth:`Cache.replace` swaps in a whole snapshot with ONE reference
  assignment (the new dict is built completely before), then reports the
  differences in revision order. Readers, on this thread or another, see the old state or the
  new state, never a mix, and callbacks run only after the swap.
* :meth:`Cache.apply` applies the changes of one revision.

Reads are plain dict lookups, safe from any thread under the GIL, which is
what lets the synchronous facade read without a hop to the event loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from configsvc_client.keys import Key
from configsvc_client.model import Change, ChangeType, Entry

__all__ = ["Cache", "RawChange", "diff"]


@dataclass(frozen=True, slots=True)
class RawChange:
    """One change as the stream carried it, before it is applied."""

    type: ChangeType
    key: Key
    entry: Entry | None


def diff(old: Mapping[Key, Entry], new: Mapping[Key, Entry], revision: int) -> list[Change]:
    """Changes that turn ``old`` into ``new``, in revision order (ties in key order).

    Puts for keys that are new or whose value or revision differ, at the
    entry's own (mod) revision; deletes for keys that vanished, at
    ``revision`` (the snapshot's: when exactly a key the client never saw
    deleted went is unknown), so they come after every put. Revision order is
    what subscribers are promised for live changes too, and it is the order
    in which the server committed the puts.
    """
    changes: list[Change] = []
    for key in old.keys() | new.keys():
        before, after = old.get(key), new.get(key)
        if after is None:
            if before is not None:
                changes.append(Change(key, ChangeType.DELETE, revision, None, before))
        elif before is None or not before.same_as(after):
            changes.append(Change(key, ChangeType.PUT, after.revision, after, before))
    changes.sort(key=lambda change: (change.revision, change.path))
    return changes


class Cache:
    """Entries exact at :attr:`revision` (0: nothing known yet)."""

    def __init__(self) -> None:
        self._entries: dict[Key, Entry] = {}
        #: The same entries by ``tenant/env/service/key`` string, so a read by path
        #: is one lookup with no parsing. Swapped together with ``_entries``.
        self._by_path: dict[str, Entry] = {}
        self.revision = 0
        self.has_base = False
        """True once the entries came from a snapshot or a cache file (a resume point)."""

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Key) -> Entry | None:
        return self._entries.get(key)

    def lookup(self, path: Key | str) -> Entry | None:
        """By Key or by path string; a hit means the address is valid and watched."""
        if isinstance(path, str):
            return self._by_path.get(path)
        return self._entries.get(path)

    def entries(self) -> dict[Key, Entry]:
        """A copy of the current entries (one C-level copy: consistent even across threads)."""
        return self._entries.copy()

    def replace(self, entries: Iterable[Entry], revision: int) -> list[Change]:
        """Swap in a complete state exact at ``revision``; returns the differences."""
        new = {entry.key: entry for entry in entries}
        old = self._entries
        self._by_path = {key.path: entry for key, entry in new.items()}
        self._entries = new
        self.revision = revision
        self.has_base = True
        return diff(old, new, revision)

    def apply(self, revision: int, changes: Iterable[RawChange]) -> list[Change]:
        """Apply the changes of one revision (> :attr:`revision`); returns what changed.

        A delete of a key the cache does not hold is not reported: nothing a
        reader could see changed.
        """
        if revision <= self.revision:
            raise ValueError(f"revision {revision} is not after {self.revision}")
        applied: list[Change] = []
        for raw in changes:
            previous = self._entries.get(raw.key)
            if raw.type is ChangeType.PUT and raw.entry is not None:
                self._entries[raw.key] = raw.entry
                self._by_path[raw.key.path] = raw.entry
                applied.append(Change(raw.key, ChangeType.PUT, revision, raw.entry, previous))
            elif raw.type is ChangeType.DELETE and previous is not None:
                del self._entries[raw.key]
                del self._by_path[raw.key.path]
                applied.append(Change(raw.key, ChangeType.DELETE, revision, None, previous))
        self.revision = revision
        return applied

    def advance(self, revision: int) -> bool:
        """Record that nothing changed up to ``revision`` (a progress message)."""
        if revision <= self.revision:
            return False
        self.revision = revision
        return True
