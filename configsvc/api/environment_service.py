"""The configsvc.v1.EnvironmentService servicer: declared environments as records."""

from __future__ import annotations

from configsvc.api.records_common import RecordServicer, existing_tenant, record_audit
from configsvc.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from configsvc.hier import records
from configsvc.hier.records import StoredRecord
from configsvc.model.keys import ALL, require_segment
from configsvc.model.values import validate_reason
from configsvc.rpc import requests
from configsvc.rpc.context import CallContext
from configsvc.store.codec import now_timestamp
from configsvc.store.writer import RecordChange
from configsvc.v1 import environment_pb2, environment_pb2_grpc


class EnvironmentService(RecordServicer, environment_pb2_grpc.EnvironmentServiceServicer):  # type: ignore[misc]
    """Declares environments; see environment.proto for what ``protected`` means."""

    def _name(self, value: str) -> str:
        name = require_segment("name", value)
        if name == ALL:
            raise InvalidArgumentError.single(
                "name", f"{ALL!r} is reserved: it means every environment"
            )
        return name

    async def _store(
        self,
        tenant: str,
        name: str,
        body: dict[str, object],
        expected: int,
        reason: str,
        context: CallContext,
    ) -> int:
        audit = record_audit(records.ENVIRONMENT, tenant, name, str(body["updated_by"]), reason)
        audit.attributes["protected"] = str(bool(body["protected"])).lower()
        return await self._writer.commit_records(
            tenant,
            [
                RecordChange(
                    records.plain_key(self._ks, tenant, records.ENVIRONMENT, name),
                    records.encode(body),
                    expected,
                    label=f"environment {name}",
                )
            ],
            [audit],
            options=self._write_options(context),
        )

    async def CreateEnvironment(
        self,
        request: environment_pb2.CreateEnvironmentRequest,
        context: CallContext,
    ) -> environment_pb2.CreateEnvironmentResponse:
        tenant = existing_tenant(self._mirror, request.tenant)
        name = self._name(request.name)
        description = validate_reason(request.description, field="description")
        if name in self._guard.states.get(tenant).environments:
            raise AlreadyExistsError("environment", name)
        body: dict[str, object] = {
            "description": description,
            "protected": request.protected,
            "updated_by": requests.actor(context),
            "update_time": records.timestamp_text(now_timestamp()),
        }
        revision = await self._store(tenant, name, body, 0, "", context)
        return environment_pb2.CreateEnvironmentResponse(
            environment=_message(tenant, StoredRecord(name, 0, body, revision, revision)),
            revision=revision,
        )

    def _declared(self, tenant: str, name: str) -> StoredRecord:
        record = self._guard.states.get(tenant).environments.get(name)
        if record is None:
            raise NotFoundError(
                "environment", name, f"environment {name!r} is not declared in tenant {tenant!r}"
            )
        return record

    async def GetEnvironment(
        self,
        request: environment_pb2.GetEnvironmentRequest,
        context: CallContext,
    ) -> environment_pb2.GetEnvironmentResponse:
        tenant = existing_tenant(self._mirror, request.tenant)
        name = self._name(request.name)
        record = self._declared(tenant, name)
        services: set[str] = set()
        count = 0
        for item in self._mirror.items(self._ks.scope_prefix(tenant, name)):
            services.add(item.key.service)
            count += 1
        return environment_pb2.GetEnvironmentResponse(
            environment=_message(tenant, record),
            services=sorted(services),
            entry_count=count,
            revision=self._mirror.revision,
        )

    async def ListEnvironments(
        self,
        request: environment_pb2.ListEnvironmentsRequest,
        context: CallContext,
    ) -> environment_pb2.ListEnvironmentsResponse:
        tenant = existing_tenant(self._mirror, request.tenant)
        declared = self._guard.states.get(tenant).environments
        used = {item.key.environment for item in self._mirror.items(self._ks.cfg_prefix(tenant))}
        return environment_pb2.ListEnvironmentsResponse(
            environments=[_message(tenant, declared[n]) for n in sorted(declared)],
            undeclared=sorted(used - set(declared) - {ALL}),
            revision=self._mirror.revision,
        )

    async def UpdateEnvironment(
        self,
        request: environment_pb2.UpdateEnvironmentRequest,
        context: CallContext,
    ) -> environment_pb2.UpdateEnvironmentResponse:
        tenant = existing_tenant(self._mirror, request.tenant)
        name = self._name(request.name)
        reason = validate_reason(request.reason)
        record = self._declared(tenant, name)
        expected = requests.expected_revision(request)
        body = dict(record.body)
        if request.HasField("description"):
            body["description"] = validate_reason(request.description, field="description")
        if request.HasField("protected"):
            if body.get("protected") and not request.protected and not reason.strip():
                raise InvalidArgumentError.single(
                    "reason", f"is required to unprotect environment {name!r}"
                )
            body["protected"] = request.protected
        body["updated_by"] = requests.actor(context)
        body["update_time"] = records.timestamp_text(now_timestamp())
        revision = await self._store(
            tenant,
            name,
            body,
            record.mod_revision if expected is None else expected,
            reason,
            context,
        )
        return environment_pb2.UpdateEnvironmentResponse(
            environment=_message(
                tenant, StoredRecord(name, 0, body, revision, record.create_revision)
            ),
            revision=revision,
        )


def _message(tenant: str, record: StoredRecord) -> environment_pb2.Environment:
    body = record.body
    return environment_pb2.Environment(
        tenant=tenant,
        name=record.name,
        description=str(body.get("description", "")),
        protected=bool(body.get("protected")),
        updated_by=str(body.get("updated_by", "")),
        update_time=records.parse_timestamp(str(body.get("update_time", ""))),
        revision=record.mod_revision,
    )
