"""The ``configsvc`` command: server commands and client commands.

Each command group lives in its own module with a ``register(subparsers)``
function, so this file only assembles them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from configsvc import __version__
from configsvc.cli import audit, auth, client, dev, flags, hier, secrets, serve, webhooks


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="configsvc",
        description="etcd-native gRPC configuration server and its command-line client.",
    )
    parser.add_argument("--version", action="version", version=f"configsvc {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    serve.register(commands)
    dev.register(commands)
    client.register(commands)
    hier.register(commands)
    secrets.register(commands)
    audit.register(commands)
    webhooks.register(commands)
    auth.register(commands)
    flags.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv  # the exact command line, for commands that re-run themselves
    handler = args.handler
    code: int = handler(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
