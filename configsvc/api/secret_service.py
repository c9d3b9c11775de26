"""The configsvc.v1.SecretService servicer (administrative secret operations)."""

from __future__ import annotations

import grpc

from configsvc.errors import FailedPreconditionError, PermissionDeniedError
from configsvc.model.keys import require_segment
from configsvc.rpc import requests
from configsvc.secrets.gateway import NO_VAULT, SecretGateway
from configsvc.secrets.rewrap import rewrap_tenant
from configsvc.store.codec import key_message
from configsvc.store.keyspace import Keyspace
from configsvc.store.mirror import Mirror
from configsvc.store.tenants import require_tenant
from configsvc.store.writer import Writer
from configsvc.v1 import secrets_pb2, secrets_pb2_grpc


class SecretService(secrets_pb2_grpc.SecretServiceServicer):  # type: ignore[misc]
    """Implements SecretService; see secrets.proto for the contract."""

    def __init__(
        self,
        gateway: SecretGateway,
        mirror: Mirror,
        writer: Writer,
        request_timeout: float,
        *,
        keyspace: Keyspace | None = None,
    ) -> None:
        self._gateway = gateway
        #: Where webhooks live, so rewrapping covers their sealed secrets too.
        self._keyspace = keyspace
        self._mirror = mirror
        self._writer = writer
        self._timeout = request_timeout

    async def RewrapCiphertexts(
        self, request: secrets_pb2.RewrapCiphertextsRequest, context: grpc.aio.ServicerContext
    ) -> secrets_pb2.RewrapCiphertextsResponse:
        tenant = require_segment("tenant", request.tenant)
        actor = requests.actor(context)
        if self._gateway.vault is None:
            raise FailedPreconditionError(NO_VAULT)
        self._mirror.require_available(allow_stale=False)
        require_tenant(self._mirror, tenant)
        # Rewrapping reveals nothing, but it rewrites secret-bearing values: the same
        # permission as reading them.
        if not self._gateway.check_permission(actor, tenant):
            raise PermissionDeniedError(
                f"{actor!r} may not manage secrets of tenant {tenant!r} "
                f"({self._gateway.policy.hint})"
            )
        report = await rewrap_tenant(
            self._gateway.vault,
            self._mirror,
            self._writer,
            tenant,
            actor=actor,
            keyspace=self._keyspace,
            timeout=requests.time_left(context, self._timeout),
            trace_id=requests.trace_id(context),
        )
        return secrets_pb2.RewrapCiphertextsResponse(
            rewrapped=[key_message(k) for k in report.rewrapped],
            unchanged=report.unchanged,
            revision=report.revision,
            rewrapped_webhooks=report.webhooks,
        )
