"""What every client command module shares: the session, local checks, paging and parsers.

A command is a function ``(args, session) -> exit code`` registered with
:func:`add_command`, which gives it the connection options, one channel
lifecycle and the same exit codes and error output as every other command:

* 0: done;
* 1: the server (or the network) refused; the status code, message, decoded
  ``google.rpc`` details and a hint are printed (``configsvc.cli.output``);
* 2: the command line is wrong (:class:`UsageError`) or a credential or
  certificate file cannot be read; nothing was sent.

Everything a command can check without the server is checked before the first
call, with the server's own grammar (``configsvc.model``), so a typo never costs
a round trip or reaches the audit log as a rejected write. A command module
(``configsvc.cli.client``, ``flags``, ``hier``, ...) imports only these public
names; nothing here knows about any one service.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import grpc
from google.protobuf import message

from configsvc.cli import connect, output
from configsvc.errors import FieldViolation
from configsvc.model.keys import key_violation, segment_violation
from configsvc.rpc.requests import ACTOR_HEADER

DEFAULT_SERVER = "localhost:50051"
DEFAULT_TIMEOUT = 10.0
_ACTOR_MAX = 256


class UsageError(Exception):
    """A mistake in the command line, reported before anything is sent (exit code 2)."""

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.lines = [message, *(details or [])]


@dataclass(frozen=True)
class Session:
    """One channel plus the per-call settings every RPC of a command shares."""

    channel: Any
    metadata: tuple[tuple[str, str], ...]
    timeout: float

    def stub(self, factory: Any) -> Any:
        """A generated ``...Stub`` class bound to this session's channel."""
        return factory(self.channel)

    def call(self, method: Any, request: Any) -> Any:
        """One unary call with the session's deadline and metadata (actor, credential)."""
        return method(request, timeout=self.timeout, metadata=self.metadata)


Command = Callable[[argparse.Namespace, Session], int]


# ------------------------------------------------------------ local checks


def violation_lines(violations: Sequence[FieldViolation | None]) -> list[str]:
    """The ``  field: description`` detail lines of a :class:`UsageError`."""
    return [f"  {v.field}: {v.description}" for v in violations if v is not None]


def parse_scope(text: str) -> tuple[str, str, str]:
    """TENANT[/ENV[/SERVICE]]; a trailing '/' is forgiven since shells complete it."""
    parts = text.rstrip("/").split("/")
    if len(parts) > 3:
        raise UsageError(f"{text!r} is not a scope; expected TENANT[/ENV[/SERVICE]]")
    tenant, env, service = [*parts, "", ""][:3]
    fields = ("tenant", "environment", "service")
    problems = violation_lines(
        [segment_violation(field, value) for field, value in zip(fields, parts, strict=False)]
    )
    if problems:
        raise UsageError(f"invalid scope {text!r}:", problems)
    return tenant, env, service


def check_prefix(prefix: str) -> str:
    """A ``--prefix`` option: empty (every key) or the start of a valid key name."""
    if prefix:
        problems = violation_lines([key_violation("--prefix", prefix)])
        if problems:
            raise UsageError("invalid --prefix:", problems)
    return prefix


def check_tenant_name(name: str) -> str:
    """A tenant name argument, checked with the server's segment grammar."""
    problems = violation_lines([segment_violation("name", name)])
    if problems:
        raise UsageError(f"invalid tenant name {name!r}:", problems)
    return name


def at_least(option: str, value: int | None, minimum: int) -> None:
    """An optional number option (None: not given) must be ``minimum`` or more."""
    if value is not None and value < minimum:
        raise UsageError(f"{option} is {value}; it must be {minimum} or more")


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{source} is not UTF-8 text: {exc}") from None


def read_stdin() -> str:
    """Bytes decoded as UTF-8 whatever the locale, since values are UTF-8 JSON."""
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:
        text: str = sys.stdin.read()
        return text
    data: bytes = buffer.read()
    return _decode(data, "standard input")


