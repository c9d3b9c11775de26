"""The server options of ``configsvc serve`` and ``configsvc dev``, in one place.

:func:`add_server_options` declares every option the two commands share (each
also reads ``CONFIGSVC_<NAME>`` for its default), grouped as ``--help`` shows
them; :func:`config_from_args` turns the parsed options into one frozen
``ServerConfig``, raising ValueError for a combination that cannot work.
Authentication and TLS (:mod:`.auth`) and Vault (:mod:`.secrets`) have modules
of their own because they read credential files. The options only ``serve``
has (listen address, workers, etcd endpoints) stay with the command.
"""

from __future__ import annotations

import argparse
from typing import Any

from configsvc.cli.options.auth import add_auth_options, settings_from_args
from configsvc.cli.options.environ import comma_list, env, env_number
from configsvc.cli.options.secrets import add_secret_options, secret_settings_from_args
from configsvc.events.settings import DEFAULT_TOPIC, EventSettings, PulsarTLS, WebhookSettings
from configsvc.http.settings import HttpSettings
from configsvc.server import eventloop
from configsvc.server.config import ServerConfig
from configsvc.store.mirror import MirrorLiveness
from configsvc.watch.hub import WatchLimits


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``serve`` and ``dev``; each also reads CONFIGSVC_<NAME>."""
    parser.add_argument(
        "--root-prefix",
        default=env("ROOT_PREFIX", "/configsvc"),
        help="etcd key prefix for everything configsvc stores "
        "(env CONFIGSVC_ROOT_PREFIX; default %(default)s)",
    )
    parser.add_argument(
        "--log-format",
        choices=("json", "text"),
        default=env("LOG_FORMAT", "json"),
        help="log format (env CONFIGSVC_LOG_FORMAT; default %(default)s)",
    )
    parser.add_argument(
        "--log-level",
        default=env("LOG_LEVEL", "INFO"),
        help="log level (env CONFIGSVC_LOG_LEVEL; default %(default)s)",
    )
    parser.add_argument(
        "--event-loop",
        choices=eventloop.CHOICES,
        default=env("EVENT_LOOP", eventloop.DEFAULT),
        help="asyncio event loop (env CONFIGSVC_EVENT_LOOP; default %(default)s)",
    )
    parser.add_argument(
        "--grace-period",
        type=float,
        default=float(env("GRACE_PERIOD", "10")),
        help="seconds in-flight RPCs get at shutdown (env "
        "CONFIGSVC_GRACE_PERIOD; default %(default)s)",
    )
    parser.add_argument(
        "--etcd-liveness-grace",
        type=positive_seconds,
        default=env_number("ETCD_LIVENESS_GRACE", MirrorLiveness.grace),
        help="seconds etcd may leave the liveness probe (a quorum read every "
        "second) unanswered before this server counts it as lost: reads "
        "fail unless stale is allowed, health NOT_SERVING, streams end "
        "(env CONFIGSVC_ETCD_LIVENESS_GRACE; default %(default)s)",
    )
    defaults = WatchLimits()
    watch = parser.add_argument_group("watch streams")
    watch.add_argument(
        "--watch-max-streams",
        type=int,
        default=env_number("WATCH_MAX_STREAMS", defaults.max_streams),
        help="streams per process (env CONFIGSVC_WATCH_MAX_STREAMS; default %(default)s)",
    )
    watch.add_argument(
        "--watch-queue-limit",
        type=int,
        default=env_number("WATCH_QUEUE_LIMIT", defaults.queue_limit),
        help="messages a stream may lag before it is reset "
        "(env CONFIGSVC_WATCH_QUEUE_LIMIT; default %(default)s)",
    )
    watch.add_argument(
        "--watch-progress-interval",
        type=float,
        default=env_number("WATCH_PROGRESS_INTERVAL", defaults.progress_interval),
        help="seconds between heartbeats on a quiet stream "
        "(env CONFIGSVC_WATCH_PROGRESS_INTERVAL; default %(default)s)",
    )
    watch.add_argument(
        "--watch-max-age",
        type=float,
        default=env_number("WATCH_MAX_AGE", defaults.max_age),
        help="seconds before a stream is ended so clients rebalance "
        "(env CONFIGSVC_WATCH_MAX_AGE; default %(default)s)",
    )
    add_secret_options(parser)
    events = parser.add_argument_group("change events (Pulsar)")
    events.add_argument(
        "--pulsar-url",
        default=env("PULSAR_URL", ""),
        help="publish ConfigurationUpdatedEvent to this broker "
        "(pulsar://host:port; env CONFIGSVC_PULSAR_URL; empty: off; "
        "dev: the local pulsar-lite)",
    )
    events.add_argument(
        "--pulsar-ca-file",
        default=env("PULSAR_CA_FILE", ""),
        help="PEM bundle that signs the broker's certificate (pulsar+ssl:// URLs; "
        "env CONFIGSVC_PULSAR_CA_FILE)",
    )
    events.add_argument(
        "--pulsar-cert-file",
        default=env("PULSAR_CERT_FILE", ""),
        help="client certificate for Pulsar TLS authentication (env "
        "CONFIGSVC_PULSAR_CERT_FILE; with --pulsar-key-file)",
    )
    events.add_argument(
        "--pulsar-key-file",
        default=env("PULSAR_KEY_FILE", ""),
        help="private key of --pulsar-cert-file (env CONFIGSVC_PULSAR_KEY_FILE)",
    )
    events.add_argument(
        "--events-topic",
        default=env("EVENTS_TOPIC", DEFAULT_TOPIC),
        help="topic for change events (env CONFIGSVC_EVENTS_TOPIC; default %(default)s)",
    )
    hooks = parser.add_argument_group("webhooks")
    hooks.add_argument(
        "--webhook-allowed-hosts",
        default=env("WEBHOOK_ALLOWED_HOSTS", ""),
        help="comma-separated hosts webhooks may call (names, IP literals, "
        "*.domain); empty turns webhooks off (env "
        "CONFIGSVC_WEBHOOK_ALLOWED_HOSTS; dev: 127.0.0.1,localhost)",
    )
    hooks.add_argument(
        "--webhook-max-attempts",
        type=int,
        default=env_number("WEBHOOK_MAX_ATTEMPTS", WebhookSettings.max_attempts),
        help="attempts per delivery before it is dead-lettered (env "
        "CONFIGSVC_WEBHOOK_MAX_ATTEMPTS; default %(default)s)",
    )
    events.add_argument(
        "--publisher-lease-ttl",
        type=int,
        default=env_number("PUBLISHER_LEASE_TTL", EventSettings.lease_ttl),
        help="seconds of the publisher's leader lease: a dead publisher is "
        "replaced within it (env CONFIGSVC_PUBLISHER_LEASE_TTL; "
        "default %(default)s)",
    )
    add_auth_options(parser)
    flags = parser.add_argument_group("feature flags")
    flags.add_argument(
        "--flags-default-selector",
        default=env("FLAGS_DEFAULT_SELECTOR", ""),
        help="flag set (tenant/environment) for flagd calls without a selector "
        "(env CONFIGSVC_FLAGS_DEFAULT_SELECTOR; default: none, such calls "
        "fail)",
    )
    flags.add_argument(
        "--flags-context-value",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        type=context_value,
        help="static evaluation context for every flag evaluation, like flagd's "
        "--context-value (repeatable)",
    )
    flags.add_argument(
        "--ofrep-listen",
        default=env("OFREP_LISTEN", ""),
        help="OFREP HTTP listen address host:port (env CONFIGSVC_OFREP_LISTEN; default: OFREP off)",
    )
    http = parser.add_argument_group("HTTP listeners (OFREP, metrics)")
    http.add_argument(
        "--http-header-timeout",
        type=positive_seconds,
        default=env("HTTP_HEADER_TIMEOUT", str(HttpSettings.header_timeout)),
        help="seconds a connection may go without a complete request head, "
        "idle keep-alive included (env CONFIGSVC_HTTP_HEADER_TIMEOUT; "
        "default %(default)s)",
    )
    http.add_argument(
        "--http-body-timeout",
        type=positive_seconds,
        default=env("HTTP_BODY_TIMEOUT", str(HttpSettings.body_timeout)),
        help="seconds a request body may take to arrive: then 408 (env "
        "CONFIGSVC_HTTP_BODY_TIMEOUT; default %(default)s)",
    )
    http.add_argument(
        "--http-send-timeout",
        type=positive_seconds,
        default=env("HTTP_SEND_TIMEOUT", str(HttpSettings.send_timeout)),
        help="seconds an answer may take to be sent: a client that stops "
        "reading is cut off (env CONFIGSVC_HTTP_SEND_TIMEOUT; default "
        "%(default)s)",
    )
    http.add_argument(
        "--http-max-body-bytes",
        type=int,
        default=env_number("HTTP_MAX_BODY_BYTES", HttpSettings.max_body_bytes),
        help="largest request body after decompression: more is 413 (env "
        "CONFIGSVC_HTTP_MAX_BODY_BYTES; default %(default)s)",
    )
    http.add_argument(
        "--http-max-connections",
        type=int,
        default=env_number("HTTP_MAX_CONNECTIONS", HttpSettings.max_connections),
        help="open connections per HTTP listener: one more is answered 503 "
        "(env CONFIGSVC_HTTP_MAX_CONNECTIONS; default %(default)s)",
    )


def positive_seconds(text: str) -> float:
    """A duration option: a positive number of seconds (argparse reports anything else)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number of seconds")
    return value


