"""Rows and request builders of the RBAC table for the flag services (#8):
configsvc.v1.FlagService and the flagd evaluation and sync services.

flagd requests name their flag set in the ``flagd-selector`` header, so their
builders return (request, metadata). Roles are bound on (tenant A, prod), so
"own" is allowed to its readers (and writers for writes), every other flag set
to root only. The flagd services live in a private descriptor pool:
``FLAGD_METHODS`` names them for the table.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from configsvc.flags._gen.flagd.evaluation.v1 import evaluation_pb2 as ev1
from configsvc.flags._gen.flagd.evaluation.v2 import evaluation_pb2 as ev2
from configsvc.flags._gen.flagd.sync.v1 import sync_pb2
from configsvc.server.services import FLAGD_SERVICES
from configsvc.v1 import flags_pb2

if TYPE_CHECKING:
    from tests.integration.auth.test_rbac_table import World

READERS = {"viewer", "editor", "admin", "auditor", "root"}
WRITERS = {"editor", "admin", "root"}
ROOT = {"root"}
_READ = {"own": READERS, "other-env": ROOT, "other-tenant": ROOT}
_WRITE = {"own": WRITERS, "other-env": ROOT, "other-tenant": ROOT}

DOCUMENT = {
    "flags": {
        "on": {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "on"},
        "rollout": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {"fractional": [{"var": "targetingKey"}, ["on", 10], ["off", 90]]},
        },
        "string": {"state": "ENABLED", "variants": {"a": "A"}, "defaultVariant": "a"},
        "int": {"state": "ENABLED", "variants": {"one": 1}, "defaultVariant": "one"},
        "float": {"state": "ENABLED", "variants": {"half": 0.5}, "defaultVariant": "half"},
        "object": {"state": "ENABLED", "variants": {"o": {"a": 1}}, "defaultVariant": "o"},
    }
}
#: The flag each typed resolve asks for.
_TYPED = {
    "ResolveBoolean": "on",
    "ResolveString": "string",
    "ResolveInt": "int",
    "ResolveFloat": "float",
    "ResolveObject": "object",
}

FLAGD_METHODS = {
    f"/{service.full_name}/{method.name}"
    for service in FLAGD_SERVICES
    for method in service.methods
}
_F = "/configsvc.v1.FlagService/"
EXPECT: dict[str, dict[str, set[str]]] = {
    **{
        _F + name: _WRITE
        for name in (
            "PutFlagSet",
            "DeleteFlagSet",
            "PutFlag",
            "DeleteFlag",
            "SetFlagState",
            "SetRollout",
            "RollbackFlagSet",
        )
    },
    **{_F + name: _READ for name in ("GetFlagSet", "ListFlagSetHistory", "GetFlagStats")},
    **{method: _READ for method in FLAGD_METHODS},
}

_EVALUATIONS = {"v1": ev1, "v2": ev2}


async def request(world: World, method: str, target: str) -> Any:
    """The request (and for flagd its metadata) for ``method`` on ``target``."""
    t, env = world.tenants[target], world.envs[target]
    # Every call starts from the whole flag set (Delete* and Rollback change it).
    await world.stack.server.flags.store.put(
        t,
        env,
        DOCUMENT,
        bucketing=None,
        actor="tests",
        reason="",
        expected_revision=None,
        timeout=10,
    )
    ref = flags_pb2.FlagSetRef(tenant=t, environment=env)
    selector = (("flagd-selector", f"{t}/{env}"),)
    service, name = method.lstrip("/").rsplit("/", 1)
    match name:
        case "PutFlagSet":
            return flags_pb2.PutFlagSetRequest(ref=ref, definition=json.dumps(DOCUMENT))
        case "GetFlagSet":
            return flags_pb2.GetFlagSetRequest(ref=ref)
        case "DeleteFlagSet":
            return flags_pb2.DeleteFlagSetRequest(ref=ref)
        case "PutFlag":
            return flags_pb2.PutFlagRequest(
                ref=ref, flag_key="on", definition=json.dumps(DOCUMENT["flags"]["on"])
            )
        case "DeleteFlag":
            return flags_pb2.DeleteFlagRequest(ref=ref, flag_key="on")
        case "SetFlagState":
            return flags_pb2.SetFlagStateRequest(ref=ref, flag_key="on", enabled=False)
        case "SetRollout":
            return flags_pb2.SetRolloutRequest(
                ref=ref,
                flag_key="rollout",
                weights=[
                    flags_pb2.RolloutWeight(variant="on", weight=50),
                    flags_pb2.RolloutWeight(variant="off", weight=50),
                ],
            )
        case "ListFlagSetHistory":
            return flags_pb2.ListFlagSetHistoryRequest(ref=ref)
        case "RollbackFlagSet":
            return flags_pb2.RollbackFlagSetRequest(ref=ref, to_version=1)
        case "GetFlagStats":
            return flags_pb2.GetFlagStatsRequest(ref=ref)
        case "SyncFlags":
            return sync_pb2.SyncFlagsRequest(), selector
        case "FetchAllFlags":
            return sync_pb2.FetchAllFlagsRequest(), selector
        case "GetMetadata":
            return sync_pb2.GetMetadataRequest(), selector
    messages = _EVALUATIONS[service.split(".")[2]]
    request_class = getattr(messages, f"{name}Request")
    fields = {"flag_key": _TYPED[name]} if name in _TYPED else {}
    return request_class(**fields), selector
