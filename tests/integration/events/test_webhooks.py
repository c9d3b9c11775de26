"""Webhooks against a local HTTP receiver on 127.0.0.1, real etcd."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from aetcd import rpc

from configsvc.cli.main import main
from configsvc.devstack.etcd import EtcdServer
from configsvc.events.settings import WebhookSettings
from configsvc.events.webhooks.signing import SIGNATURE_HEADER, verify
from configsvc.events.webhooks.store import WebhookKeys
from configsvc.v1 import config_pb2, tenant_pb2, webhooks_pb2, webhooks_pb2_grpc
from tests.conftest import ckey
from tests.helpers import Stack, close_stack, open_stack
from tests.integration.events.receiver import Receiver, serve

SECRET = "correct horse battery staple"
MAX_ATTEMPTS = 5
SETTINGS = WebhookSettings(
    allowed_hosts=("127.0.0.1",),
    max_attempts=MAX_ATTEMPTS,
    retry_base=0.05,
    retry_max=0.2,
    poll_interval=0.02,
    lease_ttl=2,
    timeout=2.0,
)
Delivery = webhooks_pb2.Delivery


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from serve(Receiver(script={"/flaky": [500, 502, 503, 200], "/dead": [503]}))


@pytest.fixture
async def hooks_stack(etcd: EtcdServer, tmp_path: Path) -> AsyncIterator[Stack]:
    stack = await open_stack(etcd.endpoint, f"/hooks-{tmp_path.name}", webhooks=SETTINGS)
    await stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="acme"))
    yield stack
    await close_stack(stack)


def _stub(stack: Stack) -> webhooks_pb2_grpc.WebhookServiceStub:
    return webhooks_pb2_grpc.WebhookServiceStub(stack.channel)


async def _create(stack: Stack, url: str, **filters: str) -> webhooks_pb2.Webhook:
    response = await _stub(stack).CreateWebhook(
        webhooks_pb2.CreateWebhookRequest(
            webhook=webhooks_pb2.Webhook(tenant="acme", url=url, secret=SECRET, **filters)
        )
    )
    return response.webhook


async def _deliveries(
    stack: Stack, hook: webhooks_pb2.Webhook, state: int = 0, size: int = 1000
) -> list[Delivery]:
    found: list[Delivery] = []
    token = ""
    for _ in range(100):
        page = await _stub(stack).ListDeliveries(
            webhooks_pb2.ListDeliveriesRequest(
                tenant="acme", webhook_id=hook.id, state=state, page_size=size, page_token=token
            )
        )
        found += page.deliveries
        token = page.next_page_token
        if not token:
            return found
    raise AssertionError("delivery pages did not end")


async def _until_settled(
    stack: Stack, hook: webhooks_pb2.Webhook, count: int, rounds: int = 1500
) -> list[Delivery]:
    """Deliveries once ``count`` exist and none is pending (bounded polling)."""
    for _ in range(rounds):
        found = await _deliveries(stack, hook)
        if len(found) >= count and all(
            d.state != webhooks_pb2.DELIVERY_STATE_PENDING for d in found
        ):
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"deliveries of {hook.url} never settled: {found}")


async def test_signed_retried_and_dead_lettered(hooks_stack: Stack, receiver: Receiver) -> None:
    stack = hooks_stack
    ok = await _create(stack, receiver.url("/ok"), environment="prod", key_prefix="db.")
    flaky = await _create(stack, receiver.url("/flaky"), environment="prod")
    dead = await _create(stack, receiver.url("/dead"))
    assert not ok.secret and ok.id and ok.created_by == "key:bootstrap-admin"
    put = await stack.config.Put(
        config_pb2.PutRequest(key=ckey("acme", "db.pool"), value='{"max": 5}')
    )
    await stack.config.Put(
        config_pb2.PutRequest(key=ckey("acme", "db.pool", env="dev"), value="1")
    )  # outside ok's filter

    [to_ok] = await _until_settled(stack, ok, 1)
    assert to_ok.state == webhooks_pb2.DELIVERY_STATE_SUCCEEDED and to_ok.attempts == 1
    assert to_ok.event.revision == put.revision
    [first] = await _until_settled(stack, flaky, 1)
    assert first.state == webhooks_pb2.DELIVERY_STATE_SUCCEEDED and first.attempts == 4
    assert first.last_status_code == 200 and not first.last_error
    dead_log = await _until_settled(stack, dead, 2)
    assert all(d.state == webhooks_pb2.DELIVERY_STATE_DEAD for d in dead_log)
    assert all(d.attempts == MAX_ATTEMPTS and d.last_status_code == 503 for d in dead_log)
    letters = await _deliveries(stack, dead, state=webhooks_pb2.DELIVERY_STATE_DEAD, size=1)
    assert [d.id for d in letters] == [d.id for d in dead_log]

    # The flaky receiver acknowledged the first change exactly once, after three failures.
    flaky_requests = [
        r for r in receiver.to("/flaky") if r.headers["X-Configsvc-Delivery-Id"] == first.id
    ]
    assert [r.status for r in flaky_requests] == [500, 502, 503, 200]
    assert [r.headers["X-Configsvc-Attempt"] for r in flaky_requests] == ["1", "2", "3", "4"]
    for request in receiver.requests:
        assert verify(SECRET, request.headers[SIGNATURE_HEADER], request.body, time.time())
        assert not verify(
            "wrong secret value!", request.headers[SIGNATURE_HEADER], request.body, time.time()
        )
    body = json.loads(receiver.to("/ok")[0].body)
    assert body["revision"] == str(put.revision) and body["new_value"] == '{"max": 5}'
    assert body["key"] == {
        "tenant": "acme",
        "environment": "prod",
        "service": "api",
        "key": "db.pool",
    }

    # Replay a dead letter once the receiver works again: it is delivered.
    receiver.script["/dead"] = [200]
    replayed = await _stub(stack).ReplayDelivery(
        webhooks_pb2.ReplayDeliveryRequest(
            tenant="acme", webhook_id=dead.id, delivery_id=dead_log[0].id
        )
    )
    assert replayed.delivery.state == webhooks_pb2.DELIVERY_STATE_PENDING
    for _ in range(1500):
        [again] = [d for d in await _deliveries(stack, dead) if d.id == dead_log[0].id]
        if again.state != webhooks_pb2.DELIVERY_STATE_PENDING:
            break
        await asyncio.sleep(0.02)
    assert again.state == webhooks_pb2.DELIVERY_STATE_SUCCEEDED and again.attempts == 1

    # A webhook registered now receives later changes only.
    late = await _create(stack, receiver.url("/late"))
    after = await stack.config.Put(config_pb2.PutRequest(key=ckey("acme", "db.pool"), value="7"))
    [only] = await _until_settled(stack, late, 1)
    assert only.event.revision == after.revision

    # A deleted webhook is gone from the list; the others are listed without secrets.
    receiver.script["/dead"] = [503]
    await _stub(stack).DeleteWebhook(webhooks_pb2.DeleteWebhookRequest(tenant="acme", id=flaky.id))
    listed = await _stub(stack).ListWebhooks(webhooks_pb2.ListWebhooksRequest(tenant="acme"))
    assert {h.id for h in listed.webhooks} == {ok.id, dead.id, late.id}
    assert all(not h.secret for h in listed.webhooks)


async def _code(call: object) -> grpc.StatusCode:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    raise AssertionError("the call succeeded")


async def test_registration_rules(hooks_stack: Stack, etcd: EtcdServer, tmp_path: Path) -> None:
    stub = _stub(hooks_stack)
    invalid, precondition = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION

    def create(**fields: str) -> object:
        values = {"tenant": "acme", "url": "http://127.0.0.1:1/x", "secret": SECRET, **fields}
        return stub.CreateWebhook(
            webhooks_pb2.CreateWebhookRequest(webhook=webhooks_pb2.Webhook(**values))
        )

    assert await _code(create(url="http://169.254.169.254/latest/meta-data")) == precondition
    assert await _code(create(url="https://example.com/hook")) == precondition
    assert await _code(create(url="file:///etc/passwd")) == invalid
    assert await _code(create(secret="short")) == invalid
    assert await _code(create(environment="Prod")) == invalid
    assert await _code(create(key_prefix="a/b")) == invalid
    assert await _code(create(tenant="nobody")) == grpc.StatusCode.NOT_FOUND
    assert await _code(stub.CreateWebhook(webhooks_pb2.CreateWebhookRequest())) == invalid
    hook = (
        await stub.CreateWebhook(
            webhooks_pb2.CreateWebhookRequest(
                webhook=webhooks_pb2.Webhook(
                    tenant="acme", url="http://127.0.0.1:1/x", secret=SECRET
                )
            )
        )
    ).webhook
    assert (
        await _code(
            stub.DeleteWebhook(webhooks_pb2.DeleteWebhookRequest(tenant="acme", id="0" * 16))
        )
        == grpc.StatusCode.NOT_FOUND
    )
    assert (
        await _code(stub.DeleteWebhook(webhooks_pb2.DeleteWebhookRequest(tenant="acme", id="nope")))
        == invalid
    )
    assert (
        await _code(
            stub.ListDeliveries(
                webhooks_pb2.ListDeliveriesRequest(tenant="acme", webhook_id=hook.id, state=99)
            )
        )
        == invalid
    )
    assert (
        await _code(
            stub.ReplayDelivery(
                webhooks_pb2.ReplayDeliveryRequest(
                    tenant="acme", webhook_id=hook.id, delivery_id="1-0"
                )
            )
        )
        == invalid
    )
    assert await _code(
        stub.ReplayDelivery(
            webhooks_pb2.ReplayDeliveryRequest(
                tenant="acme", webhook_id=hook.id, delivery_id=f"{1:020d}-0"
            )
        )
    ) == (grpc.StatusCode.NOT_FOUND)

    off = await open_stack(etcd.endpoint, f"/hooks-off-{tmp_path.name}")
    try:
        await off.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="acme"))
        assert (
            await _code(
                _stub(off).CreateWebhook(
                    webhooks_pb2.CreateWebhookRequest(
                        webhook=webhooks_pb2.Webhook(
                            tenant="acme", url="http://127.0.0.1:1/x", secret=SECRET
                        )
                    )
                )
            )
            == precondition
        )
    finally:
        await close_stack(off)


async def test_deleted_webhook_dead_letters_what_was_queued(
    etcd: EtcdServer,
    tmp_path: Path,
    receiver: Receiver,
) -> None:
    slow = WebhookSettings(
        allowed_hosts=("127.0.0.1",),
        max_attempts=5,
        retry_base=600,
        retry_max=600,
        poll_interval=0.02,
        lease_ttl=2,
        timeout=2.0,
    )
    stack = await open_stack(etcd.endpoint, f"/hooks-del-{tmp_path.name}", webhooks=slow)
    try:
        await stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="acme"))
        hook = await _create(stack, receiver.url("/dead"))
        await stack.config.Put(config_pb2.PutRequest(key=ckey("acme", "k"), value="1"))
        for _ in range(1500):  # the first attempt fails; the next is due in minutes
            found = await _deliveries(stack, hook)
            if found and found[0].attempts == 1:
                break
            await asyncio.sleep(0.02)
        [waiting] = found
        assert waiting.state == webhooks_pb2.DELIVERY_STATE_PENDING
        await _stub(stack).DeleteWebhook(
            webhooks_pb2.DeleteWebhookRequest(tenant="acme", id=hook.id)
        )
        # Make the queued retry due now, as if the time had come.
        server = stack.server
        keys = WebhookKeys(server.keyspace)
        queue_key = keys.queue("acme", hook.id, waiting.id)
        await server.etcd.txn(
            rpc.TxnRequest(
                success=[rpc.RequestOp(request_put=rpc.PutRequest(key=queue_key, value=b"0"))]
            )
        )
        for _ in range(1500):
            response = await server.etcd.range(
                rpc.RangeRequest(key=keys.delivery("acme", hook.id, waiting.id))
            )
            final = webhooks_pb2.Delivery.FromString(response.kvs[0].value)
            if final.state != webhooks_pb2.DELIVERY_STATE_PENDING:
                break
            await asyncio.sleep(0.02)
        assert final.state == webhooks_pb2.DELIVERY_STATE_DEAD
        assert final.last_error == "webhook deleted"
        assert len(receiver.to("/dead")) == 1  # nothing more was sent
        assert not (await server.etcd.range(rpc.RangeRequest(key=queue_key))).kvs
    finally:
        await close_stack(stack)


@pytest.mark.usefixtures("admin_api_key")
async def test_webhook_commands(
    hooks_stack: Stack,
    receiver: Receiver,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stack = hooks_stack

    async def cli(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = await asyncio.to_thread(main, [*argv, "--server", stack.address])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    code, _, err = await cli("webhook", "create", "acme", receiver.url("/dead"))
    assert code == 2 and "CONFIGSVC_WEBHOOK_SECRET" in err
    monkeypatch.setenv("CONFIGSVC_WEBHOOK_SECRET", SECRET)
    code, out, _ = await cli(
        "webhook",
        "create",
        "acme",
        receiver.url("/dead"),
        "--json",
        "--env",
        "prod",
        "--prefix",
        "db.",
    )
    assert code == 0
    hook_id = json.loads(out)["webhook"]["id"]
    code, out, _ = await cli("webhook", "ls", "acme")
    assert code == 0 and hook_id in out and "prod/*" in out and SECRET not in out
    await stack.config.Put(config_pb2.PutRequest(key=ckey("acme", "db.pool"), value="1"))
    hook = webhooks_pb2.Webhook(id=hook_id, url=receiver.url("/dead"))
    [letter] = await _until_settled(stack, hook, 1)
    code, out, _ = await cli("webhook", "deliveries", "acme", hook_id, "--state", "dead")
    assert code == 0 and letter.id in out and "DEAD" in out and "503" in out
    code, out, _ = await cli("webhook", "replay", "acme", hook_id, letter.id)
    assert code == 0 and "queued again" in out
    code, out, _ = await cli("webhook", "rm", "acme", hook_id)
    assert code == 0 and f"deleted webhook {hook_id}" in out
    code, out, _ = await cli("webhook", "ls", "acme", "--json")
    assert code == 0 and out == ""
