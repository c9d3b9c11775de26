"""Sensitive fields from schemas registered through ValidationService (real etcd, OpenBao).

Put validates the plaintext, then the server stores transit ciphertext; stored ciphertext
is never a schema violation afterwards (PutSchema, Validate, Rollback, Promote, write-back).
"""

from __future__ import annotations

import json

import grpc
import pytest

from configsvc.v1 import config_pb2, hierarchy_pb2, template_pb2, validation_pb2
from tests.helpers import Stack, ckey
from tests.integration.hier.support import Hier, bad_request, hier_stubs
from tests.integration.secrets.support import READER, STRANGER, ref

SCHEMA = {
    "type": "object",
    "required": ["user"],
    "properties": {
        "user": {"type": "string"},
        "token": {"type": "string", "minLength": 8, "x-sensitive": True},
    },
}


async def _put_schema(
    hier: Hier, tenant: str, name: str, schema: object, *, environment: str = ""
) -> validation_pb2.PutSchemaResponse:
    response: validation_pb2.PutSchemaResponse = await hier.validation.PutSchema(
        validation_pb2.PutSchemaRequest(
            tenant=tenant,
            name=name,
            pattern="creds*",
            environment=environment,
            schema=json.dumps(schema),
        )
    )
    return response


async def _registered(stack: Stack, tenant: str) -> Hier:
    """The hierarchy stubs, with SCHEMA registered for ``creds*`` of ``tenant``."""
    hier = hier_stubs(stack)
    await _put_schema(hier, tenant, "creds", SCHEMA)
    return hier


async def _etcd_values(stack: Stack, tenant: str, part: bytes = b"") -> list[bytes]:
    """Every value etcd holds under ``tenant`` (entries, history, audit, records) whose
    key contains ``part``."""
    prefix = stack.server.keyspace.cfg_prefix(tenant).removesuffix(b"cfg/")
    kvs = await stack.server.etcd.range_all(prefix)
    return [bytes(kv.value) for kv in kvs if part in bytes(kv.key)]


async def _resolved(stack: Stack, key: config_pb2.ConfigKey) -> object:
    got = await stack.config.Get(
        config_pb2.GetRequest(key=key, resolve_secrets=True), metadata=READER
    )
    return json.loads(got.entry.value)


