"""The flagd protocols on the server's gRPC port: ``flagd.evaluation.v1`` and ``flagd.sync.v1``.

Errors follow flagd's mapping, which providers turn back into OpenFeature
error codes: FLAG_NOT_FOUND is NOT_FOUND, TYPE_MISMATCH INVALID_ARGUMENT,
PARSE_ERROR DATA_LOSS, GENERAL UNKNOWN (through the one status table). A
disabled flag, or one without a default variant that no rule matched, answers
with reason DISABLED/DEFAULT and no variant: the provider then returns the
caller's default value. Which flag set a call means: ``configsvc.flags.selector``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2

from configsvc.errors import (
    FlagEvaluationError,
    FlagParseError,
    InvalidArgumentError,
    NotFoundError,
)
from configsvc.flags._gen.flagd.evaluation.v1 import evaluation_pb2 as ev
from configsvc.flags._gen.flagd.sync.v1 import sync_pb2
from configsvc.flags.analytics import FlagAnalytics
from configsvc.flags.evaluator import ErrorCode, FlagType, Resolution, evaluate
from configsvc.flags.events import FlagEvents
from configsvc.flags.selector import SERVICE_HEADER, FlagSetRef, enrich, header, resolve
from configsvc.flags.store import FlagStore, StoredFlagSet

#: How often an idle EventStream carries a keep-alive (flagd's providers expect traffic).
KEEPALIVE_SECONDS = 30.0


@dataclass(frozen=True)
class FlagsSettings:
    """What the flag services need to know about the server."""

    default_selector: str = ""
    """Flag set for calls without a selector ('' = such calls are INVALID_ARGUMENT)."""
    keepalive: float = KEEPALIVE_SECONDS


def struct_to_dict(message: struct_pb2.Struct) -> dict[str, Any]:
    result: dict[str, Any] = json_format.MessageToDict(message)
    return result


def dict_to_struct(values: Mapping[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(dict(values))
    return message


class FlagsCore:
    """Evaluation shared by the gRPC and OFREP front ends: select, enrich, evaluate, count."""

    def __init__(self, store: FlagStore, analytics: FlagAnalytics,
                 settings: FlagsSettings) -> None:
        self.store = store
        self.analytics = analytics
        self.settings = settings

    def select(self, metadata: Any, request_selector: str = "") -> FlagSetRef:
        return resolve(metadata, request_selector, self.settings.default_selector)

    def flag_set(self, ref: FlagSetRef) -> StoredFlagSet:
        return self.store.require(ref.tenant, ref.environment)

    def context(self, ref: FlagSetRef, raw: Mapping[str, Any], metadata: Any) -> dict[str, Any]:
        return enrich(dict(raw), ref, header(metadata, SERVICE_HEADER))

    def evaluate(self, ref: FlagSetRef, key: str, context: Mapping[str, Any],
                 flag_type: FlagType | None) -> Resolution:
        resolution = evaluate(self.flag_set(ref).flag_set, key, context, flag_type)
        self.analytics.record(ref.tenant, ref.environment, key, resolution.variant,
                              resolution.error_code or resolution.reason)
        return resolution

    def evaluate_all(self, ref: FlagSetRef, context: Mapping[str, Any]) -> list[Resolution]:
        stored = self.flag_set(ref)
        results = []
        for key in stored.flag_set.flags:
            resolution = evaluate(stored.flag_set, key, context)
            self.analytics.record(ref.tenant, ref.environment, key, resolution.variant,
                                  resolution.error_code or resolution.reason)
            results.append(resolution)
        return results


def raise_for(resolution: Resolution) -> None:
    """Turn an evaluation error into the typed error flagd's status mapping expects."""
    code, message = resolution.error_code, resolution.error_message
    if code is None:
        return
    if code is ErrorCode.FLAG_NOT_FOUND:
        raise NotFoundError("flag", resolution.key, message)
    if code is ErrorCode.TYPE_MISMATCH:
        raise InvalidArgumentError.single("flag_key", message)
    if code is ErrorCode.PARSE_ERROR:
        raise FlagParseError(message)
    raise FlagEvaluationError(message)


