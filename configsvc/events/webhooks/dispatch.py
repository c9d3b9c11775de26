"""Webhook delivery: queue one delivery per matching webhook, then send, retry, dead-letter.

Two halves, both on one elected replica:

* queueing reuses the publisher machinery (election, audit tail, cursor after
  acknowledgement) with ``QueueSink`` as its destination: "acknowledged"
  means the delivery record and queue key are committed in etcd, created only
  if absent, so every matching change is queued once per webhook, even when a
  failover re-reads events;
* ``DeliveryWorker`` runs while the replica leads: it finds due queue keys in
  the mirror, POSTs the signed event, and records the attempt in one Txn
  fenced on the leader key (and on the delivery not having been replayed
  meanwhile): success or the last failed attempt removes the queue key,
  any other failure moves its due time out exponentially.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from typing import Any

from aetcd import rpc
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from configsvc.errors import ConfigsvcError
from configsvc.events.build import OutgoingEvent
from configsvc.events.election import Leadership
from configsvc.events.publisher import Publisher
from configsvc.events.settings import EventSettings, WebhookSettings
from configsvc.events.webhooks import sender
from configsvc.events.webhooks.allowlist import target_problem
from configsvc.events.webhooks.signing import SIGNATURE_HEADER, signature
from configsvc.events.webhooks.store import WebhookKeys, delivery_id
from configsvc.secrets.sealing import NO_VAULT_WARNING, SecretOpener
from configsvc.secrets.vault import VaultClient
from configsvc.store.keyspace import Keyspace
from configsvc.store.ports import EtcdPort, MirrorPort
from configsvc.v1 import events_pb2, webhooks_pb2

log = logging.getLogger(__name__)
#: Longest wait for the mirror to show a change's revision before matching webhooks.
_MIRROR_WAIT = 5.0


def _put(key: bytes, value: bytes) -> Any:
    return rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=value))


def _delete(key: bytes) -> Any:
    return rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=key))


def _timestamp(ns: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(ns)
    return stamp


def matches(hook: webhooks_pb2.Webhook, event: events_pb2.ConfigurationUpdatedEvent) -> bool:
    """Config changes of the webhook's tenant within its environment/service/key filters."""
    if not event.HasField("key") or event.tenant != hook.tenant:
        return False
    key = event.key
    return (
        (not hook.environment or key.environment == hook.environment)
        and (not hook.service or key.service == hook.service)
        and key.key.startswith(hook.key_prefix)
    )


def event_body(event: events_pb2.ConfigurationUpdatedEvent) -> bytes:
    """The request body: the event in proto JSON, proto field names (as the CLI prints)."""
    text = json_format.MessageToJson(
        event, preserving_proto_field_name=True, indent=None, sort_keys=True
    )
    return text.encode()


class QueueSink:
    """The dispatcher's destination: "sending" an event commits its deliveries to etcd."""

    def __init__(self, etcd: EtcdPort, keys: WebhookKeys, mirror: MirrorPort) -> None:
        self._etcd = etcd
        self._keys = keys
        self._mirror = mirror

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def send(self, event: OutgoingEvent) -> asyncio.Future[None]:
        return asyncio.ensure_future(self._enqueue(event.event))

    async def _enqueue(self, event: events_pb2.ConfigurationUpdatedEvent) -> None:
        if not event.tenant or not event.HasField("key"):
            return
        # The tail can be ahead of this replica's mirror: a webhook created just
        # before the change must be visible before deciding who receives it.
        await self._mirror.wait_applied(event.revision, _MIRROR_WAIT)
        records = [r for _, r in self._mirror.records(self._keys.webhooks_prefix(event.tenant))]
        for record in records:  # a list first: the mirror changes while this awaits
            hook = webhooks_pb2.Webhook.FromString(record.value)
            # Changes committed before the webhook existed are not its business.
            if event.revision > record.create_revision and matches(hook, event):
                await self._queue(hook, event)

    async def _queue(
        self, hook: webhooks_pb2.Webhook, event: events_pb2.ConfigurationUpdatedEvent
    ) -> None:
        """Create the delivery unless it exists: a re-read chunk never queues it twice."""
        now = time.time_ns()
        ident = delivery_id(event)
        key = self._keys.delivery(hook.tenant, hook.id, ident)
        delivery = webhooks_pb2.Delivery(
            id=ident,
            webhook_id=hook.id,
            tenant=hook.tenant,
            state=webhooks_pb2.DELIVERY_STATE_PENDING,
            create_time=_timestamp(now),
            next_attempt_time=_timestamp(now),
            event=event,
        )
        await self._etcd.txn(
            rpc.TxnRequest(
                compare=[
                    rpc.Compare(
                        result=rpc.Compare.EQUAL,
                        target=rpc.Compare.CREATE,
                        key=key,
                        create_revision=0,
                    )
                ],
                success=[
                    _put(key, delivery.SerializeToString()),
                    _put(self._keys.queue(hook.tenant, hook.id, ident), str(now).encode()),
                ],
            )
        )


