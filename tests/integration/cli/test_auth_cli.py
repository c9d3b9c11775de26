"""``configsvc auth ...`` against the in-process server: keys, bindings, quotas, whoami."""

from __future__ import annotations

import asyncio
import json

import pytest

from configsvc.auth.apikeys import key_id_of
from configsvc.cli.main import main
from tests.helpers import ADMIN_KEY, Stack


async def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_auth_commands(
    stack: Stack, tenant: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONFIGSVC_API_KEY", ADMIN_KEY)
    server = ("--server", stack.address)
    code, out, err = await run(capsys, "auth", "whoami", *server)
    assert code == 0, err
    assert out.startswith("identity: key:bootstrap-admin (api-key)")

    name = f"cli-{tenant}"
    code, out, err = await run(capsys, "auth", "key-create", name, "--ttl", "30d", *server)
    assert code == 0, err
    secret = out.splitlines()[0]
    assert key_id_of(secret) is not None and f"identity key:{name}" in out
    code, out, _ = await run(capsys, "auth", "key-ls", *server)
    assert any(line.split()[1] == name for line in out.splitlines()[1:])
    code, out, _ = await run(capsys, "auth", "key-ls", "--json", *server)
    key_id = next(
        json.loads(line)["id"] for line in out.splitlines() if json.loads(line)["name"] == name
    )

    code, out, err = await run(
        capsys,
        "auth",
        "bind",
        f"key:{name}",
        "viewer",
        "--tenant",
        tenant,
        "--environment",
        "prod",
        *server,
    )
    assert code == 0, err
    binding_id = out.split()[1]
    code, out, _ = await run(capsys, "auth", "bindings", "--subject", f"key:{name}", *server)
    assert f"{binding_id} key:{name} viewer {tenant} prod" in " ".join(out.split())
    code, out, err = await run(
        capsys, "auth", "bind", "key:x", "overlord", "--tenant", "t", *server
    )
    assert code == 2 and "choose one of" in err

    # The new key reads in its scope and is refused elsewhere.
    code, out, err = await run(capsys, "ls", f"{tenant}/prod", "--api-key", secret, *server)
    assert code == 0, err
    code, out, err = await run(capsys, "ls", f"{tenant}/staging", "--api-key", secret, *server)
    assert code == 1 and err.startswith("configsvc: PERMISSION_DENIED")

    code, out, err = await run(capsys, "auth", "quota-set", tenant, "--max-keys", "5", *server)
    assert code == 0 and int(json.loads(out)["max_keys"]) == 5
    code, out, err = await run(capsys, "auth", "quota-get", tenant, *server)
    assert code == 0 and int(json.loads(out)["quota"]["max_keys"]) == 5

    assert (await run(capsys, "auth", "unbind", binding_id, *server))[0] == 0
    assert (await run(capsys, "auth", "key-revoke", key_id, *server))[0] == 0
    code, out, err = await run(capsys, "ls", f"{tenant}/prod", "--api-key", secret, *server)
    assert code == 1 and err.startswith("configsvc: UNAUTHENTICATED")
    code, out, err = await run(
        capsys, "get", f"{tenant}/prod/api/k", "--api-key-file", "/nonexistent/key", *server
    )
    assert code == 2 and "cannot read /nonexistent/key" in err

    code, out, _ = await run(capsys, "auth", "new-key")
    assert code == 0 and key_id_of(out.strip()) is not None
