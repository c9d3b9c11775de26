"""Stubs of the hierarchy services and small call helpers for the hierarchy tests."""

from __future__ import annotations

import json
from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2

from configsvc.v1 import (
    config_pb2,
    environment_pb2_grpc,
    hierarchy_pb2_grpc,
    template_pb2_grpc,
    validation_pb2_grpc,
)
from tests.helpers import Stack, ckey, detail_of


@dataclass
class Hier:
    """Stubs of every service a hierarchy test talks to."""

    stack: Stack
    validation: validation_pb2_grpc.ValidationServiceStub
    environments: environment_pb2_grpc.EnvironmentServiceStub
    templates: template_pb2_grpc.TemplateServiceStub
    hierarchy: hierarchy_pb2_grpc.HierarchyServiceStub

    async def put(
        self, tenant: str, env: str, service: str, key: str, value: object, reason: str = ""
    ) -> int:
        response = await self.stack.config.Put(
            config_pb2.PutRequest(
                key=ckey(tenant, key, env=env, service=service),
                value=json.dumps(value),
                reason=reason,
            )
        )
        return int(response.revision)

    async def resolve(self, tenant: str, env: str, service: str) -> dict[str, object]:
        response = await self.stack.config.Resolve(
            config_pb2.ResolveRequest(tenant=tenant, environment=env, service=service)
        )
        document: dict[str, object] = json.loads(response.document)
        return document


def hier_stubs(stack: Stack) -> Hier:
    channel = stack.channel
    return Hier(
        stack,
        validation_pb2_grpc.ValidationServiceStub(channel),
        environment_pb2_grpc.EnvironmentServiceStub(channel),
        template_pb2_grpc.TemplateServiceStub(channel),
        hierarchy_pb2_grpc.HierarchyServiceStub(channel),
    )


def bad_request(error: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    """The (field, description) pairs of an error's google.rpc.BadRequest."""
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    found = detail_of(error, error_details_pb2.BadRequest)
    return [(v.field, v.description) for v in found.field_violations]
