"""The flagd protocols on the server's gRPC port: ``flagd.evaluation.v1`` and ``flagd.sync.v1``.

Errors follow flagd's mapping, which providers turn back into OpenFeature
error codes: FLAG_NOT_FOUND is NOT_FOUND, TYPE_MISMATCH INVALID_ARGUMENT,
PARSE_ERROR DATA_LOSS, GENERAL UNKNOWN (through the one status table). A
disabled flag, or one without a default variant that no rule matched, answers
with reason DISABLED/DEFAULT and no variant: the provider then returns the
caller's default value. Which flag set a call means: ``configsvc.flags.selector``;
what evaluating does, whatever the transport: ``configsvc.flags.core``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable, Mapping
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
from configsvc.flags.core import FlagsCore, changed_flags
from configsvc.flags.evaluator import ErrorCode, FlagType, Resolution
from configsvc.flags.events import FlagEvents
from configsvc.flags.selector import FlagSetRef
from configsvc.model.values import check_tree

#: What SyncFlags sends while the selected flag set does not exist (deleted mid-stream).
EMPTY_FLAG_SET = '{"flags":{}}'


def _non_finite(message: struct_pb2.Struct) -> float | None:
    """The first NaN or Infinity in ``message`` (iteratively: no recursion), else None."""
    pending: list[Any] = [message]
    while pending:
        node = pending.pop()
        if hasattr(node, "fields"):  # a Struct
            pending.extend(node.fields.values())
        elif hasattr(node, "values"):  # a ListValue
            pending.extend(node.values)
        else:  # a Value
            kind = node.WhichOneof("kind")
            if kind == "number_value" and not math.isfinite(node.number_value):
                return float(node.number_value)
            if kind in ("struct_value", "list_value"):
                pending.append(getattr(node, kind))
    return None


def struct_to_dict(message: struct_pb2.Struct, field: str = "context") -> dict[str, Any]:
    """A request's Struct as JSON-like data: INVALID_ARGUMENT for NaN or Infinity (which
    JSON, JSON Logic and the flagd protocol do not have) and for nesting past
    ``MAX_JSON_DEPTH``, never a bare ValueError from the conversion."""
    found = _non_finite(message)
    if found is not None:
        raise InvalidArgumentError.single(
            field, f"holds the number {found}; only finite numbers are accepted"
        )
    result: dict[str, Any] = json_format.MessageToDict(message)
    check_tree(result, field=field)
    return result


def fill(target: Any, values: Mapping[str, Any]) -> None:
    """Set a ``google.protobuf.Struct`` field in place (present even when empty).

    In place because the flagd stubs live in a private descriptor pool
    (``configsvc.flags.pool``): their Struct is not the default pool's class,
    so a ``CopyFrom`` of a ``struct_pb2.Struct`` would be refused.
    """
    target.SetInParent()
    target.update(dict(values))


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
    """``flagd.evaluation.v1.Service`` and, with ``messages=ev2``, ``flagd.evaluation.v2.Service``.

    The two revisions differ only in v2's optional ``value``/``variant`` (unset
    when the caller's default applies) and v2 having no ResolveAll; the
    OpenFeature Python provider 0.6 calls v2, older providers and grpcurl v1.
    """

    def __init__(self, core: FlagsCore, events: FlagEvents, messages: Any = ev) -> None:
        self._core = core
        self._events = events
        self._messages = messages

    def _resolve(
        self,
        request: Any,
        context: grpc.aio.ServicerContext,
        flag_type: FlagType,
        response_type: Callable[..., Any],
        convert: Callable[[Any], Any],
    ) -> Any:
        metadata = context.invocation_metadata()
        ref = self._core.select(metadata)
        if not request.flag_key:
            raise InvalidArgumentError.single("flag_key", "is required")
        ctx = self._core.context(ref, struct_to_dict(request.context), metadata)
        resolution = self._core.evaluate(ref, request.flag_key, ctx, flag_type)
        raise_for(resolution)
        response = response_type(reason=str(resolution.reason))
        fill(response.metadata, resolution.metadata)
        if resolution.variant is not None:
            response.variant = resolution.variant
            converted = convert(resolution.value)
            if isinstance(converted, dict):
                fill(response.value, converted)
            else:
                response.value = converted
        return response

    async def ResolveBoolean(
        self, request: ev.ResolveBooleanRequest, context: grpc.aio.ServicerContext
    ) -> ev.ResolveBooleanResponse:
        result: ev.ResolveBooleanResponse = self._resolve(
            request, context, FlagType.BOOLEAN, self._messages.ResolveBooleanResponse, bool
        )
        return result

    async def ResolveString(
        self, request: ev.ResolveStringRequest, context: grpc.aio.ServicerContext
    ) -> ev.ResolveStringResponse:
        result: ev.ResolveStringResponse = self._resolve(
            request, context, FlagType.STRING, self._messages.ResolveStringResponse, str
        )
        return result

    async def ResolveInt(
        self, request: ev.ResolveIntRequest, context: grpc.aio.ServicerContext
    ) -> ev.ResolveIntResponse:
        result: ev.ResolveIntResponse = self._resolve(
            request, context, FlagType.INTEGER, self._messages.ResolveIntResponse, int
        )
        return result

    async def ResolveFloat(
        self, request: ev.ResolveFloatRequest, context: grpc.aio.ServicerContext
    ) -> ev.ResolveFloatResponse:
        result: ev.ResolveFloatResponse = self._resolve(
            request, context, FlagType.FLOAT, self._messages.ResolveFloatResponse, float
        )
        return result

    async def ResolveObject(
        self, request: ev.ResolveObjectRequest, context: grpc.aio.ServicerContext
    ) -> ev.ResolveObjectResponse:
        def convert(value: Any) -> dict[str, Any]:
            if not isinstance(value, dict):
                raise InvalidArgumentError.single(
                    "flag_key",
                    f"flag {request.flag_key!r} holds a JSON array; flagd's "
                    "ResolveObject can only carry JSON objects",
                )
            return value

        result: ev.ResolveObjectResponse = self._resolve(
            request, context, FlagType.OBJECT, self._messages.ResolveObjectResponse, convert
        )
        return result

    async def ResolveAll(
        self, request: ev.ResolveAllRequest, context: grpc.aio.ServicerContext
    ) -> ev.ResolveAllResponse:
        metadata = context.invocation_metadata()
        ref = self._core.select(metadata)
        ctx = self._core.context(ref, struct_to_dict(request.context), metadata)
        response = ev.ResolveAllResponse()
        stored = self._core.flag_set(ref)
        fill(response.metadata, stored.flag_set.metadata)
        for resolution in self._core.evaluate_all(ref, stored, ctx):
            # Like flagd: flags without a value for this context (disabled, errors, no
            # default variant) are left out of the bulk answer.
            if resolution.error_code is not None or resolution.variant is None:
                continue
            flag = response.flags[resolution.key]
            flag.reason = str(resolution.reason)
            flag.variant = resolution.variant
            fill(flag.metadata, resolution.metadata)
            value = resolution.value
            if isinstance(value, bool):
                flag.bool_value = value
            elif isinstance(value, str):
                flag.string_value = value
            elif isinstance(value, int | float):
                flag.double_value = float(value)
            elif isinstance(value, dict):
                fill(flag.object_value, value)
            else:
                del response.flags[resolution.key]
        return response

    async def EventStream(
        self, request: ev.EventStreamRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[ev.EventStreamResponse]:
        ref = self._core.select(context.invocation_metadata())
        with self._events.subscribe(ref) as changed:
            seen = self._core.store.current(ref.tenant, ref.environment)
            yield self._messages.EventStreamResponse(type="provider_ready")
            while True:
                try:
                    await asyncio.wait_for(changed.wait(), self._core.settings.keepalive)
                except TimeoutError:
                    yield self._messages.EventStreamResponse(type="keep_alive")
                    continue
                changed.clear()
                now = self._core.store.current(ref.tenant, ref.environment)
                keys = changed_flags(seen, now)
                seen = now
                if keys:
                    message = self._messages.EventStreamResponse(type="configuration_change")
                    fill(
                        message.data,
                        {
                            "flags": {
                                key: {"type": kind, "source": str(ref)}
                                for key, kind in keys.items()
                            }
                        },
                    )
                    yield message


class SyncService:
    """``flagd.sync.v1.FlagSyncService``: the flagd JSON of the selected flag set."""

    def __init__(self, core: FlagsCore, events: FlagEvents) -> None:
        self._core = core
        self._events = events

    def _sync_context(self, target: Any, ref: FlagSetRef) -> None:
        fill(target, self._core.sync_context(ref))

    async def SyncFlags(
        self, request: sync_pb2.SyncFlagsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[sync_pb2.SyncFlagsResponse]:
        ref = self._core.select(context.invocation_metadata(), request.selector)
        self._core.flag_set(ref)  # NOT_FOUND up front for a selector without a flag set
        with self._events.subscribe(ref) as changed:
            sent: str | None = None
            while True:
                changed.clear()
                stored = self._core.store.current(ref.tenant, ref.environment)
                # Deleted while streaming: the client keeps a stream and sees no flags.
                text = stored.definition_json if stored is not None else EMPTY_FLAG_SET
                if text != sent:
                    sent = text
                    message = sync_pb2.SyncFlagsResponse(flag_configuration=text)
                    self._sync_context(message.sync_context, ref)
                    yield message
                await changed.wait()

    async def FetchAllFlags(
        self, request: sync_pb2.FetchAllFlagsRequest, context: grpc.aio.ServicerContext
    ) -> sync_pb2.FetchAllFlagsResponse:
        ref = self._core.select(context.invocation_metadata(), request.selector)
        return sync_pb2.FetchAllFlagsResponse(
            flag_configuration=self._core.flag_set(ref).definition_json
        )

    async def GetMetadata(
        self, request: sync_pb2.GetMetadataRequest, context: grpc.aio.ServicerContext
    ) -> sync_pb2.GetMetadataResponse:
        # Providers call this without a selector; answer empty metadata then, not an error.
        response = sync_pb2.GetMetadataResponse()
        response.metadata.SetInParent()
        ref = self._core.selection(context.invocation_metadata())
        if ref is not None:
            self._sync_context(response.metadata, ref)
        return response
