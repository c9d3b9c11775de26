"""How CLI commands authenticate and reach the server: API key / JWT and TLS.

Kept apart from the commands so every command group (config, tenant, auth)
connects the same way. A credential on the command line is visible to other
users in ``ps``; prefer ``CONFIGSVC_API_KEY`` or ``--api-key-file``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import grpc

from configsvc.cli.output import status_details


class SetupError(Exception):
    """A credential or certificate file cannot be read."""


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise SetupError(f"cannot read {path}: {exc.strerror or exc}") from None


def add_options(group: Any) -> None:
    """The credential and TLS options of every client command (read by this module)."""
    group.add_argument(
        "--api-key",
        metavar="KEY",
        help="API key (cs_...) or JWT sent as a bearer token (env CONFIGSVC_API_KEY)",
    )
    group.add_argument(
        "--api-key-file",
        metavar="FILE",
        help="read the API key or JWT from FILE (env CONFIGSVC_API_KEY_FILE)",
    )
    group.add_argument(
        "--ca-file",
        metavar="PEM",
        help="connect with TLS, trusting this CA (env CONFIGSVC_CA_FILE)",
    )
    group.add_argument(
        "--cert-file", metavar="PEM", help="client certificate for mTLS (env CONFIGSVC_CERT_FILE)"
    )
    group.add_argument(
        "--key-file", metavar="PEM", help="private key of --cert-file (env CONFIGSVC_KEY_FILE)"
    )


def _setting(args: argparse.Namespace, name: str) -> str:
    value: str = getattr(args, name, None) or os.environ.get(f"CONFIGSVC_{name.upper()}", "")
    return value


def credential_metadata(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    """Flags before environment variables; a key before a key file."""
    token: str = getattr(args, "api_key", None) or ""
    path: str = getattr(args, "api_key_file", None) or ""
    if not (token or path):
        token = os.environ.get("CONFIGSVC_API_KEY", "")
        path = os.environ.get("CONFIGSVC_API_KEY_FILE", "")
    if not token and path:
        token = _read(path).decode().strip()
    return (("authorization", f"Bearer {token}"),) if token else ()


def open_channel(server: str, args: argparse.Namespace) -> grpc.Channel:
    """Plaintext unless a CA or client certificate is given (flag, then environment)."""
    ca, cert, key = (_setting(args, n) for n in ("ca_file", "cert_file", "key_file"))
    if not (ca or cert):
        return grpc.insecure_channel(server)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read(ca) if ca else None,
        private_key=_read(key) if key else None,
        certificate_chain=_read(cert) if cert else None,
    )
    return grpc.secure_channel(server, credentials)


def tls_hint(err: Any, args: argparse.Namespace) -> list[str]:
    """What to try when a TLS call without a client certificate never reached the server.

    A server started with ``--tls-client-ca-file`` refuses the TLS handshake of a client
    that has no certificate (grpcio can only require client certificates or not ask for
    them), so gRPC reports nothing better than UNAVAILABLE "Socket closed".
    """
    if err.code() != grpc.StatusCode.UNAVAILABLE or _setting(args, "cert_file"):
        return []
    if not _setting(args, "ca_file") or status_details(err):
        return []  # no TLS at all, or the server itself answered (a backend is down)
    return [
        "  if the server requires client certificates (mTLS: serve --tls-client-ca-file), "
        "pass --cert-file and --key-file (env CONFIGSVC_CERT_FILE, CONFIGSVC_KEY_FILE) "
        "with a certificate signed by its client CA"
    ]