class DeliveryWorker:
    """Sends due deliveries while this replica leads the dispatcher."""

    def __init__(
        self,
        etcd: EtcdPort,
        keys: WebhookKeys,
        mirror: MirrorPort,
        settings: WebhookSettings,
        vault: VaultClient | None = None,
    ) -> None:
        self._etcd = etcd
        self._keys = keys
        self._mirror = mirror
        self._settings = settings
        self._backoff = settings.backoff
        self._secrets = SecretOpener(vault, mirror)
        #: queue key -> revision of our last write to it: until the mirror shows that
        #: write, the mirror's (older) due time must not trigger another attempt.
        self._written: dict[bytes, int] = {}

    async def run(self, leadership: Leadership) -> None:
        tasks: dict[bytes, asyncio.Task[None]] = {}
        try:
            while not leadership.lost.is_set():
                self._start_due(leadership, tasks)
                await asyncio.sleep(self._settings.poll_interval)
        finally:
            for task in tasks.values():
                task.cancel()
            for task in list(tasks.values()):
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _start_due(self, leadership: Leadership, tasks: dict[bytes, asyncio.Task[None]]) -> None:
        applied = self._mirror.revision
        self._written = {k: r for k, r in self._written.items() if r > applied}
        now = time.time_ns()
        for raw, record in self._mirror.records(self._keys.queue_prefix):
            if len(tasks) >= self._settings.concurrency:
                return
            if raw in tasks or self._written.get(raw, 0) > record.mod_revision:
                continue
            if int(record.value or b"0") > now:
                continue
            task = asyncio.get_running_loop().create_task(
                self._attempt(leadership, raw, record.mod_revision)
            )
            tasks[raw] = task
            task.add_done_callback(functools.partial(_forget, tasks, raw))

    async def _attempt(self, leadership: Leadership, queue_key: bytes, queue_mod: int) -> None:
        try:
            await self._deliver(leadership, queue_key, queue_mod)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # etcd lost: the queue key stays, the next poll retries
            log.warning("webhook delivery %s: %s", queue_key.decode(errors="replace"), exc)

    async def _deliver(self, leadership: Leadership, queue_key: bytes, queue_mod: int) -> None:
        parsed = self._keys.parse_queue(queue_key)
        fence = [
            leadership.fence(),
            rpc.Compare(
                result=rpc.Compare.EQUAL,
                target=rpc.Compare.MOD,
                key=queue_key,
                mod_revision=queue_mod,
            ),
        ]
        if parsed is None:
            await self._commit(queue_key, fence, [_delete(queue_key)])
            return
        tenant, hook_id, ident = parsed
        delivery_key = self._keys.delivery(tenant, hook_id, ident)
        found = await self._etcd.range(rpc.RangeRequest(key=delivery_key))
        if not found.kvs:
            await self._commit(queue_key, fence, [_delete(queue_key)])
            return
        delivery = webhooks_pb2.Delivery.FromString(found.kvs[0].value)
        fence.append(
            rpc.Compare(
                result=rpc.Compare.EQUAL,
                target=rpc.Compare.MOD,
                key=delivery_key,
                mod_revision=int(found.kvs[0].mod_revision),
            )
        )
        hook_key = self._keys.webhook(tenant, hook_id)
        record = self._mirror.record(hook_key)
        final = record is None
        if record is None:
            outcome = sender.Outcome(0, "webhook deleted")
        else:
            outcome = await self._post(
                hook_key, webhooks_pb2.Webhook.FromString(record.value), delivery
            )
        now = time.time_ns()
        delivery.attempts += 1
        delivery.last_status_code = outcome.status
        delivery.last_error = outcome.error
        delivery.last_attempt_time.CopyFrom(_timestamp(now))
        if outcome.ok or final or delivery.attempts >= self._settings.max_attempts:
            delivery.state = (
                webhooks_pb2.DELIVERY_STATE_SUCCEEDED
                if outcome.ok
                else webhooks_pb2.DELIVERY_STATE_DEAD
            )
            delivery.ClearField("next_attempt_time")
            queue_op = _delete(queue_key)
        else:
            due = now + int(self._delay(delivery.attempts) * 1e9)
            delivery.next_attempt_time.CopyFrom(_timestamp(due))
            queue_op = _put(queue_key, str(due).encode())
        await self._commit(
            queue_key, fence, [_put(delivery_key, delivery.SerializeToString()), queue_op]
        )

    def _delay(self, attempts: int) -> float:
        """The wait after ``attempts`` failed attempts (``WebhookSettings.backoff``)."""
        return self._backoff.delay(attempts - 1)

    async def _post(
        self, hook_key: bytes, hook: webhooks_pb2.Webhook, delivery: webhooks_pb2.Delivery
    ) -> sender.Outcome:
        problem = target_problem(hook.url, self._settings.allowed_hosts)
        if problem is not None:
            return sender.Outcome(0, f"url {problem}")
        try:
            secret = await self._secrets.secret(hook_key, hook)
        except ConfigsvcError as exc:
            # Vault down (or refusing: key deleted, policy): like a network failure,
            # retried with backoff and dead-lettered at the limit.
            log.warning(
                "webhook %s/%s: cannot open its signing secret: %s", hook.tenant, hook.id, exc
            )
            return sender.Outcome(0, str(exc))
        body = event_body(delivery.event)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "configsvc-webhooks/1",
            SIGNATURE_HEADER: signature(secret, int(time.time()), body),
            "X-Configsvc-Webhook-Id": hook.id,
            "X-Configsvc-Delivery-Id": delivery.id,
            "X-Configsvc-Event-Id": delivery.event.event_id,
            "X-Configsvc-Attempt": str(delivery.attempts + 1),
        }
        return await sender.post(hook.url, body, headers, self._settings.timeout)

    async def _commit(self, queue_key: bytes, compares: list[Any], ops: list[Any]) -> None:
        response = await self._etcd.txn(rpc.TxnRequest(compare=compares, success=ops))
        if response.succeeded:
            self._written[queue_key] = int(response.header.revision)


def _forget(tasks: dict[bytes, asyncio.Task[None]], raw: bytes, _task: object) -> None:
    tasks.pop(raw, None)


def webhook_dispatcher(
    etcd: EtcdPort,
    keyspace: Keyspace,
    mirror: MirrorPort,
    settings: WebhookSettings,
    vault: VaultClient | None = None,
) -> Publisher:
    """The elected dispatcher (queueing); its worker (sending) runs as its companion."""
    if vault is None:
        log.warning(NO_VAULT_WARNING)
    keys = WebhookKeys(keyspace)
    worker = DeliveryWorker(etcd, keys, mirror, settings, vault)
    tail_settings = EventSettings(lease_ttl=settings.lease_ttl, cursor_interval=0.2)
    dispatcher = Publisher(
        etcd,
        keyspace,
        tail_settings,
        name="webhooks",
        sink_factory=lambda: QueueSink(etcd, keys, mirror),
        companion=worker.run,
    )
    return dispatcher
