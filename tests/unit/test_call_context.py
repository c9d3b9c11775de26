"""The transport-neutral call context (configsvc.rpc.context), pure units: what
``LocalContext`` gives the servicers' helpers, and that gRPC's own context has every
member the ``CallContext`` and ``PeerInfo`` protocols name."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import grpc
import pytest
from google.rpc import status_pb2

from configsvc import errors
from configsvc.auth import admission
from configsvc.model.grants import Access
from configsvc.rpc import principal, requests
from configsvc.rpc.context import CallAborted, CallContext, LocalContext, PeerInfo, call_local
from configsvc.rpc.principal import API_KEY, Caller, Principal
from configsvc.rpc.status import abort_with

_TRACE = "0af7651916cd43dd8448eb211c80319c"


def _members(protocol: type) -> set[str]:
    return {
        name
        for name, value in vars(protocol).items()
        if callable(value) and not name.startswith("_")
    }


def test_grpc_servicer_context_has_every_member_of_the_protocols() -> None:
    members = _members(CallContext) | _members(PeerInfo)
    assert members == {
        "invocation_metadata",
        "peer",
        "time_remaining",
        "abort",
        "write",
        "auth_context",
    }
    missing = {
        name for name in members if not callable(getattr(grpc.aio.ServicerContext, name, None))
    }
    assert not missing, f"grpc.aio.ServicerContext lacks {missing}"
    local = LocalContext()
    assert all(callable(getattr(local, name)) for name in members)


def test_the_admission_module_imports_no_grpc() -> None:
    tree = ast.parse(Path(admission.__file__).read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {name for name in imported if name.split(".")[0] == "grpc"}, imported


async def test_abort_raises_with_the_status_a_grpc_caller_reads() -> None:
    context = LocalContext()
    with pytest.raises(CallAborted) as raised:
        await abort_with(context, errors.NotFoundError("tenant", "x"))
    assert raised.value.code == context.code == grpc.StatusCode.NOT_FOUND
    assert raised.value.details == context.details != ""
    status = status_pb2.Status.FromString(
        dict(context.trailing_metadata)["grpc-status-details-bin"]
    )
    assert status.message == context.details and status.details
    # The status wrappers let it through as they let grpc's own abort through.
    assert isinstance(raised.value, grpc.aio.AbortError)


async def test_metadata_peer_deadline_and_writes_reach_the_helpers() -> None:
    context = LocalContext(
        (("traceparent", f"00-{_TRACE}-00f067aa0ba902b7-01"), (requests.ACTOR_HEADER, "deployer")),
        peer="ipv4:10.0.0.1:5000",
        timeout=2.0,
        tls_names=("svc-a",),
    )
    assert requests.trace_id(context) == _TRACE
    assert await asyncio.create_task(_actor(context)) == "deployer"  # auth off: the header
    assert 0 < requests.time_left(context, 10.0) <= 2.0
    assert requests.time_left(LocalContext(), 10.0) == 10.0  # no deadline: the default
    assert context.peer() == "ipv4:10.0.0.1:5000"
    assert context.auth_context() == {"x509_common_name": [b"svc-a"]}
    assert LocalContext().auth_context() == {}
    await context.write("one")
    await context.write("two")
    assert context.written == ["one", "two"]


async def _actor(context: LocalContext) -> str:
    return requests.actor(context)


async def test_call_local_maps_errors_and_keeps_the_caller_to_the_call() -> None:
    caller = Caller(Principal("key:local", API_KEY), Access("key:local", ()))

    async def admit(method: str, metadata: object, peer: object, request: object) -> Caller | None:
        if request == "refuse":
            raise errors.PermissionDeniedError("no")
        return caller

    async def behavior(request: object, context: object) -> str:
        current = principal.current()
        if request == "missing":
            raise errors.NotFoundError("config entry", "x")
        return current.principal.name if current is not None else "nobody"

    context = LocalContext()
    assert await call_local(admit, "/m", behavior, "ok", context) == "key:local"
    assert principal.current() is None  # set in the call's own task only
    for request, code in (
        ("refuse", grpc.StatusCode.PERMISSION_DENIED),
        ("missing", grpc.StatusCode.NOT_FOUND),
    ):
        with pytest.raises(CallAborted) as raised:
            await call_local(admit, "/m", behavior, request, LocalContext())
        assert raised.value.code == code
    assert await call_local(None, "/m", behavior, "ok", LocalContext()) == "nobody"
