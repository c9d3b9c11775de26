"""Webhook signing secrets sealed by Vault transit: real etcd, real OpenBao, local receiver.

The secret's plaintext must appear nowhere in etcd's history; deliveries are still
signed with it; Vault down refuses registrations and delays deliveries (which resume
when Vault returns); webhooks stored as plaintext before sealing keep working.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import grpc
import hvac
import pytest

from configsvc.devstack.etcd import EtcdServer
from configsvc.devstack.openbao import OpenBaoDevServer
from configsvc.events.settings import WebhookSettings
from configsvc.events.webhooks.signing import SIGNATURE_HEADER, verify
from configsvc.events.webhooks.store import WebhookKeys
from configsvc.secrets.sealing import NO_VAULT_WARNING
from configsvc.store.writer import RecordChange
from configsvc.v1 import (
    config_pb2,
    secrets_pb2,
    secrets_pb2_grpc,
    tenant_pb2,
    webhooks_pb2,
    webhooks_pb2_grpc,
)
from tests.helpers import (
    Stack,
    backend_of,
    ckey,
    close_stack,
    open_stack,
    secret_settings,
)
from tests.integration.events.receiver import Receiver, serve
from tests.integration.secrets.test_no_leak import etcd_history

TRANSIT_KEY = "configsvc"
#: Many attempts, quickly retried: a delivery stays pending while Vault is down.
SETTINGS = WebhookSettings(
    allowed_hosts=("127.0.0.1",),
    max_attempts=10_000,
    retry_base=0.05,
    retry_max=0.2,
    poll_interval=0.02,
    lease_ttl=2,
    timeout=2.0,
)
ROOT = "/whs"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from serve(Receiver())


@pytest.fixture
async def vault_stack(own_etcd: EtcdServer, own_bao: OpenBaoDevServer) -> AsyncIterator[Stack]:
    stack = await _open(own_etcd, own_bao)
    await stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="acme"))
    yield stack
    await close_stack(stack)


async def _open(etcd: EtcdServer, bao: OpenBaoDevServer) -> Stack:
    return await open_stack(etcd.endpoint, ROOT, webhooks=SETTINGS, secrets=secret_settings(bao))


def _bao(server: OpenBaoDevServer) -> hvac.Client:
    return hvac.Client(url=server.address, token=server.token)


def _stub(stack: Stack) -> webhooks_pb2_grpc.WebhookServiceStub:
    return webhooks_pb2_grpc.WebhookServiceStub(stack.channel)


def _request(url: str, secret: str) -> webhooks_pb2.CreateWebhookRequest:
    return webhooks_pb2.CreateWebhookRequest(
        webhook=webhooks_pb2.Webhook(tenant="acme", url=url, secret=secret)
    )


def _stored(stack: Stack, hook_id: str) -> webhooks_pb2.Webhook:
    record = stack.server.mirror.record(WebhookKeys(stack.server.keyspace).webhook("acme", hook_id))
    assert record is not None
    return webhooks_pb2.Webhook.FromString(record.value)


async def _delivery(stack: Stack, hook_id: str, revision: int) -> webhooks_pb2.Delivery | None:
    page = await _stub(stack).ListDeliveries(
        webhooks_pb2.ListDeliveriesRequest(tenant="acme", webhook_id=hook_id, page_size=1000)
    )
    return next((d for d in page.deliveries if d.event.revision == revision), None)


async def _until(
    stack: Stack, hook_id: str, revision: int, *, succeeded: bool = True, failed_attempts: int = 0
) -> webhooks_pb2.Delivery:
    """The delivery of ``revision``, once succeeded (or pending after that many failures)."""
    found = None
    for _ in range(1500):
        found = await _delivery(stack, hook_id, revision)
        if found is not None:
            if succeeded and found.state == webhooks_pb2.DELIVERY_STATE_SUCCEEDED:
                return found
            if not succeeded and found.attempts >= failed_attempts:
                return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"delivery of revision {revision} to {hook_id}: {found}")


def _signed_with(receiver: Receiver, path: str, revision: int, secret: str) -> None:
    """Every request of ``revision`` to ``path`` verifies with ``secret``, and only with it."""
    requests = [
        r
        for r in receiver.to(path)
        if r.headers["X-Configsvc-Delivery-Id"].startswith(f"{revision:020d}-")
    ]
    assert requests
    for request in requests:
        assert verify(secret, request.headers[SIGNATURE_HEADER], request.body, time.time())
        assert not verify(
            secret + "x", request.headers[SIGNATURE_HEADER], request.body, time.time()
        )


async def _put(stack: Stack, value: str) -> int:
    put = await stack.config.Put(config_pb2.PutRequest(key=ckey("acme", "k"), value=value))
    return int(put.revision)


async def test_sealed_secrets_sign_and_never_reach_etcd(
    vault_stack: Stack, own_etcd: EtcdServer, own_bao: OpenBaoDevServer, receiver: Receiver
) -> None:
    stack = vault_stack
    secret = f"WEBHOOK-CANARY-{uuid.uuid4().hex}"
    looks_sealed = "vault:v1:" + uuid.uuid4().hex  # a user's secret, never taken as ciphertext
    sealed = (await _stub(stack).CreateWebhook(_request(receiver.url("/a"), secret))).webhook
    tricky = (await _stub(stack).CreateWebhook(_request(receiver.url("/b"), looks_sealed))).webhook
    assert not sealed.secret and not sealed.HasField("sealed_secret")
    stored = _stored(stack, sealed.id)
    assert not stored.secret and stored.sealed_secret.transit_key == TRANSIT_KEY
    assert stored.sealed_secret.ciphertext.startswith("vault:v1:")
    assert _stored(stack, tricky.id).sealed_secret.ciphertext != looks_sealed
    listed = await _stub(stack).ListWebhooks(webhooks_pb2.ListWebhooksRequest(tenant="acme"))
    assert all(not h.secret and not h.HasField("sealed_secret") for h in listed.webhooks)

    # Clients cannot set the server-internal field.
    forged = _request(receiver.url("/c"), secret)
    forged.webhook.sealed_secret.ciphertext = stored.sealed_secret.ciphertext
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _stub(stack).CreateWebhook(forged)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "webhook.sealed_secret" in (err.value.details() or "")

    revision = await _put(stack, "1")
    await _until(stack, sealed.id, revision)
    await _until(stack, tricky.id, revision)
    _signed_with(receiver, "/a", revision, secret)
    _signed_with(receiver, "/b", revision, looks_sealed)

    # A rotated transit key: the old ciphertext still opens (decrypted once, kept in memory).
    _bao(own_bao).secrets.transit.rotate_key(name=TRANSIT_KEY)
    revision = await _put(stack, "2")
    await _until(stack, sealed.id, revision)
    _signed_with(receiver, "/a", revision, secret)
    # `configsvc secrets rewrap` rewraps the sealed secrets too; deliveries go on.
    secrets = secrets_pb2_grpc.SecretServiceStub(stack.channel)
    rewrapped = await secrets.RewrapCiphertexts(secrets_pb2.RewrapCiphertextsRequest(tenant="acme"))
    assert sorted(rewrapped.rewrapped_webhooks) == sorted([sealed.id, tricky.id])
    assert _stored(stack, sealed.id).sealed_secret.ciphertext.startswith("vault:v2:")
    again = await secrets.RewrapCiphertexts(secrets_pb2.RewrapCiphertextsRequest(tenant="acme"))
    assert not again.rewrapped_webhooks and again.revision == 0
    revision = await _put(stack, "3")
    await _until(stack, sealed.id, revision)
    _signed_with(receiver, "/a", revision, secret)

    history = await etcd_history(own_etcd.endpoint)
    assert any(stored.sealed_secret.ciphertext.encode() in data for data in history)
    assert not any(secret.encode() in data for data in history)
    assert not any(looks_sealed.encode() in data for data in history)


async def test_vault_down_refuses_registration_and_delays_deliveries(
    vault_stack: Stack, own_etcd: EtcdServer, own_bao: OpenBaoDevServer, receiver: Receiver
) -> None:
    secret = f"WEBHOOK-SEALED-{uuid.uuid4().hex}"
    plain_secret = f"WEBHOOK-PLAIN-{uuid.uuid4().hex}"
    bao = _bao(own_bao)
    # Exportable with a plaintext backup, so the restarted dev server (which starts
    # empty) can get the same key back.
    bao.secrets.transit.create_key(name=TRANSIT_KEY, exportable=True, allow_plaintext_backup=True)
    stack = vault_stack
    sealed = (await _stub(stack).CreateWebhook(_request(receiver.url("/sealed"), secret))).webhook
    # A webhook stored as plaintext (as before sealing existed), written through the store.
    keys = WebhookKeys(stack.server.keyspace)
    legacy = webhooks_pb2.Webhook(
        tenant="acme", id="00000000000000aa", url=receiver.url("/legacy"), secret=plain_secret
    )
    await stack.server.writer.commit_records(
        "acme",
        [
            RecordChange(
                keys.webhook("acme", legacy.id), legacy.SerializeToString(), 0, "legacy webhook"
            )
        ],
        [],
        timeout=10,
    )
    revision = await _put(stack, "1")
    await _until(stack, legacy.id, revision)
    await _until(stack, sealed.id, revision)
    _signed_with(receiver, "/legacy", revision, plain_secret)
    backup = bao.secrets.transit.backup_key(name=TRANSIT_KEY)["data"]["backup"]
    before = [
        h.id
        for h in (
            await _stub(stack).ListWebhooks(webhooks_pb2.ListWebhooksRequest(tenant="acme"))
        ).webhooks
    ]
    # A fresh process: nothing decrypted yet, so deliveries need Vault.
    await close_stack(stack)
    own_bao.stop()
    stack = await _open(own_etcd, own_bao)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _stub(stack).CreateWebhook(_request(receiver.url("/new"), secret), timeout=15)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert backend_of(err.value) == "Vault" and "Vault" in (err.value.details() or "")
        after = await _stub(stack).ListWebhooks(webhooks_pb2.ListWebhooksRequest(tenant="acme"))
        assert [h.id for h in after.webhooks] == before

        revision = await _put(stack, "2")
        # The plaintext-stored webhook does not need Vault; the sealed one fails and retries.
        await _until(stack, legacy.id, revision)
        _signed_with(receiver, "/legacy", revision, plain_secret)
        waiting = await _until(stack, sealed.id, revision, succeeded=False, failed_attempts=2)
        assert waiting.state == webhooks_pb2.DELIVERY_STATE_PENDING
        assert "Vault unavailable" in waiting.last_error and waiting.last_status_code == 0
        assert not receiver.to("/sealed")[1:]  # only the delivery of revision 1 arrived

        own_bao.start(timeout=30)
        _bao(own_bao).secrets.transit.restore_key(backup=backup, name=TRANSIT_KEY)
        done = await _until(stack, sealed.id, revision)
        assert done.attempts > waiting.attempts
        _signed_with(receiver, "/sealed", revision, secret)

        # Rewrap seals the webhook stored as plaintext; it keeps delivering.
        rewrapped = await secrets_pb2_grpc.SecretServiceStub(stack.channel).RewrapCiphertexts(
            secrets_pb2.RewrapCiphertextsRequest(tenant="acme")
        )
        assert list(rewrapped.rewrapped_webhooks) == [legacy.id]
        now_sealed = _stored(stack, legacy.id)
        assert not now_sealed.secret and now_sealed.sealed_secret.ciphertext
        revision = await _put(stack, "3")
        await _until(stack, legacy.id, revision)
        _signed_with(receiver, "/legacy", revision, plain_secret)
    finally:
        await close_stack(stack)
    history = await etcd_history(own_etcd.endpoint)
    assert not any(secret.encode() in data for data in history)


async def test_without_vault_secrets_stay_plaintext_with_one_warning(
    own_etcd: EtcdServer, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="configsvc.events.webhooks")
    stack = await open_stack(own_etcd.endpoint, "/whs-plain", webhooks=SETTINGS)
    try:
        assert [r.getMessage() for r in caplog.records].count(NO_VAULT_WARNING) == 1
        await stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="acme"))
        secret = f"WEBHOOK-DEV-{uuid.uuid4().hex}"
        hook = (await _stub(stack).CreateWebhook(_request(receiver.url("/dev"), secret))).webhook
        stored = _stored(stack, hook.id)
        assert stored.secret == secret and not stored.HasField("sealed_secret")
        revision = await _put(stack, "1")
        await _until(stack, hook.id, revision)
        _signed_with(receiver, "/dev", revision, secret)
    finally:
        await close_stack(stack)
