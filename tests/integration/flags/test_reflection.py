"""Server reflection lists and describes the flagd services, read with the real grpcurl.

Their descriptors live in a private pool (``configsvc.flags.pool``); reflection is
served from a pool that merges them with the default one.
"""

from __future__ import annotations

import asyncio
import subprocess

from tests.helpers import Stack, grpcurl

FLAGD = (
    "flagd.evaluation.v1.Service",
    "flagd.evaluation.v2.Service",
    "flagd.sync.v1.FlagSyncService",
)


async def _grpcurl(stack: Stack, *args: str) -> str:
    done = await asyncio.to_thread(
        subprocess.run,
        [grpcurl(), "-plaintext", "-max-time", "20", stack.address, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_grpcurl_lists_and_describes_the_flagd_services(stack: Stack) -> None:
    listed = set((await _grpcurl(stack, "list")).split())
    assert set(FLAGD) <= listed
    assert {
        "configsvc.v1.ConfigService",
        "configsvc.v1.FlagService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= listed

    evaluation = await _grpcurl(stack, "describe", "flagd.evaluation.v1.Service")
    for name in (
        "ResolveBoolean",
        "ResolveString",
        "ResolveInt",
        "ResolveFloat",
        "ResolveObject",
        "ResolveAll",
        "EventStream",
    ):
        assert f"rpc {name} (" in evaluation, evaluation
    sync = await _grpcurl(stack, "describe", "flagd.sync.v1.FlagSyncService")
    assert "rpc SyncFlags (" in sync and "rpc FetchAllFlags (" in sync
    assert "rpc ResolveBoolean (" in await _grpcurl(
        stack, "describe", "flagd.evaluation.v2.Service"
    )
    # Messages that import google/protobuf/struct.proto resolve too.
    request = await _grpcurl(stack, "describe", "flagd.evaluation.v1.ResolveBooleanRequest")
    assert "google.protobuf.Struct context" in request, request

    config = await _grpcurl(stack, "describe", "configsvc.v1.ConfigService")
    assert "rpc Get (" in config and "rpc Put (" in config
    assert "expected_revision" in await _grpcurl(stack, "describe", "configsvc.v1.PutRequest")