def read_file(path: str) -> str:
    """A ``--file`` option's content as UTF-8 text, unchanged (a trailing newline included)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise UsageError(f"cannot read --file {path}: {exc.strerror}") from None
    return _decode(data, path)


# ----------------------------------------------------------------- running


def _default_actor() -> str | None:
    actor = os.environ.get("CONFIGSVC_ACTOR")
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers): let the server say anonymous
        return None


def _actor_metadata(actor: str | None) -> tuple[tuple[str, str], ...]:
    if actor is None:
        return ()
    if not (
        0 < len(actor) <= _ACTOR_MAX and actor.isascii() and actor.isprintable() and actor.strip()
    ):
        raise UsageError(f"--actor must be 1 to {_ACTOR_MAX} printable ASCII characters")
    return ((ACTOR_HEADER, actor),)


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
            metadata = _actor_metadata(args.actor if args.actor is not None else _default_actor())
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


# ---------------------------------------------------------------- printing


def report(args: argparse.Namespace, response: message.Message, text: str) -> int:
    """Print the response as JSON with ``--json``, else the sentence for a person; exit 0."""
    if args.json:
        output.print_json(response)
    else:
        print(text)
    return 0


def print_rows(header: list[str], rows: list[list[str]], empty: str) -> None:
    """A table, or ``(empty)`` on standard error so a script reading the table sees none."""
    if rows:
        output.print_table(header, rows)
    else:
        print(f"({empty})", file=sys.stderr)


class _Page(Protocol):
    @property
    def next_page_token(self) -> str: ...


_PageT = TypeVar("_PageT", bound=_Page)


def _pages(fetch: Callable[[str], _PageT], token: str, follow: bool) -> Iterator[_PageT]:
    """The first page, then (with ``follow``) every later one until the token runs out."""
    while True:
        page = fetch(token)
        yield page
        token = page.next_page_token
        if not follow or not token:
            return


def show_pages(
    args: argparse.Namespace,
    call: Callable[[Any], Any],
    request: Any,
    items: Callable[[Any], Sequence[Any]],
    row: Callable[[Any], list[str]],
    header: list[str],
    empty: str,
) -> int:
    """Fetch one page (or all with --all) and print it as JSON Lines or a table.

    For a command registered with :func:`add_paging_options`; a listing that
    stopped early says on standard error how to go on.
    """

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
        print_rows(header, rows, empty)
    if token:
        print(
            f"more results follow: repeat with --all, or with --page-token {token}", file=sys.stderr
        )
    return 0


# ------------------------------------------------------------------ parsers


def connection_options() -> argparse.ArgumentParser:
    """The parent parser of every client command: server, deadline, actor, output, credentials."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("connection and output")
    group.add_argument(
        "--server",
        metavar="HOST:PORT",
        help="server address (env CONFIGSVC_SERVER; default "
        f"{DEFAULT_SERVER}, the local dev server)",
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="deadline of each call (default %(default)s)",
    )
    group.add_argument(
        "--actor",
        metavar="NAME",
        help="who makes the change, recorded in history and audit "
        "(env CONFIGSVC_ACTOR; default the OS user name)",
    )
    group.add_argument(
        "--json", action="store_true", help="print JSON (JSON Lines for listings) instead of text"
    )
    connect.add_options(group)
    return parent


def add_group(commands: Any, name: str, help: str) -> Any:
    """A command with subcommands (``configsvc NAME COMMAND``).

    Returns the subparsers to give :func:`add_command`; a subcommand is required,
    so ``configsvc NAME`` alone prints the usage.
    """
    group = commands.add_parser(name, help=help)
    return group.add_subparsers(dest=f"{name}_command", metavar="COMMAND", required=True)


def add_command(
    commands: Any, name: str, command: Command, parent: argparse.ArgumentParser, **kwargs: Any
) -> argparse.ArgumentParser:
    """Register ``command`` as subcommand ``name`` of ``commands`` (argparse's subparsers).

    ``parent`` is :func:`connection_options` (made once per command group);
    ``kwargs`` go to ``add_parser`` (``help=...``).
    """
    parser: argparse.ArgumentParser = commands.add_parser(name, parents=[parent], **kwargs)
    parser.set_defaults(handler=_handler(command), usage_prefix=parser.prog)
    return parser


def add_write_options(parser: argparse.ArgumentParser) -> None:
    """``--expected-revision`` and ``--reason``, the options of every write."""
    parser.add_argument(
        "--expected-revision",
        type=int,
        metavar="N",
        help="only write if the entry's mod_revision is N (0: only if absent)",
    )
    parser.add_argument("--reason", default="", help="why; recorded in history and audit")


def add_paging_options(parser: argparse.ArgumentParser, default: int) -> None:
    """``--page-size``, ``--page-token`` and ``--all``, read by :func:`show_pages`."""
    parser.add_argument(
        "--page-size", type=int, metavar="N", help=f"results per page (server default {default})"
    )
    parser.add_argument(
        "--page-token",
        default="",
        metavar="TOKEN",
        help="continue from the page where an earlier listing stopped",
    )
    parser.add_argument("--all", action="store_true", help="follow every page to the end")
