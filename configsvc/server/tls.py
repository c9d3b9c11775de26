"""Server TLS whose certificate is re-read when its files change.

gRPC asks ``fetch`` for a new configuration at each TLS handshake; it
answers None (keep the current one) unless a file's modification time
changed. A half-rotated pair (new certificate, old key) is refused until the
key matches, so a rotation written in two steps never breaks handshakes.
"""

from __future__ import annotations

import logging

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from configsvc.auth.settings import ServerTLS

log = logging.getLogger(__name__)


def _public_bytes(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined,no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class ReloadingCredentials:
    """``grpc.dynamic_ssl_server_credentials`` fed from the files in ``ServerTLS``."""

    def __init__(self, tls: ServerTLS) -> None:
        self._tls = tls
        self._files = [p for p in (tls.cert_file, tls.key_file, tls.client_ca_file) if p]
        self._stamp = self._stat()
        self.reloads = 0
        self._initial = self._load()

    def _stat(self) -> tuple[int, ...]:
        return tuple(p.stat().st_mtime_ns for p in self._files)

    def _load(self) -> object:
        cert = self._tls.cert_file.read_bytes()
        key = self._tls.key_file.read_bytes()
        leaf = x509.load_pem_x509_certificate(cert)
        private = serialization.load_pem_private_key(key, password=None)
        if _public_bytes(leaf.public_key()) != _public_bytes(private.public_key()):
            raise ValueError(f"{self._tls.key_file} is not the key of {self._tls.cert_file}")
        ca = self._tls.client_ca_file.read_bytes() if self._tls.client_ca_file else None
        return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)

    def fetch(self) -> object | None:
        """Called by gRPC at each handshake: a new configuration, or None for no change."""
        try:
            stamp = self._stat()
            if stamp == self._stamp:
                return None
            config = self._load()
        except (OSError, ValueError) as exc:
            log.warning("TLS files changed but cannot be used yet: %s", exc)
            return None
        self._stamp = stamp
        self.reloads += 1
        log.info("TLS certificate reloaded", extra={"cert_file": str(self._tls.cert_file)})
        return config

    def credentials(self) -> grpc.ServerCredentials:
        # With a client CA the handshake requires a client certificate: grpcio maps
        # require_client_authentication=False to "do not request one" (never "request and
        # verify if presented"), which would hide every client certificate from the auth
        # layer. So a client without a certificate, or with one from another CA, fails the
        # handshake and sees UNAVAILABLE before any RPC; the CLI adds a hint (cli/connect.py).
        return grpc.dynamic_ssl_server_credentials(
            self._initial,
            self.fetch,
            require_client_authentication=self._tls.client_ca_file is not None,
        )