class EvaluationService:
    """``flagd.evaluation.v1.Service``."""

    def __init__(self, core: FlagsCore, events: FlagEvents) -> None:
        self._core = core
        self._events = events

    def _resolve(self, request: Any, context: grpc.aio.ServicerContext, flag_type: FlagType,
                 response_type: Callable[..., Any], convert: Callable[[Any], Any]) -> Any:
        metadata = context.invocation_metadata()
        ref = self._core.select(metadata)
        if not request.flag_key:
            raise InvalidArgumentError.single("flag_key", "is required")
        ctx = self._core.context(ref, struct_to_dict(request.context), metadata)
        resolution = self._core.evaluate(ref, request.flag_key, ctx, flag_type)
        raise_for(resolution)
        response = response_type(reason=str(resolution.reason), variant=resolution.variant or "",
                                 metadata=dict_to_struct(resolution.metadata))
        if resolution.variant is not None:
            converted = convert(resolution.value)
            if isinstance(converted, struct_pb2.Struct):
                response.value.CopyFrom(converted)
            else:
                response.value = converted
        return response

    async def ResolveBoolean(self, request: ev.ResolveBooleanRequest,
                             context: grpc.aio.ServicerContext) -> ev.ResolveBooleanResponse:
        result: ev.ResolveBooleanResponse = self._resolve(
            request, context, FlagType.BOOLEAN, ev.ResolveBooleanResponse, bool)
        return result

    async def ResolveString(self, request: ev.ResolveStringRequest,
                            context: grpc.aio.ServicerContext) -> ev.ResolveStringResponse:
        result: ev.ResolveStringResponse = self._resolve(
            request, context, FlagType.STRING, ev.ResolveStringResponse, str)
        return result

    async def ResolveInt(self, request: ev.ResolveIntRequest,
                         context: grpc.aio.ServicerContext) -> ev.ResolveIntResponse:
        result: ev.ResolveIntResponse = self._resolve(
            request, context, FlagType.INTEGER, ev.ResolveIntResponse, int)
        return result

    async def ResolveFloat(self, request: ev.ResolveFloatRequest,
                           context: grpc.aio.ServicerContext) -> ev.ResolveFloatResponse:
        result: ev.ResolveFloatResponse = self._resolve(
            request, context, FlagType.FLOAT, ev.ResolveFloatResponse, float)
        return result

    async def ResolveObject(self, request: ev.ResolveObjectRequest,
                            context: grpc.aio.ServicerContext) -> ev.ResolveObjectResponse:
        def convert(value: Any) -> struct_pb2.Struct:
            if not isinstance(value, dict):
                raise InvalidArgumentError.single(
                    "flag_key", f"flag {request.flag_key!r} holds a JSON array; flagd's "
                                "ResolveObject can only carry JSON objects")
            return dict_to_struct(value)

        result: ev.ResolveObjectResponse = self._resolve(
            request, context, FlagType.OBJECT, ev.ResolveObjectResponse, convert)
        return result

    async def ResolveAll(self, request: ev.ResolveAllRequest,
                         context: grpc.aio.ServicerContext) -> ev.ResolveAllResponse:
        metadata = context.invocation_metadata()
        ref = self._core.select(metadata)
        ctx = self._core.context(ref, struct_to_dict(request.context), metadata)
        response = ev.ResolveAllResponse(
            metadata=dict_to_struct(self._core.flag_set(ref).flag_set.metadata))
        for resolution in self._core.evaluate_all(ref, ctx):
            # Like flagd: flags without a value for this context (disabled, errors, no
            # default variant) are left out of the bulk answer.
            if resolution.error_code is not None or resolution.variant is None:
                continue
            flag = response.flags[resolution.key]
            flag.reason = str(resolution.reason)
            flag.variant = resolution.variant
            flag.metadata.CopyFrom(dict_to_struct(resolution.metadata))
            value = resolution.value
            if isinstance(value, bool):
                flag.bool_value = value
            elif isinstance(value, str):
                flag.string_value = value
            elif isinstance(value, int | float):
                flag.double_value = float(value)
            elif isinstance(value, dict):
                flag.object_value.CopyFrom(dict_to_struct(value))
            else:
                del response.flags[resolution.key]
        return response

    async def EventStream(self, request: ev.EventStreamRequest,
                          context: grpc.aio.ServicerContext
                          ) -> AsyncIterator[ev.EventStreamResponse]:
        ref = self._core.select(context.invocation_metadata())
        with self._events.subscribe(ref) as changed:
            seen = self._core.store.current(ref.tenant, ref.environment)
            yield ev.EventStreamResponse(type="provider_ready")
            while True:
                try:
                    await asyncio.wait_for(changed.wait(), self._core.settings.keepalive)
                except TimeoutError:
                    yield ev.EventStreamResponse(type="keep_alive")
                    continue
                changed.clear()
                now = self._core.store.current(ref.tenant, ref.environment)
                keys = changed_flags(seen, now)
                seen = now
                if keys:
                    yield ev.EventStreamResponse(
                        type="configuration_change",
                        data=dict_to_struct({"flags": {key: {"type": kind, "source": str(ref)}
                                                       for key, kind in keys.items()}}))


