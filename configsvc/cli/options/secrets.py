"""Server flags for Vault and secret resolution (shared by ``serve`` and ``dev``).

Credentials never go on the command line (it is visible in ``ps``): the token
comes from ``--vault-token-file`` or the environment (``CONFIGSVC_VAULT_TOKEN``,
then ``VAULT_TOKEN``), the AppRole secret_id from a file.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from configsvc.cli.options.environ import comma_list, env, env_number
from configsvc.secrets.settings import SecretSettings, VaultAuth, VaultSettings


def add_secret_options(parser: argparse.ArgumentParser) -> None:
    defaults = SecretSettings()
    group = parser.add_argument_group("secrets (Vault / OpenBao)")
    group.add_argument(
        "--vault-addr",
        default=env("VAULT_ADDR", ""),
        help="Vault base URL; empty disables secrets (env CONFIGSVC_VAULT_ADDR)",
    )
    group.add_argument(
        "--vault-token-file",
        default=env("VAULT_TOKEN_FILE", ""),
        help="file holding a Vault token (env CONFIGSVC_VAULT_TOKEN_FILE; or the "
        "token itself in CONFIGSVC_VAULT_TOKEN / VAULT_TOKEN)",
    )
    group.add_argument(
        "--vault-approle-role-id",
        default=env("VAULT_APPROLE_ROLE_ID", ""),
        help="log in with AppRole (env CONFIGSVC_VAULT_APPROLE_ROLE_ID)",
    )
    group.add_argument(
        "--vault-approle-secret-id-file",
        default=env("VAULT_APPROLE_SECRET_ID_FILE", ""),
        help="file holding the AppRole secret_id (env CONFIGSVC_VAULT_APPROLE_SECRET_ID_FILE)",
    )
    group.add_argument(
        "--vault-approle-mount",
        default=env("VAULT_APPROLE_MOUNT", "approle"),
        help="AppRole auth mount (default %(default)s)",
    )
    group.add_argument(
        "--vault-kubernetes-role",
        default=env("VAULT_KUBERNETES_ROLE", ""),
        help="log in with Kubernetes auth as this Vault role (env CONFIGSVC_VAULT_KUBERNETES_ROLE)",
    )
    group.add_argument(
        "--vault-ca-file",
        default=env("VAULT_CA_FILE", ""),
        help="CA bundle for Vault's TLS certificate (env CONFIGSVC_VAULT_CA_FILE)",
    )
    group.add_argument(
        "--vault-client-cert-file",
        default=env("VAULT_CLIENT_CERT_FILE", ""),
        help="client certificate for mutual TLS to Vault",
    )
    group.add_argument(
        "--vault-client-key-file",
        default=env("VAULT_CLIENT_KEY_FILE", ""),
        help="key of --vault-client-cert-file",
    )
    group.add_argument(
        "--vault-tls-skip-verify",
        action="store_true",
        default=env("VAULT_TLS_SKIP_VERIFY", "") == "1",
        help="do not verify Vault's certificate (development only)",
    )
    group.add_argument(
        "--vault-transit-key",
        default=env("VAULT_TRANSIT_KEY", "configsvc"),
        help="transit key for sensitive fields (default %(default)s)",
    )
    group.add_argument(
        "--secret-readers",
        default=env("SECRET_READERS", ""),
        help="comma-separated identities allowed to read secret plaintext: "
        "IDENTITY or IDENTITY@TENANT, '*' for everyone "
        "(env CONFIGSVC_SECRET_READERS; default: nobody)",
    )
    group.add_argument(
        "--secret-cache-ttl",
        type=float,
        default=env_number("SECRET_CACHE_TTL", defaults.cache_ttl),
        help="seconds a fetched secret is served without Vault (default %(default)s)",
    )
    group.add_argument(
        "--secret-poll-interval",
        type=float,
        default=env_number("SECRET_POLL_INTERVAL", defaults.poll_interval),
        help="seconds between rotation checks of watched secrets (default %(default)s)",
    )


def _read(path: str, what: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise ValueError(f"cannot read {what} {path}: {exc.strerror}") from None


def secret_settings_from_args(args: argparse.Namespace) -> SecretSettings:
    """The settings the flags describe; ValueError for an inconsistent combination."""
    readers = comma_list(args.secret_readers)
    if args.secret_cache_ttl < 0 or args.secret_poll_interval <= 0:
        raise ValueError("--secret-cache-ttl must be >= 0 and --secret-poll-interval > 0")
    if not args.vault_addr:
        return SecretSettings(
            readers=readers,
            cache_ttl=args.secret_cache_ttl,
            poll_interval=args.secret_poll_interval,
        )
    token = (
        _read(args.vault_token_file, "--vault-token-file")
        if args.vault_token_file
        else os.environ.get("CONFIGSVC_VAULT_TOKEN", os.environ.get("VAULT_TOKEN", ""))
    )
    secret_id = ""
    if args.vault_approle_role_id:
        if not args.vault_approle_secret_id_file:
            raise ValueError("--vault-approle-role-id needs --vault-approle-secret-id-file")
        secret_id = _read(args.vault_approle_secret_id_file, "--vault-approle-secret-id-file")
    elif not token and not args.vault_kubernetes_role:
        raise ValueError(
            "--vault-addr needs a login: --vault-token-file (or VAULT_TOKEN), "
            "--vault-approle-role-id or --vault-kubernetes-role"
        )
    if bool(args.vault_client_cert_file) != bool(args.vault_client_key_file):
        raise ValueError(
            "mutual TLS to Vault needs both --vault-client-cert-file and --vault-client-key-file"
        )
    auth = VaultAuth(
        token=token,
        approle_role_id=args.vault_approle_role_id,
        approle_secret_id=secret_id,
        approle_mount=args.vault_approle_mount,
        kubernetes_role=args.vault_kubernetes_role,
    )
    vault = VaultSettings(
        address=args.vault_addr,
        auth=auth,
        ca_file=Path(args.vault_ca_file) if args.vault_ca_file else None,
        client_cert_file=Path(args.vault_client_cert_file) if args.vault_client_cert_file else None,
        client_key_file=Path(args.vault_client_key_file) if args.vault_client_key_file else None,
        tls_skip_verify=args.vault_tls_skip_verify,
        transit_key=args.vault_transit_key,
    )
    return SecretSettings(
        vault=vault,
        readers=readers,
        cache_ttl=args.secret_cache_ttl,
        poll_interval=args.secret_poll_interval,
    )
