"""The configsvc.v1.AuthService servicer: API keys, role bindings, quotas, WhoAmI.

Authorization of these RPCs is in the one table (``configsvc.auth.rules``);
this module validates requests and delegates the writes to ``AuthAdmin``.
"""

from __future__ import annotations

from configsvc.auth.admin import AuthAdmin
from configsvc.errors import InvalidArgumentError
from configsvc.model.keys import require_segment
from configsvc.rpc import principal, requests
from configsvc.rpc.context import CallContext
from configsvc.store.mirror import Mirror
from configsvc.store.tenants import require_tenant
from configsvc.v1 import auth_pb2, auth_pb2_grpc

#: Longest API key ttl: 100 years. Longer is "no expiry" (leave ttl unset); the cap keeps
#: create time + ttl a valid Timestamp (before 9999) whatever a caller sends.
API_KEY_TTL_MAX = 100 * 365.25 * 86400


class AuthService(auth_pb2_grpc.AuthServiceServicer):  # type: ignore[misc]
    """Implements every AuthService RPC; see auth.proto for the contract."""

    def __init__(self, mirror: Mirror, admin: AuthAdmin, request_timeout: float) -> None:
        self._mirror = mirror
        self._admin = admin
        self._timeout = request_timeout

    def _budget(self, context: CallContext) -> float:
        return requests.time_left(context, self._timeout)

    async def CreateApiKey(
        self, request: auth_pb2.CreateApiKeyRequest, context: CallContext
    ) -> auth_pb2.CreateApiKeyResponse:
        ttl = requests.duration_seconds(request, "ttl", minimum=1.0, maximum=API_KEY_TTL_MAX)
        key, secret, revision = await self._admin.create_key(
            request.name,
            request.description,
            ttl,
            actor=requests.actor(context),
            timeout=self._budget(context),
        )
        return auth_pb2.CreateApiKeyResponse(api_key=key, secret=secret, revision=revision)

    async def ListApiKeys(
        self, request: auth_pb2.ListApiKeysRequest, context: CallContext
    ) -> auth_pb2.ListApiKeysResponse:
        self._mirror.require_available(allow_stale=False)
        return auth_pb2.ListApiKeysResponse(
            api_keys=self._admin.api_keys.listing(), revision=self._mirror.revision
        )

    async def RevokeApiKey(
        self, request: auth_pb2.RevokeApiKeyRequest, context: CallContext
    ) -> auth_pb2.RevokeApiKeyResponse:
        revision = await self._admin.revoke_key(
            request.id, actor=requests.actor(context), timeout=self._budget(context)
        )
        return auth_pb2.RevokeApiKeyResponse(revision=revision)

    async def CreateRoleBinding(
        self, request: auth_pb2.CreateRoleBindingRequest, context: CallContext
    ) -> auth_pb2.CreateRoleBindingResponse:
        if not request.HasField("binding"):
            raise InvalidArgumentError.single("binding", "is required")
        binding, revision = await self._admin.create_binding(
            request.binding, actor=requests.actor(context), timeout=self._budget(context)
        )
        return auth_pb2.CreateRoleBindingResponse(binding=binding, revision=revision)

    async def ListRoleBindings(
        self, request: auth_pb2.ListRoleBindingsRequest, context: CallContext
    ) -> auth_pb2.ListRoleBindingsResponse:
        self._mirror.require_available(allow_stale=False)
        found = [
            b
            for b in self._admin.bindings.all()
            if not request.subject or b.subject == request.subject
        ]
        return auth_pb2.ListRoleBindingsResponse(bindings=found, revision=self._mirror.revision)

    async def DeleteRoleBinding(
        self, request: auth_pb2.DeleteRoleBindingRequest, context: CallContext
    ) -> auth_pb2.DeleteRoleBindingResponse:
        revision = await self._admin.delete_binding(
            request.id, actor=requests.actor(context), timeout=self._budget(context)
        )
        return auth_pb2.DeleteRoleBindingResponse(revision=revision)

    async def SetTenantQuota(
        self, request: auth_pb2.SetTenantQuotaRequest, context: CallContext
    ) -> auth_pb2.SetTenantQuotaResponse:
        if not request.HasField("quota"):
            raise InvalidArgumentError.single("quota", "is required")
        quota, revision = await self._admin.set_quota(
            request.quota, actor=requests.actor(context), timeout=self._budget(context)
        )
        return auth_pb2.SetTenantQuotaResponse(quota=quota, revision=revision)

    async def GetTenantQuota(
        self, request: auth_pb2.GetTenantQuotaRequest, context: CallContext
    ) -> auth_pb2.GetTenantQuotaResponse:
        tenant = require_segment("tenant", request.tenant)
        self._mirror.require_available(allow_stale=False)
        require_tenant(self._mirror, tenant)
        quotas = self._admin.quotas
        return auth_pb2.GetTenantQuotaResponse(quota=quotas.of(tenant), keys=quotas.keys(tenant))

    async def WhoAmI(
        self, request: auth_pb2.WhoAmIRequest, context: CallContext
    ) -> auth_pb2.WhoAmIResponse:
        caller = principal.current()
        if caller is None:
            return auth_pb2.WhoAmIResponse(identity=requests.actor(context), method="none")
        response = auth_pb2.WhoAmIResponse(
            identity=caller.principal.name,
            method=caller.principal.method,
            bindings=self._admin.bindings.of(caller.principal.name),
        )
        if caller.principal.expires_at is not None:
            response.expire_time.FromNanoseconds(int(caller.principal.expires_at * 1e9))
        return response
