"""Every hierarchy RPC rejects bad input with the right code and the field it is about."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest

from configsvc.v1 import (
    environment_pb2,
    hierarchy_pb2,
    template_pb2,
    validation_pb2,
)
from tests.helpers import ckey
from tests.integration.hier.support import Hier, bad_request

Case = tuple[Callable[[Hier], Any], Any, str]


def cases(tenant: str) -> list[Case]:
    v, e, t, h = (
        (lambda s: s.validation),
        (lambda s: s.environments),
        (lambda s: s.templates),
        (lambda s: s.hierarchy),
    )
    return [
        (
            v,
            validation_pb2.PutSchemaRequest(tenant=tenant, name="Bad", pattern="a", schema="{}"),
            "name",
        ),
        (v, validation_pb2.PutSchemaRequest(tenant=tenant, name="s", pattern="a"), "schema"),
        (
            v,
            validation_pb2.PutSchemaRequest(
                tenant=tenant, name="s", pattern="a", schema="{}", environment="Prod"
            ),
            "environment",
        ),
        (v, validation_pb2.GetSchemaRequest(tenant=tenant, name="s", version=-1), "version"),
        (
            v,
            validation_pb2.PutRuleRequest(tenant=tenant, name="r", logic="[1]", message="m"),
            "logic",
        ),
        (
            v,
            validation_pb2.PutRuleRequest(tenant=tenant, name="r", logic='{"==": [1, 1]}'),
            "message",
        ),
        (
            v,
            validation_pb2.ValidateRequest(
                tenant=tenant,
                writes=[validation_pb2.ProposedWrite(key=ckey(tenant, "k"), value="{nope")],
            ),
            "writes[0].value",
        ),
        (
            v,
            validation_pb2.ValidateRequest(
                tenant=tenant, schema=validation_pb2.PutSchemaRequest(tenant="x", name="s")
            ),
            "schema.tenant",
        ),
        (
            v,
            validation_pb2.ValidateRequest(
                tenant=tenant, rule=validation_pb2.PutRuleRequest(tenant="x", name="r")
            ),
            "rule.tenant",
        ),
        (
            v,
            validation_pb2.ValidateRequest(
                tenant=tenant,
                writes=[validation_pb2.ProposedWrite(key=ckey(tenant, "k"), value="1")] * 1001,
            ),
            "writes",
        ),
        (e, environment_pb2.GetEnvironmentRequest(tenant=tenant, name="all"), "name"),
        (
            e,
            environment_pb2.CreateEnvironmentRequest(tenant=tenant, name="x", description="\x00"),
            "description",
        ),
        (t, template_pb2.GetTemplateRequest(tenant=tenant, name="x", version=-2), "version"),
        (
            t,
            template_pb2.PutTemplateRequest(tenant=tenant, name="x", values={"a/b": "1"}),
            "values['a/b']",
        ),
        (
            t,
            template_pb2.PutTemplateRequest(
                tenant=tenant, name="x", values={f"k{i}": "1" for i in range(1001)}
            ),
            "values",
        ),
        (
            t,
            template_pb2.PutTemplateRequest(
                tenant=tenant, name="x", extends=[f"t{i}@1" for i in range(17)]
            ),
            "extends",
        ),
        (
            t,
            template_pb2.PutTemplateRequest(tenant=tenant, name="x", extends=["a@1", "a@1"]),
            "extends",
        ),
        (
            h,
            hierarchy_pb2.PromoteRequest(
                tenant=tenant,
                service="api",
                source_environment="a",
                target_environment="b",
                keys=["x/y"],
            ),
            "keys[0]",
        ),
        (
            h,
            hierarchy_pb2.PromoteRequest(
                tenant=tenant,
                service="api",
                source_environment="a",
                target_environment="b",
                keys=["k"] * 1001,
            ),
            "keys",
        ),
        (
            h,
            hierarchy_pb2.DiffRequest(
                tenant=tenant,
                left=hierarchy_pb2.DiffSide(environment="a", service="b"),
                right=hierarchy_pb2.DiffSide(environment="a", service="b"),
                mode=7,
            ),
            "mode",
        ),
        (
            h,
            hierarchy_pb2.DiffRequest(
                tenant=tenant,
                left=hierarchy_pb2.DiffSide(environment="a", service="b", revision=-1),
                right=hierarchy_pb2.DiffSide(environment="a", service="b"),
            ),
            "left.revision",
        ),
    ]


async def call(hier: Hier, pick: Callable[[Hier], Any], request: Any) -> Any:
    stub = pick(hier)
    method: Callable[[Any], Awaitable[Any]] = getattr(
        stub, type(request).__name__.removesuffix("Request")
    )
    return await method(request)


async def test_invalid_arguments_name_their_field(hier: Hier, tenant: str) -> None:
    for pick, request, field in cases(tenant):
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await call(hier, pick, request)
        assert bad_request(exc.value)[0][0] == field, (type(request).__name__, field)


async def test_missing_things_are_not_found(hier: Hier, tenant: str) -> None:
    missing = [
        (hier.validation.GetSchema, validation_pb2.GetSchemaRequest(tenant=tenant, name="s")),
        (
            hier.validation.GetSchema,
            validation_pb2.GetSchemaRequest(tenant=tenant, name="s", version=3),
        ),
        (hier.validation.DeleteRule, validation_pb2.DeleteRuleRequest(tenant=tenant, name="r")),
        (hier.validation.ListRules, validation_pb2.ListRulesRequest(tenant="no-such")),
        (
            hier.environments.UpdateEnvironment,
            environment_pb2.UpdateEnvironmentRequest(tenant=tenant, name="nope"),
        ),
        (
            hier.environments.ListEnvironments,
            environment_pb2.ListEnvironmentsRequest(tenant="no-such"),
        ),
        (hier.templates.GetTemplate, template_pb2.GetTemplateRequest(tenant=tenant, name="x")),
        (hier.templates.ListTemplates, template_pb2.ListTemplatesRequest(tenant="no-such")),
        (
            hier.templates.GetExtends,
            template_pb2.GetExtendsRequest(tenant="no-such", service="api"),
        ),
        (
            hier.hierarchy.Promote,
            hierarchy_pb2.PromoteRequest(
                tenant=tenant, service="api", source_environment="empty", target_environment="prod"
            ),
        ),
    ]
    for method, request in missing:
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await method(request)
        assert exc.value.code() == grpc.StatusCode.NOT_FOUND, type(request).__name__
    empty = await hier.templates.GetExtends(
        template_pb2.GetExtendsRequest(tenant=tenant, service="api")
    )
    assert not empty.extends and empty.extends_revision == 0
