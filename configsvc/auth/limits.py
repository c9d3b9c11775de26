"""Per-identity rate limits and stream caps, and per-tenant quotas.

All in-process: a replica limits what reaches it (a fleet behind a load
balancer gets N times the rate; size the settings per replica). Quotas count
the tenant's entries in the mirror, so two replicas racing on the last free
key may both admit one write: the quota is a guard rail, not an invariant.
"""

from __future__ import annotations

import time
from typing import Any

from configsvc.errors import RateLimitedError
from configsvc.model.values import VALUE_MAX_BYTES
from configsvc.store.keyspace import Keyspace
from configsvc.store.ports import MirrorPort
from configsvc.v1 import auth_pb2

_MAX_IDENTITIES = 100_000
QUOTA_KIND = "quotas"


class TokenBuckets:
    """One token bucket per identity: ``rate`` tokens a second, at most ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst or max(1, int(2 * rate)))
        self._buckets: dict[str, list[float]] = {}

    def take(self, name: str) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        bucket = self._buckets.get(name)
        if bucket is None:
            if len(self._buckets) >= _MAX_IDENTITIES:
                self._buckets.clear()
            bucket = self._buckets[name] = [self.burst, now]
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens < 1.0:
            bucket[0] = tokens
            raise RateLimitedError(
                f"{name} is over its rate limit of {self.rate:g} calls per second "
                f"(burst {self.burst:g}); slow down and retry",
                retry_after=(1.0 - tokens) / self.rate,
                reason="RATE_LIMITED",
            )
        bucket[0] = tokens - 1.0


class StreamCaps:
    """Concurrent streams per identity in this process."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    def open_streams(self) -> int:
        return sum(self._open.values())

    def acquire(self, name: str) -> None:
        if self.limit <= 0:
            return
        current = self._open.get(name, 0)
        if current >= self.limit:
            raise RateLimitedError(
                f"{name} already holds {current} streams on this server, its limit; "
                "close one (one stream can carry many selectors) or retry later",
                retry_after=5.0,
                reason="STREAM_LIMIT",
            )
        self._open[name] = current + 1

    def release(self, name: str) -> None:
        left = self._open.get(name, 0) - 1
        if left > 0:
            self._open[name] = left
        else:
            self._open.pop(name, None)


class Quotas:
    """Per-tenant limits: server defaults, overridden by ``sys/quotas/<tenant>`` records."""

    def __init__(
        self, mirror: MirrorPort, keyspace: Keyspace, max_keys: int, max_value_bytes: int
    ) -> None:
        self._mirror = mirror
        self._ks = keyspace
        self.default_keys = max_keys
        self.default_value_bytes = max_value_bytes

    def record_key(self, tenant: str) -> bytes:
        return self._ks.sys_key(QUOTA_KIND, tenant)

    def of(self, tenant: str) -> auth_pb2.TenantQuota:
        quota = auth_pb2.TenantQuota(tenant=tenant)
        record = self._mirror.record(self.record_key(tenant))
        if record is not None:
            quota.MergeFromString(record.value)
        quota.max_keys = quota.max_keys or self.default_keys
        quota.max_value_bytes = quota.max_value_bytes or self.default_value_bytes
        return quota

    def keys(self, tenant: str) -> int:
        return self._mirror.count(self._ks.cfg_prefix(tenant))

    def check_put(self, request: Any) -> None:
        """Put hook: value size, and the key count when the key is new."""
        k = request.key
        quota = self.of(k.tenant)
        size = len(request.value.encode())
        # Over the hard limit the servicer's INVALID_ARGUMENT names it; below, the quota.
        if quota.max_value_bytes < size <= VALUE_MAX_BYTES:
            raise RateLimitedError(
                f"the value is {size} bytes; tenant {k.tenant!r} allows at most "
                f"{quota.max_value_bytes} (quota max_value_bytes)",
                retry_after=0.0,
                reason="QUOTA_VALUE_BYTES",
            )
        if self._mirror.lookup(k.tenant, k.environment, k.service, k.key) is not None:
            return
        count = self.keys(k.tenant)
        if count >= quota.max_keys:
            raise RateLimitedError(
                f"tenant {k.tenant!r} holds {count} entries, its quota (max_keys "
                f"{quota.max_keys}); delete entries or raise the quota",
                retry_after=0.0,
                reason="QUOTA_KEYS",
            )
