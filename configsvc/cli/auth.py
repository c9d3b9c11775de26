"""``configsvc auth``: API keys, role bindings, quotas and ``whoami``.

Secrets are printed once, on creation, and never again: the server keeps
only a salted hash. ``new-key`` makes a key offline, for the bootstrap admin
of a new installation (``CONFIGSVC_BOOTSTRAP_ADMIN_KEY``).
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from google.protobuf import duration_pb2

from configsvc.auth.apikeys import new_key
from configsvc.cli import output
from configsvc.cli.toolkit import (
    Session,
    UsageError,
    add_command,
    add_group,
    connection_options,
    report,
)
from configsvc.model.grants import ROLE_NAMES
from configsvc.v1 import auth_pb2, auth_pb2_grpc

_DURATION = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _stub(session: Session) -> Any:
    return session.stub(auth_pb2_grpc.AuthServiceStub)


def parse_duration(text: str) -> int:
    """``90s``, ``15m``, ``12h``, ``30d`` -> seconds."""
    match = _DURATION.fullmatch(text)
    if not match or int(match.group(1)) == 0:
        raise UsageError(f"--ttl {text!r}: give a positive number with s, m, h or d (30d)")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _key_row(key: auth_pb2.ApiKey) -> list[str]:
    expires = output.timestamp(key.expire_time) if key.HasField("expire_time") else "never"
    return [key.id, key.name, output.timestamp(key.create_time), expires, key.created_by]


def _binding_row(b: auth_pb2.RoleBinding) -> list[str]:
    role = auth_pb2.Role.Name(b.role).removeprefix("ROLE_").lower().replace("_", "-")
    return [
        b.id,
        b.subject,
        role,
        b.tenant,
        b.environment or "*",
        b.service or "*",
        b.key_prefix or "*",
    ]


_BINDING_HEADER = ["ID", "SUBJECT", "ROLE", "TENANT", "ENV", "SERVICE", "KEY PREFIX"]


def _whoami(args: argparse.Namespace, session: Session) -> int:
    response = session.call(_stub(session).WhoAmI, auth_pb2.WhoAmIRequest())
    if args.json:
        output.print_json(response)
        return 0
    print(f"identity: {response.identity} ({response.method})")
    output.print_table(_BINDING_HEADER, [_binding_row(b) for b in response.bindings])
    return 0


def _key_create(args: argparse.Namespace, session: Session) -> int:
    request = auth_pb2.CreateApiKeyRequest(name=args.name, description=args.description)
    if args.ttl:
        request.ttl.CopyFrom(duration_pb2.Duration(seconds=parse_duration(args.ttl)))
    response = session.call(_stub(session).CreateApiKey, request)
    if args.json:
        output.print_json(response)
        return 0
    print(response.secret)
    print(
        f"# key {response.api_key.id} for identity key:{response.api_key.name}; shown "
        "only now: store it, the server keeps only a hash"
    )
    return 0


def _key_ls(args: argparse.Namespace, session: Session) -> int:
    response = session.call(_stub(session).ListApiKeys, auth_pb2.ListApiKeysRequest())
    if args.json:
        output.print_json_lines(response.api_keys)
        return 0
    output.print_table(
        ["ID", "NAME", "CREATED", "EXPIRES", "BY"], [_key_row(k) for k in response.api_keys]
    )
    return 0


def _key_revoke(args: argparse.Namespace, session: Session) -> int:
    response = session.call(_stub(session).RevokeApiKey, auth_pb2.RevokeApiKeyRequest(id=args.id))
    print(f"revoked {args.id} at revision {response.revision}")
    return 0


def _bind(args: argparse.Namespace, session: Session) -> int:
    if args.role not in ROLE_NAMES:
        raise UsageError(f"role {args.role!r}: choose one of {', '.join(ROLE_NAMES)}")
    binding = auth_pb2.RoleBinding(
        subject=args.subject,
        role=ROLE_NAMES[args.role],
        tenant=args.tenant,
        environment=args.environment,
        service=args.service,
        key_prefix=args.key_prefix,
    )
    response = session.call(
        _stub(session).CreateRoleBinding, auth_pb2.CreateRoleBindingRequest(binding=binding)
    )
    return report(
        args, response, f"binding {response.binding.id} created at revision {response.revision}"
    )


def _bindings(args: argparse.Namespace, session: Session) -> int:
    response = session.call(
        _stub(session).ListRoleBindings, auth_pb2.ListRoleBindingsRequest(subject=args.subject)
    )
    if args.json:
        output.print_json_lines(response.bindings)
        return 0
    output.print_table(_BINDING_HEADER, [_binding_row(b) for b in response.bindings])
    return 0


def _unbind(args: argparse.Namespace, session: Session) -> int:
    response = session.call(
        _stub(session).DeleteRoleBinding, auth_pb2.DeleteRoleBindingRequest(id=args.id)
    )
    print(f"binding {args.id} deleted at revision {response.revision}")
    return 0


def _quota_set(args: argparse.Namespace, session: Session) -> int:
    quota = auth_pb2.TenantQuota(
        tenant=args.tenant, max_keys=args.max_keys, max_value_bytes=args.max_value_bytes
    )
    response = session.call(
        _stub(session).SetTenantQuota, auth_pb2.SetTenantQuotaRequest(quota=quota)
    )
    output.print_json(response.quota)
    return 0


def _quota_get(args: argparse.Namespace, session: Session) -> int:
    response = session.call(
        _stub(session).GetTenantQuota, auth_pb2.GetTenantQuotaRequest(tenant=args.tenant)
    )
    output.print_json(response)
    return 0


def _new_key(args: argparse.Namespace) -> int:
    print(new_key()[1])
    return 0


def register(commands: Any) -> None:
    parent = connection_options()
    sub = add_group(commands, "auth", help="API keys, role bindings, quotas, whoami")
    add_command(sub, "whoami", _whoami, parent, help="show the caller's identity and bindings")
    create = add_command(
        sub,
        "key-create",
        _key_create,
        parent,
        help="create an API key for an identity (printed once)",
    )
    create.add_argument(
        "name",
        metavar="NAME",
        help="identity name: calls act as key:NAME; unique for the "
        "installation's lifetime (a revoked key's name is never reused)",
    )
    create.add_argument("--ttl", metavar="DURATION", help="expiry, e.g. 90d, 12h (default never)")
    create.add_argument("--description", default="", metavar="D")
    add_command(sub, "key-ls", _key_ls, parent, help="list API keys (never their secrets)")
    revoke = add_command(sub, "key-revoke", _key_revoke, parent, help="revoke an API key by id")
    revoke.add_argument("id", metavar="ID")
    bind = add_command(sub, "bind", _bind, parent, help="grant a role to an identity on a scope")
    bind.add_argument("subject", metavar="SUBJECT", help="key:NAME, cert:CN or jwt:SUB")
    bind.add_argument("role", metavar="ROLE", help=", ".join(ROLE_NAMES))
    bind.add_argument(
        "--tenant",
        required=True,
        metavar="PATTERN",
        help="tenant, prefix* or * (everything, installation-wide RPCs)",
    )
    bind.add_argument("--environment", default="", metavar="PATTERN", help="default *")
    bind.add_argument("--service", default="", metavar="PATTERN", help="default *")
    bind.add_argument("--key-prefix", default="", metavar="PREFIX", help="default: every key")
    bindings = add_command(sub, "bindings", _bindings, parent, help="list role bindings")
    bindings.add_argument("--subject", default="", metavar="SUBJECT")
    unbind = add_command(sub, "unbind", _unbind, parent, help="delete a role binding by id")
    unbind.add_argument("id", metavar="ID")
    quota_set = add_command(sub, "quota-set", _quota_set, parent, help="set a tenant's quota")
    quota_set.add_argument("tenant", metavar="TENANT")
    quota_set.add_argument("--max-keys", type=int, default=0, metavar="N")
    quota_set.add_argument("--max-value-bytes", type=int, default=0, metavar="N")
    quota_get = add_command(sub, "quota-get", _quota_get, parent, help="show a tenant's quota")
    quota_get.add_argument("tenant", metavar="TENANT")
    new = sub.add_parser(
        "new-key", help="print a fresh API key (offline), e.g. for CONFIGSVC_BOOTSTRAP_ADMIN_KEY"
    )
    new.set_defaults(handler=_new_key)
