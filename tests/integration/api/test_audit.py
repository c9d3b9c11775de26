"""ListAudit and ExportAudit against real etcd, and the ``audit`` commands."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import grpc
import pytest
from google.protobuf import timestamp_pb2

from configsvc.cli.main import main
from configsvc.rpc.pagination import encode
from configsvc.store import scan
from configsvc.v1 import audit_query_pb2, audit_query_pb2_grpc, config_pb2
from tests.conftest import ckey
from tests.helpers import Stack
from tests.integration.auth.support import acting_as


def _stub(stack: Stack) -> audit_query_pb2_grpc.AuditServiceStub:
    return audit_query_pb2_grpc.AuditServiceStub(stack.channel)


async def _history(stack: Stack, tenant: str) -> list[int]:
    """Seven changes by two identities (key:alice, key:bob) over three keys; returns their
    revisions. The actor of an audit record is the authenticated identity."""
    callers = await acting_as(stack, tenant, "alice", "bob")
    revisions = []
    for actor, key, env, value in [
        ("alice", "db.pool", "prod", "1"),
        ("bob", "db.pool", "prod", "2"),
        ("alice", "db.host", "prod", '"a"'),
        ("bob", "cache.ttl", "prod", "3"),
        ("alice", "db.pool", "dev", "4"),
        ("bob", "db.pool", "prod", "5"),
        ("alice", "db.host", "prod", '"b"'),
    ]:
        response = await stack.config.Put(
            config_pb2.PutRequest(key=ckey(tenant, key, env=env), value=value, reason="r"),
            metadata=callers[actor],
        )
        revisions.append(response.revision)
    return revisions


async def _all(stack: Stack, flt: audit_query_pb2.AuditFilter, size: int = 2) -> list[int]:
    revisions: list[int] = []
    token = ""
    for _ in range(50):
        page = await _stub(stack).ListAudit(
            audit_query_pb2.ListAuditRequest(filter=flt, page_size=size, page_token=token)
        )
        assert len(page.entries) <= size
        revisions += [e.revision for e in page.entries]
        token = page.next_page_token
        if not token:
            return revisions
    raise AssertionError("pagination did not end")


async def test_list_audit_filters_and_pages(stack: Stack, tenant: str) -> None:
    revs = await _history(stack, tenant)
    f = audit_query_pb2.AuditFilter
    everything = await _all(stack, f(tenant=tenant))
    assert everything[1:] == revs and everything[0] < revs[0]  # creating the tenant came first
    assert await _all(stack, f(tenant=tenant, kind="config")) == revs
    assert await _all(stack, f(tenant=tenant, kind="tenant")) == everything[:1]
    assert await _all(stack, f(tenant=tenant, actor="key:alice")) == [revs[i] for i in (0, 2, 4, 6)]
    assert await _all(stack, f(tenant=tenant, key_prefix="db.")) == [
        revs[i] for i in (0, 1, 2, 4, 5, 6)
    ]
    assert await _all(stack, f(tenant=tenant, environment="prod", key_prefix="db.pool")) == [
        revs[i] for i in (0, 1, 5)
    ]
    assert (
        await _all(stack, f(tenant=tenant, start_revision=revs[2], end_revision=revs[4]), size=1)
        == revs[2:5]
    )
    page = await _stub(stack).ListAudit(
        audit_query_pb2.ListAuditRequest(filter=f(tenant=tenant, kind="config"))
    )
    times = [e.record.time for e in page.entries]
    window = f(tenant=tenant, start_time=times[1], end_time=times[3])
    assert await _all(stack, window) == revs[1:3]
    first = page.entries[0]
    assert first.record.actor == "key:alice" and first.record.key.key == "db.pool"
    assert first.record.operation == config_pb2.OPERATION_PUT


async def test_scan_budget_pages_through_non_matching_records(
    stack: Stack, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    revs = await _history(stack, tenant)
    monkeypatch.setattr(scan, "SCAN_BUDGET", 2)
    monkeypatch.setattr(scan, "RANGE_PAGE", 2)
    # Only the last record matches: early pages are empty but carry a token.
    flt = audit_query_pb2.AuditFilter(tenant=tenant, start_revision=revs[-1])
    first = await _stub(stack).ListAudit(audit_query_pb2.ListAuditRequest(filter=flt))
    assert not first.entries and first.next_page_token
    assert await _all(stack, flt, size=5) == [revs[-1]]


@pytest.mark.parametrize(
    ("flt", "field"),
    [
        (audit_query_pb2.AuditFilter(tenant="Bad_Tenant"), "filter.tenant"),
        (audit_query_pb2.AuditFilter(tenant="x", key_prefix="a/b"), "filter.key_prefix"),
        (audit_query_pb2.AuditFilter(tenant="x", start_revision=-1), "filter.start_revision"),
        (
            audit_query_pb2.AuditFilter(tenant="x", start_revision=5, end_revision=2),
            "filter.end_revision",
        ),
        (
            audit_query_pb2.AuditFilter(
                tenant="x",
                start_time=timestamp_pb2.Timestamp(seconds=9),
                end_time=timestamp_pb2.Timestamp(seconds=3),
            ),
            "filter.end_time",
        ),
        (audit_query_pb2.AuditFilter(tenant="x", actor="a" * 300), "filter.actor"),
        (audit_query_pb2.AuditFilter(tenant="x", kind="Config/../x"), "filter.kind"),
    ],
)
async def test_list_audit_rejects_bad_filters(
    stack: Stack, flt: audit_query_pb2.AuditFilter, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _stub(stack).ListAudit(audit_query_pb2.ListAuditRequest(filter=flt))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (info.value.details() or "")


async def test_list_audit_errors(stack: Stack, tenant: str) -> None:
    stub = _stub(stack)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ListAudit(
            audit_query_pb2.ListAuditRequest(
                filter=audit_query_pb2.AuditFilter(tenant="no-such-tenant")
            )
        )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ListAudit(
            audit_query_pb2.ListAuditRequest(
                filter=audit_query_pb2.AuditFilter(tenant=tenant), page_size=0
            )
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    foreign = encode("audit", ("other",), "x")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ListAudit(
            audit_query_pb2.ListAuditRequest(
                filter=audit_query_pb2.AuditFilter(tenant=tenant), page_token=foreign
            )
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in stub.ExportAudit(
            audit_query_pb2.ExportAuditRequest(filter=audit_query_pb2.AuditFilter(tenant=tenant))
        ):
            pass
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "format" in (info.value.details() or "")
    # The installation-wide trail is readable (and empty here).
    page = await stub.ListAudit(
        audit_query_pb2.ListAuditRequest(filter=audit_query_pb2.AuditFilter())
    )
    assert page.revision > 0


async def _export(stack: Stack, tenant: str, fmt: int, **filters: object) -> str:
    chunks = [
        chunk.data
        async for chunk in _stub(stack).ExportAudit(
            audit_query_pb2.ExportAuditRequest(
                filter=audit_query_pb2.AuditFilter(tenant=tenant, **filters),  # type: ignore[arg-type]
                format=fmt,
            )
        )
    ]
    return b"".join(chunks).decode()


async def test_export_jsonl_and_csv(stack: Stack, tenant: str) -> None:
    revs = await _history(stack, tenant)
    lines = (
        await _export(stack, tenant, audit_query_pb2.EXPORT_FORMAT_JSONL, kind="config")
    ).splitlines()
    rows = [json.loads(line) for line in lines]
    assert [int(r["revision"]) for r in rows] == revs
    assert rows[0]["record"]["actor"] == "key:alice"
    assert rows[0]["record"]["key"]["key"] == "db.pool"

    text = await _export(stack, tenant, audit_query_pb2.EXPORT_FORMAT_CSV, actor="key:bob")
    table = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["revision"]) for r in table] == [revs[i] for i in (1, 3, 5)]
    assert table[0]["operation"] == "OPERATION_PUT" and table[0]["tenant"] == tenant
    assert table[1]["key"] == "cache.ttl" and table[0]["kind"] == "config"


async def _cli(
    capsys: pytest.CaptureFixture[str], stack: Stack, *argv: str
) -> tuple[int, str, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(main, [*argv, "--server", stack.address])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.usefixtures("admin_api_key")
async def test_audit_commands(
    stack: Stack, tenant: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    revs = await _history(stack, tenant)
    code, out, _ = await _cli(
        capsys,
        stack,
        "audit",
        "ls",
        f"{tenant}/prod",
        "--by",
        "key:bob",
        "--all",
        "--page-size",
        "1",
    )
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()[1:]] == [str(revs[i]) for i in (1, 3, 5)]
    code, out, _ = await _cli(
        capsys,
        stack,
        "audit",
        "ls",
        tenant,
        "--json",
        "--prefix",
        "db.host",
        "--since",
        "2000-01-01T00:00:00",
        "--from-revision",
        str(revs[0]),
    )
    assert code == 0
    assert [json.loads(line)["revision"] for line in out.splitlines()] == [revs[2], revs[6]]
    code, out, _ = await _cli(
        capsys, stack, "audit", "export", tenant, "--format", "csv", "--kind", "config"
    )
    assert code == 0 and out.count("\n") == 1 + len(revs)
    target = tmp_path / "audit.jsonl"
    code, _, _ = await _cli(capsys, stack, "audit", "export", tenant, "-o", str(target))
    # Everything: the changes and the creation of the tenant.
    assert code == 0 and len(target.read_text(encoding="utf-8").splitlines()) == len(revs) + 1
    code, out, _ = await _cli(capsys, stack, "audit", "ls", "--system")
    assert code == 0
    for argv, message in [
        (("audit", "ls"), "scope"),
        (("audit", "ls", tenant, "--system"), "not both"),
        (("audit", "ls", tenant, "--since", "yesterday"), "ISO 8601"),
        (("audit", "ls", tenant, "--prefix", "a/b"), "--prefix"),
        (("audit", "ls", tenant, "--to-revision", "-1"), "--to-revision"),
    ]:
        code, _, err = await _cli(capsys, stack, *argv)
        assert code == 2 and message in err
    code, out, _ = await _cli(capsys, stack, "events", "status")
    assert code == 0 and "publisher:" in out
    code, out, _ = await _cli(capsys, stack, "events", "status", "--json")
    assert code == 0 and "cursor_revision" in json.loads(out)
