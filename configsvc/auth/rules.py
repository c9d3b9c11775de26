"""THE authorization table: full method name -> required permission.

Adding an RPC costs one entry here. The scope it is checked on is read from
the request by field names (see ``scope``); a rule only says more when the
names do not tell: ``aliases`` renames request fields to scope parts,
``installation_wide`` ignores the request (the caller needs the permission on
tenant ``*``), ``stream_filter`` admits a stream whose selectors only partly
overlap the caller's grants and leaves the filtering of each entry to the
servicer, ``hook`` names an extra admission check (quotas), ``tenant_wide``
checks the tenant only (tenant-level objects: their environment/service
fields are filters, so the caller needs the permission on every environment
and service of the tenant), ``also`` adds checks of other permissions on
other fields of the same request (Promote writes the target environment and
reads the source one). Methods missing from the table are denied to everyone
(and the acceptance test fails). README.md "Authorization of the other
services" explains each choice.

Health and reflection are PUBLIC: load balancers and Kubernetes probes carry
no credentials, and ``grpcurl list/describe`` should work for operators; they
reveal the contract (already public in ``protos/``) and serving state, never
data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from configsvc.model.grants import ADMIN, AUDIT_READ, CONFIG_READ, CONFIG_WRITE

#: No credential needed.
PUBLIC = "public"
#: Any authenticated identity; no scope.
AUTHENTICATED = "authenticated"

#: Hook names a rule may use (implemented by the guard).
HOOK_PUT_QUOTA = "quota.put"
#: Scope reader of the flagd RPCs (registered by configsvc.flags): the selector header.
SCOPE_FLAGD_SELECTOR = "flagd.selector"


@dataclass(frozen=True)
class Check:
    """One more permission a method needs, on the scope ``aliases`` read."""

    permission: str
    aliases: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    """What a method needs."""

    permission: str
    aliases: Mapping[str, str] = field(default_factory=dict)
    installation_wide: bool = False
    stream_filter: bool = False
    hook: str = ""
    tenant_wide: bool = False
    also: tuple[Check, ...] = ()
    overlap: bool = False
    """Admit when the grants cover part of the scope (flag sets: any reader in the
    environment, whatever its service or key prefix)."""
    scope_from: str = ""
    """Name of a scope reader registered by a feature, for requests whose scope is not in
    their fields (flagd: the ``flagd-selector`` header)."""


_CONFIG = "/configsvc.v1.ConfigService/"
_TENANT = "/configsvc.v1.TenantService/"
_WATCH = "/configsvc.v1.WatchService/"
_AUTH = "/configsvc.v1.AuthService/"
_SECRET = "/configsvc.v1.SecretService/"
_EVENT = "/configsvc.v1.EventService/"
_AUDIT = "/configsvc.v1.AuditService/"
_HOOK = "/configsvc.v1.WebhookService/"
_ENV = "/configsvc.v1.EnvironmentService/"
_TMPL = "/configsvc.v1.TemplateService/"
_VALID = "/configsvc.v1.ValidationService/"
_HIER = "/configsvc.v1.HierarchyService/"
_TARGET_ENV = {"target_environment": "environment"}
_SOURCE_ENV = {"source_environment": "environment"}
_LEFT = {"left.environment": "environment", "left.service": "service"}
_RIGHT = {"right.environment": "environment", "right.service": "service"}
_ENV_NAME = {"name": "environment"}
_FLAGS = "/configsvc.v1.FlagService/"
_FLAGD_V1 = "/flagd.evaluation.v1.Service/"
_FLAGD_V2 = "/flagd.evaluation.v2.Service/"
_FLAGD_SYNC = "/flagd.sync.v1.FlagSyncService/"
#: Flag sets are per (tenant, environment) and every service of the environment
#: evaluates them: any read grant in the environment reads its flags.
_FLAG_READ = Rule(CONFIG_READ, overlap=True)
_FLAGD = Rule(CONFIG_READ, overlap=True, scope_from=SCOPE_FLAGD_SELECTOR)

METHOD_RULES: dict[str, Rule] = {
    _CONFIG + "Get": Rule(CONFIG_READ),
    _CONFIG + "BatchGet": Rule(CONFIG_READ),
    _CONFIG + "List": Rule(CONFIG_READ),
    _CONFIG + "Resolve": Rule(CONFIG_READ),
    _CONFIG + "History": Rule(CONFIG_READ),
    _CONFIG + "Put": Rule(CONFIG_WRITE, hook=HOOK_PUT_QUOTA),
    _CONFIG + "Delete": Rule(CONFIG_WRITE),
    _CONFIG + "Rollback": Rule(CONFIG_WRITE),
    _TENANT + "CreateTenant": Rule(ADMIN, installation_wide=True),
    _TENANT + "GetTenant": Rule(CONFIG_READ, aliases={"name": "tenant"}),
    _TENANT + "ListTenants": Rule(CONFIG_READ, installation_wide=True),
    _WATCH + "Watch": Rule(CONFIG_READ, stream_filter=True),
    _AUTH + "CreateApiKey": Rule(ADMIN, installation_wide=True),
    _AUTH + "ListApiKeys": Rule(ADMIN, installation_wide=True),
    _AUTH + "RevokeApiKey": Rule(ADMIN, installation_wide=True),
    _AUTH + "CreateRoleBinding": Rule(ADMIN, installation_wide=True),
    _AUTH + "ListRoleBindings": Rule(ADMIN, installation_wide=True),
    _AUTH + "DeleteRoleBinding": Rule(ADMIN, installation_wide=True),
    _AUTH + "SetTenantQuota": Rule(ADMIN, installation_wide=True),
    _AUTH + "GetTenantQuota": Rule(CONFIG_READ),
    _AUTH + "WhoAmI": Rule(AUTHENTICATED),
    # Transit re-encryption of a whole tenant: tenant admin (the servicer also
    # asks the secret-read policy, which admin includes).
    _SECRET + "RewrapCiphertexts": Rule(ADMIN),
    # Publisher health: operational, no tenant data; viewers of every tenant.
    _EVENT + "GetPublisherStatus": Rule(CONFIG_READ, installation_wide=True),
    # Audit queries: auditors (and admins) on the filter's scope; an empty
    # filter tenant reads the installation's audit trail (tenant *).
    _AUDIT + "ListAudit": Rule(AUDIT_READ),
    _AUDIT + "ExportAudit": Rule(AUDIT_READ),
    # Webhooks are tenant objects that ship change events out: editors of the
    # whole tenant manage them, viewers of the whole tenant read them.
    _HOOK + "CreateWebhook": Rule(CONFIG_WRITE, tenant_wide=True),
    _HOOK + "ListWebhooks": Rule(CONFIG_READ, tenant_wide=True),
    _HOOK + "DeleteWebhook": Rule(CONFIG_WRITE, tenant_wide=True),
    _HOOK + "ListDeliveries": Rule(CONFIG_READ, tenant_wide=True),
    _HOOK + "ReplayDelivery": Rule(CONFIG_WRITE, tenant_wide=True),
    # Environments: declaring one and changing its protection is admin work on
    # that environment; reading it needs read on it; the list needs the tenant.
    _ENV + "CreateEnvironment": Rule(ADMIN, aliases=_ENV_NAME),
    _ENV + "GetEnvironment": Rule(CONFIG_READ, aliases=_ENV_NAME),
    _ENV + "ListEnvironments": Rule(CONFIG_READ),
    _ENV + "UpdateEnvironment": Rule(ADMIN, aliases=_ENV_NAME),
    # Templates feed every service that extends them: editors of the whole
    # tenant write them; a service's extends list is written on that service
    # (every environment).
    _TMPL + "PutTemplate": Rule(CONFIG_WRITE),
    _TMPL + "GetTemplate": Rule(CONFIG_READ),
    _TMPL + "ListTemplates": Rule(CONFIG_READ),
    _TMPL + "SetExtends": Rule(CONFIG_WRITE),
    _TMPL + "GetExtends": Rule(CONFIG_READ),
    # Schemas and rules are the policy editors must obey: tenant admins change
    # them; reading them needs read on the whole tenant. Validate is a dry run
    # against the tenant's values (its answer can quote them): tenant viewers.
    _VALID + "PutSchema": Rule(ADMIN, tenant_wide=True),
    _VALID + "GetSchema": Rule(CONFIG_READ),
    _VALID + "ListSchemas": Rule(CONFIG_READ),
    _VALID + "DeleteSchema": Rule(ADMIN),
    _VALID + "PutRule": Rule(ADMIN, tenant_wide=True),
    _VALID + "ListRules": Rule(CONFIG_READ),
    _VALID + "DeleteRule": Rule(ADMIN),
    _VALID + "Validate": Rule(CONFIG_READ, tenant_wide=True),
    # Promote writes the target environment and reads the source one; Diff
    # reads both sides (resolved views need read on the whole service).
    _HIER + "Promote": Rule(
        CONFIG_WRITE, aliases=_TARGET_ENV, also=(Check(CONFIG_READ, _SOURCE_ENV),)
    ),
    _HIER + "Diff": Rule(CONFIG_READ, aliases=_LEFT, also=(Check(CONFIG_READ, _RIGHT),)),
    # Flag management: writes need write on the whole (tenant, environment) of the
    # flag set (FlagSetRef); reads (definition, history, stats) any read grant there.
    _FLAGS + "PutFlagSet": Rule(CONFIG_WRITE),
    _FLAGS + "GetFlagSet": _FLAG_READ,
    _FLAGS + "DeleteFlagSet": Rule(CONFIG_WRITE),
    _FLAGS + "PutFlag": Rule(CONFIG_WRITE),
    _FLAGS + "DeleteFlag": Rule(CONFIG_WRITE),
    _FLAGS + "SetFlagState": Rule(CONFIG_WRITE),
    _FLAGS + "SetRollout": Rule(CONFIG_WRITE),
    _FLAGS + "ListFlagSetHistory": _FLAG_READ,
    _FLAGS + "RollbackFlagSet": Rule(CONFIG_WRITE),
    _FLAGS + "GetFlagStats": _FLAG_READ,
    # flagd evaluation and sync: the flag set named by the flagd-selector header
    # (or the sync request's selector, or --flags-default-selector); providers send
    # the API key as call credentials (README "Feature flags and authentication").
    **{
        prefix + name: _FLAGD
        for prefix, names in (
            (
                _FLAGD_V1,
                (
                    "ResolveAll",
                    "ResolveBoolean",
                    "ResolveString",
                    "ResolveFloat",
                    "ResolveInt",
                    "ResolveObject",
                    "EventStream",
                ),
            ),
            (
                _FLAGD_V2,
                (
                    "ResolveBoolean",
                    "ResolveString",
                    "ResolveFloat",
                    "ResolveInt",
                    "ResolveObject",
                    "EventStream",
                ),
            ),
            (_FLAGD_SYNC, ("SyncFlags", "FetchAllFlags", "GetMetadata")),
        )
        for name in names
    },
    "/grpc.health.v1.Health/Check": Rule(PUBLIC),
    "/grpc.health.v1.Health/Watch": Rule(PUBLIC),
    "/grpc.health.v1.Health/List": Rule(PUBLIC),
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": Rule(PUBLIC),
}
