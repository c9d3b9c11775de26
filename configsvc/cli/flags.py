"""``configsvc flags ...``: flag-set management from the command line.

Flag sets are named ``TENANT/ENV`` (the flagd selector). Every command goes
through ``configsvc.v1.FlagService`` with the connection options, exit codes
and error output of the other client commands.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from configsvc.cli import output
from configsvc.cli.toolkit import (
    Session,
    UsageError,
    add_command,
    add_group,
    add_write_options,
    at_least,
    connection_options,
    print_rows,
    read_file,
    report,
    violation_lines,
)
from configsvc.model.keys import segment_violation
from configsvc.v1 import flags_pb2, flags_pb2_grpc

_SET_FORM = "TENANT/ENV"
_BUCKETING = {
    "": flags_pb2.BUCKETING_UNSPECIFIED,
    "current": flags_pb2.BUCKETING_CURRENT,
    "legacy": flags_pb2.BUCKETING_LEGACY,
}


def parse_ref(text: str) -> flags_pb2.FlagSetRef:
    parts = text.split("/")
    if len(parts) != 2:
        raise UsageError(f"{text!r} is not {_SET_FORM}")
    problems = violation_lines(
        [segment_violation("tenant", parts[0]), segment_violation("environment", parts[1])]
    )
    if problems:
        raise UsageError(f"invalid flag set {text!r}:", problems)
    return flags_pb2.FlagSetRef(tenant=parts[0], environment=parts[1])


def _stub(session: Session) -> Any:
    return session.stub(flags_pb2_grpc.FlagServiceStub)


def _report(args: argparse.Namespace, response: Any, what: str) -> int:
    flag_set = response.flag_set
    return report(
        args,
        response,
        f"{what} {flag_set.ref.tenant}/{flag_set.ref.environment}: "
        f"version {flag_set.version} at revision {flag_set.revision}",
    )


def _write(args: argparse.Namespace) -> dict[str, Any]:
    at_least("--expected-revision", args.expected_revision, 0)
    return {"reason": args.reason, "expected_revision": args.expected_revision}


def _put(args: argparse.Namespace, session: Session) -> int:
    request = flags_pb2.PutFlagSetRequest(
        ref=parse_ref(args.flag_set),
        definition=read_file(args.file),
        bucketing=_BUCKETING[args.bucketing],
        **_write(args),
    )
    return _report(args, session.call(_stub(session).PutFlagSet, request), "stored")


def _get(args: argparse.Namespace, session: Session) -> int:
    response = session.call(
        _stub(session).GetFlagSet, flags_pb2.GetFlagSetRequest(ref=parse_ref(args.flag_set))
    )
    if args.json:
        output.print_json(response)
    else:
        print(json.dumps(json.loads(response.flag_set.definition), indent=2, ensure_ascii=False))
    return 0


def _delete(args: argparse.Namespace, session: Session) -> int:
    request = flags_pb2.DeleteFlagSetRequest(ref=parse_ref(args.flag_set), **_write(args))
    response = session.call(_stub(session).DeleteFlagSet, request)
    return report(args, response, f"deleted {args.flag_set} at revision {response.revision}")


def _state(enabled: bool) -> Any:
    def command(args: argparse.Namespace, session: Session) -> int:
        request = flags_pb2.SetFlagStateRequest(
            ref=parse_ref(args.flag_set), flag_key=args.flag, enabled=enabled, **_write(args)
        )
        response = session.call(_stub(session).SetFlagState, request)
        return _report(args, response, "enabled" if enabled else "disabled")

    return command


def parse_weights(pairs: list[str]) -> list[flags_pb2.RolloutWeight]:
    weights = []
    for pair in pairs:
        variant, sep, weight = pair.partition("=")
        if not sep or not variant or not weight.isdigit():
            raise UsageError(f"{pair!r} is not VARIANT=WEIGHT (a whole number, e.g. on=10)")
        weights.append(flags_pb2.RolloutWeight(variant=variant, weight=int(weight)))
    return weights


def _rollout(args: argparse.Namespace, session: Session) -> int:
    request = flags_pb2.SetRolloutRequest(
        ref=parse_ref(args.flag_set),
        flag_key=args.flag,
        weights=parse_weights(args.weights),
        **_write(args),
    )
    return _report(args, session.call(_stub(session).SetRollout, request), "rolled out")


def _history(args: argparse.Namespace, session: Session) -> int:
    at_least("--page-size", args.page_size, 1)
    request = flags_pb2.ListFlagSetHistoryRequest(
        ref=parse_ref(args.flag_set), page_size=args.page_size
    )
    response = session.call(_stub(session).ListFlagSetHistory, request)
    if args.json:
        output.print_json_lines(response.versions)
        return 0
    rows = [
        [
            str(v.version),
            "delete" if v.deleted else "put",
            str(v.revision),
            output.timestamp(v.update_time),
            v.updated_by,
            v.reason,
        ]
        for v in response.versions
    ]
    print_rows(["VERSION", "OPERATION", "REVISION", "TIME", "BY", "REASON"], rows, "no history")
    return 0


def _rollback(args: argparse.Namespace, session: Session) -> int:
    at_least("--to-version", args.to_version, 1)
    request = flags_pb2.RollbackFlagSetRequest(
        ref=parse_ref(args.flag_set), to_version=args.to_version, **_write(args)
    )
    return _report(args, session.call(_stub(session).RollbackFlagSet, request), "rolled back")


def _stats(args: argparse.Namespace, session: Session) -> int:
    request = flags_pb2.GetFlagStatsRequest(
        ref=parse_ref(args.flag_set), flag_key=args.flag, window_seconds=args.window
    )
    response = session.call(_stub(session).GetFlagStats, request)
    if args.json:
        output.print_json(response)
        return 0
    print_rows(
        ["FLAG", "VARIANT", "REASON", "COUNT"],
        [[s.flag_key, s.variant or "-", s.reason, str(s.count)] for s in response.stats],
        f"no evaluations in the last {response.window_seconds} s",
    )
    return 0


def register(commands: Any) -> None:
    parent = connection_options()
    sub = add_group(commands, "flags", help="manage feature flag sets (flagd format)")

    put = add_command(sub, "put", _put, parent, help="load a flagd JSON file into a flag set")
    put.add_argument("flag_set", metavar=_SET_FORM)
    put.add_argument("--file", required=True, metavar="FILE", help="flagd flag-definition JSON")
    put.add_argument(
        "--bucketing",
        choices=("", "current", "legacy"),
        default="",
        help="fractional bucketing (default: keep; new sets: current)",
    )
    add_write_options(put)

    get = add_command(sub, "get", _get, parent, help="print a flag set's flagd JSON")
    get.add_argument("flag_set", metavar=_SET_FORM)

    delete = add_command(sub, "delete", _delete, parent, help="delete a flag set (keeps history)")
    delete.add_argument("flag_set", metavar=_SET_FORM)
    add_write_options(delete)

    for name, enabled in (("enable", True), ("disable", False)):
        state = add_command(sub, name, _state(enabled), parent, help=f"{name} one flag")
        state.add_argument("flag_set", metavar=_SET_FORM)
        state.add_argument("flag", metavar="FLAG")
        add_write_options(state)

    rollout = add_command(
        sub, "rollout", _rollout, parent, help="set a flag's percentage rollout, e.g. on=10 off=90"
    )
    rollout.add_argument("flag_set", metavar=_SET_FORM)
    rollout.add_argument("flag", metavar="FLAG")
    rollout.add_argument("weights", nargs="+", metavar="VARIANT=WEIGHT")
    add_write_options(rollout)

    history = add_command(sub, "history", _history, parent, help="list versions, newest first")
    history.add_argument("flag_set", metavar=_SET_FORM)
    history.add_argument("--page-size", type=int, metavar="N", help="versions (default 50)")

    rollback = add_command(
        sub, "rollback", _rollback, parent, help="write an earlier version back as a new version"
    )
    rollback.add_argument("flag_set", metavar=_SET_FORM)
    rollback.add_argument("--to-version", type=int, required=True, metavar="N")
    add_write_options(rollback)

    stats = add_command(
        sub,
        "stats",
        _stats,
        parent,
        help="evaluation counts per flag, variant and reason (this server)",
    )
    stats.add_argument("flag_set", metavar=_SET_FORM)
    stats.add_argument("--flag", default="", metavar="FLAG", help="only this flag")
    stats.add_argument(
        "--window",
        type=int,
        default=300,
        metavar="SECONDS",
        help="window length (default %(default)s, at most 3600)",
    )
