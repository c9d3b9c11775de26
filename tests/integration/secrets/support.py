"""Helpers of the secrets integration tests."""

from __future__ import annotations

import json

from configsvc.v1 import audit_pb2
from tests.helpers import Stack

READER = (("x-configsvc-actor", "reader"),)
STRANGER = (("x-configsvc-actor", "mallory"),)


def ref(path: str, field: str = "password", *, mount: str = "secret",
        version: int | None = None) -> dict[str, object]:
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
