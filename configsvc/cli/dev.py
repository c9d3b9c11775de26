"""``configsvc dev``: the whole local stack and the server in one command.

etcd, an OpenBao dev server and pulsar-lite run as child processes with their
data under one directory; the server runs in this process. Ctrl-C or SIGTERM
stops the server gracefully, then the children in reverse order, so nothing
is left holding a port. The children run in their own session, so a terminal
Ctrl-C reaches only this process, which decides the order.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from configsvc.auth.apikeys import key_id_of, new_key
from configsvc.cli.options import add_server_options, config_from_args
from configsvc.devstack import DevStackError, LocalStack, ensure_port_free
from configsvc.errors import AlreadyExistsError
from configsvc.secrets.settings import VaultAuth, VaultSettings
from configsvc.server import eventloop, logs
from configsvc.server.app import ConfigServer, PortInUseError, run
from configsvc.store.writes import WriteOptions

DEFAULT_TENANT = "default"
READY_LINE = "configsvc dev: ready"


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "dev",
        help="run the server with a local etcd, OpenBao and pulsar-lite",
        description="Start etcd, an OpenBao dev server and pulsar-lite as child processes "
        "with their data under --data-dir, then the configsvc server against "
        "them. Ctrl-C stops everything.",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".configsvc-dev"),
        help="directory for all local data and logs (default %(default)s)",
    )
    parser.add_argument(
        "--grpc-port",
        type=int,
        default=50051,
        help="configsvc gRPC port on 127.0.0.1 (default %(default)s)",
    )
    parser.add_argument("--etcd-port", type=int, default=2379, help="etcd client port")
    parser.add_argument("--etcd-peer-port", type=int, default=2380, help="etcd peer port")
    parser.add_argument(
        "--bao-port", type=int, default=8200, help="OpenBao port (it also uses the next port)"
    )
    parser.add_argument("--pulsar-port", type=int, default=6650, help="pulsar-lite port")
    parser.add_argument(
        "--tenant", default=DEFAULT_TENANT, help="tenant to create on start (default %(default)s)"
    )
    add_server_options(parser)
    parser.set_defaults(handler=_dev, log_format="text")


def dev_key(data_dir: Path) -> str:
    """The dev installation's admin key: made once, kept in ``<data-dir>/admin.key`` (0600).

    etcd's data survives restarts of ``configsvc dev``, and so does the key:
    the bootstrap happens once per installation.
    """
    path = data_dir / "admin.key"
    if path.exists():
        key = path.read_text().strip()
        if key_id_of(key) is not None:
            return key
    key = new_key()[1]
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


def _banner(stack: LocalStack, port: int, tenant: str, readers: tuple[str, ...], key: str) -> str:
    endpoints = stack.endpoints()
    address = f"127.0.0.1:{port}"
    header = f"-H 'authorization: Bearer {key}' " if key else ""
    return "\n".join(
        [
            f"configsvc gRPC   {address}",
            f"admin API key    {key or '(auth off)'}",
            f"etcd             {endpoints['etcd']}",
            f"OpenBao (dev)    {endpoints['openbao']}   token: {stack.openbao.token}",
            f"pulsar-lite      {endpoints['pulsar']}",
            f"data directory   {stack.data_dir}",
            "",
            "Try it:",
            f"  grpcurl -plaintext {address} list",
            f'  grpcurl -plaintext -d \'{{"key":{{"tenant":"{tenant}","environment":"prod",'
            f'"service":"api","key":"db.pool"}},"value":"{{\\"max\\":20}}"}}\' '
            f"{header}{address} configsvc.v1.ConfigService/Put",
            f"  export CONFIGSVC_API_KEY={key}" if key else "",
            f"  configsvc --help    (get, put, ls, rm, history, rollback; --server {address})",
            "Create a secret in OpenBao (KV v2 at secret/, transit at transit/) and use it:",
            f"  BAO_ADDR={endpoints['openbao']} BAO_TOKEN={stack.openbao.token} "
            "bao kv put secret/myapp password=s3cret",
            f'  configsvc put {tenant}/prod/api/db \'{{"password": {{"$secret": '
            f'{{"mount": "secret", "path": "myapp", "field": "password"}}}}}}\' '
            f"--server {address}",
            f"  configsvc get {tenant}/prod/api/db --resolve-secrets --server {address}",
            (
                f"  (secret readers: role bindings; the admin key may read; 'configsvc auth bind "
                f"key:NAME secret-reader --tenant {tenant}' grants it)"
                if key
                else f"  (secret readers: {', '.join(readers) or 'nobody'}; "
                "--secret-readers changes it)"
            ),
            "",
            f"{READY_LINE} (Ctrl-C stops everything)",
        ]
    )


def _dev(args: argparse.Namespace) -> int:
    logs.configure(args.log_format, args.log_level)
    try:
        ensure_port_free("127.0.0.1", args.grpc_port, "configsvc gRPC", "--grpc-port")
        stack = LocalStack(
            args.data_dir.resolve(),
            etcd_port=args.etcd_port,
            etcd_peer_port=args.etcd_peer_port,
            bao_port=args.bao_port,
            pulsar_port=args.pulsar_port,
        )
        print(
            f"configsvc dev: starting etcd, OpenBao and pulsar-lite under {args.data_dir}",
            flush=True,
        )
        stack.start()
    except DevStackError as exc:
        print(f"configsvc dev: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    try:
        server_config = config_from_args(
            args, listen=f"127.0.0.1:{args.grpc_port}", etcd_endpoints=(stack.etcd.endpoint,)
        )
        # Secrets against the local OpenBao; everyone may read plaintext unless
        # --secret-readers says otherwise (it is a development stack).
        server_config = replace(
            server_config,
            secrets=replace(
                server_config.secrets,
                readers=server_config.secrets.readers or ("*",),
                vault=VaultSettings(
                    address=stack.openbao.address, auth=VaultAuth(token=stack.openbao.token)
                ),
            ),
        )
        if not server_config.events.enabled:  # publish to the local pulsar-lite
            server_config = replace(
                server_config, events=replace(server_config.events, pulsar_url=stack.pulsar.url)
            )
        if not server_config.webhooks.enabled:  # local receivers only
            server_config = replace(
                server_config,
                webhooks=replace(server_config.webhooks, allowed_hosts=("127.0.0.1", "localhost")),
            )
        key = dev_key(stack.data_dir) if server_config.auth.mode != "off" else ""
        server_config = replace(
            server_config, auth=replace(server_config.auth, bootstrap_admin_key=key)
        )

        async def ready(server: ConfigServer) -> None:
            if not await server.mirror.wait_synced(30):
                raise DevStackError("the server could not sync with the local etcd")
            await asyncio.wait_for(server.auth.bootstrapped.wait(), 30)
            with contextlib.suppress(AlreadyExistsError):
                await server.writer.create_tenant(
                    args.tenant,
                    "created by configsvc dev",
                    WriteOptions(actor="configsvc-dev", timeout=10),
                )
            print(
                _banner(stack, server.port, args.tenant, server.config.secrets.readers, key),
                flush=True,
            )

        eventloop.run(run(server_config, on_ready=ready), args.event_loop)
    except (PortInUseError, DevStackError) as exc:
        print(f"configsvc dev: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
        print("configsvc dev: stopped", flush=True)
    return 0
