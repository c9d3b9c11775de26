"""Audit entries as JSON Lines or CSV, for compliance reports.

JSON Lines is the lossless form: each line is the ``AuditEntry`` in proto3
JSON (field names in lowerCamelCase, 64-bit numbers as strings, as every
proto3 JSON reader expects). CSV flattens the same facts into fixed columns
(attributes as one JSON object) for spreadsheets.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Sequence

from google.protobuf import json_format

from configsvc.v1 import audit_query_pb2, config_pb2

CHUNK_BYTES = 64 * 1024

CSV_COLUMNS = (
    "revision",
    "id",
    "time",
    "tenant",
    "kind",
    "name",
    "environment",
    "service",
    "key",
    "operation",
    "actor",
    "reason",
    "before_version",
    "after_version",
    "before_digest",
    "after_digest",
    "rolled_back_to",
    "expected_revision",
    "trace_id",
    "attributes",
)


def jsonl_line(entry: audit_query_pb2.AuditEntry) -> str:
    body = json_format.MessageToDict(entry)
    return json.dumps(body, separators=(",", ":"), sort_keys=True) + "\n"


def csv_row(entry: audit_query_pb2.AuditEntry) -> list[str]:
    record = entry.record
    key = record.key
    tenant = key.tenant if record.HasField("key") else record.tenant
    return [
        str(entry.revision),
        record.id,
        record.time.ToJsonString() if record.HasField("time") else "",
        tenant,
        record.kind or "config",
        record.name,
        key.environment,
        key.service,
        key.key,
        config_pb2.Operation.Name(record.operation),
        record.actor,
        record.reason,
        str(record.before_version),
        str(record.after_version),
        record.before_digest,
        record.after_digest,
        str(record.rolled_back_to),
        str(record.expected_revision) if record.HasField("expected_revision") else "",
        record.trace_id,
        json.dumps(dict(record.attributes), sort_keys=True) if record.attributes else "",
    ]


def _csv_text(rows: Sequence[Sequence[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


async def render(
    entries: AsyncIterator[audit_query_pb2.AuditEntry], fmt: int
) -> AsyncIterator[bytes]:
    """The export file in chunks of about CHUNK_BYTES."""
    csv_format = fmt == audit_query_pb2.EXPORT_FORMAT_CSV
    parts: list[str] = [_csv_text([CSV_COLUMNS])] if csv_format else []
    size = sum(len(p) for p in parts)
    async for entry in entries:
        text = _csv_text([csv_row(entry)]) if csv_format else jsonl_line(entry)
        parts.append(text)
        size += len(text)
        if size >= CHUNK_BYTES:
            yield "".join(parts).encode()
            parts, size = [], 0
    if parts:
        yield "".join(parts).encode()