def context_value(pair: str) -> tuple[str, str]:
    """One ``KEY=VALUE`` of --flags-context-value (argparse reports anything else)."""
    key, sep, value = pair.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{pair!r} is not KEY=VALUE")
    return key, value


def config_from_args(args: argparse.Namespace, **overrides: Any) -> ServerConfig:
    """The ``ServerConfig`` the shared options describe, with the command's own ``overrides``.

    ``serve`` passes its listen address and etcd, ``dev`` its local stack. ValueError
    when the options contradict each other or a credential file cannot be read.
    """
    values: dict[str, Any] = {
        "root_prefix": args.root_prefix,
        "log_format": args.log_format,
        "log_level": args.log_level,
        "grace_period": args.grace_period,
        "mirror_liveness": MirrorLiveness(grace=args.etcd_liveness_grace),
        "watch": WatchLimits(
            max_streams=args.watch_max_streams,
            queue_limit=args.watch_queue_limit,
            progress_interval=args.watch_progress_interval,
            max_age=args.watch_max_age,
        ),
        "secrets": secret_settings_from_args(args),
        "events": EventSettings(
            pulsar_url=args.pulsar_url,
            topic=args.events_topic,
            lease_ttl=args.publisher_lease_ttl,
            tls=PulsarTLS(
                ca_file=args.pulsar_ca_file,
                cert_file=args.pulsar_cert_file,
                key_file=args.pulsar_key_file,
            ),
        ),
        "webhooks": WebhookSettings(
            allowed_hosts=comma_list(args.webhook_allowed_hosts),
            max_attempts=args.webhook_max_attempts,
        ),
        "flags_default_selector": args.flags_default_selector,
        "flags_context": tuple(args.flags_context_value),
        "ofrep_listen": args.ofrep_listen,
        "http": HttpSettings(
            header_timeout=args.http_header_timeout,
            body_timeout=args.http_body_timeout,
            send_timeout=args.http_send_timeout,
            max_body_bytes=args.http_max_body_bytes,
            max_connections=args.http_max_connections,
        ),
    }
    values["auth"], values["tls"] = settings_from_args(args)
    values.update(overrides)
    return ServerConfig(**values)
