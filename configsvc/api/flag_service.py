"""``configsvc.v1.FlagService``: flag-set management and evaluation statistics."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import grpc
from google.protobuf import timestamp_pb2

from configsvc.errors import InvalidArgumentError
from configsvc.flags import edits
from configsvc.flags.analytics import FlagAnalytics
from configsvc.flags.fractional import Bucketing
from configsvc.flags.store import FlagStore, StoredFlagSet, load_json, parse_definition
from configsvc.model.keys import require_segment
from configsvc.rpc import requests
from configsvc.v1 import flags_pb2

HISTORY_PAGE = 50
HISTORY_PAGE_MAX = 500
STATS_WINDOW = 300
STATS_WINDOW_MAX = 3600

_BUCKETING: dict[int, Bucketing | None] = {
    flags_pb2.BUCKETING_UNSPECIFIED: None,
    flags_pb2.BUCKETING_CURRENT: "current",
    flags_pb2.BUCKETING_LEGACY: "legacy",
}
_BUCKETING_ENUM = {"current": flags_pb2.BUCKETING_CURRENT, "legacy": flags_pb2.BUCKETING_LEGACY}


def ref_of(request: Any) -> tuple[str, str]:
    if not request.HasField("ref"):
        raise InvalidArgumentError.single("ref", "is required (tenant and environment)")
    return (
        require_segment("ref.tenant", request.ref.tenant),
        require_segment("ref.environment", request.ref.environment),
    )


def flag_key(request: Any) -> str:
    key: str = request.flag_key
    if not key:
        raise InvalidArgumentError.single("flag_key", "is required")
    return key


def to_message(stored: StoredFlagSet) -> flags_pb2.FlagSet:
    message = flags_pb2.FlagSet(
        ref=flags_pb2.FlagSetRef(tenant=stored.tenant, environment=stored.environment),
        definition="" if stored.deleted else stored.definition_json,
        version=stored.version,
        revision=stored.revision,
        bucketing=_BUCKETING_ENUM[stored.bucketing],
        updated_by=stored.actor,
        reason=stored.reason,
        deleted=stored.deleted,
    )
    if stored.time:
        stamp = timestamp_pb2.Timestamp()
        stamp.FromDatetime(datetime.fromisoformat(stored.time.replace("Z", "+00:00")))
        message.update_time.CopyFrom(stamp)
    return message


class FlagManagementService:
    """Every write is one etcd Txn with its history copy and audit record (``FlagStore``)."""

    def __init__(self, store: FlagStore, analytics: FlagAnalytics, timeout: float) -> None:
        self._store = store
        self._analytics = analytics
        self._timeout = timeout

    def _write_args(self, request: Any, context: grpc.aio.ServicerContext) -> dict[str, Any]:
        return {
            "actor": requests.actor(context),
            "reason": request.reason,
            "expected_revision": requests.expected_revision(request),
            "timeout": requests.time_left(context, self._timeout),
        }

    async def _edit(
        self,
        request: Any,
        context: grpc.aio.ServicerContext,
        edit: edits.Edit,
        attributes: dict[str, str],
    ) -> flags_pb2.FlagSet:
        tenant, environment = ref_of(request)
        stored = await self._store.update(
            tenant, environment, edit, attributes=attributes, **self._write_args(request, context)
        )
        return to_message(stored)

    async def PutFlagSet(
        self, request: flags_pb2.PutFlagSetRequest, context: grpc.aio.ServicerContext
    ) -> flags_pb2.PutFlagSetResponse:
        tenant, environment = ref_of(request)
        if request.bucketing not in _BUCKETING:
            raise InvalidArgumentError.single(
                "bucketing", f"{request.bucketing} is not a Bucketing value"
            )
        definition = parse_definition(request.definition)
        stored = await self._store.put(
            tenant,
            environment,
            definition,
            bucketing=_BUCKETING[request.bucketing],
            **self._write_args(request, context),
        )
        return flags_pb2.PutFlagSetResponse(flag_set=to_message(stored))

    async def GetFlagSet(
        self, request: flags_pb2.GetFlagSetRequest, context: grpc.aio.ServicerContext
    ) -> flags_pb2.GetFlagSetResponse:
        tenant, environment = ref_of(request)
        return flags_pb2.GetFlagSetResponse(
            flag_set=to_message(self._store.require(tenant, environment))
        )

    async def DeleteFlagSet(
        self, request: flags_pb2.DeleteFlagSetRequest, context: grpc.aio.ServicerContext
    ) -> flags_pb2.DeleteFlagSetResponse:
        tenant, environment = ref_of(request)
        revision = await self._store.delete(
            tenant, environment, **self._write_args(request, context)
        )
        return flags_pb2.DeleteFlagSetResponse(revision=revision)

    async def PutFlag(
        self, request: flags_pb2.PutFlagRequest, context: grpc.aio.ServicerContext
    ) -> flags_pb2.PutFlagResponse:
        key = flag_key(request)
        flag = load_json(request.definition)
        if not isinstance(flag, dict):
            raise InvalidArgumentError.single("definition", "must be a JSON object (one flag)")
        flag_set = await self._edit(
            request, context, edits.put_flag(key, flag), {"flag": key, "change": "put"}
        )
        return flags_pb2.PutFlagResponse(flag_set=flag_set)

    async def DeleteFlag(
        self, request: flags_pb2.DeleteFlagRequest, context: grpc.aio.ServicerContext
    ) -> flags_pb2.DeleteFlagResponse:
        key = flag_key(request)
        flag_set = await self._edit(
            request, context, edits.delete_flag(key), {"flag": key, "change": "delete"}
        )
        return flags_pb2.DeleteFlagResponse(flag_set=flag_set)

    async def SetFlagState(
        self, request: flags_pb2.SetFlagStateRequest, context: grpc.aio.ServicerContext
    ) -> flags_pb2.SetFlagStateResponse:
        key = flag_key(request)
        flag_set = await self._edit(
            request,
            context,
            edits.set_state(key, request.enabled),
            {"flag": key, "change": "enable" if request.enabled else "disable"},
        )
        return flags_pb2.SetFlagStateResponse(flag_set=flag_set)

    async def SetRollout(
        self, request: flags_pb2.SetRolloutRequest, context: grpc.aio.ServicerContext
    ) -> flags_pb2.SetRolloutResponse:
        key = flag_key(request)
        weights = [(w.variant, w.weight) for w in request.weights]
        flag_set = await self._edit(
            request,
            context,
            edits.set_rollout(key, weights),
            {"flag": key, "change": "rollout", "weights": ",".join(f"{v}={w}" for v, w in weights)},
        )
        return flags_pb2.SetRolloutResponse(flag_set=flag_set)

    async def ListFlagSetHistory(
        self, request: flags_pb2.ListFlagSetHistoryRequest, context: grpc.aio.ServicerContext
    ) -> flags_pb2.ListFlagSetHistoryResponse:
        tenant, environment = ref_of(request)
        size = requests.page_size(request, default=HISTORY_PAGE, maximum=HISTORY_PAGE_MAX)
        before = None
        if request.HasField("before_version"):
            before = requests.positive("before_version", request.before_version)
        versions, following = await self._store.history(
            tenant,
            environment,
            page_size=size,
            before_version=before,
            timeout=requests.time_left(context, self._timeout),
        )
        response = flags_pb2.ListFlagSetHistoryResponse(versions=[to_message(v) for v in versions])
        if following is not None:
            response.next_before_version = following
        return response

    async def RollbackFlagSet(
        self, request: flags_pb2.RollbackFlagSetRequest, context: grpc.aio.ServicerContext
    ) -> flags_pb2.RollbackFlagSetResponse:
        tenant, environment = ref_of(request)
        version = requests.positive("to_version", request.to_version)
        stored = await self._store.rollback(
            tenant, environment, version, **self._write_args(request, context)
        )
        return flags_pb2.RollbackFlagSetResponse(flag_set=to_message(stored))

    async def GetFlagStats(
        self, request: flags_pb2.GetFlagStatsRequest, context: grpc.aio.ServicerContext
    ) -> flags_pb2.GetFlagStatsResponse:
        tenant, environment = ref_of(request)
        window = request.window_seconds or STATS_WINDOW
        if not 1 <= window <= STATS_WINDOW_MAX:
            raise InvalidArgumentError.single(
                "window_seconds", f"is {window}; it must be between 1 and {STATS_WINDOW_MAX}"
            )
        counts = self._analytics.window(tenant, environment, window, request.flag_key)
        covered = -(-window // 60) * 60
        return flags_pb2.GetFlagStatsResponse(
            window_seconds=covered,
            stats=[
                flags_pb2.FlagStat(
                    flag_key=c.flag, variant=c.variant, reason=c.reason, count=c.count
                )
                for c in counts
            ],
        )
