"""Watch streams that resolve secrets, and rotation reaching them as an event."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
import hvac
import pytest

from configsvc.v1 import config_pb2, watch_pb2, watch_pb2_grpc
from tests.helpers import Stack, ckey
from tests.integration.secrets.support import READER, STRANGER, ref, secret_audits, text


def resolving_watch(stack: Stack, tenant: str, metadata: Any = READER) -> Any:
    stub = watch_pb2_grpc.WatchServiceStub(stack.channel)
    return stub.Watch(
        watch_pb2.WatchRequest(
            selectors=[watch_pb2.WatchSelector(tenant=tenant, environment="prod")],
            send_snapshot=True,
            resolve_secrets=True,
        ),
        metadata=metadata,
    )


async def next_of(call: Any, kind: str, timeout: float = 20) -> watch_pb2.WatchResponse:
    """The next message of ``kind`` (progress heartbeats in between are skipped)."""

    async def run() -> watch_pb2.WatchResponse:
        while True:
            message = await call.read()
            assert message is not grpc.aio.EOF, "stream ended"
            if message.WhichOneof("kind") == kind:
                return message  # type: ignore[no-any-return]

    return await asyncio.wait_for(run(), timeout)


async def test_watch_resolves_and_rotation_reaches_every_referencing_config(
    secret_stack: Stack, stenant: str, bao: hvac.Client, secret_path: str
) -> None:
    bao.secrets.kv.v2.create_or_update_secret(path=secret_path, secret={"password": "rot-1"})
    await secret_stack.config.Put(
        config_pb2.PutRequest(key=ckey(stenant, "db"), value=text({"password": ref(secret_path)}))
    )
    await secret_stack.config.Put(
        config_pb2.PutRequest(
            key=ckey(stenant, "worker.db", service="worker"), value=text(ref(secret_path))
        )
    )
    await secret_stack.config.Put(
        config_pb2.PutRequest(key=ckey(stenant, "pinned"), value=text(ref(secret_path, version=1)))
    )

    call = resolving_watch(secret_stack, stenant)
    snapshot = await next_of(call, "snapshot")
    values = {e.key.key: json.loads(e.value) for e in snapshot.snapshot.entries}
    assert values == {"db": {"password": "rot-1"}, "worker.db": "rot-1", "pinned": "rot-1"}
    await next_of(call, "snapshot_end")

    # A change is resolved on the way out too.
    await secret_stack.config.Put(
        config_pb2.PutRequest(
            key=ckey(stenant, "cache"), value=text({"pw": ref(secret_path), "ttl": 5})
        )
    )
    change = await next_of(call, "changes")
    assert json.loads(change.changes.changes[0].entry.value) == {"pw": "rot-1", "ttl": 5}

    # Rotation: a new KV version reaches the stream as one event naming the reference,
    # with every entry that follows the newest version resolved again.
    bao.secrets.kv.v2.create_or_update_secret(path=secret_path, secret={"password": "rot-2"})
    rotated = (await next_of(call, "secrets_rotated")).secrets_rotated
    assert [(r.mount, r.path, r.field) for r in rotated.refs] == [
        ("secret", secret_path, "password")
    ]
    assert {e.key.key: json.loads(e.value) for e in rotated.entries} == {
        "db": {"password": "rot-2"},
        "worker.db": "rot-2",
        "cache": {"pw": "rot-2", "ttl": 5},
    }
    assert rotated.revision >= change.changes.revision
    assert "rot-2" not in str(list(rotated.refs))

    # Reads after the rotation see the new version (the cache entry was dropped).
    got = await secret_stack.config.Get(
        config_pb2.GetRequest(key=ckey(stenant, "db"), resolve_secrets=True), metadata=READER
    )
    assert json.loads(got.entry.value) == {"password": "rot-2"}
    call.cancel()

    audits = await secret_audits(secret_stack, stenant)
    watched = [a for a in audits if a.attributes["method"] == "Watch"]
    assert {a.attributes["config_key"].split("/")[-1] for a in watched} >= {
        "db",
        "worker.db",
        "pinned",
        "cache",
    }
    assert all(a.attributes["decision"] == "granted" and a.actor == "key:reader" for a in watched)


async def test_watch_without_permission_is_denied_at_open_and_audited(
    secret_stack: Stack, stenant: str
) -> None:
    call = resolving_watch(secret_stack, stenant, metadata=STRANGER)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call.read()
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    audits = await secret_audits(secret_stack, stenant)
    assert [(a.actor, a.attributes["decision"], a.attributes["method"]) for a in audits] == [
        ("key:mallory", "denied", "Watch")
    ]

    # Without resolve_secrets the same caller watches the references.
    plain = watch_pb2_grpc.WatchServiceStub(secret_stack.channel).Watch(
        watch_pb2.WatchRequest(
            selectors=[watch_pb2.WatchSelector(tenant=stenant)], send_snapshot=True
        ),
        metadata=STRANGER,
    )
    assert (await next_of(plain, "snapshot_end")).snapshot_end.revision > 0
    plain.cancel()


async def test_a_resumed_resolving_stream_gets_current_secrets_at_once(
    secret_stack: Stack, stenant: str, bao: hvac.Client, secret_path: str
) -> None:
    bao.secrets.kv.v2.create_or_update_secret(path=secret_path, secret={"password": "r-1"})
    put = await secret_stack.config.Put(
        config_pb2.PutRequest(key=ckey(stenant, "db"), value=text(ref(secret_path)))
    )
    await secret_stack.config.Put(config_pb2.PutRequest(key=ckey(stenant, "plain"), value="1"))
    # Rotated while the client was away: the resume cannot tell, so the server re-sends.
    bao.secrets.kv.v2.create_or_update_secret(path=secret_path, secret={"password": "r-2"})
    stub = watch_pb2_grpc.WatchServiceStub(secret_stack.channel)
    call = stub.Watch(
        watch_pb2.WatchRequest(
            selectors=[watch_pb2.WatchSelector(tenant=stenant)],
            start_revision=put.revision + 1,
            resolve_secrets=True,
        ),
        metadata=READER,
    )
    replayed = await next_of(call, "changes")  # the replay ("plain") comes first
    assert [c.key.key for c in replayed.changes.changes] == ["plain"]
    rotated = (await next_of(call, "secrets_rotated")).secrets_rotated
    assert [(e.key.key, json.loads(e.value)) for e in rotated.entries] == [("db", "r-2")]
    call.cancel()
