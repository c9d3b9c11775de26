"""The hierarchy CLI commands against the in-process server and real etcd."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from configsvc.cli.main import main
from tests.helpers import Stack
from tests.integration.hier.support import Hier

pytestmark = pytest.mark.usefixtures("admin_api_key")


async def run(capsys: pytest.CaptureFixture[str], stack: Stack, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(main, [*argv, "--server", stack.address])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_diff_promote_env_schema_rule(
    hier: Hier, tenant: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = hier.stack
    await hier.put(tenant, "staging", "api", "db", {"host": "s", "port": 1, "new": True})
    await hier.put(tenant, "prod", "api", "db", {"host": "p", "port": 1, "old": 1})

    code, out, _ = await run(capsys, stack, "diff", f"{tenant}/staging/api", f"{tenant}/prod/api")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"--- {tenant}/staging/api (revision ")
    assert lines[2].startswith(
        f'~ /db/host: "s" -> "p"  (left service-env {tenant}/staging/api/db@'
    )
    assert f"; right service-env {tenant}/prod/api/db@" in lines[2]
    assert [line[0] for line in lines[2:]] == ["~", "-", "+"]
    assert "\033[" not in out  # not a terminal: no colour
    code, coloured, _ = await run(
        capsys,
        stack,
        "diff",
        f"{tenant}/staging/api",
        f"{tenant}/prod/api",
        "--raw",
        "--color",
        "always",
    )
    assert code == 0 and "\033[33m~ /db/host" in coloured and "\033[32m+ /db/old" in coloured
    code, as_json, _ = await run(
        capsys, stack, "diff", f"{tenant}/staging/api", f"{tenant}/prod/api", "--json"
    )
    assert [row["path"] for row in json.loads(as_json)["rows"]] == [
        "/db/host",
        "/db/new",
        "/db/old",
    ]
    code, _, err = await run(capsys, stack, "diff", f"{tenant}/staging", f"{tenant}/prod/api")
    assert code == 2 and "TENANT/ENV/SERVICE" in err

    code, out, _ = await run(capsys, stack, "env", "create", f"{tenant}/prod", "--protected")
    assert code == 0
    code, out, _ = await run(capsys, stack, "env", "ls", tenant)
    assert "prod" in out and "yes" in out and "(undeclared)" in out
    code, _, err = await run(capsys, stack, "promote", f"{tenant}/staging/api", "--to", "prod")
    assert code == 1 and "reason" in err
    code, out, _ = await run(
        capsys,
        stack,
        "promote",
        f"{tenant}/staging/api",
        "--to",
        "prod",
        "--dry-run",
        "--reason",
        "r",
    )
    assert code == 0 and out.startswith("would write 1 key(s)") and "~ /db/host" in out
    code, out, _ = await run(
        capsys, stack, "promote", f"{tenant}/staging/api", "--to", "prod", "--reason", "release"
    )
    assert code == 0 and out.startswith("wrote 1 key(s)")
    assert (await hier.resolve(tenant, "prod", "api"))["db"]["host"] == "s"

    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "object"}))
    code, out, _ = await run(
        capsys, stack, "schema", tenant, "db-shape", "--pattern", "db", "--file", str(schema)
    )
    assert code == 0 and "version 1" in out
    logic = tmp_path / "rule.json"
    logic.write_text(json.dumps({"!=": [{"cfg": "db/host"}, "forbidden"]}))
    code, out, _ = await run(
        capsys,
        stack,
        "rule",
        tenant,
        "no-forbidden",
        "--file",
        str(logic),
        "--message",
        "host is forbidden",
    )
    assert code == 0 and "version 1" in out
    code, _, err = await run(
        capsys,
        stack,
        "schema",
        tenant,
        "x",
        "--pattern",
        "db",
        "--file",
        str(tmp_path / "missing.json"),
    )
    assert code == 2 and "cannot read JSON" in err


async def test_ls_filters_and_put_labels(
    hier: Hier, tenant: str, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = hier.stack
    code, _, _ = await run(
        capsys, stack, "put", f"{tenant}/prod/api/db.pool", "1", "--label", "team=data"
    )
    assert code == 0
    await run(capsys, stack, "put", f"{tenant}/prod/api/http.timeout", "2")
    code, out, _ = await run(capsys, stack, "ls", tenant, "--label", "team=data")
    assert code == 0 and "db.pool" in out and "http.timeout" not in out
    code, out, _ = await run(
        capsys,
        stack,
        "ls",
        tenant,
        "--glob",
        "*.timeout",
        "--author",
        "key:bootstrap-admin",
        "--since",
        "2000-01-01T00:00:00Z",
    )
    assert code == 0 and "http.timeout" in out and "db.pool" not in out
    code, _, err = await run(capsys, stack, "ls", tenant, "--since", "yesterday")
    assert code == 2 and "RFC 3339" in err
    code, _, err = await run(capsys, stack, "put", f"{tenant}/prod/api/x", "1", "--label", "x")
    assert code == 2 and "NAME=VALUE" in err


async def test_template_and_extends(
    hier: Hier, tenant: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = hier.stack
    values = tmp_path / "web.json"
    values.write_text(json.dumps({"http": {"timeout_ms": 900}}))
    code, out, _ = await run(capsys, stack, "template", tenant, "web", "--file", str(values))
    assert code == 0 and out.startswith("template web@1")
    code, out, _ = await run(capsys, stack, "extends", f"{tenant}/api", "web@1")
    assert code == 0 and "applied: web@1" in out
    assert (await hier.resolve(tenant, "prod", "api")) == {"http": {"timeout_ms": 900}}
    code, _, err = await run(capsys, stack, "extends", f"{tenant}/api", "web@2")
    assert code == 1 and "template web@2 not found" in err
    values.write_text("[1]")
    code, _, err = await run(capsys, stack, "template", tenant, "web", "--file", str(values))
    assert code == 2 and "JSON object" in err
    code, out, _ = await run(capsys, stack, "extends", f"{tenant}/api")
    assert code == 0 and "extends nothing" in out
