"""ConfigService.Get and Put called in-process through ``LocalContext``, admitted by the
same function as over gRPC (``Admission.admit``): the same status for each caller.

One real etcd-backed server (the session ``stack``): every call is made twice, once
over a gRPC channel and once in-process against a ConfigService built from the
server's own parts, with the same credential, and the outcomes must be equal.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.rpc import status_pb2

from configsvc.api.config_service import ConfigService, ServiceLimits
from configsvc.rpc.context import CallAborted, LocalContext, call_local
from configsvc.v1 import auth_pb2, config_pb2, config_pb2_grpc
from tests.helpers import ADMIN_KEY, Stack, bearer, ckey
from tests.integration.auth.support import channel_for, principal

_GET = "/configsvc.v1.ConfigService/Get"
_PUT = "/configsvc.v1.ConfigService/Put"
Outcome = tuple[grpc.StatusCode, str, Any]


def servicer(stack: Stack) -> ConfigService:
    server = stack.server
    return ConfigService(
        server.mirror,
        server.writer,
        server.keyspace,
        ServiceLimits(request_timeout=5.0),
        guard=server.guard,
    )


async def over_grpc(
    stack: Stack,
    key: str | None,
    call: Callable[[config_pb2_grpc.ConfigServiceStub], Awaitable[Any]],
) -> Outcome:
    async with channel_for(stack, key) as channel:
        try:
            answer = await call(config_pb2_grpc.ConfigServiceStub(channel))
        except grpc.aio.AioRpcError as err:
            return err.code(), err.details() or "", None
    return grpc.StatusCode.OK, "", answer


async def in_process(
    stack: Stack,
    key: str | None,
    method: str,
    behavior: Callable[[Any, Any], Awaitable[Any]],
    request: Any,
    answer_type: Any,
) -> Outcome:
    context = LocalContext(bearer(key) if key is not None else (), timeout=10.0)
    try:
        raw = await call_local(
            stack.server.auth.admission.admit, method, behavior, request, context
        )
    except CallAborted as aborted:
        assert (context.code, context.details) == (aborted.code, aborted.details)
        sent = status_pb2.Status.FromString(
            dict(aborted.trailing_metadata)["grpc-status-details-bin"]
        )
        assert sent.message == aborted.details  # the google.rpc.Status gRPC would send
        return aborted.code, aborted.details, None
    # Get and Put are served pre-encoded (raw responses): decode as the client does.
    answer = answer_type.FromString(raw) if isinstance(raw, bytes) else raw
    return grpc.StatusCode.OK, "", answer


async def test_get_and_put_in_process_are_admitted_as_over_grpc(stack: Stack, tenant: str) -> None:
    _, reader = await principal(stack, auth_pb2.ROLE_VIEWER, tenant)
    service = servicer(stack)
    callers: dict[str, str | None] = {"admin": ADMIN_KEY, "reader": reader, "none": None}
    expected = {
        ("admin", "Put"): grpc.StatusCode.OK,
        ("admin", "Get"): grpc.StatusCode.OK,
        ("reader", "Put"): grpc.StatusCode.PERMISSION_DENIED,
        ("reader", "Get"): grpc.StatusCode.OK,
        ("none", "Put"): grpc.StatusCode.UNAUTHENTICATED,
        ("none", "Get"): grpc.StatusCode.UNAUTHENTICATED,
    }
    for who, key in callers.items():
        for path, entry in (("grpc", "g"), ("local", "l")):
            put = config_pb2.PutRequest(key=ckey(tenant, f"{who}.{entry}"), value='"v"')
            if path == "grpc":
                outcome = await over_grpc(stack, key, lambda stub, r=put: stub.Put(r))
            else:
                outcome = await in_process(
                    stack, key, _PUT, service.Put, put, config_pb2.PutResponse
                )
            assert outcome[0] == expected[who, "Put"], (who, path, outcome)
            if outcome[0] == grpc.StatusCode.OK:
                assert outcome[2].entry.version == 1
        # The same refusal, word for word, on both paths.
        grpc_put = await over_grpc(
            stack,
            key,
            lambda stub: stub.Put(config_pb2.PutRequest(key=ckey(tenant, "same"), value='"v"')),
        )
        local_put = await in_process(
            stack,
            key,
            _PUT,
            service.Put,
            config_pb2.PutRequest(key=ckey(tenant, "same"), value='"v"'),
            config_pb2.PutResponse,
        )
        if expected[who, "Put"] != grpc.StatusCode.OK:
            assert grpc_put[:2] == local_put[:2], who
        else:  # the second write of the same value is a new version, either way
            assert {grpc_put[2].entry.version, local_put[2].entry.version} == {1, 2}
        # Reads: both paths read what both paths wrote.
        for written in ("admin.g", "admin.l"):
            get = config_pb2.GetRequest(key=ckey(tenant, written))
            grpc_get = await over_grpc(stack, key, lambda stub, r=get: stub.Get(r))
            local_get = await in_process(stack, key, _GET, service.Get, get, config_pb2.GetResponse)
            assert grpc_get[:2] == local_get[:2], (who, written)
            assert grpc_get[0] == expected[who, "Get"], (who, grpc_get)
            if grpc_get[0] == grpc.StatusCode.OK:
                assert grpc_get[2].entry == local_get[2].entry
                assert grpc_get[2].entry.value == '"v"'


async def test_the_in_process_writer_is_the_authenticated_caller(stack: Stack, tenant: str) -> None:
    """The admitted caller reaches the servicer (its audit actor, ``updated_by``), and a
    refusal reaches it not at all: nothing is written."""
    name, editor = await principal(stack, auth_pb2.ROLE_EDITOR, tenant)
    service = servicer(stack)
    put = config_pb2.PutRequest(key=ckey(tenant, "who"), value='"v"')
    answer = await in_process(stack, editor, _PUT, service.Put, put, config_pb2.PutResponse)
    assert answer[0] == grpc.StatusCode.OK
    assert answer[2].entry.updated_by == f"key:{name}"
    refused = await in_process(
        stack,
        None,
        _PUT,
        service.Put,
        config_pb2.PutRequest(key=ckey(tenant, "nobody"), value='"v"'),
        config_pb2.PutResponse,
    )
    assert refused[0] == grpc.StatusCode.UNAUTHENTICATED
    missing = await over_grpc(
        stack, ADMIN_KEY, lambda stub: stub.Get(config_pb2.GetRequest(key=ckey(tenant, "nobody")))
    )
    assert missing[0] == grpc.StatusCode.NOT_FOUND
