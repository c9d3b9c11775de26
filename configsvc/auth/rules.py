"""THE authorization table: full method name -> required permission.

Adding an RPC costs one entry here. The scope it is checked on is read from
the request by field names (see ``scope``); a rule only says more when the
names do not tell: ``aliases`` renames request fields to scope parts,
``installation_wide`` ignores the request (the caller needs the permission on
tenant ``*``), ``stream_filter`` admits a stream whose selectors only partly
overlap the caller's grants and leaves the filtering of each entry to the
servicer, ``hook`` names an extra admission check (quotas). Methods missing
from the table are denied to everyone (and the acceptance test fails).

Health and reflection are PUBLIC: load balancers and Kubernetes probes carry
no credentials, and ``grpcurl list/describe`` should work for operators; they
reveal the contract (already public in ``protos/``) and serving state, never
data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from configsvc.auth.grants import ADMIN, CONFIG_READ, CONFIG_WRITE

#: No credential needed.
PUBLIC = "public"
#: Any authenticated identity; no scope.
AUTHENTICATED = "authenticated"

#: Hook names a rule may use (implemented by the guard).
HOOK_PUT_QUOTA = "quota.put"


@dataclass(frozen=True)
class Rule:
    """What a method needs."""

    permission: str
    aliases: Mapping[str, str] = field(default_factory=dict)
    installation_wide: bool = False
    stream_filter: bool = False
    hook: str = ""


_CONFIG = "/configsvc.v1.ConfigService/"
_TENANT = "/configsvc.v1.TenantService/"
_WATCH = "/configsvc.v1.WatchService/"
_AUTH = "/configsvc.v1.AuthService/"

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
    "/grpc.health.v1.Health/Check": Rule(PUBLIC),
    "/grpc.health.v1.Health/Watch": Rule(PUBLIC),
    "/grpc.health.v1.Health/List": Rule(PUBLIC),
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": Rule(PUBLIC),
}
