"""Helpers of the secrets integration tests."""

from __future__ import annotations

import json

from configsvc.auth import apikeys
from configsvc.errors import ConflictError
from configsvc.store.writer import RecordChange
from configsvc.v1 import audit_pb2, auth_pb2
from tests.helpers import Stack, bearer
from tests.integration.auth.support import bind

#: Fixed API keys of the secrets tests' two callers (installed by ``install_callers``):
#: key:reader may read configuration and secret plaintext everywhere, key:mallory only
#: configuration. With auth on, role bindings are the secret-read policy.
READER_KEY = "cs_00000000000000a1_secrets-tests-reader"
STRANGER_KEY = "cs_00000000000000a2_secrets-tests-mallory"
READER = bearer(READER_KEY)
STRANGER = bearer(STRANGER_KEY)
_ROLES = {
    READER_KEY: ("reader", (auth_pb2.ROLE_VIEWER, auth_pb2.ROLE_SECRET_READER)),
    STRANGER_KEY: ("mallory", (auth_pb2.ROLE_VIEWER,)),
}


async def install_callers(stack: Stack) -> None:
    """Store the two fixed keys (as the bootstrap stores its key) and bind their roles on
    every tenant; a no-op when this installation has them already."""
    server = stack.server
    for token, (name, roles) in _ROLES.items():
        key_id = apikeys.key_id_of(token)
        assert key_id is not None
        record = apikeys.stored(auth_pb2.ApiKey(id=key_id, name=name), token)
        try:
            await server.writer.commit_records(
                None,
                [
                    RecordChange(
                        server.auth.api_keys.record_key(key_id),
                        record.SerializeToString(),
                        0,
                        f"test key {name}",
                    )
                ],
                [],
                timeout=10,
            )
        except ConflictError:
            continue
        for role in roles:
            await bind(stack, apikeys.identity(name), role, "*")


def ref(
    path: str, field: str = "password", *, mount: str = "secret", version: int | None = None
) -> dict[str, object]:
    body: dict[str, object] = {"mount": mount, "path": path, "field": field}
    if version is not None:
        body["version"] = version
    return {"$secret": body}


def text(value: object) -> str:
    return json.dumps(value)


async def secret_audits(stack: Stack, tenant: str) -> list[audit_pb2.AuditRecord]:
    kvs = await stack.server.etcd.range_all(stack.server.keyspace.audit_prefix(tenant))
    records = [audit_pb2.AuditRecord.FromString(kv.value) for kv in kvs]
    return [r for r in records if r.kind == "secret"]
