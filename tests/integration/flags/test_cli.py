"""``configsvc flags ...`` against the in-process server (CLI calls run in a worker thread)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from configsvc.cli.main import main
from configsvc.flags._gen.flagd.evaluation.v1 import evaluation_pb2 as ev
from configsvc.flags._gen.flagd.evaluation.v1 import evaluation_pb2_grpc
from tests.helpers import Stack

FLAGS = {
    "flags": {
        "checkout": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
        },
    }
}


async def _cli(
    capsys: pytest.CaptureFixture[str], stack: Stack, *argv: str
) -> tuple[int, str, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["flags", *argv, "--server", stack.address])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.usefixtures("admin_api_key")
async def test_flags_commands_round_trip(
    stack: Stack, tenant: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "flags.json"
    path.write_text(json.dumps(FLAGS))
    ref = f"{tenant}/prod"
    code, out, err = await _cli(
        capsys, stack, "put", ref, "--file", str(path), "--reason", "launch"
    )
    assert code == 0, err
    assert out.startswith(f"stored {ref}: version 1 at revision ")

    code, out, _ = await _cli(capsys, stack, "get", ref)
    assert code == 0 and json.loads(out) == FLAGS

    code, out, _ = await _cli(capsys, stack, "enable", ref, "checkout", "--json")
    assert code == 0 and json.loads(out)["flag_set"]["version"] == 2
    code, out, _ = await _cli(capsys, stack, "disable", ref, "checkout")
    assert code == 0 and out.startswith(f"disabled {ref}: version 3")
    code, out, _ = await _cli(capsys, stack, "rollout", ref, "checkout", "on=10", "off=90")
    assert code == 0 and out.startswith(f"rolled out {ref}: version 4")
    code, out, _ = await _cli(capsys, stack, "get", ref)
    assert json.loads(out)["flags"]["checkout"]["targeting"] == {
        "fractional": [["on", 10], ["off", 90]]
    }

    code, out, _ = await _cli(capsys, stack, "history", ref)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["VERSION", "OPERATION", "REVISION"]
    assert [line.split()[0] for line in lines[1:]] == ["4", "3", "2", "1"]
    assert "launch" in lines[-1] and "key:bootstrap-admin" in lines[-1]
    code, out, _ = await _cli(capsys, stack, "history", ref, "--json", "--page-size", "1")
    assert code == 0 and json.loads(out)["version"] == 4

    code, out, _ = await _cli(capsys, stack, "rollback", ref, "--to-version", "1")
    assert code == 0 and out.startswith(f"rolled back {ref}: version 5")

    stub = evaluation_pb2_grpc.ServiceStub(stack.channel)
    for user in ("a", "b", "c"):
        request = ev.ResolveBooleanRequest(flag_key="checkout")
        request.context.update({"targetingKey": user})
        await stub.ResolveBoolean(request, metadata=(("flagd-selector", ref),))
    code, out, _ = await _cli(capsys, stack, "stats", ref)
    assert code == 0
    assert out.splitlines()[1].split() == ["checkout", "off", "STATIC", "3"]
    code, _, err = await _cli(capsys, stack, "stats", ref, "--flag", "nope", "--window", "60")
    assert code == 0 and "no evaluations in the last 60 s" in err

    code, out, _ = await _cli(capsys, stack, "delete", ref)
    assert code == 0 and out.startswith(f"deleted {ref} at revision ")


@pytest.mark.usefixtures("admin_api_key")
async def test_flags_errors(
    stack: Stack, tenant: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"flags": {"x": {"state": "MAYBE", "variants": {"a": 1}}}}))
    code, _, err = await _cli(capsys, stack, "put", f"{tenant}/prod", "--file", str(bad))
    assert code == 1
    assert "definition/flags/x/state" in err
    for argv in (
        ["get", "no-slash"],
        ["get", "Bad/prod"],
        ["rollout", f"{tenant}/prod", "f", "on=ten"],
        ["put", f"{tenant}/prod", "--file", str(tmp_path / "missing.json")],
    ):
        code, _, err = await _cli(capsys, stack, *argv)
        assert code == 2, (argv, err)
    code, _, err = await _cli(capsys, stack, "get", f"{tenant}/staging")
    assert code == 1 and "no flag set" in err
