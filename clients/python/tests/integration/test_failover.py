"""Two server processes on one etcd; one is SIGKILLed mid-stream while writes go on.

Every client must end with exactly etcd's state and see each revision at most
once. The servers are real `configsvc serve` processes (SIGKILL needs a process
of its own); the clients use a target listing both addresses, so gRPC moves
them to the surviving server and the client resumes from its last revision.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from collections import Counter
from pathlib import Path

import grpc

from clients.python.tests.integration.support import eventually
from configsvc.devstack import EtcdServer, free_port
from configsvc.v1 import config_pb2, config_pb2_grpc, tenant_pb2, tenant_pb2_grpc
from configsvc_client import Change, ConfigClient, Selector
from tests.helpers import serve_argv

ROOT = Path(__file__).resolve().parents[4]
CLIENTS = 12
WRITES = 120


def serve(etcd: EtcdServer, port: int, root: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        serve_argv(
            etcd.endpoint,
            root,
            port,
            "--watch-progress-interval",
            "1",
            "--auth",
            "off",
        ),  # as in support.start_server: the client's failover is tested
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def wait_serving(address: str) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = tenant_pb2_grpc.TenantServiceStub(channel)

        async def up() -> bool:
            try:
                await stub.ListTenants(tenant_pb2.ListTenantsRequest(), timeout=1)
            except grpc.aio.AioRpcError:
                return False
            return True

        await eventually(up, timeout=30)


async def test_sigkill_one_of_two_servers_mid_stream(private_etcd: EtcdServer) -> None:
    root = f"/failover-{os.getpid()}"
    port_a, port_b = free_port(), free_port()
    server_a, server_b = serve(private_etcd, port_a, root), serve(private_etcd, port_b, root)
    try:
        await wait_serving(f"127.0.0.1:{port_a}")
        await wait_serving(f"127.0.0.1:{port_b}")
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port_b}") as channel:
            tenants = tenant_pb2_grpc.TenantServiceStub(channel)
            config = config_pb2_grpc.ConfigServiceStub(channel)
            await tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="acme"))

            # Most clients prefer A, the one that will die; some prefer B.
            targets = [f"ipv4:127.0.0.1:{port_a},127.0.0.1:{port_b}"] * (CLIENTS - 3) + [
                f"ipv4:127.0.0.1:{port_b},127.0.0.1:{port_a}"
            ] * 3
            clients = [
                await ConfigClient.connect(t, selectors=[Selector(tenant="acme")]) for t in targets
            ]
            seen: list[Counter[int]] = [Counter() for _ in clients]
            for client, counter in zip(clients, seen, strict=True):

                def record(change: Change, counter: Counter[int] = counter) -> None:
                    counter[change.revision] += 1

                client.subscribe("acme/prod/api/", record, prefix=True)

            written: list[int] = []
            for i in range(WRITES):
                key = config_pb2.ConfigKey(
                    tenant="acme", environment="prod", service="api", key=f"k{i % 15}"
                )
                if i % 10 == 9:  # delete the key written just before
                    previous = config_pb2.ConfigKey(
                        tenant="acme", environment="prod", service="api", key=f"k{(i - 1) % 15}"
                    )
                    response = await config.Delete(config_pb2.DeleteRequest(key=previous))
                    written.append(int(response.revision))
                else:
                    put = await config.Put(config_pb2.PutRequest(key=key, value=str(i)))
                    written.append(int(put.revision))
                if i == WRITES // 3:
                    server_a.send_signal(signal.SIGKILL)  # mid-stream, no goodbye
                await asyncio.sleep(0.005)

            listed = await config.List(
                config_pb2.ListRequest(
                    tenant="acme", page_size=1000, consistency=config_pb2.READ_CONSISTENCY_STRONG
                )
            )
            truth = {
                f"{e.key.environment}/{e.key.service}/{e.key.key}": json.loads(e.value)
                for e in listed.entries
            }

            def converged() -> bool:
                return all(c.status.revision >= written[-1] for c in clients)

            await eventually(converged, timeout=60)
            for client, counter in zip(clients, seen, strict=True):
                cached = {
                    f"{e.key.environment}/{e.key.service}/{e.key.key}": e.decode()
                    for e in client.entries()
                }
                assert cached == truth
                assert all(n == 1 for n in counter.values()), counter.most_common(3)
                assert client.stats.resets == 0  # B's window covers the resume points
            assert server_a.poll() == -signal.SIGKILL
            # The clients that were on A really moved (a second stream, on B).
            assert all(c.stats.streams_opened >= 2 for c in clients[: CLIENTS - 3])
            for client in clients:
                await client.close()
    finally:
        for proc in (server_a, server_b):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
