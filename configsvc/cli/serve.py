"""``configsvc serve``: run the server against an existing etcd."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from configsvc.cli.options import add_server_options, config_from_args
from configsvc.cli.options.environ import comma_list, env, env_number
from configsvc.devstack import DevStackError, ensure_port_free
from configsvc.server import eventloop, logs
from configsvc.server.app import PortInUseError, run
from configsvc.server.workers import Supervisor, default_workers, split_listen
from configsvc.store.etcd import EtcdTLS


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "serve",
        help="run the gRPC server against an etcd cluster",
        description="Run the configsvc gRPC server. Every option can also be set with the "
        "environment variable named in its help.",
    )
    parser.add_argument(
        "--listen",
        default=env("LISTEN", "[::]:50051"),
        help="gRPC listen address (env CONFIGSVC_LISTEN; default %(default)s)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=env_number("WORKERS", default_workers()),
        help="server processes sharing the port with SO_REUSEPORT, each with "
        "its own mirror (env CONFIGSVC_WORKERS; default: usable CPUs, "
        "%(default)s)",
    )
    parser.add_argument(
        "--reuse-port",
        action="store_true",
        default=env("REUSE_PORT", "") == "1",
        help="bind with SO_REUSEPORT so several processes share the port "
        "(set for each worker by --workers; env CONFIGSVC_REUSE_PORT=1)",
    )
    parser.add_argument(
        "--etcd-endpoints",
        default=env("ETCD_ENDPOINTS", "127.0.0.1:2379"),
        help="comma-separated etcd host:port list "
        "(env CONFIGSVC_ETCD_ENDPOINTS; default %(default)s)",
    )
    parser.add_argument(
        "--etcd-ca-file",
        default=env("ETCD_CA_FILE", ""),
        help="CA bundle for TLS to etcd (env CONFIGSVC_ETCD_CA_FILE)",
    )
    parser.add_argument(
        "--etcd-cert-file",
        default=env("ETCD_CERT_FILE", ""),
        help="client certificate for etcd (env CONFIGSVC_ETCD_CERT_FILE)",
    )
    parser.add_argument(
        "--etcd-key-file",
        default=env("ETCD_KEY_FILE", ""),
        help="client key for etcd (env CONFIGSVC_ETCD_KEY_FILE)",
    )
    add_server_options(parser)
    parser.set_defaults(handler=_serve)


def tls_from_paths(ca: str, cert: str, key: str) -> EtcdTLS | None:
    """TLS to etcd from ``--etcd-ca-file``/``--etcd-cert-file``/``--etcd-key-file``.

    None when none is given (plaintext); ValueError for a certificate without its key.
    """
    if not (ca or cert or key):
        return None
    if bool(cert) != bool(key):
        raise ValueError("etcd client TLS needs both --etcd-cert-file and --etcd-key-file")
    return EtcdTLS(
        ca_file=Path(ca) if ca else None,
        cert_file=Path(cert) if cert else None,
        key_file=Path(key) if key else None,
    )


def _serve(args: argparse.Namespace) -> int:
    if args.workers < 1:
        print("configsvc serve: --workers must be 1 or more", file=sys.stderr)
        return 2
    try:
        config = config_from_args(
            args,
            listen=args.listen,
            etcd_endpoints=comma_list(args.etcd_endpoints),
            etcd_tls=tls_from_paths(args.etcd_ca_file, args.etcd_cert_file, args.etcd_key_file),
            reuse_port=args.reuse_port,
        )
    except ValueError as exc:
        print(f"configsvc serve: {exc}", file=sys.stderr)
        return 2
    if args.workers > 1:
        return _supervise(args)
    logs.configure(config.log_format, config.log_level)
    try:
        eventloop.run(run(config), args.event_loop)
    except PortInUseError as exc:
        print(f"configsvc serve: {exc}", file=sys.stderr)
        return 1
    return 0


def _supervise(args: argparse.Namespace) -> int:
    """Run ``--workers`` copies of this command, each with ``--workers 1 --reuse-port``."""
    try:
        host, port = split_listen(args.listen)
    except ValueError:
        print(f"configsvc serve: --listen {args.listen!r} is not host:port", file=sys.stderr)
        return 2
    if port == 0:
        print(
            "configsvc serve: --listen with port 0 needs --workers 1 (each worker would "
            "get a different port)",
            file=sys.stderr,
        )
        return 2
    try:
        ensure_port_free(host, port, "configsvc gRPC", "--listen")
    except DevStackError as exc:
        print(f"configsvc serve: cannot listen on {args.listen}: {exc}", file=sys.stderr)
        return 1
    # The same command line, with the last --workers/--reuse-port winning.
    command = [
        sys.executable,
        "-m",
        "configsvc.cli.main",
        *args.argv,
        "--workers",
        "1",
        "--reuse-port",
    ]
    return Supervisor(command, args.workers, args.grace_period).run()
