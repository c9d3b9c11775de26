"""The configsvc.v1.WebhookService servicer: registration, delivery log, replay.

Webhooks are tenant records (mirrored); deliveries are read from etcd. Every
change (create, delete, replay) is one ``Writer.commit_records`` Txn with its
audit record.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any
from urllib.parse import urlsplit

from aetcd import rpc

from configsvc.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    ResourceExhaustedError,
)
from configsvc.events.settings import WebhookSettings
from configsvc.events.webhooks.allowlist import host_allowed, url_problem
from configsvc.events.webhooks.store import WebhookKeys
from configsvc.model.keys import require_segment
from configsvc.model.values import validate_reason
from configsvc.rpc import pagination, requests
from configsvc.rpc.context import CallContext
from configsvc.secrets.sealing import seal
from configsvc.secrets.vault import VaultClient
from configsvc.store import scan
from configsvc.store.etcd import EtcdClient, prefix_range_end
from configsvc.store.keyspace import Keyspace
from configsvc.store.mirror import Mirror
from configsvc.store.tenants import require_tenant
from configsvc.store.writer import RecordChange, Writer
from configsvc.store.writes import WriteOptions
from configsvc.v1 import audit_pb2, config_pb2, webhooks_pb2, webhooks_pb2_grpc

WEBHOOKS_PER_TENANT = 100
SECRET_MIN, SECRET_MAX = 16, 256
LIST_DEFAULT, LIST_MAX = 100, 1000
_ID = re.compile(r"[0-9a-f]{16}")
_DELIVERY_ID = re.compile(r"[0-9]{20}-[0-9]{1,6}")


def _public(hook: webhooks_pb2.Webhook) -> webhooks_pb2.Webhook:
    shown = webhooks_pb2.Webhook()
    shown.CopyFrom(hook)
    shown.ClearField("secret")
    shown.ClearField("sealed_secret")
    return shown


def _check(field: str, value: str, pattern: re.Pattern[str], form: str) -> str:
    if not pattern.fullmatch(value):
        raise InvalidArgumentError.single(field, f"must be {form}")
    return value


class WebhookService(webhooks_pb2_grpc.WebhookServiceServicer):  # type: ignore[misc]
    """Implements every WebhookService RPC; see the proto for the contract."""

    def __init__(
        self,
        mirror: Mirror,
        writer: Writer,
        etcd: EtcdClient,
        keyspace: Keyspace,
        settings: WebhookSettings,
        request_timeout: float,
        *,
        vault: VaultClient | None = None,
    ) -> None:
        self._mirror = mirror
        #: Seals signing secrets (transit); None stores them as plaintext (development).
        self._vault = vault
        self._writer = writer
        self._etcd = etcd
        self._keys = WebhookKeys(keyspace)
        self._settings = settings
        self._timeout = request_timeout

    def _tenant(self, field: str, value: str) -> str:
        tenant = require_segment(field, value)
        self._mirror.require_available(allow_stale=False)
        require_tenant(self._mirror, tenant)
        return tenant

    def _hook(self, tenant: str, hook_id: str) -> tuple[webhooks_pb2.Webhook, int]:
        record = self._mirror.record(self._keys.webhook(tenant, hook_id))
        if record is None:
            raise NotFoundError("webhook", f"{tenant}/{hook_id}")
        return webhooks_pb2.Webhook.FromString(record.value), record.mod_revision

    def _validated(self, hook: webhooks_pb2.Webhook) -> None:
        problem = url_problem(hook.url)
        if problem is not None:
            raise InvalidArgumentError.single("webhook.url", problem)
        host = urlsplit(hook.url).hostname or ""
        if not self._settings.enabled:
            raise FailedPreconditionError(
                "webhooks are off on this server: no host is allowed (start it with "
                "--webhook-allowed-hosts)"
            )
        if not host_allowed(host, self._settings.allowed_hosts):
            raise FailedPreconditionError(
                f"webhook.url: host {host!r} is not on the server's webhook allow-list "
                f"({', '.join(self._settings.allowed_hosts)})"
            )
        requests.optional_segment("webhook.environment", hook.environment)
        requests.optional_segment("webhook.service", hook.service)
        requests.optional_key_prefix("webhook.key_prefix", hook.key_prefix)
        if not SECRET_MIN <= len(hook.secret) <= SECRET_MAX or not hook.secret.isprintable():
            raise InvalidArgumentError.single(
                "webhook.secret", f"must be {SECRET_MIN} to {SECRET_MAX} printable characters"
            )
        if hook.HasField("sealed_secret"):
            raise InvalidArgumentError.single(
                "webhook.sealed_secret",
                "is set by the server only; send the secret in webhook.secret",
            )
        validate_reason(hook.description, field="webhook.description")

    async def CreateWebhook(
        self, request: webhooks_pb2.CreateWebhookRequest, context: CallContext
    ) -> webhooks_pb2.CreateWebhookResponse:
        if not request.HasField("webhook"):
            raise InvalidArgumentError.single("webhook", "is required")
        tenant = self._tenant("webhook.tenant", request.webhook.tenant)
        self._validated(request.webhook)
        if sum(1 for _ in self._mirror.records(self._keys.webhooks_prefix(tenant))) >= (
            WEBHOOKS_PER_TENANT
        ):
            raise ResourceExhaustedError(
                f"tenant {tenant!r} has {WEBHOOKS_PER_TENANT} webhooks, the limit; delete one"
            )
        actor = requests.actor(context)
        hook = webhooks_pb2.Webhook()
        hook.CopyFrom(request.webhook)
        hook.id = os.urandom(8).hex()
        hook.create_time.GetCurrentTime()
        hook.created_by = actor
        timeout = requests.time_left(context, self._timeout)
        await seal(hook, self._vault, timeout)
        audit = audit_pb2.AuditRecord(
            kind="webhook",
            tenant=tenant,
            name=hook.id,
            operation=config_pb2.OPERATION_PUT,
            actor=actor,
            attributes={"url": hook.url},
        )
        revision = await self._writer.commit_records(
            tenant,
            [
                RecordChange(
                    self._keys.webhook(tenant, hook.id),
                    hook.SerializeToString(),
                    0,
                    f"webhook {hook.id}",
                )
            ],
            [audit],
            options=WriteOptions.of_call(context, self._timeout),
        )
        return webhooks_pb2.CreateWebhookResponse(webhook=_public(hook), revision=revision)

    async def ListWebhooks(
        self, request: webhooks_pb2.ListWebhooksRequest, context: CallContext
    ) -> webhooks_pb2.ListWebhooksResponse:
        tenant = self._tenant("tenant", request.tenant)
        return webhooks_pb2.ListWebhooksResponse(
            webhooks=[
                _public(webhooks_pb2.Webhook.FromString(record.value))
                for _, record in self._mirror.records(self._keys.webhooks_prefix(tenant))
            ]
        )

    async def DeleteWebhook(
        self, request: webhooks_pb2.DeleteWebhookRequest, context: CallContext
    ) -> webhooks_pb2.DeleteWebhookResponse:
        tenant = self._tenant("tenant", request.tenant)
        hook_id = _check("id", request.id, _ID, "16 lowercase hex digits")
        hook, mod_revision = self._hook(tenant, hook_id)
        audit = audit_pb2.AuditRecord(
            kind="webhook",
            tenant=tenant,
            name=hook_id,
            operation=config_pb2.OPERATION_DELETE,
            actor=requests.actor(context),
            attributes={"url": hook.url},
        )
        revision = await self._writer.commit_records(
            tenant,
            [
                RecordChange(
                    self._keys.webhook(tenant, hook_id), None, mod_revision, f"webhook {hook_id}"
                )
            ],
            [audit],
            options=WriteOptions.of_call(context, self._timeout),
        )
        return webhooks_pb2.DeleteWebhookResponse(revision=revision)

    async def ListDeliveries(
        self, request: webhooks_pb2.ListDeliveriesRequest, context: CallContext
    ) -> webhooks_pb2.ListDeliveriesResponse:
        tenant = self._tenant("tenant", request.tenant)
        hook_id = _check("webhook_id", request.webhook_id, _ID, "16 lowercase hex digits")
        if request.state not in webhooks_pb2.DeliveryState.values():
            raise InvalidArgumentError.single("state", f"{request.state} is not a DeliveryState")
        size = requests.page_size(request, default=LIST_DEFAULT, maximum=LIST_MAX)
        self._hook(tenant, hook_id)
        scope = (tenant, hook_id, str(request.state))
        after = pagination.decode(request.page_token, "deliveries", scope)
        prefix = self._keys.deliveries_prefix(tenant, hook_id)
        start = prefix + after.encode() + b"\0" if after is not None else prefix

        def accept(kv: Any) -> webhooks_pb2.Delivery | None:
            delivery = webhooks_pb2.Delivery.FromString(kv.value)
            if request.state and delivery.state != request.state:
                return None
            return delivery

        page = await scan.filtered_page(
            self._etcd,
            start,
            prefix_range_end(prefix),
            size,
            accept,
            timeout=requests.time_left(context, self._timeout),
        )
        response = webhooks_pb2.ListDeliveriesResponse(deliveries=page.items)
        if page.last_key is not None:
            response.next_page_token = pagination.encode(
                "deliveries", scope, page.last_key[len(prefix) :].decode()
            )
        return response

    async def ReplayDelivery(
        self, request: webhooks_pb2.ReplayDeliveryRequest, context: CallContext
    ) -> webhooks_pb2.ReplayDeliveryResponse:
        tenant = self._tenant("tenant", request.tenant)
        hook_id = _check("webhook_id", request.webhook_id, _ID, "16 lowercase hex digits")
        ident = _check(
            "delivery_id",
            request.delivery_id,
            _DELIVERY_ID,
            "a delivery id as ListDeliveries returns it (<20 digits>-<index>)",
        )
        self._hook(tenant, hook_id)
        timeout = requests.time_left(context, self._timeout)
        key = self._keys.delivery(tenant, hook_id, ident)
        found = await self._etcd.range(rpc.RangeRequest(key=key), timeout=timeout)
        if not found.kvs:
            raise NotFoundError("delivery", f"{tenant}/{hook_id}/{ident}")
        delivery = webhooks_pb2.Delivery.FromString(found.kvs[0].value)
        now = time.time_ns()
        delivery.state = webhooks_pb2.DELIVERY_STATE_PENDING
        delivery.attempts = 0
        delivery.last_status_code = 0
        delivery.last_error = ""
        delivery.next_attempt_time.FromNanoseconds(now)
        audit = audit_pb2.AuditRecord(
            kind="webhook-delivery",
            tenant=tenant,
            name=f"{hook_id}/{ident}",
            operation=config_pb2.OPERATION_PUT,
            actor=requests.actor(context),
            attributes={"action": "replay"},
        )
        await self._writer.commit_records(
            tenant,
            [
                RecordChange(
                    key,
                    delivery.SerializeToString(),
                    int(found.kvs[0].mod_revision),
                    f"delivery {ident}",
                ),
                RecordChange(self._keys.queue(tenant, hook_id, ident), str(now).encode()),
            ],
            [audit],
            options=WriteOptions.of_call(context, self._timeout),
        )
        return webhooks_pb2.ReplayDeliveryResponse(delivery=delivery)
