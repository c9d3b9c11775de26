"""The replay window: recent change batches, so a resume never touches etcd."""

from __future__ import annotations

import bisect
from collections import deque

from configsvc.store.mirror import ChangeBatch


def batch_bytes(batch: ChangeBatch) -> int:
    """What a batch holds on to: the encoded entries it keeps alive."""
    return sum(len(item.data) for _, item in batch.changes if item is not None) + 64


class Ring:
    """The newest change batches, at most ``capacity`` of them and ``max_bytes`` of values.

    Both bounds matter: values may be up to 512 KiB, so a count alone could pin
    gigabytes of superseded values after a burst of large writes. ``base`` is
    the revision of the last batch evicted (0 before any): the ring holds every
    batch appended after it. The hub combines it with the mirror's first load
    revision to decide whether a resume can be served.
    """

    def __init__(self, capacity: int, max_bytes: int = 64 * 2**20, base: int = 0) -> None:
        if capacity < 1 or max_bytes < 1:
            raise ValueError("ring capacity and byte budget must be at least 1")
        self._batches: deque[ChangeBatch] = deque()
        self._capacity = capacity
        self._max_bytes = max_bytes
        self.bytes = 0
        self.base = base

    def append(self, batch: ChangeBatch) -> None:
        self._batches.append(batch)
        self.bytes += batch_bytes(batch)
        while len(self._batches) > 1 and (
            len(self._batches) > self._capacity or self.bytes > self._max_bytes
        ):
            evicted = self._batches.popleft()
            self.bytes -= batch_bytes(evicted)
            self.base = evicted.revision

    def since(self, start_revision: int) -> list[ChangeBatch]:
        """Batches with revision >= start_revision, oldest first."""
        revisions = [b.revision for b in self._batches]
        first = bisect.bisect_left(revisions, start_revision)
        return list(self._batches)[first:]

    def __len__(self) -> int:
        return len(self._batches)
