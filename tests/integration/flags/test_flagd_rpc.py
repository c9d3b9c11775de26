"""flagd.evaluation.v1 / flagd.sync.v1 on the in-process server: streams, bulk, selectors."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from configsvc.flags._gen.flagd.evaluation.v1 import evaluation_pb2 as ev
from configsvc.flags._gen.flagd.evaluation.v1 import evaluation_pb2_grpc
from configsvc.flags._gen.flagd.sync.v1 import sync_pb2, sync_pb2_grpc
from configsvc.v1 import flags_pb2, flags_pb2_grpc
from tests.helpers import Stack

FLAGS = {
    "metadata": {"owner": "web"},
    "flags": {
        "on": {"state": "ENABLED", "variants": {"t": True, "f": False}, "defaultVariant": "t"},
        "svc": {
            "state": "ENABLED",
            "variants": {"yes": "yes", "no": "no"},
            "defaultVariant": "no",
            "targeting": {"if": [{"==": [{"var": "service"}, "api"]}, "yes", "no"]},
        },
        "num": {"state": "ENABLED", "variants": {"one": 1.5}, "defaultVariant": "one"},
        "obj": {"state": "ENABLED", "variants": {"o": {"k": [1, 2]}}, "defaultVariant": "o"},
        "none": {"state": "ENABLED", "variants": {"x": 1}, "defaultVariant": None},
        "off": {"state": "DISABLED", "variants": {"x": 1}, "defaultVariant": "x"},
    },
}


async def _load(stack: Stack, tenant: str, document: Any = FLAGS) -> None:
    await flags_pb2_grpc.FlagServiceStub(stack.channel).PutFlagSet(  # type: ignore[no-untyped-call]
        flags_pb2.PutFlagSetRequest(
            ref=flags_pb2.FlagSetRef(tenant=tenant, environment="prod"),
            definition=json.dumps(document),
        )
    )


def _selector(tenant: str) -> tuple[tuple[str, str], ...]:
    return (("flagd-selector", f"{tenant}/prod"),)


async def test_resolve_all_and_typed_resolves(stack: Stack, tenant: str) -> None:
    await _load(stack, tenant)
    stub = evaluation_pb2_grpc.ServiceStub(stack.channel)
    request = ev.ResolveAllRequest()
    request.context.update({"targetingKey": "u"})
    response = await stub.ResolveAll(
        request, metadata=(*_selector(tenant), ("x-configsvc-service", "api"))
    )
    assert set(response.flags) == {"on", "svc", "num", "obj"}  # no value: left out
    assert response.flags["svc"].string_value == "yes"
    assert response.flags["num"].double_value == 1.5
    assert json_format.MessageToDict(response.flags["obj"].object_value) == {"k": [1, 2]}
    assert json_format.MessageToDict(response.metadata) == {"owner": "web"}

    obj = await stub.ResolveObject(
        ev.ResolveObjectRequest(flag_key="obj"), metadata=_selector(tenant)
    )
    assert json_format.MessageToDict(obj.value) == {"k": [1, 2]}
    none = await stub.ResolveInt(ev.ResolveIntRequest(flag_key="none"), metadata=_selector(tenant))
    assert (none.reason, none.variant) == ("DEFAULT", "")
    num = await stub.ResolveFloat(
        ev.ResolveFloatRequest(flag_key="num"), metadata=_selector(tenant)
    )
    assert num.value == 1.5


@pytest.mark.parametrize(
    ("metadata", "flag_key", "code", "words"),
    [
        ((), "on", grpc.StatusCode.INVALID_ARGUMENT, "flagd-selector"),
        (
            (("flagd-selector", "just-one"),),
            "on",
            grpc.StatusCode.INVALID_ARGUMENT,
            "'<tenant>/<environment>'",
        ),
        ((("flagd-selector", "UPPER/prod"),), "on", grpc.StatusCode.INVALID_ARGUMENT, "tenant"),
        ((("flagd-selector", "nobody/prod"),), "on", grpc.StatusCode.NOT_FOUND, "no flag set"),
        (None, "", grpc.StatusCode.INVALID_ARGUMENT, "flag_key"),
    ],
)
async def test_bad_selectors_and_requests(
    stack: Stack, tenant: str, metadata: Any, flag_key: str, code: grpc.StatusCode, words: str
) -> None:
    await _load(stack, tenant)
    stub = evaluation_pb2_grpc.ServiceStub(stack.channel)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.ResolveBoolean(
            ev.ResolveBooleanRequest(flag_key=flag_key),
            metadata=_selector(tenant) if metadata is None else metadata,
        )
    assert raised.value.code() == code
    assert words in (raised.value.details() or "")


async def test_event_stream_and_sync_follow_changes(stack: Stack, tenant: str) -> None:
    await _load(stack, tenant)
    events = evaluation_pb2_grpc.ServiceStub(stack.channel).EventStream(
        ev.EventStreamRequest(), metadata=_selector(tenant)
    )
    sync = sync_pb2_grpc.FlagSyncServiceStub(stack.channel)
    flags_stream = sync.SyncFlags(sync_pb2.SyncFlagsRequest(selector=f"{tenant}/prod"))
    first = await asyncio.wait_for(flags_stream.read(), 10)
    assert json.loads(first.flag_configuration) == FLAGS
    assert json_format.MessageToDict(first.sync_context) == {
        "tenant": tenant,
        "environment": "prod",
    }
    assert (await asyncio.wait_for(events.read(), 10)).type == "provider_ready"

    manage = flags_pb2_grpc.FlagServiceStub(stack.channel)  # type: ignore[no-untyped-call]
    await manage.SetFlagState(
        flags_pb2.SetFlagStateRequest(
            ref=flags_pb2.FlagSetRef(tenant=tenant, environment="prod"),
            flag_key="on",
            enabled=False,
        )
    )
    change = await asyncio.wait_for(events.read(), 10)
    assert change.type == "configuration_change"
    assert json_format.MessageToDict(change.data)["flags"] == {
        "on": {"type": "update", "source": f"{tenant}/prod"}
    }
    second = await asyncio.wait_for(flags_stream.read(), 10)
    assert json.loads(second.flag_configuration)["flags"]["on"]["state"] == "DISABLED"

    fetched = await sync.FetchAllFlags(sync_pb2.FetchAllFlagsRequest(), metadata=_selector(tenant))
    assert fetched.flag_configuration == second.flag_configuration
    metadata = await sync.GetMetadata(sync_pb2.GetMetadataRequest(), metadata=_selector(tenant))
    assert json_format.MessageToDict(metadata.metadata)["tenant"] == tenant
    empty = await sync.GetMetadata(sync_pb2.GetMetadataRequest())
    assert empty.HasField("metadata") and not json_format.MessageToDict(empty.metadata)
    await manage.DeleteFlagSet(
        flags_pb2.DeleteFlagSetRequest(ref=flags_pb2.FlagSetRef(tenant=tenant, environment="prod"))
    )
    third = await asyncio.wait_for(flags_stream.read(), 10)
    assert json.loads(third.flag_configuration) == {"flags": {}}
    deleted = await asyncio.wait_for(events.read(), 10)
    assert set(json_format.MessageToDict(deleted.data)["flags"]) == set(FLAGS["flags"])
    events.cancel()
    flags_stream.cancel()
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await sync.FetchAllFlags(sync_pb2.FetchAllFlagsRequest(), metadata=_selector(tenant))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert stack.server.flags.events.subscriber_count >= 0
