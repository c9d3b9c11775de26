"""The ``configsvc`` client commands against the in-process server and real etcd.

The server runs in the test's event loop, so every CLI call (synchronous gRPC)
runs in a worker thread; ``capsys`` still sees its output because it replaces
``sys.stdout``/``sys.stderr`` process-wide.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from configsvc.cli.main import main
from configsvc.devstack.ports import free_port
from configsvc.v1 import config_pb2
from tests.helpers import ADMIN_KEY, PrivateStack, Stack, ckey

BIG = 9007199254740993  # 2^53 + 1: a float-based JSON parser would change it
_names = itertools.count(1)


Cli = Callable[..., Awaitable["Result"]]


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> dict[str, Any]:
        data = json.loads(self.out)
        assert isinstance(data, dict)
        return data

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.splitlines()]


async def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Result:
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(argv))
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


@pytest.fixture(autouse=True)
def _api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command authenticates with the test servers' bootstrap admin key."""
    monkeypatch.setenv("CONFIGSVC_API_KEY", ADMIN_KEY)


@pytest.fixture
def cli(stack: Stack, capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run a client command against the test server as actor ``tester``."""

    async def call(*argv: str) -> Result:
        return await run(capsys, *argv, "--server", stack.address, "--actor", "tester")

    return call


async def test_put_then_get_round_trips_the_text_exactly(cli: Cli, tenant: str) -> None:
    path = f"{tenant}/prod/api/db.pool"
    value = f'{{"max": 10,  "id": {BIG}, "ratio": 1.10}}'
    put = await cli("put", path, value, "--reason", "initial")
    assert put.code == 0, put.err
    assert put.out.startswith(f"put {path} version 1 at revision ")

    got = await cli("get", path)
    assert got.code == 0, got.err
    assert got.out == value + "\n"
    assert json.loads(got.out)["id"] == BIG


async def test_put_reads_file_and_stdin(
    cli: Cli, tenant: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "value.json"
    source.write_text(f'{{"from": "file", "n": {BIG}}}\n', encoding="utf-8")
    put = await cli("put", f"{tenant}/prod/api/from-file", "--file", str(source))
    assert put.code == 0, put.err
    got = await cli("get", f"{tenant}/prod/api/from-file")
    assert got.out == source.read_text(encoding="utf-8")  # byte for byte, newline included

    monkeypatch.setattr("sys.stdin", io.StringIO(f"[{BIG}, 2]"))
    put = await cli("put", f"{tenant}/prod/api/from-stdin", "-")
    assert put.code == 0, put.err
    got = await cli("get", f"{tenant}/prod/api/from-stdin", "--consistent")
    assert got.out == f"[{BIG}, 2]\n"
    assert json.loads(got.out) == [BIG, 2]


async def test_json_outputs_carry_entry_and_revision(cli: Cli, tenant: str) -> None:
    path = f"{tenant}/staging/web/feature.flag"
    put = (await cli("put", path, f'{{"id": {BIG}}}', "--reason", "why", "--json")).json()
    entry = put["entry"]
    assert isinstance(entry, dict)
    assert entry["key"] == {
        "tenant": tenant,
        "environment": "staging",
        "service": "web",
        "key": "feature.flag",
    }
    assert entry["version"] == 1
    assert entry["updated_by"] == "key:bootstrap-admin"  # --actor is advisory only
    assert entry["reason"] == "why"
    assert put["revision"] == entry["mod_revision"]

    got = await cli("get", path, "--json")
    assert got.code == 0, got.err
    data = got.json()
    assert data["revision"] >= put["revision"]
    assert data["stale"] is False
    got_entry = data["entry"]
    assert isinstance(got_entry, dict)
    assert got_entry["value"] == f'{{"id": {BIG}}}'
    assert json.loads(got_entry["value"])["id"] == BIG
    assert len(got_entry["value_digest"]) == 64
    assert "update_time" in got_entry


async def test_ls_all_pages_return_every_key_once(cli: Cli, stack: Stack, tenant: str) -> None:
    keys = {f"k.{i:02d}" for i in range(25)}
    await asyncio.gather(
        *(
            stack.config.Put(config_pb2.PutRequest(key=ckey(tenant, k), value=str(i)))
            for i, k in enumerate(sorted(keys))
        )
    )
    await stack.config.Put(
        config_pb2.PutRequest(key=ckey(tenant, "k.other", service="web"), value="0")
    )

    listed = await cli("ls", f"{tenant}/prod/api", "--page-size", "10", "--all", "--json")
    assert listed.code == 0, listed.err
    names = [line["key"]["key"] for line in listed.json_lines()]
    assert sorted(names) == sorted(keys)
    assert len(names) == len(set(names)) == 25

    first = await cli("ls", f"{tenant}/prod/api", "--page-size", "10")
    assert first.code == 0, first.err
    lines = first.out.splitlines()
    assert lines[0].split() == ["KEY", "VERSION", "REVISION"]
    assert len(lines) == 11
    assert lines[1].split()[:2] == [f"{tenant}/prod/api/k.00", "1"]
    assert "--all" in first.err

    token = first.err.split("--page-token ")[1].strip()
    rest = await cli(
        "ls", f"{tenant}/prod/api", "--page-size", "10", "--page-token", token, "--all", "--json"
    )
    assert len(rest.json_lines()) == 15

    everything = await cli("ls", tenant, "--prefix", "k.o", "--json")
    assert [e["key"]["service"] for e in everything.json_lines()] == ["web"]


async def test_rm_then_get_is_not_found(cli: Cli, tenant: str) -> None:
    path = f"{tenant}/prod/api/gone"
    assert (await cli("put", path, "true")).code == 0
    removed = await cli("rm", path, "--reason", "cleanup")
    assert removed.code == 0, removed.err
    assert removed.out.startswith(f"deleted {path} (recorded as version 2) at revision ")

    got = await cli("get", path)
    assert got.code == 1
    assert got.out == ""
    assert got.err.startswith("configsvc: NOT_FOUND: ")
    assert f"  config entry: {path}" in got.err

    again = await cli("rm", path)
    assert again.code == 1
    assert "NOT_FOUND" in again.err


async def test_history_is_newest_first_and_rollback_restores(cli: Cli, tenant: str) -> None:
    path = f"{tenant}/prod/api/timeout"
    for value in ("1", "2", "3"):
        assert (await cli("put", path, value, "--reason", f"set {value}")).code == 0

    history = await cli("history", path, "--json")
    assert history.code == 0, history.err
    records = history.json_lines()
    assert [r["version"] for r in records] == [3, 2, 1]
    assert [r["value"] for r in records] == ["3", "2", "1"]
    assert {r["operation"] for r in records} == {"OPERATION_PUT"}

    rolled = await cli("rollback", path, "--to-version", "1", "--reason", "undo")
    assert rolled.code == 0, rolled.err
    assert rolled.out.startswith(f"rolled back {path} to version 1: now version 4 at revision ")
    assert (await cli("get", path)).out == "1\n"

    text = await cli("history", path, "--page-size", "2", "--all")
    rows = [line.split() for line in text.out.splitlines()]
    assert rows[0][:3] == ["VERSION", "OPERATION", "REVISION"]
    assert [row[0] for row in rows[1:]] == ["4", "3", "2", "1"]
    assert rows[1][1] == "ROLLBACK(to"
    assert rows[1][5:] == ["key:bootstrap-admin", "1", "undo"]

    paged = await cli("history", path, "--page-size", "2", "--json")
    assert [r["version"] for r in paged.json_lines()] == [4, 3]
    assert "--all" in paged.err


async def test_expected_revision_conflict_prints_aborted_and_current_revision(
    cli: Cli, tenant: str
) -> None:
    path = f"{tenant}/prod/api/cas"
    first = (await cli("put", path, '"a"', "--expected-revision", "0", "--json")).json()
    current = first["revision"]
    assert isinstance(current, int)

    stale = await cli("put", path, '"b"', "--expected-revision", str(current - 1))
    assert stale.code == 1
    assert stale.err.startswith("configsvc: ABORTED: ")
    assert f"  current_revision: {current}\n" in stale.err
    assert "  reason: REVISION_MISMATCH" in stale.err
    assert (await cli("get", path)).out == '"a"\n'

    for argv in (("rm", path), ("rollback", path, "--to-version", "1")):
        conflict = await cli(*argv, "--expected-revision", str(current + 1000))
        assert conflict.code == 1
        assert f"current_revision: {current}" in conflict.err

    ok = await cli("put", path, '"b"', "--expected-revision", str(current))
    assert ok.code == 0, ok.err


async def test_server_side_violations_are_listed_by_field(cli: Cli, tenant: str) -> None:
    bad = await cli("put", f"{tenant}/prod/api/x", "1", "--reason", "line\nbreak")
    assert bad.code == 1
    assert bad.err.startswith("configsvc: INVALID_ARGUMENT: ")
    assert "\n  reason: must not contain control characters" in bad.err

    missing = await cli("rollback", f"{tenant}/prod/api/never", "--to-version", "3")
    assert missing.code == 1
    assert "NOT_FOUND" in missing.err


@pytest.mark.parametrize(
    "argv",
    [
        ("get", "acme/prod/api"),
        ("get", "acme/prod/api/db/pool"),
        ("get", "Acme/prod/api/db.pool"),
        ("rm", "acme/prod/api/../x"),
        ("history", "acme//api/k"),
        ("put", "acme/prod/api/k", "{not json"),
        ("put", "acme/prod/api/k", "NaN"),
        ("put", "acme/prod/api/k", ""),
        ("put", "acme/prod/api/k"),
        ("put", "acme/prod/api/k", "1", "--file", "x.json"),
        ("put", "acme/prod/api/k", "--file", "/nonexistent/value.json"),
        ("ls", "acme/prod/api/extra"),
        ("ls", "acme", "--page-size", "0"),
        ("ls", "acme", "--prefix", "a..b"),
        ("rollback", "acme/prod/api/k", "--to-version", "0"),
        ("tenant", "create", "Not_Valid"),
        ("get", "acme/prod/api/k", "--timeout", "0"),
        ("get", "acme/prod/api/k", "--actor", "tab\there"),
    ],
)
async def test_usage_errors_exit_2_without_calling_the_server(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    # Nothing listens at this address: reaching it would be exit 1 UNAVAILABLE.
    extra = () if "--timeout" in argv else ("--timeout", "2")
    result = await run(capsys, *argv, "--server", f"127.0.0.1:{free_port()}", *extra)
    assert result.code == 2, result.err
    assert result.out == ""
    assert result.err.startswith(f"configsvc {argv[0]}")
    assert "UNAVAILABLE" not in result.err


async def test_invalid_path_message_names_each_bad_part(capsys: pytest.CaptureFixture[str]) -> None:
    result = await run(capsys, "get", "Acme/prod/a_b/k..x")
    assert result.code == 2
    assert result.err.splitlines()[0] == "configsvc get: invalid key path 'Acme/prod/a_b/k..x':"
    assert [line.split(":")[0] for line in result.err.splitlines()[1:]] == [
        "  tenant",
        "  service",
        "  key",
    ]


async def test_invalid_json_message_explains(capsys: pytest.CaptureFixture[str]) -> None:
    result = await run(capsys, "put", "acme/prod/api/k", "{'single': 1}")
    assert result.code == 2
    assert "value: is not valid JSON" in result.err


async def test_tenant_create_ls_get(cli: Cli) -> None:
    name = f"cli-{os.getpid()}-{next(_names)}"
    created = await cli("tenant", "create", name, "--description", "made by the CLI test")
    assert created.code == 0, created.err
    assert created.out.startswith(f"created tenant {name} at revision ")

    listed = await cli("tenant", "ls", "--json")
    tenants = {t["name"]: t for t in listed.json_lines()}
    assert tenants[name]["description"] == "made by the CLI test"
    assert tenants[name]["created_by"] == "key:bootstrap-admin"
    table = await cli("tenant", "ls")
    assert table.out.splitlines()[0].split() == ["NAME", "CREATED", "BY", "DESCRIPTION"]
    assert any(line.startswith(name + " ") for line in table.out.splitlines())

    got = await cli("tenant", "get", name, "--json")
    tenant = got.json()["tenant"]
    assert isinstance(tenant, dict)
    assert tenant["name"] == name
    assert tenant["create_revision"] > 0
    text = await cli("tenant", "get", name)
    assert f"name: {name}\n" in text.out
    assert " by key:bootstrap-admin at revision " in text.out

    again = await cli("tenant", "create", name)
    assert again.code == 1
    assert again.err.startswith("configsvc: ALREADY_EXISTS: ")
    absent = await cli("tenant", "get", f"{name}-absent")
    assert absent.code == 1
    assert "NOT_FOUND" in absent.err


async def test_unknown_tenant_is_not_found(cli: Cli) -> None:
    result = await cli("put", f"nobody-{os.getpid()}/prod/api/k", "1")
    assert result.code == 1
    assert "NOT_FOUND" in result.err


async def test_server_down_exits_1_with_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    address = f"127.0.0.1:{free_port()}"
    result = await run(capsys, "get", "acme/prod/api/k", "--server", address, "--timeout", "2")
    assert result.code == 1
    assert result.err.startswith("configsvc: UNAVAILABLE: ")
    assert f"is the server running at {address}? (start one with: make run)" in result.err


async def test_server_and_api_key_come_from_the_environment(
    stack: Stack,
    tenant: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONFIGSVC_SERVER", stack.address)
    monkeypatch.setenv("CONFIGSVC_ACTOR", "from-env")
    put = await run(capsys, "put", f"{tenant}/all/all/shared", "{}", "--json")
    assert put.code == 0, put.err
    assert put.json()["entry"]["updated_by"] == "key:bootstrap-admin"
    monkeypatch.delenv("CONFIGSVC_API_KEY")
    denied = await run(capsys, "get", f"{tenant}/all/all/shared")
    assert denied.code == 1 and denied.err.startswith("configsvc: UNAUTHENTICATED: ")


async def test_etcd_down_says_the_server_is_up_but_etcd_is_not(
    private_stack: PrivateStack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = private_stack.stack
    server = ("--server", stack.address, "--timeout", "5")
    assert (await run(capsys, "tenant", "create", "acme", *server)).code == 0
    private_stack.etcd.stop()

    # A write always needs etcd, whether or not the mirror has noticed the outage yet.
    result = await run(capsys, "put", "acme/prod/api/k", "1", *server)
    assert result.code == 1
    assert result.err.startswith("configsvc: UNAVAILABLE: ")
    assert "  backend: etcd" in result.err
    assert f"the server at {stack.address} is up but cannot reach etcd" in result.err
    assert "is the server running" not in result.err
