"""Settings of the Vault connection and of secret resolution (frozen, one docstring each)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class VaultAuth:
    """How configsvc logs in to Vault: exactly one method is used, in this order.

    AppRole when ``approle_role_id`` is set, Kubernetes when
    ``kubernetes_role`` is set, else the static ``token``. AppRole and
    Kubernetes logins are repeated when Vault answers 401/403 (token expired,
    Vault restarted), so a long-running server never needs a restart for that.
    """

    token: str = field(default="", repr=False)
    """A Vault token (``--vault-token-file`` / ``VAULT_TOKEN``); not logged, never in argv."""
    approle_role_id: str = ""
    """AppRole role_id (``--vault-approle-role-id``)."""
    approle_secret_id: str = field(default="", repr=False)
    """AppRole secret_id (read from ``--vault-approle-secret-id-file``)."""
    approle_mount: str = "approle"
    """Mount point of the AppRole auth method."""
    kubernetes_role: str = ""
    """Vault role for Kubernetes auth (``--vault-kubernetes-role``)."""
    kubernetes_jwt_file: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
    """Projected service-account token sent to Vault's Kubernetes auth method."""
    kubernetes_mount: str = "kubernetes"
    """Mount point of the Kubernetes auth method."""

    @property
    def method(self) -> str:
        if self.approle_role_id:
            return "approle"
        if self.kubernetes_role:
            return "kubernetes"
        return "token"


@dataclass(frozen=True)
class VaultSettings:
    """Where Vault is and how to talk to it."""

    address: str
    """Base URL, ``https://vault.example:8200`` (``--vault-addr``)."""
    auth: VaultAuth = field(default_factory=VaultAuth)
    """Login method and credentials."""
    ca_file: Path | None = None
    """CA bundle that signs Vault's TLS certificate; None uses the system store."""
    client_cert_file: Path | None = None
    """Client certificate for mutual TLS to Vault."""
    client_key_file: Path | None = None
    """Key of ``client_cert_file``."""
    tls_skip_verify: bool = False
    """Do not verify Vault's certificate (development only; logged as a warning)."""
    namespace: str = ""
    """Vault Enterprise namespace; empty for none."""
    timeout: float = 5.0
    """Longest single Vault HTTP call (seconds)."""
    transit_mount: str = "transit"
    """Mount point of the transit engine for sensitive inline values."""
    transit_key: str = "configsvc"
    """Transit key that encrypts sensitive inline values (created on first use)."""


@dataclass(frozen=True)
class SecretSettings:
    """Secret resolution: who may read plaintext, caching and rotation polling."""

    vault: VaultSettings | None = None
    """None: no Vault; values holding references are rejected on write."""
    readers: tuple[str, ...] = ()
    """Who may read plaintext until RBAC lands: ``IDENTITY`` (any tenant) or
    ``IDENTITY@TENANT``; ``*`` as IDENTITY matches every caller. The identity
    is the caller's actor (``x-configsvc-actor``)."""
    cache_ttl: float = 60.0
    """Seconds a fetched secret is served without asking Vault (also while Vault is down)."""
    poll_interval: float = 30.0
    """Seconds between checks of the newest version of secrets that watch streams resolve."""
    audit_batch: int = 100
    """Most access audit records per etcd transaction (etcd allows 128 operations)."""
