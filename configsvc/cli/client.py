"""Client commands: get, put, rm, ls, history, rollback and tenant.

Everything a command can check without the server (the address grammar, that
a value is JSON, option ranges) is checked first and fails with exit code 2,
so a typo never costs a round trip or reaches the audit log as a rejected
write. The checks reuse the server's own grammar (``configsvc.model``), so the
client can never accept what the server refuses or the other way round.
Server errors exit 1 and print the status code, the message and the decoded
``google.rpc`` details.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import grpc

from configsvc.cli import connect, output
from configsvc.errors import FieldViolation, InvalidArgumentError
from configsvc.model.keys import key_violation, segment_violation
from configsvc.model.values import validate_json_value
from configsvc.rpc.requests import ACTOR_HEADER
from configsvc.v1 import config_pb2, config_pb2_grpc, tenant_pb2, tenant_pb2_grpc

DEFAULT_SERVER = "localhost:50051"
DEFAULT_TIMEOUT = 10.0
_ACTOR_MAX = 256
_KEY_FORM = "TENANT/ENV/SERVICE/KEY"


class UsageError(Exception):
    """A mistake in the command line, reported before anything is sent."""

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.lines = [message, *(details or [])]


@dataclass(frozen=True)
class Session:
    """One channel plus the per-call settings every RPC of a command shares."""

    channel: Any
    metadata: tuple[tuple[str, str], ...]
    timeout: float

    def config(self) -> Any:
        return config_pb2_grpc.ConfigServiceStub(self.channel)  # type: ignore[no-untyped-call]

    def tenants(self) -> Any:
        return tenant_pb2_grpc.TenantServiceStub(self.channel)  # type: ignore[no-untyped-call]

    def call(self, method: Any, request: Any) -> Any:
        return method(request, timeout=self.timeout, metadata=self.metadata)


Command = Callable[[argparse.Namespace, Session], int]


# ------------------------------------------------------------ local checks


def _violation_lines(violations: list[FieldViolation | None]) -> list[str]:
    return [f"  {v.field}: {v.description}" for v in violations if v is not None]


def parse_key(text: str) -> config_pb2.ConfigKey:
    parts = text.split("/")
    if len(parts) != 4:
        raise UsageError(f"{text!r} is not a key path; expected {_KEY_FORM}")
    tenant, env, service, key = parts
    problems = _violation_lines([
        segment_violation("tenant", tenant), segment_violation("environment", env),
        segment_violation("service", service), key_violation("key", key),
    ])
    if problems:
        raise UsageError(f"invalid key path {text!r}:", problems)
    return config_pb2.ConfigKey(tenant=tenant, environment=env, service=service, key=key)


def parse_scope(text: str) -> tuple[str, str, str]:
    """TENANT[/ENV[/SERVICE]]; a trailing '/' is forgiven since shells complete it."""
    parts = text.rstrip("/").split("/")
    if len(parts) > 3:
        raise UsageError(f"{text!r} is not a scope; expected TENANT[/ENV[/SERVICE]]")
    tenant, env, service = [*parts, "", ""][:3]
    fields = ("tenant", "environment", "service")
    problems = _violation_lines([
        segment_violation(field, value) for field, value in zip(fields, parts, strict=False)
    ])
    if problems:
        raise UsageError(f"invalid scope {text!r}:", problems)
    return tenant, env, service


def check_value(value: str) -> str:
    try:
        validate_json_value(value)
    except InvalidArgumentError as exc:
        raise UsageError("invalid value:", _violation_lines(list(exc.violations))) from None
    return value


def _at_least(option: str, value: int | None, minimum: int) -> None:
    if value is not None and value < minimum:
        raise UsageError(f"{option} is {value}; it must be {minimum} or more")


def _read_stdin() -> str:
    """Bytes decoded as UTF-8 whatever the locale, since values are UTF-8 JSON."""
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:
        text: str = sys.stdin.read()
        return text
    data: bytes = buffer.read()
    return _decode(data, "standard input")


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{source} is not UTF-8 text: {exc}") from None


def _read_file(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise UsageError(f"cannot read --file {path}: {exc.strerror}") from None
    return _decode(data, path)


def read_value(args: argparse.Namespace) -> str:
    """The value exactly as given (a trailing newline included): it is stored byte for byte."""
    if args.file is not None and args.value is not None:
        raise UsageError("give either VALUE or --file, not both")
    if args.file is not None:
        return check_value(_read_file(args.file))
    if args.value is None:
        raise UsageError("missing value: give VALUE, --file FILE, or - to read standard input")
    if args.value == "-":
        return check_value(_read_stdin())
    return check_value(str(args.value))


def _default_actor() -> str | None:
    actor = os.environ.get("CONFIGSVC_ACTOR")
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers): let the server say anonymous
        return None


def _metadata(actor: str | None) -> tuple[tuple[str, str], ...]:
    if actor is None:
        return ()
    if not (0 < len(actor) <= _ACTOR_MAX and actor.isascii() and actor.isprintable()
            and actor.strip()):
        raise UsageError(f"--actor must be 1 to {_ACTOR_MAX} printable ASCII characters")
    return ((ACTOR_HEADER, actor),)


# ----------------------------------------------------------------- running


def _server(args: argparse.Namespace) -> str:
    server: str = args.server or os.environ.get("CONFIGSVC_SERVER") or DEFAULT_SERVER
    return server


def _handler(command: Command) -> Callable[[argparse.Namespace], int]:
    """Give every command the same channel lifecycle, exit codes and error output."""

    def handle(args: argparse.Namespace) -> int:
        server = _server(args)
        try:
            if args.timeout <= 0:
                raise UsageError(f"--timeout is {args.timeout:g}; it must be more than 0")
            metadata = _metadata(args.actor if args.actor is not None else _default_actor())
            metadata += connect.credential_metadata(args)
            # The channel connects lazily, so a UsageError raised inside still sends nothing.
            with connect.open_channel(server, args) as channel:
                return command(args, Session(channel, metadata, args.timeout))
        except UsageError as exc:
            print(f"{args.usage_prefix}: " + "\n".join(exc.lines), file=sys.stderr)
            return 2
        except grpc.RpcError as err:
            lines = output.error_lines(err, server, args.timeout) + connect.tls_hint(err, args)
            print("\n".join(lines), file=sys.stderr)
            return 1
        except connect.SetupError as exc:
            print(f"{args.usage_prefix}: {exc}", file=sys.stderr)
            return 2

    return handle


class _Page(Protocol):
    @property
    def next_page_token(self) -> str: ...


PageT = TypeVar("PageT", bound=_Page)


def _pages(fetch: Callable[[str], PageT], token: str, follow: bool) -> Iterator[PageT]:
    """The first page, then (with ``follow``) every later one until the token runs out."""
    while True:
        page = fetch(token)
        yield page
        token = page.next_page_token
        if not follow or not token:
            return


def _more_hint(token: str) -> None:
    if token:
        print(f"more results follow: repeat with --all, or with --page-token {token}",
              file=sys.stderr)


# ---------------------------------------------------------------- commands


def _get(args: argparse.Namespace, session: Session) -> int:
    consistency = (config_pb2.READ_CONSISTENCY_STRONG if args.consistent
                   else config_pb2.READ_CONSISTENCY_MIRROR)
    request = config_pb2.GetRequest(key=parse_key(args.path), consistency=consistency,
                                    resolve_secrets=args.resolve_secrets)
    response: config_pb2.GetResponse = session.call(session.config().Get, request)
    if args.json:
        output.print_json(response)
    else:
        output.print_value(response.entry.value)
    return 0


def _put(args: argparse.Namespace, session: Session) -> int:
    key = parse_key(args.path)
    _at_least("--expected-revision", args.expected_revision, 0)
    request = config_pb2.PutRequest(key=key, value=read_value(args), reason=args.reason,
                                    expected_revision=args.expected_revision,
                                    labels=parse_labels(args.label))
    response: config_pb2.PutResponse = session.call(session.config().Put, request)
    if args.json:
        output.print_json(response)
    else:
        print(f"put {output.key_path(response.entry.key)} version {response.entry.version} "
              f"at revision {response.revision}")
    return 0


def _rm(args: argparse.Namespace, session: Session) -> int:
    key = parse_key(args.path)
    _at_least("--expected-revision", args.expected_revision, 0)
    request = config_pb2.DeleteRequest(key=key, reason=args.reason,
                                       expected_revision=args.expected_revision)
    response: config_pb2.DeleteResponse = session.call(session.config().Delete, request)
    if args.json:
        output.print_json(response)
    else:
        print(f"deleted {output.key_path(key)} (recorded as version {response.version}) "
              f"at revision {response.revision}")
    return 0


def _list_request(args: argparse.Namespace) -> config_pb2.ListRequest:
    tenant, env, service = parse_scope(args.scope)
    if args.prefix:
        problems = _violation_lines([key_violation("--prefix", args.prefix)])
        if problems:
            raise UsageError("invalid --prefix:", problems)
    _at_least("--page-size", args.page_size, 1)
    consistency = (config_pb2.READ_CONSISTENCY_STRONG if args.consistent
                   else config_pb2.READ_CONSISTENCY_MIRROR)
    request = config_pb2.ListRequest(tenant=tenant, environment=env, service=service,
                                     key_prefix=args.prefix, page_size=args.page_size,
                                     consistency=consistency, key_glob=args.glob,
                                     labels=parse_labels(args.label),
                                     updated_by=args.author or "")
    for option, field in (("since", "updated_after"), ("until", "updated_before")):
        text = getattr(args, option)
        if text:
            try:
                getattr(request, field).FromJsonString(text)
            except ValueError:
                raise UsageError(f"--{option} {text!r} is not an RFC 3339 time such as "
                                 "2026-01-31T12:00:00Z") from None
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


def _show_pages(
    args: argparse.Namespace,
    call: Callable[[Any], Any],
    request: Any,
    items: Callable[[Any], Sequence[Any]],
    row: Callable[[Any], list[str]],
    header: list[str],
    empty: str,
) -> int:
    """Fetch one page (or all with --all) and print it as JSON Lines or a table."""

    def fetch(token: str) -> Any:
        request.page_token = token
        return call(request)

    rows: list[list[str]] = []
    token = ""
    for page in _pages(fetch, args.page_token, args.all):
        if args.json:
            output.print_json_lines(items(page))
        rows += [row(item) for item in items(page)]
        token = page.next_page_token
    if not args.json:
        _print_rows(header, rows, empty)
    _more_hint(token)
    return 0


def _print_rows(header: list[str], rows: list[list[str]], empty: str) -> None:
    if rows:
        output.print_table(header, rows)
    else:
        print(f"({empty})", file=sys.stderr)


def _ls(args: argparse.Namespace, session: Session) -> int:
    stub = session.config()
    return _show_pages(
        args, lambda r: session.call(stub.List, r), _list_request(args),
        lambda page: page.entries,
        lambda e: [output.key_path(e.key), str(e.version), str(e.mod_revision)],
        ["KEY", "VERSION", "REVISION"], "no entries",
    )


def _history_row(record: config_pb2.HistoryRecord) -> list[str]:
    return [str(record.version), output.operation(record), str(record.revision),
            output.timestamp(record.update_time), record.updated_by,
            output.short_value(record.value), record.reason]


def _history(args: argparse.Namespace, session: Session) -> int:
    key = parse_key(args.path)
    _at_least("--page-size", args.page_size, 1)
    stub = session.config()
    return _show_pages(
        args, lambda r: session.call(stub.History, r),
        config_pb2.HistoryRequest(key=key, page_size=args.page_size),
        lambda page: page.records, _history_row,
        ["VERSION", "OPERATION", "REVISION", "TIME", "BY", "VALUE", "REASON"], "no history",
    )


def _rollback(args: argparse.Namespace, session: Session) -> int:
    key = parse_key(args.path)
    _at_least("--to-version", args.to_version, 1)
    _at_least("--expected-revision", args.expected_revision, 0)
    request = config_pb2.RollbackRequest(key=key, to_version=args.to_version, reason=args.reason,
                                         expected_revision=args.expected_revision)
    response: config_pb2.RollbackResponse = session.call(session.config().Rollback, request)
    if args.json:
        output.print_json(response)
    else:
        print(f"rolled back {output.key_path(key)} to version {args.to_version}: now version "
              f"{response.entry.version} at revision {response.revision}")
    return 0


def _check_tenant_name(name: str) -> str:
    problems = _violation_lines([segment_violation("name", name)])
    if problems:
        raise UsageError(f"invalid tenant name {name!r}:", problems)
    return name


def _tenant_create(args: argparse.Namespace, session: Session) -> int:
    request = tenant_pb2.CreateTenantRequest(name=_check_tenant_name(args.name),
                                             description=args.description)
    response: tenant_pb2.CreateTenantResponse = session.call(
        session.tenants().CreateTenant, request)
    if args.json:
        output.print_json(response)
    else:
        print(f"created tenant {response.tenant.name} at revision {response.revision}")
    return 0


def _tenant_ls(args: argparse.Namespace, session: Session) -> int:
    response: tenant_pb2.ListTenantsResponse = session.call(
        session.tenants().ListTenants, tenant_pb2.ListTenantsRequest())
    if args.json:
        output.print_json_lines(response.tenants)
        return 0
    rows = [[t.name, output.timestamp(t.create_time), t.created_by, t.description]
            for t in response.tenants]
    _print_rows(["NAME", "CREATED", "BY", "DESCRIPTION"], rows, "no tenants")
    return 0


def _resolve(args: argparse.Namespace, session: Session) -> int:
    tenant, environment, service = parse_scope(args.scope)
    if not (environment and service):
        raise UsageError(f"{args.scope!r} is not TENANT/ENV/SERVICE (use \"all\" for any)")
    consistency = (config_pb2.READ_CONSISTENCY_STRONG if args.consistent
                   else config_pb2.READ_CONSISTENCY_MIRROR)
    request = config_pb2.ResolveRequest(tenant=tenant, environment=environment,
                                        service=service, consistency=consistency,
                                        resolve_secrets=args.resolve_secrets)
    response: config_pb2.ResolveResponse = session.call(session.config().Resolve, request)
    if args.json:
        output.print_json(response)
        return 0
    print(json.dumps(json.loads(response.document), indent=2, ensure_ascii=False))
    if args.provenance:
        _print_rows(["PATH", "LAYER", "FROM", "REVISION"],
                    [[p.path, p.layer, output.key_path(p.key), str(p.revision)]
                     for p in response.provenance], "no leaves")
    return 0


def _tenant_get(args: argparse.Namespace, session: Session) -> int:
    request = tenant_pb2.GetTenantRequest(name=_check_tenant_name(args.name))
    response: tenant_pb2.GetTenantResponse = session.call(session.tenants().GetTenant, request)
    if args.json:
        output.print_json(response)
        return 0
    tenant = response.tenant
    print(f"name: {tenant.name}\ndescription: {tenant.description}\n"
          f"created: {output.timestamp(tenant.create_time)} by {tenant.created_by} "
          f"at revision {tenant.create_revision}")
    return 0


# ------------------------------------------------------------------ parsers


def _connection_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("connection and output")
    group.add_argument("--server", metavar="HOST:PORT",
                       help="server address (env CONFIGSVC_SERVER; default "
                            f"{DEFAULT_SERVER}, the local dev server)")
    group.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                       help="deadline of each call (default %(default)s)")
    group.add_argument("--actor", metavar="NAME",
                       help="who makes the change, recorded in history and audit "
                            "(env CONFIGSVC_ACTOR; default the OS user name)")
    group.add_argument("--json", action="store_true",
                       help="print JSON (JSON Lines for listings) instead of text")
    connect.add_options(group)
    return parent


def _add(commands: Any, name: str, command: Command, parent: argparse.ArgumentParser,
         **kwargs: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(name, parents=[parent], **kwargs)
    parser.set_defaults(handler=_handler(command), usage_prefix=parser.prog)
    return parser


def _add_write_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--expected-revision", type=int, metavar="N",
                        help="only write if the entry's mod_revision is N (0: only if absent)")
    parser.add_argument("--reason", default="", help="why; recorded in history and audit")


def _add_paging_options(parser: argparse.ArgumentParser, default: int) -> None:
    parser.add_argument("--page-size", type=int, metavar="N",
                        help=f"results per page (server default {default})")
    parser.add_argument("--page-token", default="", metavar="TOKEN",
                        help="continue from the page where an earlier listing stopped")
    parser.add_argument("--all", action="store_true", help="follow every page to the end")


def _register_config(commands: Any, parent: argparse.ArgumentParser) -> None:
    get = _add(commands, "get", _get, parent, help="print a configuration value")
    get.add_argument("path", metavar=_KEY_FORM)
    get.add_argument("--consistent", action="store_true",
                     help="reflect every write acknowledged before the call (quorum read)")
    get.add_argument("--resolve-secrets", action="store_true",
                     help="show secret plaintext instead of references (needs the "
                          "secret-read permission; audited)")

    put = _add(commands, "put", _put, parent, help="write a configuration value (JSON)")
    put.add_argument("path", metavar=_KEY_FORM)
    put.add_argument("value", nargs="?", metavar="VALUE",
                     help="JSON text, or - to read it from standard input")
    put.add_argument("--file", metavar="FILE", help="read the JSON text from FILE")
    put.add_argument("--label", action="append", default=[], metavar="NAME=VALUE",
                     help="a label stored with the value (repeat); replaces earlier labels")
    _add_write_options(put)

    rm = _add(commands, "rm", _rm, parent, help="delete a configuration value (keeps history)")
    rm.add_argument("path", metavar=_KEY_FORM)
    _add_write_options(rm)

    ls = _add(commands, "ls", _ls, parent, help="list entries of a tenant, environment or service")
    ls.add_argument("scope", metavar="TENANT[/ENV[/SERVICE]]")
    ls.add_argument("--prefix", default="", metavar="P", help="only keys starting with P")
    ls.add_argument("--glob", default="", metavar="G",
                    help="only keys matching G ('*' any characters, '?' one)")
    ls.add_argument("--label", action="append", default=[], metavar="NAME=VALUE",
                    help="only entries with this label (repeat: all must match)")
    ls.add_argument("--author", metavar="NAME", help="only entries last changed by NAME")
    ls.add_argument("--since", metavar="TIME", help="only entries changed at or after TIME")
    ls.add_argument("--until", metavar="TIME", help="only entries changed before TIME")
    ls.add_argument("--consistent", action="store_true",
                    help="reflect every write acknowledged before the call (quorum read)")
    _add_paging_options(ls, 100)

    resolve = _add(commands, "resolve", _resolve, parent,
                   help="print the effective configuration of a service in an environment")
    resolve.add_argument("scope", metavar="TENANT/ENV/SERVICE",
                         help='ENV or SERVICE may be "all"')
    resolve.add_argument("--provenance", action="store_true",
                         help="also print, for every leaf, the layer, key and revision")
    resolve.add_argument("--consistent", action="store_true",
                         help="reflect every write acknowledged before the call (quorum read)")
    resolve.add_argument("--resolve-secrets", action="store_true",
                         help="show secret plaintext instead of references (audited)")
    history = _add(commands, "history", _history, parent,
                   help="list the recorded versions of a key, newest first")
    history.add_argument("path", metavar=_KEY_FORM)
    _add_paging_options(history, 50)

    rollback = _add(commands, "rollback", _rollback, parent,
                    help="write an earlier version's value back as a new version")
    rollback.add_argument("path", metavar=_KEY_FORM)
    rollback.add_argument("--to-version", type=int, required=True, metavar="N",
                          help="the version whose value to restore")
    _add_write_options(rollback)


def _register_tenant(commands: Any, parent: argparse.ArgumentParser) -> None:
    tenant = commands.add_parser("tenant", help="create, list and describe tenants")
    sub = tenant.add_subparsers(dest="tenant_command", metavar="COMMAND", required=True)
    create = _add(sub, "create", _tenant_create, parent, help="register a tenant")
    create.add_argument("name", metavar="NAME")
    create.add_argument("--description", default="", metavar="D")
    _add(sub, "ls", _tenant_ls, parent, help="list every tenant")
    get = _add(sub, "get", _tenant_get, parent, help="describe one tenant")
    get.add_argument("name", metavar="NAME")


def register(commands: Any) -> None:
    parent = _connection_options()
    _register_config(commands, parent)
    _register_tenant(commands, parent)


#: For command modules of other features (``configsvc.cli.secrets``).
add_command = _add
connection_options = _connection_options
