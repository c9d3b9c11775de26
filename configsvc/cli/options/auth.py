"""Server flags for authentication, limits and TLS (``serve`` and ``dev``).

Each flag also reads ``CONFIGSVC_<NAME>``. The bootstrap key is read from an
environment variable or a file, never a flag value, so it does not show in
``ps``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from configsvc.auth.apikeys import key_id_of
from configsvc.auth.settings import AUTH_OFF, AUTH_REQUIRED, AuthSettings, JwtSettings, ServerTLS
from configsvc.cli.options.environ import env, env_number


def add_auth_options(parser: argparse.ArgumentParser) -> None:
    defaults = AuthSettings()
    group = parser.add_argument_group("authentication, limits and TLS")
    group.add_argument(
        "--auth",
        choices=(AUTH_REQUIRED, AUTH_OFF),
        default=env("AUTH", AUTH_REQUIRED),
        help="'off' serves everyone as admin: benchmarks only "
        "(env CONFIGSVC_AUTH; default %(default)s)",
    )
    group.add_argument(
        "--bootstrap-admin-key-file",
        default=env("BOOTSTRAP_ADMIN_KEY_FILE", ""),
        metavar="FILE",
        help="API key (from 'configsvc auth new-key') installed as admin when the "
        "installation is new (env CONFIGSVC_BOOTSTRAP_ADMIN_KEY holds the key "
        "itself, CONFIGSVC_BOOTSTRAP_ADMIN_KEY_FILE a file)",
    )
    group.add_argument(
        "--jwt-issuer",
        default=env("JWT_ISSUER", ""),
        help="accept JWT bearer tokens from this issuer (env CONFIGSVC_JWT_ISSUER)",
    )
    group.add_argument(
        "--jwt-audience",
        default=env("JWT_AUDIENCE", ""),
        help="required JWT audience (env CONFIGSVC_JWT_AUDIENCE)",
    )
    group.add_argument(
        "--jwt-jwks-file",
        default=env("JWT_JWKS_FILE", ""),
        help="JWKS file of the issuer's keys (env CONFIGSVC_JWT_JWKS_FILE)",
    )
    group.add_argument(
        "--jwt-jwks-url",
        default=env("JWT_JWKS_URL", ""),
        help="JWKS URL of the issuer's keys (env CONFIGSVC_JWT_JWKS_URL)",
    )
    group.add_argument(
        "--rate-per-identity",
        type=float,
        default=env_number("RATE_PER_IDENTITY", defaults.rate_per_identity),
        help="calls per second per identity and process, 0 = unlimited "
        "(env CONFIGSVC_RATE_PER_IDENTITY; default %(default)s)",
    )
    group.add_argument(
        "--burst-per-identity",
        type=int,
        default=env_number("BURST_PER_IDENTITY", defaults.burst_per_identity),
        help="token bucket size, 0 = twice the rate (env CONFIGSVC_BURST_PER_IDENTITY)",
    )
    group.add_argument(
        "--max-streams-per-identity",
        type=int,
        default=env_number("MAX_STREAMS_PER_IDENTITY", defaults.max_streams_per_identity),
        help="concurrent streams per identity and process, 0 = unlimited "
        "(env CONFIGSVC_MAX_STREAMS_PER_IDENTITY)",
    )
    group.add_argument(
        "--max-keys-per-tenant",
        type=int,
        default=env_number("MAX_KEYS_PER_TENANT", defaults.max_keys_per_tenant),
        help="default tenant quota of entries (env CONFIGSVC_MAX_KEYS_PER_TENANT; "
        "default %(default)s)",
    )
    group.add_argument(
        "--tls-cert-file",
        default=env("TLS_CERT_FILE", ""),
        help="serve TLS with this certificate chain; reloaded when it changes "
        "(env CONFIGSVC_TLS_CERT_FILE)",
    )
    group.add_argument(
        "--tls-key-file",
        default=env("TLS_KEY_FILE", ""),
        help="private key of --tls-cert-file (env CONFIGSVC_TLS_KEY_FILE)",
    )
    group.add_argument(
        "--tls-client-ca-file",
        default=env("TLS_CLIENT_CA_FILE", ""),
        help="require client certificates signed by this CA (mTLS; identity "
        "cert:<CN>) (env CONFIGSVC_TLS_CLIENT_CA_FILE)",
    )


def _bootstrap_key(args: argparse.Namespace) -> str:
    key = os.environ.get("CONFIGSVC_BOOTSTRAP_ADMIN_KEY", "")
    if not key and args.bootstrap_admin_key_file:
        try:
            key = Path(args.bootstrap_admin_key_file).read_text().strip()
        except OSError as exc:
            raise ValueError(f"--bootstrap-admin-key-file: {exc.strerror or exc}") from None
    if key and key_id_of(key) is None:
        raise ValueError(
            "the bootstrap admin key is not an API key; make one with 'configsvc auth new-key'"
        )
    return key


def settings_from_args(args: argparse.Namespace) -> tuple[AuthSettings, ServerTLS | None]:
    """The auth settings and server TLS the flags describe; ValueError when inconsistent."""
    tls = None
    if args.tls_cert_file or args.tls_key_file:
        if not (args.tls_cert_file and args.tls_key_file):
            raise ValueError("TLS needs both --tls-cert-file and --tls-key-file")
        tls = ServerTLS(
            Path(args.tls_cert_file),
            Path(args.tls_key_file),
            Path(args.tls_client_ca_file) if args.tls_client_ca_file else None,
        )
    elif args.tls_client_ca_file:
        raise ValueError("--tls-client-ca-file needs --tls-cert-file and --tls-key-file")
    jwt = JwtSettings(
        issuer=args.jwt_issuer,
        audience=args.jwt_audience,
        jwks_file=Path(args.jwt_jwks_file) if args.jwt_jwks_file else None,
        jwks_url=args.jwt_jwks_url,
    )
    if (args.jwt_jwks_file or args.jwt_jwks_url) and not args.jwt_issuer:
        raise ValueError("a JWKS needs --jwt-issuer")
    settings = AuthSettings(
        mode=args.auth,
        bootstrap_admin_key=_bootstrap_key(args),
        jwt=jwt,
        rate_per_identity=args.rate_per_identity,
        burst_per_identity=args.burst_per_identity,
        max_streams_per_identity=args.max_streams_per_identity,
        max_keys_per_tenant=args.max_keys_per_tenant,
    )
    return settings, tls
