"""SecretRef on write and on read: existence checks, permission, audit, resolution."""

from __future__ import annotations

import asyncio
import json

import grpc
import hvac
import pytest

from configsvc.v1 import config_pb2
from tests.helpers import Stack, ckey
from tests.integration.secrets.support import (
    READER,
    STRANGER,
    ref,
    secret_audits,
    text,
)


async def test_write_checks_that_the_reference_exists(
    secret_stack: Stack, stenant: str, bao: hvac.Client, secret_path: str
) -> None:
    bao.secrets.kv.v2.create_or_update_secret(path=secret_path, secret={"password": "pw-1"})
    good = text({"url": "postgres://db", "password": ref(secret_path)})
    put = await secret_stack.config.Put(config_pb2.PutRequest(key=ckey(stenant, "db"), value=good))
    assert put.entry.value == good  # stored byte for byte: the reference, not the value

    cases = [
        (ref(f"{secret_path}-missing"), grpc.StatusCode.NOT_FOUND, "has no secret"),
        (ref(secret_path, "nope"), grpc.StatusCode.NOT_FOUND, "has no field 'nope'"),
        (ref(secret_path, version=7), grpc.StatusCode.NOT_FOUND, "version 7"),
        (
            {"$secret": {"mount": "secret", "path": "../x", "field": "a"}},
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid segment",
        ),
        (
            {"$secret": {"mount": "secret", "path": "a", "field": "a", "extra": 1}},
            grpc.StatusCode.INVALID_ARGUMENT,
            "unknown member 'extra'",
        ),
        (
            {"$secret": {"mount": "secret", "path": "a", "field": "a"}, "x": 1},
            grpc.StatusCode.INVALID_ARGUMENT,
            "no other members",
        ),
    ]
    for value, code, message in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await secret_stack.config.Put(
                config_pb2.PutRequest(key=ckey(stenant, "bad"), value=text(value))
            )
        assert err.value.code() == code, value
        assert message in (err.value.details() or ""), err.value.details()
    missing = await secret_stack.config.BatchGet(
        config_pb2.BatchGetRequest(keys=[ckey(stenant, "bad")])
    )
    assert len(missing.missing) == 1  # nothing of a failed write was stored


