"""Resolve benchmark: a service with 4 layers of 500 keys each, against a real etcd.

    .venv/bin/python -m bench.resolve [--calls N]

Seeds global, env, service and service-env layers with the same 500 key
names (objects that merge member by member), then measures, sequentially:

* ``Resolve`` RPC, cached: nothing changed since the last call;
* ``Resolve`` RPC after an unrelated write (another service): still cached,
  because the cache is keyed by the scope's own inputs, not the store revision;
* ``Resolve`` RPC, uncached: a write to one of the service's layers before
  every call, so every call merges all 2,000 values again;
* the merge alone (``configsvc.hier.resolver.resolve_scope`` in process).

Prints one JSON object of p50/p99 milliseconds; README.md records a run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import grpc

from configsvc.auth.settings import AuthSettings
from configsvc.devstack import EtcdServer, free_port
from configsvc.hier.resolver import MirrorSource, resolve_scope
from configsvc.server.app import ConfigServer
from configsvc.server.config import ServerConfig
from configsvc.v1 import config_pb2, config_pb2_grpc, tenant_pb2, tenant_pb2_grpc

KEYS = 500
LAYERS = (("all", "all"), ("prod", "all"), ("all", "api"), ("prod", "api"))


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 3),
    }


async def seed(config: config_pb2_grpc.ConfigServiceStub) -> None:
    pending = [(env, service, i) for env, service in LAYERS for i in range(KEYS)]

    async def worker() -> None:
        while pending:
            env, service, i = pending.pop()
            value = {"layer": f"{env}/{service}", "n": i, "nested": {env: i, "shared": service}}
            await config.Put(
                config_pb2.PutRequest(
                    key=config_pb2.ConfigKey(
                        tenant="bench", environment=env, service=service, key=f"key.{i:04d}"
                    ),
                    value=json.dumps(value),
                )
            )

    await asyncio.gather(*(worker() for _ in range(16)))


async def measure(endpoint: str, calls: int) -> dict[str, dict[str, float]]:
    # Authentication off: this measures resolution; bench.native measures auth's cost.
    server = ConfigServer(
        ServerConfig(
            etcd_endpoints=(endpoint,),
            listen="127.0.0.1:0",
            root_prefix="/bench",
            auth=AuthSettings(mode="off"),
        )
    )
    await server.start()
    assert await server.mirror.wait_synced(15)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        await tenant_pb2_grpc.TenantServiceStub(channel).CreateTenant(
            tenant_pb2.CreateTenantRequest(name="bench")
        )
        config = config_pb2_grpc.ConfigServiceStub(channel)
        await seed(config)
        request = config_pb2.ResolveRequest(tenant="bench", environment="prod", service="api")
        check = await config.Resolve(request)
        assert len(json.loads(check.document)) == KEYS

        cached, unrelated_write, uncached, merge = [], [], [], []
        for _ in range(calls):
            start = time.perf_counter()
            await config.Resolve(request)
            cached.append(time.perf_counter() - start)
        for samples, environment, service in (
            (unrelated_write, "staging", "web"),
            (uncached, "prod", "api"),
        ):
            for i in range(calls):
                await config.Put(
                    config_pb2.PutRequest(
                        key=config_pb2.ConfigKey(
                            tenant="bench", environment=environment, service=service, key="tick"
                        ),
                        value=str(i),
                    )
                )
                start = time.perf_counter()
                await config.Resolve(request)
                samples.append(time.perf_counter() - start)
        state = server.guard.states.get("bench")
        source = MirrorSource(server.mirror, server.keyspace, "bench")
        for _ in range(calls):
            start = time.perf_counter()
            resolve_scope(source, state, "prod", "api").canonical_json()
            merge.append(time.perf_counter() - start)
        return {
            "resolve_rpc_cached": percentiles(cached),
            "resolve_rpc_after_unrelated_write": percentiles(unrelated_write),
            "resolve_rpc_uncached": percentiles(uncached),
            "merge_in_process": percentiles(merge),
        }
    finally:
        await channel.close()
        await server.stop(grace=1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per figure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="configsvc-bench-resolve-") as tmp:
        etcd = EtcdServer(Path(tmp) / "etcd", free_port(), free_port())
        etcd.start()
        try:
            result = asyncio.run(measure(etcd.endpoint, args.calls))
        finally:
            etcd.stop()
    print(
        json.dumps(
            {"layers": len(LAYERS), "keys_per_layer": KEYS, "calls": args.calls, **result}, indent=2
        )
    )


if __name__ == "__main__":
    main()