async def test_registered_sensitive_field_is_encrypted_and_never_a_violation(
    secret_stack: Stack, stenant: str
) -> None:
    hier = await _registered(secret_stack, stenant)
    key = ckey(stenant, "creds")
    plain = "tk-registered-5521"

    # The plaintext is validated first: a too short token is refused without showing it.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await secret_stack.config.Put(
            config_pb2.PutRequest(key=key, value=json.dumps({"user": "svc", "token": "short-1"}))
        )
    [(field, description)] = bad_request(err.value)
    assert field == "value/token" and "short-1" not in description, description

    put = await secret_stack.config.Put(
        config_pb2.PutRequest(key=key, value=json.dumps({"user": "svc", "token": plain}))
    )
    stored = json.loads(put.entry.value)
    assert stored["user"] == "svc"
    assert stored["token"]["$encrypted"]["ciphertext"].startswith("vault:v")
    values = await _etcd_values(secret_stack, stenant)
    assert any(b"vault:v" in v for v in values)
    assert not any(plain.encode() in v for v in values)
    assert not any(b"short-1" in v for v in values)

    # Plaintext only for a secret reader asking for it; ciphertext for the others.
    assert await _resolved(secret_stack, key) == {"user": "svc", "token": plain}
    raw = await secret_stack.config.Get(config_pb2.GetRequest(key=key), metadata=STRANGER)
    assert raw.entry.value == put.entry.value
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await secret_stack.config.Get(
            config_pb2.GetRequest(key=key, resolve_secrets=True), metadata=STRANGER
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED

    # A later schema version is checked against stored values: the ciphertext is skipped,
    # the rest still counts.
    stricter = {
        **SCHEMA,
        "properties": {
            **SCHEMA["properties"],  # type: ignore[dict-item]
            "user": {"type": "string", "maxLength": 2},
        },
    }
    check = await hier.validation.Validate(
        validation_pb2.ValidateRequest(
            tenant=stenant,
            schema=validation_pb2.PutSchemaRequest(
                name="creds", pattern="creds*", schema=json.dumps(stricter)
            ),
        )
    )
    assert [(v.field, v.key.key) for v in check.value_violations] == [("value/user", "creds")]
    again = await hier.validation.Validate(
        validation_pb2.ValidateRequest(
            tenant=stenant,
            schema=validation_pb2.PutSchemaRequest(
                name="creds", pattern="creds*", schema=json.dumps(SCHEMA)
            ),
        )
    )
    assert again.valid, again
    second = await _put_schema(hier, stenant, "creds", SCHEMA)
    assert second.schema.version == 2 and not second.existing_violations
    proposed = await hier.validation.Validate(
        validation_pb2.ValidateRequest(
            tenant=stenant, writes=[validation_pb2.ProposedWrite(key=key, value=put.entry.value)]
        )
    )
    assert proposed.valid, proposed

    # Writing back what a reader without resolution got keeps the ciphertext.
    back = await secret_stack.config.Put(config_pb2.PutRequest(key=key, value=raw.entry.value))
    assert back.entry.value == put.entry.value

    # Rollback restores the ciphertext of the version it restores.
    newer = await secret_stack.config.Put(
        config_pb2.PutRequest(key=key, value=json.dumps({"user": "svc", "token": "tk-newer-00017"}))
    )
    assert newer.entry.value != put.entry.value
    rolled = await secret_stack.config.Rollback(
        config_pb2.RollbackRequest(key=key, to_version=put.entry.version)
    )
    assert rolled.entry.value == put.entry.value
    assert await _resolved(secret_stack, key) == {"user": "svc", "token": plain}


async def test_promote_copies_ciphertext_and_encrypts_what_the_target_marks(
    secret_stack: Stack, stenant: str
) -> None:
    hier = await _registered(secret_stack, stenant)
    # Only in staging is the user name sensitive too.
    await _put_schema(
        hier,
        stenant,
        "staging-user",
        {"properties": {"user": {"x-sensitive": True}}},
        environment="staging",
    )
    source = ckey(stenant, "creds", env="dev")
    put = await secret_stack.config.Put(
        config_pb2.PutRequest(
            key=source, value=json.dumps({"user": "svc-user-8812", "token": "tk-promoted-4410"})
        )
    )
    stored = json.loads(put.entry.value)
    assert stored["user"] == "svc-user-8812"

    dry = await hier.hierarchy.Promote(_promote(stenant, "prod", dry_run=True))
    assert list(dry.keys) == ["creds"] and not dry.entries
    to_prod = await hier.hierarchy.Promote(_promote(stenant, "prod"))
    [entry] = to_prod.entries
    assert entry.value == put.entry.value  # the same ciphertext, not re-encrypted

    to_staging = await hier.hierarchy.Promote(_promote(stenant, "staging"))
    [entry] = to_staging.entries
    promoted = json.loads(entry.value)
    assert promoted["token"] == stored["token"]
    assert promoted["user"]["$encrypted"]["ciphertext"].startswith("vault:v")
    assert not any(
        b"svc-user-8812" in v for v in await _etcd_values(secret_stack, stenant, b"/staging/")
    )
    assert await _resolved(secret_stack, ckey(stenant, "creds", env="staging")) == {
        "user": "svc-user-8812",
        "token": "tk-promoted-4410",
    }


async def test_template_values_may_not_hold_registered_sensitive_plaintext(
    secret_stack: Stack, stenant: str
) -> None:
    hier = await _registered(secret_stack, stenant)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await hier.templates.PutTemplate(
            template_pb2.PutTemplateRequest(
                tenant=stenant,
                name="web",
                values={"creds": json.dumps({"user": "svc", "token": "tk-template-3321"})},
            )
        )
    [(field, description)] = bad_request(err.value)
    assert field == "values[creds]/token" and "x-sensitive" in description
    assert "tk-template-3321" not in description
    assert not any(b"tk-template-3321" in v for v in await _etcd_values(secret_stack, stenant))
    # A reference is what a template holds there instead (schemas do not judge it).
    ok = await hier.templates.PutTemplate(
        template_pb2.PutTemplateRequest(
            tenant=stenant,
            name="web",
            values={
                "creds": json.dumps({"user": "svc", "token": ref(f"tests/{stenant}/web", "token")})
            },
        )
    )
    assert ok.template.version == 1


def _promote(tenant: str, target: str, *, dry_run: bool = False) -> hierarchy_pb2.PromoteRequest:
    return hierarchy_pb2.PromoteRequest(
        tenant=tenant,
        service="api",
        source_environment="dev",
        target_environment=target,
        dry_run=dry_run,
    )


async def test_without_vault_a_registered_sensitive_field_refuses_the_write(
    stack: Stack, tenant: str
) -> None:
    """A server without Vault cannot encrypt: the write fails, nothing is stored in plaintext."""
    await _registered(stack, tenant)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.config.Put(
            config_pb2.PutRequest(
                key=ckey(tenant, "creds"), value=json.dumps({"user": "u", "token": "tk-novault-1"})
            )
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "--vault-addr" in str(err.value.details())
    assert not any(b"tk-novault-1" in v for v in await _etcd_values(stack, tenant))
    # Values without sensitive places are not affected.
    ok = await stack.config.Put(
        config_pb2.PutRequest(key=ckey(tenant, "creds"), value=json.dumps({"user": "u"}))
    )
    assert json.loads(ok.entry.value) == {"user": "u"}


async def test_rollback_refuses_plaintext_stored_before_the_schema_marked_it(
    secret_stack: Stack, stenant: str
) -> None:
    key = ckey(stenant, "creds")
    first = await secret_stack.config.Put(
        config_pb2.PutRequest(
            key=key, value=json.dumps({"user": "u", "token": "tk-before-schema-1"})
        )
    )
    await secret_stack.config.Put(config_pb2.PutRequest(key=key, value=json.dumps({"user": "u"})))
    await _registered(secret_stack, stenant)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await secret_stack.config.Rollback(
            config_pb2.RollbackRequest(key=key, to_version=first.entry.version)
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = str(err.value.details())
    assert "/token" in details and "tk-before-schema-1" not in details, details
    current = await secret_stack.config.Get(config_pb2.GetRequest(key=key))
    assert json.loads(current.entry.value) == {"user": "u"}
