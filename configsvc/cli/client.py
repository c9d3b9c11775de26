"""Client commands: get, put, rm, ls, resolve, history, rollback and tenant.

Everything a command can check without the server (the key path grammar, that
a value is JSON, option ranges) is checked first and fails with exit code 2,
so a typo never costs a round trip or reaches the audit log as a rejected
write. The checks reuse the server's own grammar (``configsvc.model``), so the
client can never accept what the server refuses or the other way round.
Server errors exit 1 and print the status code, the message and the decoded
``google.rpc`` details. The session, exit codes, paging and the options every
command shares come from ``configsvc.cli.toolkit``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from configsvc.cli import output
from configsvc.cli.toolkit import (
    Session,
    UsageError,
    add_command,
    add_group,
    add_paging_options,
    add_write_options,
    at_least,
    check_prefix,
    check_tenant_name,
    connection_options,
    parse_scope,
    print_rows,
    read_file,
    read_stdin,
    report,
    show_pages,
    violation_lines,
)
from configsvc.errors import InvalidArgumentError
from configsvc.model.keys import key_violation, segment_violation
from configsvc.model.values import validate_json_value
from configsvc.v1 import config_pb2, config_pb2_grpc, tenant_pb2, tenant_pb2_grpc

_KEY_FORM = "TENANT/ENV/SERVICE/KEY"


# ------------------------------------------------------------ local checks


def parse_key(text: str) -> config_pb2.ConfigKey:
    parts = text.split("/")
    if len(parts) != 4:
        raise UsageError(f"{text!r} is not a key path; expected {_KEY_FORM}")
    tenant, env, service, key = parts
    problems = violation_lines(
        [
            segment_violation("tenant", tenant),
            segment_violation("environment", env),
            segment_violation("service", service),
            key_violation("key", key),
        ]
    )
    if problems:
        raise UsageError(f"invalid key path {text!r}:", problems)
    return config_pb2.ConfigKey(tenant=tenant, environment=env, service=service, key=key)


def check_value(value: str) -> str:
    try:
        validate_json_value(value)
    except InvalidArgumentError as exc:
        raise UsageError("invalid value:", violation_lines(list(exc.violations))) from None
    return value


def read_value(args: argparse.Namespace) -> str:
    """The value exactly as given (a trailing newline included): it is stored byte for byte."""
    if args.file is not None and args.value is not None:
        raise UsageError("give either VALUE or --file, not both")
    if args.file is not None:
        return check_value(read_file(args.file))
    if args.value is None:
        raise UsageError("missing value: give VALUE, --file FILE, or - to read standard input")
    if args.value == "-":
        return check_value(read_stdin())
    return check_value(str(args.value))


def _consistency(args: argparse.Namespace) -> config_pb2.ReadConsistency:
    """``--consistent``: a quorum read; otherwise the mirror, which may lag a moment."""
    return (
        config_pb2.READ_CONSISTENCY_STRONG
        if args.consistent
        else config_pb2.READ_CONSISTENCY_MIRROR
    )


# ---------------------------------------------------------------- commands


def _config(session: Session) -> Any:
    return session.stub(config_pb2_grpc.ConfigServiceStub)


def _tenants(session: Session) -> Any:
    return session.stub(tenant_pb2_grpc.TenantServiceStub)


def _get(args: argparse.Namespace, session: Session) -> int:
    request = config_pb2.GetRequest(
        key=parse_key(args.path),
        consistency=_consistency(args),
        resolve_secrets=args.resolve_secrets,
    )
    response: config_pb2.GetResponse = session.call(_config(session).Get, request)
    if args.json:
        output.print_json(response)
    else:
        output.print_value(response.entry.value)
    return 0


def _put(args: argparse.Namespace, session: Session) -> int:
    key = parse_key(args.path)
    at_least("--expected-revision", args.expected_revision, 0)
    request = config_pb2.PutRequest(
        key=key,
        value=read_value(args),
        reason=args.reason,
        expected_revision=args.expected_revision,
        labels=parse_labels(args.label),
    )
    response: config_pb2.PutResponse = session.call(_config(session).Put, request)
    return report(
        args,
        response,
        f"put {output.key_path(response.entry.key)} version "
        f"{response.entry.version} at revision {response.revision}",
    )


def _rm(args: argparse.Namespace, session: Session) -> int:
    key = parse_key(args.path)
    at_least("--expected-revision", args.expected_revision, 0)
    request = config_pb2.DeleteRequest(
        key=key, reason=args.reason, expected_revision=args.expected_revision
    )
    response: config_pb2.DeleteResponse = session.call(_config(session).Delete, request)
    return report(
        args,
        response,
        f"deleted {output.key_path(key)} (recorded as version "
        f"{response.version}) at revision {response.revision}",
    )


def _list_request(args: argparse.Namespace) -> config_pb2.ListRequest:
    tenant, env, service = parse_scope(args.scope)
    prefix = check_prefix(args.prefix)
    at_least("--page-size", args.page_size, 1)
    request = config_pb2.ListRequest(
        tenant=tenant,
        environment=env,
        service=service,
        key_prefix=prefix,
        page_size=args.page_size,
        consistency=_consistency(args),
        key_glob=args.glob,
        labels=parse_labels(args.label),
        updated_by=args.author or "",
    )
    for option, field in (("since", "updated_after"), ("until", "updated_before")):
        text = getattr(args, option)
        if text:
            try:
                getattr(request, field).FromJsonString(text)
            except ValueError:
                raise UsageError(
                    f"--{option} {text!r} is not an RFC 3339 time such as 2026-01-31T12:00:00Z"
                ) from None
    return request


def parse_labels(pairs: Sequence[str]) -> dict[str, str]:
    """``NAME=VALUE`` options as a dict (the server checks the label grammar)."""
    labels = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name:
            raise UsageError(f"--label {pair!r} is not NAME=VALUE")
        labels[name] = value
    return labels


def _ls(args: argparse.Namespace, session: Session) -> int:
    stub = _config(session)
    return show_pages(
        args,
        lambda r: session.call(stub.List, r),
        _list_request(args),
        lambda page: page.entries,
        lambda e: [output.key_path(e.key), str(e.version), str(e.mod_revision)],
        ["KEY", "VERSION", "REVISION"],
        "no entries",
    )


def _history_row(record: config_pb2.HistoryRecord) -> list[str]:
    return [
        str(record.version),
        output.operation(record),
        str(record.revision),
        output.timestamp(record.update_time),
        record.updated_by,
        output.short_value(record.value),
        record.reason,
    ]


def _history(args: argparse.Namespace, session: Session) -> int:
    key = parse_key(args.path)
    at_least("--page-size", args.page_size, 1)
    stub = _config(session)
    return show_pages(
        args,
        lambda r: session.call(stub.History, r),
        config_pb2.HistoryRequest(key=key, page_size=args.page_size),
        lambda page: page.records,
        _history_row,
        ["VERSION", "OPERATION", "REVISION", "TIME", "BY", "VALUE", "REASON"],
        "no history",
    )


def _rollback(args: argparse.Namespace, session: Session) -> int:
    key = parse_key(args.path)
    at_least("--to-version", args.to_version, 1)
    at_least("--expected-revision", args.expected_revision, 0)
    request = config_pb2.RollbackRequest(
        key=key,
        to_version=args.to_version,
        reason=args.reason,
        expected_revision=args.expected_revision,
    )
    response: config_pb2.RollbackResponse = session.call(_config(session).Rollback, request)
    return report(
        args,
        response,
        f"rolled back {output.key_path(key)} to version "
        f"{args.to_version}: now version {response.entry.version} "
        f"at revision {response.revision}",
    )


def _tenant_create(args: argparse.Namespace, session: Session) -> int:
    request = tenant_pb2.CreateTenantRequest(
        name=check_tenant_name(args.name), description=args.description
    )
    response: tenant_pb2.CreateTenantResponse = session.call(
        _tenants(session).CreateTenant, request
    )
    return report(
        args, response, f"created tenant {response.tenant.name} at revision {response.revision}"
    )


def _tenant_ls(args: argparse.Namespace, session: Session) -> int:
    response: tenant_pb2.ListTenantsResponse = session.call(
        _tenants(session).ListTenants, tenant_pb2.ListTenantsRequest()
    )
    if args.json:
        output.print_json_lines(response.tenants)
        return 0
    rows = [
        [t.name, output.timestamp(t.create_time), t.created_by, t.description]
        for t in response.tenants
    ]
    print_rows(["NAME", "CREATED", "BY", "DESCRIPTION"], rows, "no tenants")
    return 0


def _resolve(args: argparse.Namespace, session: Session) -> int:
    tenant, environment, service = parse_scope(args.scope)
    if not (environment and service):
        raise UsageError(f'{args.scope!r} is not TENANT/ENV/SERVICE (use "all" for any)')
    request = config_pb2.ResolveRequest(
        tenant=tenant,
        environment=environment,
        service=service,
        consistency=_consistency(args),
        resolve_secrets=args.resolve_secrets,
    )
    response: config_pb2.ResolveResponse = session.call(_config(session).Resolve, request)
    if args.json:
        output.print_json(response)
        return 0
    print(json.dumps(json.loads(response.document), indent=2, ensure_ascii=False))
    if args.provenance:
        print_rows(
            ["PATH", "LAYER", "FROM", "REVISION"],
            [
                [p.path, p.layer, output.key_path(p.key), str(p.revision)]
                for p in response.provenance
            ],
            "no leaves",
        )
    return 0


def _tenant_get(args: argparse.Namespace, session: Session) -> int:
    request = tenant_pb2.GetTenantRequest(name=check_tenant_name(args.name))
    response: tenant_pb2.GetTenantResponse = session.call(_tenants(session).GetTenant, request)
    if args.json:
        output.print_json(response)
        return 0
    tenant = response.tenant
    print(
        f"name: {tenant.name}\ndescription: {tenant.description}\n"
        f"created: {output.timestamp(tenant.create_time)} by {tenant.created_by} "
        f"at revision {tenant.create_revision}"
    )
    return 0


# ------------------------------------------------------------------ parsers


def _add_consistent_option(parser: argparse.ArgumentParser) -> None:
    """``--consistent`` of the reads, turned into a read consistency by :func:`_consistency`."""
    parser.add_argument(
        "--consistent",
        action="store_true",
        help="reflect every write acknowledged before the call (quorum read)",
    )


def _register_config(commands: Any, parent: argparse.ArgumentParser) -> None:
    get = add_command(commands, "get", _get, parent, help="print a configuration value")
    get.add_argument("path", metavar=_KEY_FORM)
    _add_consistent_option(get)
    get.add_argument(
        "--resolve-secrets",
        action="store_true",
        help="show secret plaintext instead of references (needs the "
        "secret-read permission; audited)",
    )

    put = add_command(commands, "put", _put, parent, help="write a configuration value (JSON)")
    put.add_argument("path", metavar=_KEY_FORM)
    put.add_argument(
        "value", nargs="?", metavar="VALUE", help="JSON text, or - to read it from standard input"
    )
    put.add_argument("--file", metavar="FILE", help="read the JSON text from FILE")
    put.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a label stored with the value (repeat); replaces earlier labels",
    )
    add_write_options(put)

    rm = add_command(
        commands, "rm", _rm, parent, help="delete a configuration value (keeps history)"
    )
    rm.add_argument("path", metavar=_KEY_FORM)
    add_write_options(rm)

    ls = add_command(
        commands, "ls", _ls, parent, help="list entries of a tenant, environment or service"
    )
    ls.add_argument("scope", metavar="TENANT[/ENV[/SERVICE]]")
    ls.add_argument("--prefix", default="", metavar="P", help="only keys starting with P")
    ls.add_argument(
        "--glob", default="", metavar="G", help="only keys matching G ('*' any characters, '?' one)"
    )
    ls.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="only entries with this label (repeat: all must match)",
    )
    ls.add_argument("--author", metavar="NAME", help="only entries last changed by NAME")
    ls.add_argument("--since", metavar="TIME", help="only entries changed at or after TIME")
    ls.add_argument("--until", metavar="TIME", help="only entries changed before TIME")
    _add_consistent_option(ls)
    add_paging_options(ls, 100)

    resolve = add_command(
        commands,
        "resolve",
        _resolve,
        parent,
        help="print the effective configuration of a service in an environment",
    )
    resolve.add_argument("scope", metavar="TENANT/ENV/SERVICE", help='ENV or SERVICE may be "all"')
    resolve.add_argument(
        "--provenance",
        action="store_true",
        help="also print, for every leaf, the layer, key and revision",
    )
    _add_consistent_option(resolve)
    resolve.add_argument(
        "--resolve-secrets",
        action="store_true",
        help="show secret plaintext instead of references (audited)",
    )
    history = add_command(
        commands,
        "history",
        _history,
        parent,
        help="list the recorded versions of a key, newest first",
    )
    history.add_argument("path", metavar=_KEY_FORM)
    add_paging_options(history, 50)

    rollback = add_command(
        commands,
        "rollback",
        _rollback,
        parent,
        help="write an earlier version's value back as a new version",
    )
    rollback.add_argument("path", metavar=_KEY_FORM)
    rollback.add_argument(
        "--to-version",
        type=int,
        required=True,
        metavar="N",
        help="the version whose value to restore",
    )
    add_write_options(rollback)


def _register_tenant(commands: Any, parent: argparse.ArgumentParser) -> None:
    sub = add_group(commands, "tenant", help="create, list and describe tenants")
    create = add_command(sub, "create", _tenant_create, parent, help="register a tenant")
    create.add_argument("name", metavar="NAME")
    create.add_argument("--description", default="", metavar="D")
    add_command(sub, "ls", _tenant_ls, parent, help="list every tenant")
    get = add_command(sub, "get", _tenant_get, parent, help="describe one tenant")
    get.add_argument("name", metavar="NAME")


def register(commands: Any) -> None:
    parent = connection_options()
    _register_config(commands, parent)
    _register_tenant(commands, parent)
