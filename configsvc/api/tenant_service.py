"""The configsvc.v1.TenantService servicer."""

from __future__ import annotations

from configsvc.errors import InvalidArgumentError
from configsvc.model.keys import ALL, require_segment
from configsvc.model.values import validate_reason
from configsvc.rpc.context import CallContext
from configsvc.store.mirror import Mirror
from configsvc.store.tenants import missing_tenant
from configsvc.store.writer import Writer
from configsvc.store.writes import WriteOptions
from configsvc.v1 import tenant_pb2, tenant_pb2_grpc


class TenantService(tenant_pb2_grpc.TenantServiceServicer):  # type: ignore[misc]
    """Creates and lists tenants; reads come from the mirror like config reads."""

    def __init__(self, mirror: Mirror, writer: Writer, request_timeout: float) -> None:
        self._mirror = mirror
        self._writer = writer
        self._timeout = request_timeout

    async def CreateTenant(
        self, request: tenant_pb2.CreateTenantRequest, context: CallContext
    ) -> tenant_pb2.CreateTenantResponse:
        name = require_segment("name", request.name)
        if name == ALL:
            raise InvalidArgumentError.single("name", f"{ALL!r} is reserved")
        description = validate_reason(request.description, field="description")
        tenant, revision = await self._writer.create_tenant(
            name, description, WriteOptions.of_call(context, self._timeout)
        )
        return tenant_pb2.CreateTenantResponse(tenant=tenant, revision=revision)

    async def GetTenant(
        self, request: tenant_pb2.GetTenantRequest, context: CallContext
    ) -> tenant_pb2.GetTenantResponse:
        name = require_segment("name", request.name)
        self._mirror.require_available(allow_stale=False)
        tenant = self._mirror.tenant(name)
        if tenant is None:
            raise missing_tenant(name)
        return tenant_pb2.GetTenantResponse(tenant=tenant, revision=self._mirror.revision)

    async def ListTenants(
        self, request: tenant_pb2.ListTenantsRequest, context: CallContext
    ) -> tenant_pb2.ListTenantsResponse:
        self._mirror.require_available(allow_stale=False)
        return tenant_pb2.ListTenantsResponse(
            tenants=self._mirror.tenants(), revision=self._mirror.revision
        )
