"""Rows and request builders of the RBAC table for the services merged after auth:
secrets, events, audit queries, webhooks and the hierarchy services (#5, #6, #7).

Roles are bound on (tenant A, environment prod), so methods on tenant-level
objects (templates, schemas, rules, webhooks, the environment list) are OK for
root only here; ``test_merged_rules`` shows the tenant-wide bindings they need.
Promote reads the source environment (staging for target "own"), so it is
root-only here too.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import grpc

from configsvc.events.webhooks.store import WebhookKeys
from configsvc.store.writer import RecordChange
from configsvc.v1 import (
    audit_pb2,
    audit_query_pb2,
    config_pb2,
    environment_pb2,
    events_pb2,
    hierarchy_pb2,
    secrets_pb2,
    template_pb2,
    validation_pb2,
    webhooks_pb2,
)
from tests.helpers import ckey
from tests.integration.auth.support import unique

if TYPE_CHECKING:
    from tests.integration.auth.test_rbac_table import World

READERS = {"viewer", "editor", "admin", "auditor", "root"}
AUDITORS = {"auditor", "admin", "root"}
ADMINS = {"admin", "root"}
ROOT = {"root"}

_S, _E, _AU, _H = (
    "/configsvc.v1.SecretService/",
    "/configsvc.v1.EventService/",
    "/configsvc.v1.AuditService/",
    "/configsvc.v1.WebhookService/",
)
_EN, _TM, _V, _HI = (
    "/configsvc.v1.EnvironmentService/",
    "/configsvc.v1.TemplateService/",
    "/configsvc.v1.ValidationService/",
    "/configsvc.v1.HierarchyService/",
)
_TENANT = {"own": ROOT, "other-tenant": ROOT}

EXPECT: dict[str, dict[str, set[str]]] = {
    _S + "RewrapCiphertexts": _TENANT,
    _E + "GetPublisherStatus": {"own": ROOT},
    _AU + "ListAudit": {"own": AUDITORS, "other-env": ROOT, "other-tenant": ROOT},
    _AU + "ExportAudit": {"own": AUDITORS, "other-env": ROOT, "other-tenant": ROOT},
    _H + "CreateWebhook": _TENANT,
    _H + "ListWebhooks": _TENANT,
    _H + "DeleteWebhook": _TENANT,
    _H + "ListDeliveries": _TENANT,
    _H + "ReplayDelivery": _TENANT,
    _EN + "CreateEnvironment": _TENANT,
    _EN + "GetEnvironment": {"own": READERS, "other-env": ROOT, "other-tenant": ROOT},
    _EN + "ListEnvironments": _TENANT,
    _EN + "UpdateEnvironment": {"own": ADMINS, "other-env": ROOT, "other-tenant": ROOT},
    _TM + "PutTemplate": _TENANT,
    _TM + "GetTemplate": _TENANT,
    _TM + "ListTemplates": _TENANT,
    _TM + "SetExtends": _TENANT,
    _TM + "GetExtends": _TENANT,
    _V + "PutSchema": _TENANT,
    _V + "GetSchema": _TENANT,
    _V + "ListSchemas": _TENANT,
    _V + "DeleteSchema": _TENANT,
    _V + "PutRule": _TENANT,
    _V + "ListRules": _TENANT,
    _V + "DeleteRule": _TENANT,
    _V + "Validate": _TENANT,
    _HI + "Promote": {"own": ROOT, "other-env": ROOT, "other-tenant": ROOT},
    _HI + "Diff": {"own": READERS, "other-env": ROOT, "other-tenant": ROOT},
}

#: What an authorized call answers when the shared test server lacks the backend
#: (it has no Vault and webhooks are off): the servicer ran, so admission passed.
ADMITTED_CODES = {
    _S + "RewrapCiphertexts": grpc.StatusCode.FAILED_PRECONDITION,
    _H + "CreateWebhook": grpc.StatusCode.FAILED_PRECONDITION,
}

RULE = json.dumps({"==": [1, 1]})
SCHEMA = json.dumps({"type": "integer"})


async def prepare(world: World) -> None:
    """What the builders read: declared environments, a template, a schema, a rule."""
    stubs = world.stubs
    for target in ("own", "other-env", "other-tenant"):
        t, env = world.tenants[target], world.envs[target]
        await stubs.environments.CreateEnvironment(
            environment_pb2.CreateEnvironmentRequest(tenant=t, name=env)
        )
    for t in {world.tenants["own"], world.tenants["other-tenant"]}:
        await stubs.templates.PutTemplate(
            template_pb2.PutTemplateRequest(tenant=t, name="base", values={"a": "1"})
        )
        await stubs.validation.PutSchema(
            validation_pb2.PutSchemaRequest(tenant=t, name="ints", pattern="n.*", schema=SCHEMA)
        )


async def _webhook(world: World, tenant: str) -> str:
    """A webhook record written as the servicer writes it (webhooks are off here)."""
    server = world.stack.server
    hook_id = unique("h").encode().hex()[:16].ljust(16, "0")
    hook = webhooks_pb2.Webhook(
        tenant=tenant, id=hook_id, url="http://127.0.0.1:9/hook", secret="s" * 16
    )
    await server.writer.commit_records(
        tenant,
        [
            RecordChange(
                WebhookKeys(server.keyspace).webhook(tenant, hook_id),
                hook.SerializeToString(),
                0,
                "test webhook",
            )
        ],
        [
            audit_pb2.AuditRecord(
                kind="webhook", tenant=tenant, name=hook_id, operation=config_pb2.OPERATION_PUT
            )
        ],
        timeout=10,
    )
    return hook_id


async def _delivery(world: World, tenant: str, hook_id: str) -> str:
    server = world.stack.server
    ident = f"{server.mirror.revision:020d}-0"
    delivery = webhooks_pb2.Delivery(
        id=ident, webhook_id=hook_id, tenant=tenant, state=webhooks_pb2.DELIVERY_STATE_DEAD
    )
    await server.writer.commit_records(
        tenant,
        [
            RecordChange(
                WebhookKeys(server.keyspace).delivery(tenant, hook_id, ident),
                delivery.SerializeToString(),
                0,
                "test delivery",
            )
        ],
        [],
        timeout=10,
    )
    return ident


async def request(world: World, method: str, target: str) -> Any:
    """A request for ``method`` on ``target`` that succeeds for an authorized caller."""
    t, env, key = world.tenants[target], world.envs[target], world.key(target)
    stubs = world.stubs
    name = method.rsplit("/", 1)[1]
    audit_filter = audit_query_pb2.AuditFilter(tenant=t, environment=env)
    match name:
        case "RewrapCiphertexts":
            return secrets_pb2.RewrapCiphertextsRequest(tenant=t)
        case "GetPublisherStatus":
            return events_pb2.GetPublisherStatusRequest()
        case "ListAudit":
            return audit_query_pb2.ListAuditRequest(filter=audit_filter)
        case "ExportAudit":
            return audit_query_pb2.ExportAuditRequest(
                filter=audit_filter, format=audit_query_pb2.EXPORT_FORMAT_JSONL
            )
        case "CreateWebhook":
            return webhooks_pb2.CreateWebhookRequest(
                webhook=webhooks_pb2.Webhook(
                    tenant=t, url="http://127.0.0.1:9/hook", environment=env, secret="s" * 16
                )
            )
        case "ListWebhooks":
            return webhooks_pb2.ListWebhooksRequest(tenant=t)
        case "DeleteWebhook":
            return webhooks_pb2.DeleteWebhookRequest(tenant=t, id=await _webhook(world, t))
        case "ListDeliveries":
            return webhooks_pb2.ListDeliveriesRequest(tenant=t, webhook_id=await _webhook(world, t))
        case "ReplayDelivery":
            hook_id = await _webhook(world, t)
            return webhooks_pb2.ReplayDeliveryRequest(
                tenant=t, webhook_id=hook_id, delivery_id=await _delivery(world, t, hook_id)
            )
        case "CreateEnvironment":
            return environment_pb2.CreateEnvironmentRequest(tenant=t, name=unique("env"))
        case "GetEnvironment":
            return environment_pb2.GetEnvironmentRequest(tenant=t, name=env)
        case "ListEnvironments":
            return environment_pb2.ListEnvironmentsRequest(tenant=t)
        case "UpdateEnvironment":
            return environment_pb2.UpdateEnvironmentRequest(
                tenant=t, name=env, description=unique("d")
            )
        case "PutTemplate":
            return template_pb2.PutTemplateRequest(tenant=t, name=unique("tpl"), values={"a": "2"})
        case "GetTemplate":
            return template_pb2.GetTemplateRequest(tenant=t, name="base")
        case "ListTemplates":
            return template_pb2.ListTemplatesRequest(tenant=t)
        case "SetExtends":
            return template_pb2.SetExtendsRequest(tenant=t, service="api", extends=["base@1"])
        case "GetExtends":
            return template_pb2.GetExtendsRequest(tenant=t, service="api")
        case "PutSchema":
            return validation_pb2.PutSchemaRequest(
                tenant=t, name=unique("s"), pattern="n.*", schema=SCHEMA, environment=env
            )
        case "GetSchema":
            return validation_pb2.GetSchemaRequest(tenant=t, name="ints")
        case "ListSchemas":
            return validation_pb2.ListSchemasRequest(tenant=t)
        case "DeleteSchema":
            made = unique("s")
            await stubs.validation.PutSchema(
                validation_pb2.PutSchemaRequest(tenant=t, name=made, pattern="n.*", schema=SCHEMA)
            )
            return validation_pb2.DeleteSchemaRequest(tenant=t, name=made)
        case "PutRule":
            return validation_pb2.PutRuleRequest(
                tenant=t, name=unique("r"), logic=RULE, message="m", environment=env
            )
        case "ListRules":
            return validation_pb2.ListRulesRequest(tenant=t)
        case "DeleteRule":
            made = unique("r")
            await stubs.validation.PutRule(
                validation_pb2.PutRuleRequest(tenant=t, name=made, logic=RULE, message="m")
            )
            return validation_pb2.DeleteRuleRequest(tenant=t, name=made)
        case "Validate":
            return validation_pb2.ValidateRequest(
                tenant=t, writes=[validation_pb2.ProposedWrite(key=key, value="3")]
            )
        case "Promote":
            source = "prod" if env == "staging" else "staging"
            await world.stack.config.Put(
                config_pb2.PutRequest(key=ckey(t, "k", env=source), value="5")
            )
            return hierarchy_pb2.PromoteRequest(
                tenant=t,
                service="api",
                keys=["k"],
                source_environment=source,
                target_environment=env,
            )
        case "Diff":
            left = hierarchy_pb2.DiffSide(environment=world.envs["own"], service="api")
            return hierarchy_pb2.DiffRequest(
                tenant=t, left=left, right=hierarchy_pb2.DiffSide(environment=env, service="api")
            )
    return None
