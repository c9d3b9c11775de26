"""Where webhooks, their deliveries and the retry queue live in etcd.

* ``<root>/t/<tenant>/webhooks/<id>``: the ``Webhook`` (secret included);
  a mirrored record kind, so every replica matches events without a read;
* ``<root>/t/<tenant>/webhook-deliveries/<webhook id>/<delivery id>``: each
  ``Delivery`` with its attempts (the delivery log, read from etcd);
* ``<root>/sys/webhook-queue/<tenant>/<webhook id>/<delivery id>``: one small
  key per pending delivery, holding when its next attempt is due (Unix
  nanoseconds). Mirrored (it is under ``sys/``), so the worker finds due
  deliveries in memory, including replays made through another replica.

Delivery ids are ``<revision, 20 digits>-<index>``, so the log sorts by event.
"""

from __future__ import annotations

from configsvc.secrets.sealing import WEBHOOK_RECORDS
from configsvc.store.keyspace import Keyspace
from configsvc.v1 import events_pb2

#: The record kind, named where sealing (below events) can use it too.
WEBHOOKS = WEBHOOK_RECORDS
DELIVERIES = "webhook-deliveries"
QUEUE = "webhook-queue"


def delivery_id(event: events_pb2.ConfigurationUpdatedEvent) -> str:
    index = event.event_id.rpartition("-")[2] or "0"
    return f"{event.revision:020d}-{index}"


class WebhookKeys:
    """Builds the webhook keys under one root."""

    def __init__(self, ks: Keyspace) -> None:
        self._ks = ks
        self.queue_prefix = ks.sys_key(QUEUE, "")

    def webhook(self, tenant: str, webhook_id: str) -> bytes:
        return self._ks.record_key(tenant, WEBHOOKS, webhook_id)

    def webhooks_prefix(self, tenant: str) -> bytes:
        return self._ks.record_prefix(tenant, WEBHOOKS)

    def delivery(self, tenant: str, webhook_id: str, delivery: str) -> bytes:
        return self._ks.record_key(tenant, DELIVERIES, webhook_id, delivery)

    def deliveries_prefix(self, tenant: str, webhook_id: str) -> bytes:
        return self._ks.record_key(tenant, DELIVERIES, webhook_id, "")

    def queue(self, tenant: str, webhook_id: str, delivery: str) -> bytes:
        return self._ks.sys_key(QUEUE, tenant, webhook_id, delivery)

    def parse_queue(self, raw: bytes) -> tuple[str, str, str] | None:
        """(tenant, webhook id, delivery id) of a queue key."""
        parts = raw[len(self.queue_prefix) :].decode().split("/")
        if len(parts) != 3:
            return None
        return parts[0], parts[1], parts[2]
