"""Templates and extends lists stored in etcd, applied by Resolve below every layer."""

from __future__ import annotations

import json

import grpc
import pytest

from configsvc.v1 import config_pb2, template_pb2, validation_pb2
from tests.integration.hier.support import Hier, bad_request


async def put_template(
    hier: Hier, tenant: str, name: str, values: dict[str, object], extends: tuple[str, ...] = ()
) -> template_pb2.PutTemplateResponse:
    response: template_pb2.PutTemplateResponse = await hier.templates.PutTemplate(
        template_pb2.PutTemplateRequest(
            tenant=tenant,
            name=name,
            values={k: json.dumps(v) for k, v in values.items()},
            extends=list(extends),
        )
    )
    return response


async def test_templates_sit_below_the_layers(hier: Hier, tenant: str) -> None:
    base = await put_template(
        hier, tenant, "base", {"http": {"timeout_ms": 1000, "retries": 3}, "log": "info"}
    )
    web = await put_template(hier, tenant, "web", {"http": {"timeout_ms": 2000}}, ("base@1",))
    assert (base.template.version, web.template.version) == (1, 1)
    await hier.templates.SetExtends(
        template_pb2.SetExtendsRequest(
            tenant=tenant, service="api", extends=["web@1"], reason="adopt web"
        )
    )
    await hier.put(tenant, "all", "all", "log", "warn")
    await hier.put(tenant, "prod", "api", "http", {"retries": 5})

    response = await hier.stack.config.Resolve(
        config_pb2.ResolveRequest(tenant=tenant, environment="prod", service="api")
    )
    assert json.loads(response.document) == {
        "http": {"retries": 5, "timeout_ms": 2000},
        "log": "warn",
    }
    where = {p.path: (p.layer, p.template, p.key.key) for p in response.provenance}
    assert where["/http/timeout_ms"] == ("template:web@1", "web@1", "http")
    assert where["/http/retries"][0] == "service-env"
    # Another service does not extend anything.
    assert await hier.resolve(tenant, "prod", "other") == {"log": "warn"}

    # A new version is a new template; the service keeps web@1 until its list changes.
    v2 = await put_template(hier, tenant, "web", {"http": {"timeout_ms": 3000}}, ("base@1",))
    assert v2.template.version == 2
    assert (await hier.resolve(tenant, "prod", "api"))["http"] == {"retries": 5, "timeout_ms": 2000}
    extends = await hier.templates.SetExtends(
        template_pb2.SetExtendsRequest(tenant=tenant, service="api", extends=["web@2"])
    )
    assert list(extends.expanded) == ["base@1", "web@2"]
    assert (await hier.resolve(tenant, "prod", "api"))["http"]["timeout_ms"] == 3000
    got = await hier.templates.GetExtends(
        template_pb2.GetExtendsRequest(tenant=tenant, service="api")
    )
    assert list(got.extends) == ["web@2"] and got.extends_revision == extends.revision
    old = await hier.templates.GetTemplate(
        template_pb2.GetTemplateRequest(tenant=tenant, name="web", version=1)
    )
    assert json.loads(old.template.values["http"]) == {"timeout_ms": 2000}
    listed = await hier.templates.ListTemplates(template_pb2.ListTemplatesRequest(tenant=tenant))
    assert [(t.name, t.version) for t in listed.templates] == [("base", 1), ("web", 2)]
    cleared = await hier.templates.SetExtends(
        template_pb2.SetExtendsRequest(tenant=tenant, service="api")
    )
    assert not cleared.expanded
    assert "timeout_ms" not in (await hier.resolve(tenant, "prod", "api"))["http"]


async def test_cycles_and_missing_templates_name_the_chain(hier: Hier, tenant: str) -> None:
    await put_template(hier, tenant, "a", {"x": 1})
    await put_template(hier, tenant, "b", {"x": 2}, ("a@1",))
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await put_template(hier, tenant, "c", {}, ("b@1", "a@7"))
    [(field, description)] = bad_request(exc.value)
    assert field == "extends" and "template a@7 not found" in description
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await put_template(hier, tenant, "a", {}, ("a@2",))  # itself: a cycle
    assert "template cycle: a@2 -> a@2" in bad_request(exc.value)[0][1]
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await hier.templates.SetExtends(
            template_pb2.SetExtendsRequest(tenant=tenant, service="api", extends=["b@1", "zzz@1"])
        )
    assert "template zzz@1 not found" in bad_request(exc.value)[0][1]
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await hier.templates.SetExtends(
            template_pb2.SetExtendsRequest(tenant=tenant, service="api", extends=["b"])
        )
    assert bad_request(exc.value)[0][0] == "extends[0]"
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await hier.templates.SetExtends(
            template_pb2.SetExtendsRequest(tenant=tenant, service="all", extends=["b@1"])
        )
    assert bad_request(exc.value)[0][0] == "service"
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await hier.templates.PutTemplate(
            template_pb2.PutTemplateRequest(tenant=tenant, name="d", values={"k": "{bad json"})
        )
    assert bad_request(exc.value)[0][0] == "values[k]"
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await hier.templates.PutTemplate(
            template_pb2.PutTemplateRequest(tenant=tenant, name="a", expected_version=0)
        )
    assert exc.value.code() == grpc.StatusCode.ABORTED
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await hier.templates.GetTemplate(
            template_pb2.GetTemplateRequest(tenant=tenant, name="a", version=9)
        )
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND


async def test_extends_that_would_break_a_rule_is_refused(hier: Hier, tenant: str) -> None:
    await put_template(hier, tenant, "big", {"db.pool": {"min": 50}})
    await hier.put(tenant, "prod", "api", "db.pool", {"max": 10})
    await hier.validation.PutRule(
        validation_pb2.PutRuleRequest(
            tenant=tenant,
            name="pool-order",
            message="min <= max",
            logic=json.dumps({"<=": [{"cfg": ["db.pool/min", 0]}, {"cfg": ["db.pool/max", 1e9]}]}),
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await hier.templates.SetExtends(
            template_pb2.SetExtendsRequest(tenant=tenant, service="api", extends=["big@1"])
        )
    [(field, description)] = bad_request(exc.value)
    assert field == "rules/pool-order" and "service 'api' in environment 'prod'" in description
    await hier.templates.SetExtends(
        template_pb2.SetExtendsRequest(tenant=tenant, service="web", extends=["big@1"])
    )  # web has no max: fine


async def test_template_values_are_checked_against_schemas(hier: Hier, tenant: str) -> None:
    await hier.validation.PutSchema(
        validation_pb2.PutSchemaRequest(
            tenant=tenant,
            name="timeouts",
            pattern="http",
            environment="prod",
            schema=json.dumps(
                {"properties": {"timeout_ms": {"type": "integer", "maximum": 60000}}}
            ),
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await put_template(hier, tenant, "slow", {"http": {"timeout_ms": 120000}})
    assert [f for f, _ in bad_request(exc.value)] == ["values[http]/timeout_ms"]
    await put_template(hier, tenant, "slow", {"http": {"timeout_ms": 30000}})
