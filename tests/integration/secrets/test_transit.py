"""Sensitive inline values: transit ciphertext in etcd, plaintext only for readers, rewrap."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import grpc
import hvac
import pytest

from configsvc.cli.main import main
from configsvc.v1 import config_pb2, secrets_pb2, secrets_pb2_grpc
from configsvc.validate import SchemaBinding, SchemaRegistry, Scope
from tests.helpers import Stack, ckey
from tests.integration.secrets.support import READER, STRANGER

SCHEMA = {
    "type": "object",
    "properties": {
        "user": {"type": "string"},
        "token": {"type": "string", "x-sensitive": True},
        "keys": {"type": "array", "items": {"x-sensitive": True}},
    },
}


@pytest.fixture
def sensitive(secret_stack: Stack, stenant: str) -> Iterator[None]:
    """The schema registry the schema issue will provide, built from a binding here."""
    gateway = secret_stack.server.secrets.gateway
    before = gateway.sensitive
    gateway.sensitive = SchemaRegistry(
        [
            SchemaBinding(
                pattern="creds*", schema=SCHEMA, version=1, source="test", scope=Scope(stenant)
            )
        ]
    )
    yield
    gateway.sensitive = before


async def raw_value(stack: Stack, key: config_pb2.ConfigKey) -> str:
    """The stored text (a read without resolution)."""
    return str((await stack.config.Get(config_pb2.GetRequest(key=key))).entry.value)


@pytest.mark.usefixtures("sensitive", "admin_api_key")
async def test_sensitive_fields_are_ciphertext_and_rewrap_after_rotation(
    secret_stack: Stack, stenant: str, bao: hvac.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    key = ckey(stenant, "creds")
    written = {"user": "svc", "token": "tk-plain-7731", "keys": ["k-one", "k-two"]}
    put = await secret_stack.config.Put(config_pb2.PutRequest(key=key, value=json.dumps(written)))
    stored = json.loads(put.entry.value)
    assert stored["user"] == "svc"
    assert stored["token"]["$encrypted"]["ciphertext"].startswith("vault:v")
    assert [k["$encrypted"]["key"] for k in stored["keys"]] == ["configsvc", "configsvc"]
    assert "tk-plain-7731" not in await raw_value(secret_stack, key)
    kvs = await secret_stack.server.etcd.range_all(secret_stack.server.keyspace.cfg_prefix(stenant))
    assert all(b"tk-plain-7731" not in kv.value for kv in kvs)

    got = await secret_stack.config.Get(
        config_pb2.GetRequest(key=key, resolve_secrets=True), metadata=READER
    )
    assert json.loads(got.entry.value) == written
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await secret_stack.config.Get(
            config_pb2.GetRequest(key=key, resolve_secrets=True), metadata=STRANGER
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED

    # Writing back what a reader without resolution got keeps the ciphertext as it is.
    again = await secret_stack.config.Put(config_pb2.PutRequest(key=key, value=put.entry.value))
    assert again.entry.value == put.entry.value

    # Rotate the transit key, then rewrap: new ciphertexts, same plaintext, then idempotent.
    bao.secrets.transit.rotate_key(name="configsvc")
    latest = bao.secrets.transit.read_key(name="configsvc")["data"]["latest_version"]
    stub = secrets_pb2_grpc.SecretServiceStub(secret_stack.channel)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.RewrapCiphertexts(
            secrets_pb2.RewrapCiphertextsRequest(tenant=stenant), metadata=STRANGER
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # Rewrapping is tenant admin work: the CLI runs with the admin key.
    code = await _cli(["secrets", "rewrap", stenant, "--server", secret_stack.address])
    assert code == 0
    assert f"rewrapped {stenant}/prod/api/creds" in capsys.readouterr().out
    rewrapped = json.loads(await raw_value(secret_stack, key))
    assert rewrapped["token"]["$encrypted"]["ciphertext"].startswith(f"vault:v{latest}:")
    got = await secret_stack.config.Get(
        config_pb2.GetRequest(key=key, resolve_secrets=True), metadata=READER
    )
    assert json.loads(got.entry.value) == written
    second = await stub.RewrapCiphertexts(secrets_pb2.RewrapCiphertextsRequest(tenant=stenant))
    assert (list(second.rewrapped), second.unchanged, second.revision) == ([], 1, 0)

    # A value outside the schema's keys is stored as written.
    plain = await secret_stack.config.Put(
        config_pb2.PutRequest(key=ckey(stenant, "other"), value='{"token": "x"}')
    )
    assert plain.entry.value == '{"token": "x"}'


async def _cli(argv: list[str]) -> int:
    """Run the blocking CLI off the event loop that serves it."""
    return await asyncio.to_thread(main, argv)
