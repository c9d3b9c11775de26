"""Vault authentication against a real OpenBao: AppRole (with re-login), token, Vault's
own PERMISSION_DENIED."""

from __future__ import annotations

import os

import hvac
import pytest

from configsvc.devstack.openbao import OpenBaoDevServer
from configsvc.errors import NotFoundError, PermissionDeniedError
from configsvc.secrets.refs import SecretRef
from configsvc.secrets.settings import VaultAuth, VaultSettings
from configsvc.secrets.vault import VaultClient

POLICY = """
path "secret/data/approle-ok/*" { capabilities = ["read"] }
path "secret/metadata/approle-ok/*" { capabilities = ["read"] }
"""


@pytest.fixture(scope="module")
def approle(bao: hvac.Client) -> tuple[str, str, str]:
    """(mount, role_id, secret_id) of an AppRole that may read secret/approle-ok/*."""
    mount = f"approle-{os.getpid()}"
    bao.sys.enable_auth_method("approle", path=mount)
    bao.sys.create_or_update_policy(name="configsvc-test-read", policy=POLICY)
    bao.auth.approle.create_or_update_approle(
        role_name="configsvc",
        token_policies=["configsvc-test-read"],
        token_ttl="10m",
        mount_point=mount,
    )
    role_id = bao.auth.approle.read_role_id(role_name="configsvc", mount_point=mount)["data"][
        "role_id"
    ]
    secret_id = bao.auth.approle.generate_secret_id(role_name="configsvc", mount_point=mount)[
        "data"
    ]["secret_id"]
    return mount, role_id, secret_id


async def test_approle_login_reads_and_logs_in_again_after_revocation(
    openbao: OpenBaoDevServer, bao: hvac.Client, approle: tuple[str, str, str]
) -> None:
    mount, role_id, secret_id = approle
    bao.secrets.kv.v2.create_or_update_secret(path="approle-ok/db", secret={"password": "a1"})
    bao.secrets.kv.v2.create_or_update_secret(path="approle-no/db", secret={"password": "a2"})
    client = VaultClient(
        VaultSettings(
            address=openbao.address,
            auth=VaultAuth(
                approle_role_id=role_id, approle_secret_id=secret_id, approle_mount=mount
            ),
        )
    )
    try:
        found = await client.check_field(SecretRef("secret", "approle-ok/db", "password"), 5)
        assert found.data["password"] == "a1" and "a1" not in repr(found)
        assert await client.current_version("secret", "approle-ok/db", 5) >= 1

        # Vault's own 403 is PERMISSION_DENIED naming the path and the login method.
        with pytest.raises(PermissionDeniedError, match=r"approle-no/db.*approle"):
            await client.read("secret", "approle-no/db", None, 5)

        # The token is revoked (expiry, Vault restart): the next call logs in again.
        bao.auth.token.revoke(client._client.token)
        assert (await client.read("secret", "approle-ok/db", None, 5)).data["password"] == "a1"
        with pytest.raises(NotFoundError, match="no field 'user'"):
            await client.check_field(SecretRef("secret", "approle-ok/db", "user"), 5)
    finally:
        client.close()


async def test_a_token_without_access_is_permission_denied(
    openbao: OpenBaoDevServer, bao: hvac.Client
) -> None:
    bao.sys.create_or_update_policy(
        name="configsvc-test-none", policy='path "secret/data/none" { capabilities = ["deny"] }'
    )
    token = bao.auth.token.create(policies=["configsvc-test-none"], ttl="10m")["auth"][
        "client_token"
    ]
    bao.secrets.kv.v2.create_or_update_secret(path="token-test/db", secret={"password": "t"})
    client = VaultClient(VaultSettings(address=openbao.address, auth=VaultAuth(token=token)))
    try:
        with pytest.raises(PermissionDeniedError, match="token login"):
            await client.read("secret", "token-test/db", None, 5)
    finally:
        client.close()
