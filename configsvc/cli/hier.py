"""Hierarchy commands: diff, promote, env, schema, rule, template and extends.

Same conventions as every client command (``configsvc.cli.toolkit``):
local checks first (exit 2), server errors exit 1 with their details.
``diff`` colours its rows (red: only on the left, green: only on the right,
yellow: changed) when standard output is a terminal, or with ``--color always``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from configsvc.cli import output
from configsvc.cli.toolkit import (
    Session,
    UsageError,
    add_command,
    add_group,
    connection_options,
    parse_scope,
    print_rows,
    report,
)
from configsvc.v1 import (
    environment_pb2,
    environment_pb2_grpc,
    hierarchy_pb2,
    hierarchy_pb2_grpc,
    template_pb2,
    template_pb2_grpc,
    validation_pb2,
    validation_pb2_grpc,
)

_SCOPE_FORM = "TENANT/ENV/SERVICE"
_COLOURS = {"-": "\033[31m", "+": "\033[32m", "~": "\033[33m"}
_RESET = "\033[0m"


def _full_scope(text: str) -> tuple[str, str, str]:
    tenant, environment, service = parse_scope(text)
    if not (environment and service):
        raise UsageError(f'{text!r} is not {_SCOPE_FORM} (use "all" for any)')
    return tenant, environment, service


def _use_colour(choice: str) -> bool:
    if choice == "auto":
        return sys.stdout.isatty()
    return choice == "always"


def diff_lines(response: hierarchy_pb2.DiffResponse, colour: bool) -> list[str]:
    """The rows as a person reads them: ``~ path: left -> right`` with where each came from."""
    lines = []
    for row in response.rows:
        has_left, has_right = row.HasField("left"), row.HasField("right")
        if has_left and has_right:
            mark, text = "~", f"{row.path}: {row.left} -> {row.right}"
        elif has_left:
            mark, text = "-", f"{row.path}: {row.left}"
        else:
            mark, text = "+", f"{row.path}: {row.right}"
        origins = [
            f"{side} {p.layer} {output.key_path(p.key)}@{p.revision}"
            for side, p, present in (
                ("left", row.left_provenance, has_left),
                ("right", row.right_provenance, has_right),
            )
            if present
        ]
        line = f"{mark} {text}  ({'; '.join(origins)})"
        lines.append(f"{_COLOURS[mark]}{line}{_RESET}" if colour else line)
    return lines


def _diff(args: argparse.Namespace, session: Session) -> int:
    left_tenant, left_env, left_service = _full_scope(args.left)
    right_tenant, right_env, right_service = _full_scope(args.right or args.left)
    if left_tenant != right_tenant:
        raise UsageError("both sides must be of one tenant")
    for option in ("left_revision", "right_revision"):
        if getattr(args, option) < 0:
            raise UsageError(f"--{option.replace('_', '-')} must be 0 (current) or positive")
    request = hierarchy_pb2.DiffRequest(
        tenant=left_tenant,
        left=hierarchy_pb2.DiffSide(
            environment=left_env, service=left_service, revision=args.left_revision
        ),
        right=hierarchy_pb2.DiffSide(
            environment=right_env, service=right_service, revision=args.right_revision
        ),
        mode=hierarchy_pb2.DIFF_MODE_RAW if args.raw else hierarchy_pb2.DIFF_MODE_RESOLVED,
    )
    stub = session.stub(hierarchy_pb2_grpc.HierarchyServiceStub)
    response: hierarchy_pb2.DiffResponse = session.call(stub.Diff, request)
    if args.json:
        output.print_json(response)
        return 0
    print(f"--- {args.left} (revision {response.left_revision})")
    print(f"+++ {args.right or args.left} (revision {response.right_revision})")
    lines = diff_lines(response, _use_colour(args.color))
    print("\n".join(lines) if lines else "no differences")
    return 0


def _promote(args: argparse.Namespace, session: Session) -> int:
    tenant, source, service = _full_scope(args.source)
    request = hierarchy_pb2.PromoteRequest(
        tenant=tenant,
        service=service,
        source_environment=source,
        target_environment=args.to,
        keys=args.keys,
        dry_run=args.dry_run,
        reason=args.reason,
    )
    stub = session.stub(hierarchy_pb2_grpc.HierarchyServiceStub)
    response: hierarchy_pb2.PromoteResponse = session.call(stub.Promote, request)
    if args.json:
        output.print_json(response)
        return 0
    verb = "would write" if args.dry_run else "wrote"
    print(
        f"{verb} {len(response.keys)} key(s) at revision {response.revision}: "
        f"{', '.join(response.keys) or '-'}"
    )
    lines = diff_lines(hierarchy_pb2.DiffResponse(rows=response.diff), _use_colour(args.color))
    if lines:
        print("\n".join(lines))
    return 0


def _env_create(args: argparse.Namespace, session: Session) -> int:
    tenant, name, _ = parse_scope(args.scope)
    if not name:
        raise UsageError(f"{args.scope!r} is not TENANT/ENV")
    stub = session.stub(environment_pb2_grpc.EnvironmentServiceStub)
    response = session.call(
        stub.CreateEnvironment,
        environment_pb2.CreateEnvironmentRequest(
            tenant=tenant, name=name, description=args.description, protected=args.protected
        ),
    )
    return report(args, response, f"environment {name} declared at revision {response.revision}")


def _env_ls(args: argparse.Namespace, session: Session) -> int:
    tenant, _, _ = parse_scope(args.tenant)
    stub = session.stub(environment_pb2_grpc.EnvironmentServiceStub)
    response = session.call(
        stub.ListEnvironments, environment_pb2.ListEnvironmentsRequest(tenant=tenant)
    )
    if args.json:
        output.print_json(response)
        return 0
    rows = [[e.name, "yes" if e.protected else "no", e.description] for e in response.environments]
    rows += [[name, "(undeclared)", ""] for name in response.undeclared]
    print_rows(["NAME", "PROTECTED", "DESCRIPTION"], rows, "no environments")
    return 0


def _read_json_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        json.loads(text)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read JSON from {path}: {exc}") from None
    return text


def _schema_put(args: argparse.Namespace, session: Session) -> int:
    tenant, environment, service = parse_scope(args.scope)
    stub = session.stub(validation_pb2_grpc.ValidationServiceStub)
    response = session.call(
        stub.PutSchema,
        validation_pb2.PutSchemaRequest(
            tenant=tenant,
            environment=environment,
            service=service,
            name=args.name,
            pattern=args.pattern,
            schema=_read_json_file(args.file),
            reason=args.reason,
            force=args.force,
        ),
    )
    return report(
        args,
        response,
        f"schema {args.name} version {response.schema.version} at revision {response.revision}",
    )


def _rule_put(args: argparse.Namespace, session: Session) -> int:
    tenant, environment, service = parse_scope(args.scope)
    stub = session.stub(validation_pb2_grpc.ValidationServiceStub)
    response = session.call(
        stub.PutRule,
        validation_pb2.PutRuleRequest(
            tenant=tenant,
            environment=environment,
            service=service,
            name=args.name,
            logic=_read_json_file(args.file),
            message=args.message,
            reason=args.reason,
            force=args.force,
        ),
    )
    return report(
        args,
        response,
        f"rule {args.name} version {response.rule.version} at revision {response.revision}",
    )


def _template_put(args: argparse.Namespace, session: Session) -> int:
    tenant, _, _ = parse_scope(args.tenant)
    values = json.loads(_read_json_file(args.file))
    if not isinstance(values, dict):
        raise UsageError(f"{args.file} must hold a JSON object: key name -> value")
    stub = session.stub(template_pb2_grpc.TemplateServiceStub)
    response = session.call(
        stub.PutTemplate,
        template_pb2.PutTemplateRequest(
            tenant=tenant,
            name=args.name,
            extends=args.extends,
            reason=args.reason,
            values={key: json.dumps(value) for key, value in values.items()},
        ),
    )
    return report(
        args,
        response,
        f"template {args.name}@{response.template.version} at revision {response.revision}",
    )


def _extends(args: argparse.Namespace, session: Session) -> int:
    tenant, service, _ = parse_scope(args.scope)
    if not service:
        raise UsageError(f"{args.scope!r} is not TENANT/SERVICE")
    stub = session.stub(template_pb2_grpc.TemplateServiceStub)
    response = session.call(
        stub.SetExtends,
        template_pb2.SetExtendsRequest(
            tenant=tenant, service=service, extends=args.refs, reason=args.reason
        ),
    )
    return report(
        args,
        response,
        f"{service} extends {', '.join(response.extends) or 'nothing'} (applied: "
        f"{', '.join(response.expanded) or '-'}) at revision {response.revision}",
    )


def _colour_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the rows (default: only on a terminal)",
    )


def register(commands: Any) -> None:
    parent = connection_options()
    diff = add_command(
        commands, "diff", _diff, parent, help="compare two scopes or two revisions of one scope"
    )
    diff.add_argument("left", metavar=_SCOPE_FORM)
    diff.add_argument(
        "right", nargs="?", metavar=_SCOPE_FORM, help="default: the left scope (compare revisions)"
    )
    diff.add_argument(
        "--raw",
        action="store_true",
        help="compare the stored entries of each scope, not resolved documents",
    )
    diff.add_argument("--left-revision", type=int, default=0, metavar="N")
    diff.add_argument("--right-revision", type=int, default=0, metavar="N")
    _colour_option(diff)

    promote = add_command(
        commands,
        "promote",
        _promote,
        parent,
        help="copy keys of a service from one environment to another",
    )
    promote.add_argument("source", metavar="TENANT/SOURCE_ENV/SERVICE")
    promote.add_argument("--to", required=True, metavar="ENV", help="target environment")
    promote.add_argument(
        "--key",
        dest="keys",
        action="append",
        default=[],
        metavar="KEY",
        help="a key to promote (repeat; default every key)",
    )
    promote.add_argument("--dry-run", action="store_true", help="show the diff, write nothing")
    promote.add_argument("--reason", default="", help="why; required for protected targets")
    _colour_option(promote)

    env_commands = add_group(commands, "env", help="declare and list environments")
    create = add_command(env_commands, "create", _env_create, parent, help="declare an environment")
    create.add_argument("scope", metavar="TENANT/ENV")
    create.add_argument("--description", default="")
    create.add_argument("--protected", action="store_true", help="writes into it require a reason")
    ls = add_command(env_commands, "ls", _env_ls, parent, help="list environments")
    ls.add_argument("tenant", metavar="TENANT")

    schema = add_command(
        commands,
        "schema",
        _schema_put,
        parent,
        help="bind a JSON Schema to a key pattern (new version)",
    )
    schema.add_argument("scope", metavar="TENANT[/ENV[/SERVICE]]")
    schema.add_argument("name", metavar="NAME")
    schema.add_argument("--pattern", required=True, help="key glob, e.g. 'db.*'")
    schema.add_argument("--file", required=True, help="the JSON Schema file")
    schema.add_argument("--reason", default="")
    schema.add_argument(
        "--force", action="store_true", help="store it even if stored values violate it"
    )

    template = add_command(
        commands, "template", _template_put, parent, help="store a new version of a template"
    )
    template.add_argument("tenant", metavar="TENANT")
    template.add_argument("name", metavar="NAME")
    template.add_argument("--file", required=True, help="a JSON object: key name -> value")
    template.add_argument(
        "--extends",
        action="append",
        default=[],
        metavar="NAME@VERSION",
        help="a template this one extends (repeat)",
    )
    template.add_argument("--reason", default="")

    extends = add_command(
        commands,
        "extends",
        _extends,
        parent,
        help="set the templates a service extends (none: clear)",
    )
    extends.add_argument("scope", metavar="TENANT/SERVICE")
    extends.add_argument("refs", nargs="*", metavar="NAME@VERSION")
    extends.add_argument("--reason", default="")

    rule = add_command(
        commands, "rule", _rule_put, parent, help="store a JSON Logic business rule (new version)"
    )
    rule.add_argument("scope", metavar="TENANT[/ENV[/SERVICE]]")
    rule.add_argument("name", metavar="NAME")
    rule.add_argument("--file", required=True, help="the JSON Logic file")
    rule.add_argument("--message", required=True, help="what is wrong when it is broken")
    rule.add_argument("--reason", default="")
    rule.add_argument(
        "--force", action="store_true", help="store it even if resolved documents already break it"
    )
