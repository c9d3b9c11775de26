"""Server configuration: one frozen record (its flags and env variables: configsvc.cli.options)."""

from __future__ import annotations

from dataclasses import dataclass, field

from configsvc.auth.settings import AuthSettings, ServerTLS
from configsvc.events.settings import EventSettings, WebhookSettings
from configsvc.http.settings import HttpSettings
from configsvc.secrets.settings import SecretSettings
from configsvc.store.etcd import EtcdTLS
from configsvc.store.mirror import MirrorLiveness
from configsvc.watch.hub import WatchLimits


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``configsvc serve`` needs; every field has a flag and an env var."""

    listen: str = "[::]:50051"
    """gRPC listen address (host:port; port 0 picks a free one)."""
    reuse_port: bool = False
    """Bind with SO_REUSEPORT so several worker processes share the port."""
    etcd_endpoints: tuple[str, ...] = ("127.0.0.1:2379",)
    """etcd client endpoints (host:port)."""
    etcd_tls: EtcdTLS | None = None
    """TLS to etcd; None for plaintext."""
    root_prefix: str = "/configsvc"
    """etcd key prefix under which configsvc keeps everything."""
    etcd_timeout: float = 5.0
    """Longest single etcd call (seconds); bounds every RPC's wait on etcd."""
    request_timeout: float = 10.0
    """Longest an RPC may spend when the caller set no deadline (seconds)."""
    grace_period: float = 10.0
    """How long shutdown lets in-flight RPCs finish (seconds)."""
    log_format: str = "json"
    """``json`` (one object per line) or ``text``."""
    log_level: str = "INFO"
    """Python logging level name."""
    mirror_backoff: tuple[float, float] = field(default=(0.1, 2.0))
    """Min and max delay (seconds) between mirror reconnect attempts."""
    mirror_liveness: MirrorLiveness = field(default_factory=MirrorLiveness)
    """How often the mirror probes etcd and how long etcd may stay silent (a hung etcd keeps
    its connections open) before reads fail, health goes NOT_SERVING and streams end."""
    watch: WatchLimits = field(default_factory=WatchLimits)
    """Watch stream limits: queue, stream count, heartbeat interval, maximum age."""
    secrets: SecretSettings = field(default_factory=SecretSettings)
    """Vault connection, secret readers, resolution cache TTL and rotation polling."""
    events: EventSettings = field(default_factory=EventSettings)
    """Change-event publisher: Pulsar URL (empty: off), topic, lease TTL, in-flight bound."""
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    """Webhook delivery: host allow-list (empty: off), attempts, backoff, timeouts."""
    auth: AuthSettings = field(default_factory=AuthSettings)
    """Authentication mode, bootstrap key, JWT, rate limits and tenant quotas."""
    tls: ServerTLS | None = None
    """TLS (and mTLS) on the gRPC port; None for plaintext."""
    flags_default_selector: str = ""
    """Flag set (``tenant/environment``) for flagd calls without a selector; '' = none."""
    flags_context: tuple[tuple[str, str], ...] = ()
    """Static evaluation context (flagd's ``--context-value``): added to every flag
    evaluation and sent to in-process providers as ``sync_context``."""
    ofrep_listen: str = ""
    """OFREP HTTP listen address (host:port; port 0 picks one); '' = OFREP off."""
    http: HttpSettings = field(default_factory=HttpSettings)
    """Limits of every HTTP listener (OFREP, metrics): header and body timeouts, body
    size after decompression, open connections."""
