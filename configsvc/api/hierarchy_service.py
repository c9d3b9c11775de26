"""The configsvc.v1.HierarchyService servicer: Promote between environments, and Diff."""

from __future__ import annotations

from configsvc.api.config_service import provenance_message
from configsvc.api.records_common import existing_tenant
from configsvc.errors import InvalidArgumentError
from configsvc.hier.guard import WriteGuard
from configsvc.hier.promote import Promoter, PromoteSpec
from configsvc.hier.resolver import LayerSource, MirrorSource, raw_scope, resolve_scope
from configsvc.hier.snapshot import read_at
from configsvc.hier.state import TenantState
from configsvc.model.keys import require_segment
from configsvc.resolve import DiffRow, Resolved, diff
from configsvc.rpc import requests
from configsvc.rpc.context import CallContext
from configsvc.secrets.gateway import SecretGateway
from configsvc.store.etcd import EtcdClient
from configsvc.store.keyspace import Keyspace
from configsvc.store.mirror import Mirror
from configsvc.store.writer import WriteOptions, Writer
from configsvc.v1 import hierarchy_pb2, hierarchy_pb2_grpc


class HierarchyService(hierarchy_pb2_grpc.HierarchyServiceServicer):  # type: ignore[misc]
    """Promote and Diff; see hierarchy.proto for the contract.

    Promote's rules live in ``configsvc.hier.promote``: this class only turns the request
    into a ``PromoteSpec`` and the plan into a response.
    """

    def __init__(
        self,
        mirror: Mirror,
        writer: Writer,
        keyspace: Keyspace,
        guard: WriteGuard,
        etcd: EtcdClient,
        request_timeout: float,
        secrets: SecretGateway | None = None,
    ) -> None:
        self._mirror = mirror
        self._secrets = secrets
        self._writer = writer
        self._ks = keyspace
        self._guard = guard
        self._etcd = etcd
        self._timeout = request_timeout
        self._promoter = Promoter(mirror, writer, keyspace, guard, secrets)

    async def Promote(
        self, request: hierarchy_pb2.PromoteRequest, context: CallContext
    ) -> hierarchy_pb2.PromoteResponse:
        tenant = existing_tenant(self._mirror, request.tenant)
        timeout = requests.time_left(context, self._timeout)
        plan = await self._promoter.plan(
            PromoteSpec(
                tenant=tenant,
                service=request.service,
                source_environment=request.source_environment,
                target_environment=request.target_environment,
                keys=tuple(request.keys),
                reason=request.reason,
                dry_run=request.dry_run,
            ),
            timeout,
        )
        response = hierarchy_pb2.PromoteResponse(
            diff=_rows(tenant, plan.rows),
            keys=[k.key for k in plan.changes],
            revision=plan.revision,
        )
        results = await self._promoter.apply(
            plan, WriteOptions.of_call(context, self._timeout, reason=plan.reason)
        )
        if results:
            response.entries.extend(r.entry for r in results if r.entry is not None)
            response.revision = results[0].revision
        return response

    async def _side(
        self, tenant: str, side: hierarchy_pb2.DiffSide, name: str, raw: bool, context: CallContext
    ) -> tuple[Resolved, int]:
        environment = require_segment(f"{name}.environment", side.environment)
        service = require_segment(f"{name}.service", side.service)
        if side.revision < 0:
            raise InvalidArgumentError.single(f"{name}.revision", "must be 0 (current) or positive")
        source: LayerSource
        state: TenantState
        if side.revision:
            source, state = await read_at(
                self._etcd,
                self._ks,
                tenant,
                side.revision,
                self._mirror.revision,
                field=f"{name}.revision",
                timeout=requests.time_left(context, self._timeout),
            )
            revision = side.revision
        else:
            source = MirrorSource(self._mirror, self._ks, tenant)
            state = self._guard.states.get(tenant)
            revision = self._mirror.revision
        if raw:
            return raw_scope(source, environment, service), revision
        return resolve_scope(source, state, environment, service), revision

    async def Diff(
        self, request: hierarchy_pb2.DiffRequest, context: CallContext
    ) -> hierarchy_pb2.DiffResponse:
        tenant = existing_tenant(self._mirror, request.tenant)
        for name in ("left", "right"):
            if not request.HasField(name):
                raise InvalidArgumentError.single(name, "is required (environment, service)")
        if request.mode not in hierarchy_pb2.DiffMode.values():
            raise InvalidArgumentError.single("mode", f"{request.mode} is not a DiffMode")
        raw = request.mode == hierarchy_pb2.DIFF_MODE_RAW
        left, left_revision = await self._side(tenant, request.left, "left", raw, context)
        right, right_revision = await self._side(tenant, request.right, "right", raw, context)
        return hierarchy_pb2.DiffResponse(
            rows=_rows(tenant, diff(left, right)),
            left_revision=left_revision,
            right_revision=right_revision,
        )


def _rows(tenant: str, rows: list[DiffRow]) -> list[hierarchy_pb2.DiffRow]:
    found = []
    for row in rows:
        message = hierarchy_pb2.DiffRow(path=row.path)
        if row.left_json is not None and row.left_source is not None:
            message.left = row.left_json
            message.left_provenance.CopyFrom(provenance_message(tenant, row.path, row.left_source))
        if row.right_json is not None and row.right_source is not None:
            message.right = row.right_json
            message.right_provenance.CopyFrom(
                provenance_message(tenant, row.path, row.right_source)
            )
        found.append(message)
    return found
