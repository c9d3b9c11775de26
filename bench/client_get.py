"""Client-side read: time per ``get`` from the Python client's watch-fed cache.

The client is connected to a real ``configsvc serve`` (the caller starts it);
the 256-byte value arrives through the Watch stream, then ``get`` is timed in
a tight loop: it is a local dictionary read, no RPC.
"""

from __future__ import annotations

import asyncio
import time

from configsvc_client import ConfigClient, Key, Selector

LOOPS = 1_000_000


def _per_call_ns(fn: object, loops: int) -> float:
    call = fn  # local for speed
    started = time.perf_counter_ns()
    for _ in range(loops):
        call()  # type: ignore[operator]
    return (time.perf_counter_ns() - started) / loops


async def measure(address: str, *, quick: bool, api_key: str | None = None) -> dict[str, float]:
    loops = LOOPS // 10 if quick else LOOPS
    async with ConfigClient.connect(
        address, selectors=[Selector(tenant="bench")], api_key=api_key
    ) as client:
        await client.wait_fresh(timeout=10)
        path = "bench/prod/api/value256"
        key = Key("bench", "prod", "api", "value256")
        assert client.get(path) is not None, "the bench value did not reach the client cache"
        empty = _per_call_ns(lambda: None, loops)
        by_key = _per_call_ns(lambda: client.get(key), loops) - empty
        by_path = _per_call_ns(lambda: client.get(path), loops) - empty
    return {"client_get_ns": by_path, "client_get_key_ns": by_key}


def run(address: str, *, quick: bool, api_key: str | None = None) -> dict[str, float]:
    return asyncio.run(measure(address, quick=quick, api_key=api_key))
