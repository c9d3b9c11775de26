"""The leak test: a recognisable plaintext goes through every path, then the whole etcd
history, every error message and every captured log line are searched for it.

(The Pulsar topic joins this search when the events issue lands.)
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from pathlib import Path
from typing import Any

import grpc
import hvac
import pytest
from aetcd import rpc

from configsvc.store.etcd import EtcdClient
from configsvc.v1 import (
    config_pb2,
    secrets_pb2,
    secrets_pb2_grpc,
    tenant_pb2,
    watch_pb2,
    watch_pb2_grpc,
)
from configsvc.validate import SchemaBinding, SchemaRegistry, Scope
from tests.helpers import ckey, close_stack, open_stack, secret_settings, start_etcd, start_openbao
from tests.integration.secrets.support import READER, STRANGER, install_callers, ref, text


async def etcd_history(endpoint: str) -> list[bytes]:
    """Every key and value etcd ever held (all revisions, nothing compacted here)."""
    client = EtcdClient([endpoint])
    try:
        current = int((await client.range(rpc.RangeRequest(key=b"\0"))).header.revision)
        seen: list[bytes] = []
        last = 0

        async def follow() -> None:
            nonlocal last
            async for response in client.watch(rpc.WatchCreateRequest(
                    key=b"\0", range_end=b"\0", start_revision=1, prev_kv=True)):
                for event in response.events:
                    seen.extend((event.kv.key, event.kv.value, event.prev_kv.value))
                    last = max(last, int(event.kv.mod_revision))
                if last >= current:
                    return

        await asyncio.wait_for(follow(), 30)
        current_kvs = await client.range_all(b"\0")
        seen.extend(kv.value for kv in current_kvs)
        return seen
    finally:
        await client.close()


async def test_plaintext_never_leaves_vault_except_to_authorized_readers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    canary = f"LEAK-CANARY-{uuid.uuid4().hex}"
    rotated = f"LEAK-ROTATED-{uuid.uuid4().hex}"
    inline = f"LEAK-INLINE-{uuid.uuid4().hex}"
    etcd = start_etcd(tmp_path / "etcd")
    bao_server = start_openbao(tmp_path / "bao")
    stack = await open_stack(etcd.endpoint, "/configsvc",
                             secrets=secret_settings(bao_server, poll_interval=0.1))
    await install_callers(stack)
    bao = hvac.Client(url=bao_server.address, token=bao_server.token)
    errors: list[str] = []
    plaintexts_served: list[str] = []

    async def expect_error(call: Any) -> None:
        try:
            await call
        except grpc.aio.AioRpcError as err:
            errors.append(f"{err.code()} {err.details()} {err.trailing_metadata()}")
        else:
            raise AssertionError("the call should have failed")

    try:
        await stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="acme"))
        stack.server.secrets.gateway.sensitive = SchemaRegistry([SchemaBinding(
            pattern="creds", version=1, source="leak-test", scope=Scope("acme"),
            schema={"properties": {"token": {"x-sensitive": True}}})])
        bao.secrets.kv.v2.create_or_update_secret(path="app/db", secret={"password": canary})

        # write
        await stack.config.Put(config_pb2.PutRequest(
            key=ckey("acme", "db"), value=text({"password": ref("app/db")}), reason="db"))
        await stack.config.Put(config_pb2.PutRequest(
            key=ckey("acme", "creds"), value=json.dumps({"token": inline})))
        await expect_error(stack.config.Put(config_pb2.PutRequest(
            key=ckey("acme", "bad"), value=text(ref("app/db", "nope")))))

        # read, resolved and not, granted and denied
        got = await stack.config.Get(config_pb2.GetRequest(
            key=ckey("acme", "db"), resolve_secrets=True), metadata=READER)
        plaintexts_served.append(got.entry.value)
        await stack.config.Get(config_pb2.GetRequest(key=ckey("acme", "db")))
        batch = await stack.config.BatchGet(config_pb2.BatchGetRequest(
            keys=[ckey("acme", "db"), ckey("acme", "creds")], resolve_secrets=True),
            metadata=READER)
        plaintexts_served.extend(e.value for e in batch.entries)
        resolved = await stack.config.Resolve(config_pb2.ResolveRequest(
            tenant="acme", environment="prod", service="api", resolve_secrets=True),
            metadata=READER)
        plaintexts_served.append(resolved.document)
        await expect_error(stack.config.Get(config_pb2.GetRequest(
            key=ckey("acme", "db"), resolve_secrets=True), metadata=STRANGER))
        await expect_error(stack.config.Resolve(config_pb2.ResolveRequest(
            tenant="acme", environment="prod", service="api", resolve_secrets=True),
            metadata=STRANGER))

        # watch, then rotate while watching
        call = watch_pb2_grpc.WatchServiceStub(stack.channel).Watch(watch_pb2.WatchRequest(
            selectors=[watch_pb2.WatchSelector(tenant="acme")], send_snapshot=True,
            resolve_secrets=True), metadata=READER)

        async def until_rotated() -> None:
            while True:
                message = await call.read()
                assert message is not grpc.aio.EOF
                plaintexts_served.append(str(message))
                kind = message.WhichOneof("kind")
                if kind == "snapshot_end":
                    bao.secrets.kv.v2.create_or_update_secret(path="app/db",
                                                              secret={"password": rotated})
                if kind == "secrets_rotated":
                    return

        await asyncio.wait_for(until_rotated(), 30)
        call.cancel()
        await expect_error(watch_pb2_grpc.WatchServiceStub(stack.channel).Watch(
            watch_pb2.WatchRequest(selectors=[watch_pb2.WatchSelector(tenant="acme")],
                                   resolve_secrets=True), metadata=STRANGER).read())

        # rewrap after a transit key rotation
        bao.secrets.transit.rotate_key(name="configsvc")
        await secrets_pb2_grpc.SecretServiceStub(stack.channel).RewrapCiphertexts(
            secrets_pb2.RewrapCiphertextsRequest(tenant="acme"))  # tenant admin work

        # fail: Vault down, with an expired cache, then back
        bao_server.stop()
        stack.server.secrets.cache.ttl = 0.0
        await expect_error(stack.config.Get(config_pb2.GetRequest(
            key=ckey("acme", "db"), resolve_secrets=True), metadata=READER, timeout=10))
        await expect_error(stack.config.Get(config_pb2.GetRequest(
            key=ckey("acme", "creds"), resolve_secrets=True), metadata=READER, timeout=10))
        await stack.server.secrets.poller.poll()  # type: ignore[union-attr]
        bao_server.start(timeout=30)
        bao.secrets.kv.v2.create_or_update_secret(path="app/db", secret={"password": canary})
        got = await stack.config.Get(config_pb2.GetRequest(
            key=ckey("acme", "db"), resolve_secrets=True), metadata=READER)
        plaintexts_served.append(got.entry.value)
        await stack.config.Delete(config_pb2.DeleteRequest(key=ckey("acme", "db")))
        await stack.config.Rollback(config_pb2.RollbackRequest(key=ckey("acme", "db"),
                                                               to_version=1))
    finally:
        bao.adapter.close()
        await close_stack(stack)
        bao_server.stop()
    history = await etcd_history(etcd.endpoint)
    etcd.stop()

    # The authorized reader did get the plaintext (so the search below means something) ...
    served = "\n".join(plaintexts_served)
    assert canary in served and rotated in served and inline in served
    # ... and nothing else ever held it.
    assert len(history) > 50
    for secret in (canary, rotated, inline):
        assert not any(secret.encode() in data for data in history), secret
        assert not any(secret in line for line in errors), secret
        assert secret not in caplog.text, secret
        for record in caplog.records:
            assert secret not in str(record.__dict__), secret
        assert secret not in bao_server.log_path.read_text(), secret
    assert len(errors) == 6
