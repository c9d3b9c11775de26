"""``configsvc secrets rewrap TENANT``: rewrap transit ciphertexts after a key rotation."""

from __future__ import annotations

import argparse
from typing import Any

from configsvc.cli import output
from configsvc.cli.toolkit import (
    Session,
    UsageError,
    add_command,
    add_group,
    connection_options,
)
from configsvc.model.keys import segment_violation
from configsvc.v1 import secrets_pb2, secrets_pb2_grpc


def _rewrap(args: argparse.Namespace, session: Session) -> int:
    problem = segment_violation("tenant", args.tenant)
    if problem:
        raise UsageError(f"tenant: {problem.description}")
    stub = session.stub(secrets_pb2_grpc.SecretServiceStub)
    response: secrets_pb2.RewrapCiphertextsResponse = session.call(
        stub.RewrapCiphertexts, secrets_pb2.RewrapCiphertextsRequest(tenant=args.tenant)
    )
    if args.json:
        output.print_json(response)
        return 0
    for key in response.rewrapped:
        print(f"rewrapped {output.key_path(key)}")
    for hook_id in response.rewrapped_webhooks:
        print(f"rewrapped webhook {args.tenant}/{hook_id}")
    print(
        f"{len(response.rewrapped)} rewrapped, {response.unchanged} already current"
        + (
            f", {len(response.rewrapped_webhooks)} webhook secrets rewrapped"
            if response.rewrapped_webhooks
            else ""
        )
        + (f", revision {response.revision}" if response.revision else "")
    )
    return 0


def register(commands: Any) -> None:
    sub = add_group(commands, "secrets", help="administer secrets (transit rewrap)")
    rewrap = add_command(
        sub,
        "rewrap",
        _rewrap,
        connection_options(),
        help="re-encrypt every stored transit ciphertext of a tenant with the newest key "
        "version (run after `bao write -f transit/keys/KEY/rotate`)",
    )
    rewrap.add_argument("tenant", metavar="TENANT")
