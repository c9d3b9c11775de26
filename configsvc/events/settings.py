"""Publisher settings: one frozen record, part of ``ServerConfig``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from configsvc.model.backoff import Backoff, Jitter

DEFAULT_TOPIC = "persistent://public/default/configsvc-events"


@dataclass(frozen=True)
class PulsarTLS:
    """TLS (and TLS client authentication) to the Pulsar broker; use a ``pulsar+ssl://`` URL."""

    ca_file: str = ""
    """PEM bundle that signs the broker's certificate; empty: the system's trust store."""
    cert_file: str = ""
    """Client certificate (PEM) for Pulsar's TLS authentication; empty: no client certificate."""
    key_file: str = ""
    """Private key (PEM) of ``cert_file``."""
    validate_hostname: bool = True
    """Check that the broker's certificate names the host in the URL."""

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for ``pulsar.Client`` (authentication is built by the caller)."""
        options: dict[str, Any] = {
            "tls_validate_hostname": self.validate_hostname,
            "tls_allow_insecure_connection": False,
        }
        if self.ca_file:
            options["tls_trust_certs_file_path"] = self.ca_file
        return options


@dataclass(frozen=True)
class EventSettings:
    """How (and whether) this replica takes part in publishing change events."""

    pulsar_url: str = ""
    """``pulsar://host:port`` of the broker; empty turns the publisher off on this replica."""
    topic: str = DEFAULT_TOPIC
    """Topic the ``ConfigurationUpdatedEvent`` messages go to."""
    lease_ttl: int = 10
    """Seconds of the leader lease: a dead publisher is replaced within about this long."""
    max_in_flight: int = 256
    """Messages sent to Pulsar and not yet acknowledged, at most."""
    cursor_interval: float = 0.2
    """Seconds between cursor writes while events flow (acknowledged progress is coalesced)."""
    send_timeout: float = 5.0
    """Seconds Pulsar may take to acknowledge one message before the batch is retried."""
    backoff: tuple[float, float] = (0.2, 5.0)
    """Min and max delay (seconds) between attempts while Pulsar or etcd is down."""
    tls: PulsarTLS = field(default_factory=PulsarTLS)
    """TLS to the broker; applies to ``pulsar+ssl://`` URLs."""

    def __post_init__(self) -> None:
        if bool(self.tls.cert_file) != bool(self.tls.key_file):
            raise ValueError("Pulsar TLS needs both a client certificate and its key, or neither")
        if (self.tls.ca_file or self.tls.cert_file) and self.pulsar_url.startswith("pulsar://"):
            raise ValueError(
                "Pulsar TLS files are set but the URL is pulsar:// (plaintext); use pulsar+ssl://"
            )

    @property
    def enabled(self) -> bool:
        return bool(self.pulsar_url)


@dataclass(frozen=True)
class WebhookSettings:
    """Webhook delivery: which hosts, how often to retry, how fast."""

    allowed_hosts: tuple[str, ...] = ()
    """Hosts webhooks may point at (names, IP literals, ``*.domain``); empty turns webhooks off."""
    max_attempts: int = 8
    """Attempts per delivery before it becomes a dead letter."""
    retry_base: float = 1.0
    """Seconds before the first retry; each later retry waits twice as long (with jitter)."""
    retry_max: float = 600.0
    """Longest wait between two attempts (seconds)."""
    timeout: float = 5.0
    """Seconds one HTTP request may take."""
    concurrency: int = 8
    """Requests in flight at once, over all webhooks."""
    poll_interval: float = 0.1
    """Seconds between looks at the retry queue."""
    lease_ttl: int = 10
    """Seconds of the dispatcher's leader lease."""

    @property
    def enabled(self) -> bool:
        return bool(self.allowed_hosts)

    @property
    def backoff(self) -> Backoff:
        """The redelivery policy: retry n (0 first) waits ``retry_base * 2**n`` capped at
        ``retry_max``, times 0.5..1 (a base above the cap waits the cap)."""
        return Backoff(min(self.retry_base, self.retry_max), self.retry_max, Jitter.HALF)
