"""The leak test: a recognisable plaintext goes through every path, then the whole etcd
history, every error message, every captured log line, every message on the Pulsar topic
(and the broker's files) and every webhook request are searched for it.

The sensitive inline field is marked by a schema registered through ValidationService.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import hvac
import pytest
from aetcd import rpc
from google.protobuf import json_format

from configsvc.devstack.pulsar import PulsarLite
from configsvc.events.settings import WebhookSettings
from configsvc.events.webhooks.signing import SIGNATURE_HEADER, verify
from configsvc.store.etcd import EtcdClient
from configsvc.v1 import (
    config_pb2,
    events_pb2,
    hierarchy_pb2,
    hierarchy_pb2_grpc,
    secrets_pb2,
    secrets_pb2_grpc,
    tenant_pb2,
    validation_pb2,
    validation_pb2_grpc,
    watch_pb2,
    watch_pb2_grpc,
    webhooks_pb2,
    webhooks_pb2_grpc,
)
from tests.helpers import ckey, close_stack, open_stack, secret_settings, start_etcd, start_openbao
from tests.integration.events.receiver import Receiver, serve
from tests.integration.events.support import Collector, event_settings, new_topic
from tests.integration.secrets.support import READER, STRANGER, install_callers, ref, text

#: The webhook's sealed secret needs Vault to sign: deliveries due while Vault is down
#: are retried (many attempts), not dead-lettered.
WEBHOOKS = WebhookSettings(
    allowed_hosts=("127.0.0.1",),
    retry_base=0.05,
    retry_max=0.2,
    poll_interval=0.02,
    lease_ttl=2,
    timeout=2.0,
    max_attempts=10_000,
)


async def etcd_history(endpoint: str) -> list[bytes]:
    """Every key and value etcd ever held (all revisions, nothing compacted here)."""
    client = EtcdClient([endpoint])
    try:
        current = int((await client.range(rpc.RangeRequest(key=b"\0"))).header.revision)
        seen: list[bytes] = []
        last = 0

        async def follow() -> None:
            nonlocal last
            async for response in client.watch(
                rpc.WatchCreateRequest(key=b"\0", range_end=b"\0", start_revision=1, prev_kv=True)
            ):
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


def _webhook_events(receiver: Receiver) -> list[events_pb2.ConfigurationUpdatedEvent]:
    found = []
    for request in receiver.to("/hook"):
        event = events_pb2.ConfigurationUpdatedEvent()
        json_format.Parse(request.body, event)
        found.append(event)
    return found


async def _until_delivered(receiver: Receiver, revisions: set[int]) -> set[int]:
    """Wait (bounded) until the receiver got an event of every revision; returns the missing."""
    for _ in range(1500):
        missing = revisions - {e.revision for e in _webhook_events(receiver)}
        if not missing:
            return missing
        await asyncio.sleep(0.1)
    return missing


def _transit_backup(bao: hvac.Client) -> str:
    return str(bao.secrets.transit.backup_key(name="configsvc")["data"]["backup"])


def _files_under(directory: Path) -> list[bytes]:
    return [path.read_bytes() for path in directory.rglob("*") if path.is_file()]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from serve(Receiver())


async def test_plaintext_never_leaves_vault_except_to_authorized_readers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, private_pulsar: PulsarLite, receiver: Receiver
) -> None:
    caplog.set_level(logging.DEBUG)
    canary = f"LEAK-CANARY-{uuid.uuid4().hex}"
    rotated = f"LEAK-ROTATED-{uuid.uuid4().hex}"
    inline = f"LEAK-INLINE-{uuid.uuid4().hex}"
    signing = f"LEAK-WEBHOOK-{uuid.uuid4().hex}"  # a webhook's signing secret (sealed)
    etcd = start_etcd(tmp_path / "etcd")
    bao_server = start_openbao(tmp_path / "bao")
    topic = new_topic()
    collector = Collector(private_pulsar.url, topic)
    stack = await open_stack(
        etcd.endpoint,
        "/configsvc",
        secrets=secret_settings(bao_server, poll_interval=0.1),
        events=event_settings(private_pulsar.url, topic),
        webhooks=WEBHOOKS,
    )
    await install_callers(stack)
    bao = hvac.Client(url=bao_server.address, token=bao_server.token)
    errors: list[str] = []
    plaintexts_served: list[str] = []
    #: Revisions of the writes of secret-bearing values, and of the plain write.
    withheld: set[int] = set()
    deleted: set[int] = set()
    plain_revision = 0

    async def expect_error(call: Any) -> None:
        try:
            await call
        except grpc.aio.AioRpcError as err:
            errors.append(f"{err.code()} {err.details()} {err.trailing_metadata()}")
        else:
            raise AssertionError("the call should have failed")

    try:
        await stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="acme"))
        bao.secrets.transit.create_key(
            name="configsvc", exportable=True, allow_plaintext_backup=True
        )
        await webhooks_pb2_grpc.WebhookServiceStub(stack.channel).CreateWebhook(
            webhooks_pb2.CreateWebhookRequest(
                webhook=webhooks_pb2.Webhook(
                    tenant="acme", url=receiver.url("/hook"), secret=signing
                )
            )
        )
        await validation_pb2_grpc.ValidationServiceStub(stack.channel).PutSchema(
            validation_pb2.PutSchemaRequest(
                tenant="acme",
                name="creds",
                pattern="creds",
                schema=json.dumps(
                    {"properties": {"token": {"type": "string", "x-sensitive": True}}}
                ),
            )
        )
        bao.secrets.kv.v2.create_or_update_secret(path="app/db", secret={"password": canary})

        # write
        put = await stack.config.Put(
            config_pb2.PutRequest(
                key=ckey("acme", "db"), value=text({"password": ref("app/db")}), reason="db"
            )
        )
        withheld.add(put.revision)
        put = await stack.config.Put(
            config_pb2.PutRequest(key=ckey("acme", "creds"), value=json.dumps({"token": inline}))
        )
        withheld.add(put.revision)
        put = await stack.config.Put(
            config_pb2.PutRequest(key=ckey("acme", "plain"), value=json.dumps({"visible": True}))
        )
        plain_revision = put.revision
        await expect_error(
            stack.config.Put(
                config_pb2.PutRequest(key=ckey("acme", "bad"), value=text(ref("app/db", "nope")))
            )
        )
        promoted = await hierarchy_pb2_grpc.HierarchyServiceStub(stack.channel).Promote(
            hierarchy_pb2.PromoteRequest(
                tenant="acme",
                service="api",
                source_environment="prod",
                target_environment="staging",
                keys=["creds", "db"],
            )
        )
        withheld.add(promoted.revision)

        # read, resolved and not, granted and denied
        got = await stack.config.Get(
            config_pb2.GetRequest(key=ckey("acme", "db"), resolve_secrets=True), metadata=READER
        )
        plaintexts_served.append(got.entry.value)
        await stack.config.Get(config_pb2.GetRequest(key=ckey("acme", "db")))
        batch = await stack.config.BatchGet(
            config_pb2.BatchGetRequest(
                keys=[ckey("acme", "db"), ckey("acme", "creds")], resolve_secrets=True
            ),
            metadata=READER,
        )
        plaintexts_served.extend(e.value for e in batch.entries)
        resolved = await stack.config.Resolve(
            config_pb2.ResolveRequest(
                tenant="acme", environment="prod", service="api", resolve_secrets=True
            ),
            metadata=READER,
        )
        plaintexts_served.append(resolved.document)
        await expect_error(
            stack.config.Get(
                config_pb2.GetRequest(key=ckey("acme", "db"), resolve_secrets=True),
                metadata=STRANGER,
            )
        )
        await expect_error(
            stack.config.Resolve(
                config_pb2.ResolveRequest(
                    tenant="acme", environment="prod", service="api", resolve_secrets=True
                ),
                metadata=STRANGER,
            )
        )

        # watch, then rotate while watching
        call = watch_pb2_grpc.WatchServiceStub(stack.channel).Watch(
            watch_pb2.WatchRequest(
                selectors=[watch_pb2.WatchSelector(tenant="acme")],
                send_snapshot=True,
                resolve_secrets=True,
            ),
            metadata=READER,
        )

        async def until_rotated() -> None:
            while True:
                message = await call.read()
                assert message is not grpc.aio.EOF
                plaintexts_served.append(str(message))
                kind = message.WhichOneof("kind")
                if kind == "snapshot_end":
                    bao.secrets.kv.v2.create_or_update_secret(
                        path="app/db", secret={"password": rotated}
                    )
                if kind == "secrets_rotated":
                    return

        await asyncio.wait_for(until_rotated(), 30)
        call.cancel()
        await expect_error(
            watch_pb2_grpc.WatchServiceStub(stack.channel)
            .Watch(
                watch_pb2.WatchRequest(
                    selectors=[watch_pb2.WatchSelector(tenant="acme")], resolve_secrets=True
                ),
                metadata=STRANGER,
            )
            .read()
        )

        # rewrap after a transit key rotation
        bao.secrets.transit.rotate_key(name="configsvc")
        rewrapped = await secrets_pb2_grpc.SecretServiceStub(stack.channel).RewrapCiphertexts(
            secrets_pb2.RewrapCiphertextsRequest(tenant="acme")
        )  # tenant admin work
        assert len(rewrapped.rewrapped) == 2  # creds in prod and in staging
        assert len(rewrapped.rewrapped_webhooks) == 1  # the webhook's sealed secret
        for key in rewrapped.rewrapped:
            got = await stack.config.Get(config_pb2.GetRequest(key=key))
            withheld.add(got.entry.mod_revision)

        # fail: Vault down, with an expired cache, then back (the dev server restarts
        # empty: the transit key is restored, as a real Vault would keep it)
        transit_backup = _transit_backup(bao)
        bao_server.stop()
        stack.server.secrets.cache.ttl = 0.0
        await expect_error(
            stack.config.Get(
                config_pb2.GetRequest(key=ckey("acme", "db"), resolve_secrets=True),
                metadata=READER,
                timeout=10,
            )
        )
        await expect_error(
            stack.config.Get(
                config_pb2.GetRequest(key=ckey("acme", "creds"), resolve_secrets=True),
                metadata=READER,
                timeout=10,
            )
        )
        await stack.server.secrets.poller.poll()  # type: ignore[union-attr]
        bao_server.start(timeout=30)
        bao.secrets.transit.restore_key(backup=transit_backup, name="configsvc")
        bao.secrets.kv.v2.create_or_update_secret(path="app/db", secret={"password": canary})
        got = await stack.config.Get(
            config_pb2.GetRequest(key=ckey("acme", "db"), resolve_secrets=True), metadata=READER
        )
        plaintexts_served.append(got.entry.value)
        removed = await stack.config.Delete(config_pb2.DeleteRequest(key=ckey("acme", "db")))
        deleted.add(removed.revision)
        restored = await stack.config.Rollback(
            config_pb2.RollbackRequest(key=ckey("acme", "db"), to_version=1)
        )
        withheld.add(restored.revision)

        # publish: every write reaches Pulsar and the webhook
        writes = withheld | deleted | {plain_revision}
        assert await collector.wait_for(writes) == set(), collector.received.summary()
        assert await _until_delivered(receiver, writes) == set()
    finally:
        bao.adapter.close()
        collector.close()
        await close_stack(stack)
        bao_server.stop()
    history = await etcd_history(etcd.endpoint)
    etcd.stop()
    private_pulsar.stop()

    # The events of secret-bearing values carry digests and value_withheld, never a value.
    events = [e for _, e, _ in collector.received.events] + _webhook_events(receiver)
    config_events = [e for e in events if e.HasField("key")]
    assert withheld <= {e.revision for e in config_events if e.value_withheld}
    for event in config_events:
        if event.key.key == "plain":
            assert json.loads(event.new_value) == {"visible": True}, event
            assert not event.value_withheld
        elif event.change_type == config_pb2.OPERATION_DELETE:
            assert event.revision in deleted and not event.HasField("new_value"), event
        else:  # db (a reference) and creds (ciphertext), in prod and staging
            assert event.value_withheld and not event.HasField("new_value"), event
            assert event.new_digest, event
    # The authorized reader did get the plaintext (so the search below means something) ...
    served = "\n".join(plaintexts_served)
    assert canary in served and rotated in served and inline in served
    # ... and nothing else ever held it.
    assert len(history) > 50
    messages = [
        e.SerializeToString() + repr((key, properties)).encode()
        for key, e, properties in collector.received.events
    ]
    requests = [r.body + repr(r.headers).encode() for r in receiver.to("/hook")]
    assert messages and requests
    # The webhook's requests were signed with its secret (sealed in etcd, opened in memory).
    assert all(
        verify(signing, r.headers[SIGNATURE_HEADER], r.body, time.time())
        for r in receiver.to("/hook")
    )
    broker_files = _files_under(private_pulsar.data_dir)
    for secret in (canary, rotated, inline, signing):
        assert not any(secret.encode() in data for data in history), secret
        assert not any(secret in line for line in errors), secret
        assert secret not in caplog.text, secret
        for record in caplog.records:
            assert secret not in str(record.__dict__), secret
        assert secret not in bao_server.log_path.read_text(), secret
        assert not any(secret.encode() in data for data in messages), secret
        assert not any(secret.encode() in data for data in requests), secret
        assert not any(secret.encode() in data for data in broker_files), secret
    assert len(errors) == 6
