"""The configsvc.v1.AuditService servicer: audit queries and exports."""

from __future__ import annotations

from collections.abc import AsyncIterator

from configsvc.audit.export import render
from configsvc.audit.query import AuditQuery, AuditReader
from configsvc.errors import InvalidArgumentError
from configsvc.rpc import pagination, requests
from configsvc.rpc.context import CallContext
from configsvc.store.etcd import EtcdClient
from configsvc.store.keyspace import Keyspace
from configsvc.store.mirror import Mirror
from configsvc.store.tenants import require_tenant
from configsvc.v1 import audit_query_pb2, audit_query_pb2_grpc

LIST_DEFAULT, LIST_MAX = 100, 1000
_TOKEN_KIND = "audit"


class AuditService(audit_query_pb2_grpc.AuditServiceServicer):  # type: ignore[misc]
    """Implements ListAudit and ExportAudit; see the proto for the contract."""

    def __init__(
        self, mirror: Mirror, etcd: EtcdClient, keyspace: Keyspace, request_timeout: float
    ) -> None:
        self._mirror = mirror
        self._reader = AuditReader(etcd, keyspace)
        self._timeout = request_timeout

    def _query(
        self, request: audit_query_pb2.ListAuditRequest | audit_query_pb2.ExportAuditRequest
    ) -> AuditQuery:
        query = AuditQuery.parse(request.filter)
        if query.tenant is not None:
            self._mirror.require_available(allow_stale=True)
            require_tenant(self._mirror, query.tenant)
        return query

    async def ListAudit(
        self, request: audit_query_pb2.ListAuditRequest, context: CallContext
    ) -> audit_query_pb2.ListAuditResponse:
        query = self._query(request)
        size = requests.page_size(request, default=LIST_DEFAULT, maximum=LIST_MAX)
        after = pagination.decode(request.page_token, _TOKEN_KIND, query.scope())
        page = await self._reader.page(
            query, after, size, timeout=requests.time_left(context, self._timeout)
        )
        response = audit_query_pb2.ListAuditResponse(entries=page.entries, revision=page.revision)
        if page.next_position is not None:
            response.next_page_token = pagination.encode(
                _TOKEN_KIND, query.scope(), page.next_position
            )
        return response

    async def ExportAudit(
        self, request: audit_query_pb2.ExportAuditRequest, context: CallContext
    ) -> AsyncIterator[audit_query_pb2.ExportAuditResponse]:
        if request.format not in (
            audit_query_pb2.EXPORT_FORMAT_JSONL,
            audit_query_pb2.EXPORT_FORMAT_CSV,
        ):
            raise InvalidArgumentError.single(
                "format", "is required: EXPORT_FORMAT_JSONL or EXPORT_FORMAT_CSV"
            )
        query = self._query(request)
        entries = self._reader.all(query, timeout=self._timeout)
        async for chunk in render(entries, request.format):
            yield audit_query_pb2.ExportAuditResponse(data=chunk)
