"""The replay window: recent change batches, so a resume never touches etcd."""

from __future__ import annotations

import bisect
from collections import deque

from configsvc.store.mirror import ChangeBatch


class Ring:
    """The last ``capacity`` change batches.

    ``base`` is the revision of the last batch evicted (0 before any): the
    ring holds every batch appended after it. The hub combines it with the
    mirror's first load revision to decide whether a resume can be served.
    """

    def __init__(self, capacity: int, base: int = 0) -> None:
        if capacity < 1:
            raise ValueError("ring capacity must be at least 1")
        self._batches: deque[ChangeBatch] = deque()
        self._capacity = capacity
        self.base = base

    def append(self, batch: ChangeBatch) -> None:
        if len(self._batches) == self._capacity:
            self.base = self._batches.popleft().revision
        self._batches.append(batch)

    def since(self, start_revision: int) -> list[ChangeBatch]:
        """Batches with revision >= start_revision, oldest first."""
        revisions = [b.revision for b in self._batches]
        first = bisect.bisect_left(revisions, start_revision)
        return list(self._batches)[first:]

    def __len__(self) -> int:
        return len(self._batches)
