"""Client commands for the audit trail and change events: ``audit ls|export``, ``events``.

``audit export`` streams the server's export (ExportAudit) straight to a file
or standard output, so a compliance report of any size never sits in memory.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from google.protobuf import timestamp_pb2

from configsvc.cli import output
from configsvc.cli.toolkit import (
    Session,
    UsageError,
    add_command,
    add_group,
    add_paging_options,
    at_least,
    check_prefix,
    connection_options,
    parse_scope,
    show_pages,
)
from configsvc.v1 import (
    audit_query_pb2,
    audit_query_pb2_grpc,
    config_pb2,
    events_pb2,
    events_pb2_grpc,
)

_FORMATS = {"jsonl": audit_query_pb2.EXPORT_FORMAT_JSONL, "csv": audit_query_pb2.EXPORT_FORMAT_CSV}


def _time(option: str, text: str | None) -> timestamp_pb2.Timestamp | None:
    """ISO 8601; a time without a zone is UTC."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"{option} {text!r} is not an ISO 8601 time (for example 2026-01-31T12:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def audit_filter(args: argparse.Namespace) -> audit_query_pb2.AuditFilter:
    if args.scope and args.system:
        raise UsageError("give either a TENANT[/ENV[/SERVICE]] scope or --system, not both")
    if not args.scope and not args.system:
        raise UsageError(
            "give a TENANT[/ENV[/SERVICE]] scope, or --system for the installation-wide trail"
        )
    tenant, env, service = parse_scope(args.scope) if args.scope else ("", "", "")
    prefix = check_prefix(args.prefix)
    at_least("--from-revision", args.from_revision, 0)
    at_least("--to-revision", args.to_revision, 0)
    message = audit_query_pb2.AuditFilter(
        tenant=tenant,
        environment=env,
        service=service,
        key_prefix=prefix,
        actor=args.by or "",
        start_revision=args.from_revision or 0,
        end_revision=args.to_revision or 0,
        kind=args.kind or "",
    )
    since, until = _time("--since", args.since), _time("--until", args.until)
    if since is not None:
        message.start_time.CopyFrom(since)
    if until is not None:
        message.end_time.CopyFrom(until)
    return message


def _stub(session: Session) -> Any:
    return session.stub(audit_query_pb2_grpc.AuditServiceStub)


def _row(entry: audit_query_pb2.AuditEntry) -> list[str]:
    record = entry.record
    if record.HasField("key"):
        what = output.key_path(record.key)
    else:
        what = f"{record.kind}:{record.tenant}/{record.name}"
    return [
        str(entry.revision),
        output.timestamp(record.time),
        config_pb2.Operation.Name(record.operation).removeprefix("OPERATION_"),
        what,
        record.actor,
        record.reason,
    ]


def _ls(args: argparse.Namespace, session: Session) -> int:
    at_least("--page-size", args.page_size, 1)
    request = audit_query_pb2.ListAuditRequest(filter=audit_filter(args), page_size=args.page_size)
    stub = _stub(session)
    return show_pages(
        args,
        lambda r: session.call(stub.ListAudit, r),
        request,
        lambda page: page.entries,
        _row,
        ["REVISION", "TIME", "OPERATION", "WHAT", "BY", "REASON"],
        "no audit records",
    )


def _export(args: argparse.Namespace, session: Session) -> int:
    request = audit_query_pb2.ExportAuditRequest(
        filter=audit_filter(args), format=_FORMATS[args.format]
    )
    stream = _stub(session).ExportAudit(request, timeout=args.timeout, metadata=session.metadata)
    target = open(args.output, "wb") if args.output != "-" else sys.stdout.buffer  # noqa: SIM115
    try:
        for chunk in stream:
            target.write(chunk.data)
    finally:
        if target is not sys.stdout.buffer:
            target.close()
        else:
            target.flush()
    return 0


def _status(args: argparse.Namespace, session: Session) -> int:
    stub = session.stub(events_pb2_grpc.EventServiceStub)
    response: events_pb2.GetPublisherStatusResponse = session.call(
        stub.GetPublisherStatus, events_pb2.GetPublisherStatusRequest()
    )
    if args.json:
        output.print_json(response)
        return 0
    state = "healthy" if response.healthy else f"DEGRADED: {response.reason}"
    print(
        f"publisher: {state}\nleader: {response.leader or '(none)'}"
        f"{' (this server)' if response.is_leader else ''}\n"
        f"cursor revision: {response.cursor_revision}  head revision: "
        f"{response.head_revision}  backlog: {response.backlog_revisions} revisions"
    )
    if response.is_leader:
        print(
            f"pending events: {response.pending_events}  published since elected: "
            f"{response.published_events}  topic: {response.topic}"
        )
    return 0


def _filter_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "scope",
        nargs="?",
        default="",
        metavar="TENANT[/ENV[/SERVICE]]",
        help="whose trail (ENV and SERVICE narrow it to config changes there)",
    )
    parser.add_argument(
        "--system",
        action="store_true",
        help="the installation-wide trail (API keys, role bindings, ...)",
    )
    parser.add_argument(
        "--prefix", default="", metavar="P", help="only config keys starting with P"
    )
    parser.add_argument("--by", metavar="ACTOR", help="only changes made by ACTOR")
    parser.add_argument(
        "--kind", metavar="KIND", help='only records of KIND ("config", "tenant", "secret", ...)'
    )
    parser.add_argument("--since", metavar="TIME", help="only records at or after TIME (ISO 8601)")
    parser.add_argument("--until", metavar="TIME", help="only records before TIME (ISO 8601)")
    parser.add_argument(
        "--from-revision", type=int, metavar="N", help="only records at revision N or later"
    )
    parser.add_argument(
        "--to-revision", type=int, metavar="N", help="only records at revision N or earlier"
    )


def register(commands: Any) -> None:
    parent = connection_options()
    sub = add_group(commands, "audit", help="query and export the audit trail")
    ls = add_command(sub, "ls", _ls, parent, help="list audit records, oldest first")
    _filter_options(ls)
    add_paging_options(ls, 100)
    export = add_command(
        sub, "export", _export, parent, help="write every matching record as JSON Lines or CSV"
    )
    _filter_options(export)
    export.add_argument(
        "--format",
        choices=sorted(_FORMATS),
        default="jsonl",
        help="file format (default %(default)s)",
    )
    export.add_argument(
        "-o",
        "--output",
        default="-",
        metavar="FILE",
        help="write to FILE (default: standard output)",
    )
    events_sub = add_group(commands, "events", help="change-event publisher")
    add_command(
        events_sub, "status", _status, parent, help="the publisher's leader, cursor and backlog"
    )