async def test_reads_resolve_only_for_readers_and_every_access_is_audited(
    secret_stack: Stack, stenant: str, bao: hvac.Client, secret_path: str
) -> None:
    bao.secrets.kv.v2.create_or_update_secret(
        path=secret_path, secret={"password": "pw-1", "port": 5432}
    )
    stored = text({"password": ref(secret_path), "port": ref(secret_path, "port"), "pool": 4})
    await secret_stack.config.Put(config_pb2.PutRequest(key=ckey(stenant, "db"), value=stored))
    await secret_stack.config.Put(
        config_pb2.PutRequest(key=ckey(stenant, "plain"), value='{"a": 1}')
    )

    plain = await secret_stack.config.Get(
        config_pb2.GetRequest(key=ckey(stenant, "db")), metadata=STRANGER
    )
    assert plain.entry.value == stored  # no resolution asked: the reference

    got = await secret_stack.config.Get(
        config_pb2.GetRequest(key=ckey(stenant, "db"), resolve_secrets=True), metadata=READER
    )
    assert json.loads(got.entry.value) == {"password": "pw-1", "port": 5432, "pool": 4}
    assert got.entry.value_digest == plain.entry.value_digest  # digest of what is stored

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await secret_stack.config.Get(
            config_pb2.GetRequest(key=ckey(stenant, "db"), resolve_secrets=True), metadata=STRANGER
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "mallory" in (err.value.details() or "")

    # A value without secrets needs no permission, even when resolution is asked for.
    free = await secret_stack.config.Get(
        config_pb2.GetRequest(key=ckey(stenant, "plain"), resolve_secrets=True), metadata=STRANGER
    )
    assert free.entry.value == '{"a": 1}'

    batch = await secret_stack.config.BatchGet(
        config_pb2.BatchGetRequest(
            keys=[ckey(stenant, "db"), ckey(stenant, "plain")], resolve_secrets=True
        ),
        metadata=READER,
    )
    assert json.loads(batch.entries[0].value)["password"] == "pw-1"
    assert batch.entries[1].value == '{"a": 1}'

    resolved = await secret_stack.config.Resolve(
        config_pb2.ResolveRequest(
            tenant=stenant, environment="prod", service="api", resolve_secrets=True
        ),
        metadata=READER,
    )
    assert json.loads(resolved.document)["db"]["password"] == "pw-1"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await secret_stack.config.Resolve(
            config_pb2.ResolveRequest(
                tenant=stenant, environment="prod", service="api", resolve_secrets=True
            ),
            metadata=STRANGER,
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED

    audits = await secret_audits(secret_stack, stenant)
    decisions = sorted((a.actor, a.attributes["method"], a.attributes["decision"]) for a in audits)
    assert ("key:mallory", "Get", "denied") in decisions
    assert ("key:mallory", "Resolve", "denied") in decisions
    assert ("key:reader", "Get", "granted") in decisions
    assert ("key:reader", "BatchGet", "granted") in decisions
    granted_refs = {a.attributes["ref"] for a in audits if a.attributes["decision"] == "granted"}
    assert granted_refs == {f"secret/{secret_path}#password", f"secret/{secret_path}#port"}
    for record in audits:
        assert record.operation == config_pb2.OPERATION_ACCESS
        assert record.tenant == stenant and record.id and record.time.seconds > 0
        assert "pw-1" not in str(record)


async def test_pinned_versions_and_vault_errors(
    secret_stack: Stack, stenant: str, bao: hvac.Client, secret_path: str
) -> None:
    bao.secrets.kv.v2.create_or_update_secret(path=secret_path, secret={"password": "v1"})
    bao.secrets.kv.v2.create_or_update_secret(path=secret_path, secret={"password": "v2"})
    await secret_stack.config.Put(
        config_pb2.PutRequest(
            key=ckey(stenant, "old"), value=text([ref(secret_path, version=1), ref(secret_path)])
        )
    )
    got = await secret_stack.config.Get(
        config_pb2.GetRequest(key=ckey(stenant, "old"), resolve_secrets=True), metadata=READER
    )
    assert json.loads(got.entry.value) == ["v1", "v2"]

    # The secret disappears after the write: resolution says so, naming the reference.
    bao.secrets.kv.v2.delete_metadata_and_all_versions(path=secret_path)
    secret_stack.server.secrets.cache.drop("secret", secret_path)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await secret_stack.config.Get(
            config_pb2.GetRequest(key=ckey(stenant, "old"), resolve_secrets=True), metadata=READER
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert secret_path in (err.value.details() or "")


async def test_concurrent_accesses_share_audit_transactions(
    secret_stack: Stack, stenant: str, bao: hvac.Client, secret_path: str
) -> None:
    bao.secrets.kv.v2.create_or_update_secret(path=secret_path, secret={"password": "c"})
    await secret_stack.config.Put(
        config_pb2.PutRequest(key=ckey(stenant, "db"), value=text(ref(secret_path)))
    )
    auditor = secret_stack.server.secrets.auditor
    before = auditor.transactions
    calls = 40
    answers = await asyncio.gather(
        *(
            secret_stack.config.Get(
                config_pb2.GetRequest(key=ckey(stenant, "db"), resolve_secrets=True),
                metadata=READER,
            )
            for _ in range(calls)
        )
    )
    assert {a.entry.value for a in answers} == {'"c"'}
    # Every access has its record, committed before its answer, in fewer transactions.
    assert len(await secret_audits(secret_stack, stenant)) == calls
    assert 1 <= auditor.transactions - before < calls


async def test_without_vault_references_are_refused_and_plain_values_unaffected(
    stack: Stack, tenant: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.config.Put(config_pb2.PutRequest(key=ckey(tenant, "db"), value=text(ref("db"))))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "--vault-addr" in (err.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as err:  # malformed is still malformed
        await stack.config.Put(
            config_pb2.PutRequest(key=ckey(tenant, "db"), value='{"$secret": 1}')
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    await stack.config.Put(config_pb2.PutRequest(key=ckey(tenant, "db"), value='{"$ref": 1}'))
    got = await stack.config.Get(
        config_pb2.GetRequest(key=ckey(tenant, "db"), resolve_secrets=True)
    )
    assert got.entry.value == '{"$ref": 1}'
