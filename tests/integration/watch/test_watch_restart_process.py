"""A rolling restart of real ``configsvc serve`` processes, with the event publisher on.

The publisher writes its cursor to etcd after every event it delivers, so etcd's
revision is always past the last config change: before issue 17 a client could
never resume on the restarted server (RESUME_TOO_OLD every time). Here the
client resumes with the revision the stopping server handed out at SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
from aetcd import rpc

from configsvc.devstack.etcd import EtcdServer
from configsvc.devstack.ports import free_port
from configsvc.devstack.pulsar import PulsarLite
from configsvc.store.etcd import EtcdClient
from configsvc.v1 import (
    config_pb2,
    config_pb2_grpc,
    tenant_pb2,
    tenant_pb2_grpc,
    watch_pb2,
    watch_pb2_grpc,
)
from tests.helpers import SERVE_ENV, auth_channel, ckey, serve_argv, wait_process_serving
from tests.integration.watch.test_watch import changed_keys, sel
from tests.integration.watch.test_watch_faults import read_all, resume_revision
from tests.integration.watch.test_watch_resume_history import read_through

ROOT = "/configsvc-restart"


@contextmanager
def serve(
    etcd: EtcdServer, pulsar: PulsarLite, topic: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``configsvc serve`` with the publisher on; yields (address, process) once SERVING.
    The caller may stop it with SIGTERM; whatever still runs at the end is terminated."""
    port = free_port()
    process = subprocess.Popen(
        serve_argv(
            etcd.endpoint,
            ROOT,
            port,
            "--grace-period",
            "1",
            "--pulsar-url",
            pulsar.url,
            "--events-topic",
            topic,
        ),
        env={**os.environ, **SERVE_ENV},
    )
    address = f"127.0.0.1:{port}"
    try:
        wait_process_serving(address, process)
        yield address, process
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=30)


async def etcd_revision(etcd: EtcdClient) -> int:
    response = await etcd.range(rpc.RangeRequest(key=b"/", serializable=False))
    return int(response.header.revision)


async def put(channel: grpc.aio.Channel, key: str) -> int:
    stub = config_pb2_grpc.ConfigServiceStub(channel)
    response = await stub.Put(config_pb2.PutRequest(key=ckey("acme", key), value="1"))
    return int(response.revision)


async def test_a_client_resumes_on_the_restarted_server_with_zero_resets(
    own_etcd: EtcdServer, pulsar_broker: PulsarLite
) -> None:
    topic = f"persistent://public/default/watch-restart-{os.getpid()}"
    etcd = EtcdClient([own_etcd.endpoint])
    try:
        with serve(own_etcd, pulsar_broker, topic) as (address, process):
            async with auth_channel(address) as channel:
                await tenant_pb2_grpc.TenantServiceStub(channel).CreateTenant(
                    tenant_pb2.CreateTenantRequest(name="acme")
                )
                call = watch_pb2_grpc.WatchServiceStub(channel).Watch(
                    watch_pb2.WatchRequest(selectors=[sel("acme")])
                )
                seen = [await put(channel, f"k{i}") for i in range(3)]
                got = await read_through(call, seen[-1])
                assert [r for r, _, _ in changed_keys(got)] == seen
                for _ in range(300):  # the publisher moves its cursor after the events
                    if await etcd_revision(etcd) > seen[-1]:
                        break
                    await asyncio.sleep(0.1)
                assert await etcd_revision(etcd) > seen[-1]
                process.send_signal(signal.SIGTERM)
                _, err = await read_all(call, timeout=30)
            assert err is not None and err.code() == grpc.StatusCode.UNAVAILABLE
            handed_out = resume_revision(err)
            assert handed_out > seen[-1]
            assert process.wait(timeout=30) == 0

        with serve(own_etcd, pulsar_broker, topic) as (address, _):
            async with auth_channel(address) as channel:
                stub = watch_pb2_grpc.WatchServiceStub(channel)
                calls = [
                    stub.Watch(
                        watch_pb2.WatchRequest(selectors=[sel("acme")], start_revision=start)
                    )
                    for start in (handed_out, seen[-1] + 1)
                ]
                for call in calls:
                    first = await asyncio.wait_for(call.read(), 30)
                    assert first.WhichOneof("kind") == "progress", first  # no RESET
                after = await put(channel, "after-restart")
                for call in calls:
                    assert changed_keys(await read_through(call, after)) == [
                        (after, "after-restart", watch_pb2.CHANGE_TYPE_PUT)
                    ]
                    call.cancel()
    finally:
        await etcd.close()
