"""Credentials for the client: an API key or JWT as a bearer token, and TLS.

``api_key`` (a ``ConfigClient`` setting) becomes ``authorization: Bearer
<key>`` on every call, the Watch stream included. ``tls_credentials`` reads
PEM files into channel credentials for ``credentials=``: the CA that signs
the server's certificate, and for mTLS the client's certificate and key.
"""

from __future__ import annotations

from pathlib import Path

import grpc

__all__ = ["bearer_metadata", "tls_credentials"]


def bearer_metadata(api_key: str) -> tuple[tuple[str, str], ...]:
    """The call metadata that authenticates with ``api_key`` (an API key or a JWT)."""
    token = api_key.strip()
    if not token or any(c.isspace() for c in token):
        raise ValueError("api_key must be a non-empty token without whitespace")
    return (("authorization", f"Bearer {token}"),)


def tls_credentials(
    *,
    ca_file: Path | str | None = None,
    cert_file: Path | str | None = None,
    key_file: Path | str | None = None,
) -> grpc.ChannelCredentials:
    """TLS channel credentials from PEM files (system roots when ``ca_file`` is None)."""
    if (cert_file is None) != (key_file is None):
        raise ValueError("a client certificate needs both cert_file and key_file")
    return grpc.ssl_channel_credentials(
        root_certificates=Path(ca_file).read_bytes() if ca_file else None,
        private_key=Path(key_file).read_bytes() if key_file else None,
        certificate_chain=Path(cert_file).read_bytes() if cert_file else None,
    )
