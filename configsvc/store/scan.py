"""Paged, filtered reads of a key range straight from etcd, bounded per call.

For logs kept in etcd but not in the mirror (audit trail, webhook
deliveries). etcd's own revision filters are not used: with any filter set
etcd reads the whole range before applying ``limit``; a plain paged range
reads only what a page needs. A call reads at most ``budget`` keys, so one
request never walks an unbounded log: a page may be short, with a position
to continue from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aetcd import rpc

from configsvc.store.etcd import EtcdPort

T = TypeVar("T")

#: Keys read per range call, and at most per request.
RANGE_PAGE = 500
SCAN_BUDGET = 10_000


@dataclass(frozen=True)
class ScanPage(Generic[T]):
    """Accepted items, the last key read when more may follow (None: the end), the revision."""

    items: list[T]
    last_key: bytes | None
    revision: int


async def filtered_page(
    etcd: EtcdPort,
    start: bytes,
    end: bytes,
    size: int,
    accept: Callable[[Any], T | None],
    *,
    timeout: float,
    budget: int | None = None,
) -> ScanPage[T]:
    """Up to ``size`` items that ``accept`` makes of the key-values in [start, end)."""
    budget = SCAN_BUDGET if budget is None else budget
    items: list[T] = []
    revision = 0
    scanned = 0
    while start < end:
        if scanned >= budget:  # enough for one call: continue after the last key read
            return ScanPage(items, start[:-1], revision)
        response = await etcd.range(
            rpc.RangeRequest(
                key=start, range_end=end, revision=revision, limit=min(RANGE_PAGE, budget - scanned)
            ),
            timeout=timeout,
        )
        revision = revision or int(response.header.revision)
        for kv in response.kvs:
            scanned += 1
            item = accept(kv)
            if item is None:
                continue
            items.append(item)
            if len(items) == size:
                more = response.more or kv is not response.kvs[-1]
                return ScanPage(items, bytes(kv.key) if more else None, revision)
        if not response.more or not response.kvs:
            break
        start = response.kvs[-1].key + b"\0"
    return ScanPage(items, None, revision)
