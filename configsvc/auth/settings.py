"""Authentication and TLS settings: one frozen record, part of ``ServerConfig``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

#: Every call needs a credential (the default of ``configsvc serve`` and ``dev``).
AUTH_REQUIRED = "required"
#: No authentication at all: only for benchmarks and trusted sidecars; logged loudly.
AUTH_OFF = "off"


@dataclass(frozen=True)
class JwtSettings:
    """JWT bearer tokens: accepted only when ``issuer`` and a JWKS source are set."""

    issuer: str = ""
    """Required ``iss`` claim."""
    audience: str = ""
    """Required ``aud`` claim."""
    jwks_file: Path | None = None
    """JWKS document on disk (re-read when it changes)."""
    jwks_url: str = ""
    """JWKS URL (fetched and cached; refreshed for unknown key ids)."""
    subject_claim: str = "sub"
    """Claim that names the identity: the caller is ``jwt:<claim value>``."""
    leeway: float = 30.0
    """Clock skew allowed on ``exp`` and ``nbf`` (seconds)."""

    @property
    def enabled(self) -> bool:
        return bool(self.issuer and (self.jwks_file or self.jwks_url))


@dataclass(frozen=True)
class ServerTLS:
    """TLS on the gRPC port; the files are re-read when they change (no restart)."""

    cert_file: Path
    """Server certificate chain (PEM)."""
    key_file: Path
    """Private key of ``cert_file`` (PEM)."""
    client_ca_file: Path | None = None
    """CA bundle for client certificates: when set, every client must present one
    (mTLS) and its common name becomes the identity ``cert:<CN>`` unless the call
    also carries a bearer token."""


@dataclass(frozen=True)
class AuthSettings:
    """Who may call, how often, and how much a tenant may store."""

    mode: str = AUTH_REQUIRED
    """``required`` or ``off``."""
    bootstrap_admin_key: str = ""
    """An API key (``cs_<id>_<secret>``) created with the admin role on ``*`` when the
    installation has never been bootstrapped; ignored afterwards (revocable like any key)."""
    jwt: JwtSettings = field(default_factory=JwtSettings)
    """JWT bearer token verification."""
    rate_per_identity: float = 0.0
    """Sustained calls per second per identity (token bucket); 0 disables."""
    burst_per_identity: int = 0
    """Bucket size: calls an identity may make at once (defaults to 2 x rate)."""
    max_streams_per_identity: int = 0
    """Concurrent streams per identity and process; 0 disables."""
    max_keys_per_tenant: int = 100_000
    """Default quota: config entries per tenant (per-tenant overrides: SetTenantQuota)."""
    max_value_bytes_per_tenant: int = 512 * 1024
    """Default quota: largest value a Put may write."""