def changed_flags(before: StoredFlagSet | None,
                  after: StoredFlagSet | None) -> dict[str, str]:
    """flag key -> "write" | "update" | "delete" between two versions of a flag set."""
    old = _raw_flags(before)
    new = _raw_flags(after)
    changes = {key: "delete" for key in old if key not in new}
    for key, value in new.items():
        if key not in old:
            changes[key] = "write"
        elif old[key] != value:
            changes[key] = "update"
    return changes


def _raw_flags(stored: StoredFlagSet | None) -> dict[str, Any]:
    if stored is None:
        return {}
    flags = stored.flag_set.flags
    return {key: (f.enabled, f.variants, f.default_variant, f.targeting, f.metadata)
            for key, f in flags.items()}


class SyncService:
    """``flagd.sync.v1.FlagSyncService``: the flagd JSON of the selected flag set."""

    def __init__(self, core: FlagsCore, events: FlagEvents) -> None:
        self._core = core
        self._events = events

    def _sync_context(self, ref: FlagSetRef) -> struct_pb2.Struct:
        return dict_to_struct({"tenant": ref.tenant, "environment": ref.environment})

    async def SyncFlags(self, request: sync_pb2.SyncFlagsRequest,
                        context: grpc.aio.ServicerContext
                        ) -> AsyncIterator[sync_pb2.SyncFlagsResponse]:
        ref = self._core.select(context.invocation_metadata(), request.selector)
        with self._events.subscribe(ref) as changed:
            sent: str | None = None
            while True:
                changed.clear()
                stored = self._core.flag_set(ref)
                text = stored.definition_json
                if text != sent:
                    sent = text
                    yield sync_pb2.SyncFlagsResponse(flag_configuration=text,
                                                     sync_context=self._sync_context(ref))
                await changed.wait()

    async def FetchAllFlags(self, request: sync_pb2.FetchAllFlagsRequest,
                            context: grpc.aio.ServicerContext
                            ) -> sync_pb2.FetchAllFlagsResponse:
        ref = self._core.select(context.invocation_metadata(), request.selector)
        return sync_pb2.FetchAllFlagsResponse(
            flag_configuration=self._core.flag_set(ref).definition_json)

    async def GetMetadata(self, request: sync_pb2.GetMetadataRequest,
                          context: grpc.aio.ServicerContext) -> sync_pb2.GetMetadataResponse:
        # Providers call this without a selector; answer empty metadata then, not an error.
        metadata = context.invocation_metadata()
        if not header(metadata, "flagd-selector") and not self._core.settings.default_selector:
            return sync_pb2.GetMetadataResponse(metadata=struct_pb2.Struct())
        ref = self._core.select(metadata)
        return sync_pb2.GetMetadataResponse(metadata=self._sync_context(ref))
