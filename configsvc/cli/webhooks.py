"""Client commands for webhooks: ``webhook create|ls|rm|deliveries|replay``."""

from __future__ import annotations

import argparse
import os
from typing import Any

from configsvc.cli import output
from configsvc.cli.toolkit import (
    Session,
    UsageError,
    add_command,
    add_group,
    add_paging_options,
    at_least,
    check_tenant_name,
    connection_options,
    print_rows,
    report,
    show_pages,
)
from configsvc.v1 import webhooks_pb2, webhooks_pb2_grpc

_STATES = {
    "pending": webhooks_pb2.DELIVERY_STATE_PENDING,
    "succeeded": webhooks_pb2.DELIVERY_STATE_SUCCEEDED,
    "dead": webhooks_pb2.DELIVERY_STATE_DEAD,
}
SECRET_ENV = "CONFIGSVC_WEBHOOK_SECRET"


def _stub(session: Session) -> Any:
    return session.stub(webhooks_pb2_grpc.WebhookServiceStub)


def _row(hook: webhooks_pb2.Webhook) -> list[str]:
    scope = "/".join([hook.environment or "*", hook.service or "*"])
    return [hook.id, hook.url, scope, hook.key_prefix or "*", hook.description]


def _create(args: argparse.Namespace, session: Session) -> int:
    secret = os.environ.get(SECRET_ENV, "")
    if not secret:
        raise UsageError(
            f"set the signing secret in the environment variable {SECRET_ENV} "
            "(not on the command line, where other users could read it)"
        )
    hook = webhooks_pb2.Webhook(
        tenant=check_tenant_name(args.tenant),
        url=args.url,
        environment=args.env,
        service=args.service,
        key_prefix=args.prefix,
        secret=secret,
        description=args.description,
    )
    response: webhooks_pb2.CreateWebhookResponse = session.call(
        _stub(session).CreateWebhook, webhooks_pb2.CreateWebhookRequest(webhook=hook)
    )
    return report(
        args, response, f"created webhook {response.webhook.id} at revision {response.revision}"
    )


def _ls(args: argparse.Namespace, session: Session) -> int:
    response: webhooks_pb2.ListWebhooksResponse = session.call(
        _stub(session).ListWebhooks,
        webhooks_pb2.ListWebhooksRequest(tenant=check_tenant_name(args.tenant)),
    )
    if args.json:
        output.print_json_lines(response.webhooks)
        return 0
    print_rows(
        ["ID", "URL", "ENV/SERVICE", "PREFIX", "DESCRIPTION"],
        [_row(h) for h in response.webhooks],
        "no webhooks",
    )
    return 0


def _rm(args: argparse.Namespace, session: Session) -> int:
    response: webhooks_pb2.DeleteWebhookResponse = session.call(
        _stub(session).DeleteWebhook,
        webhooks_pb2.DeleteWebhookRequest(tenant=check_tenant_name(args.tenant), id=args.id),
    )
    return report(args, response, f"deleted webhook {args.id} at revision {response.revision}")


def _delivery_row(delivery: webhooks_pb2.Delivery) -> list[str]:
    state = webhooks_pb2.DeliveryState.Name(delivery.state).removeprefix("DELIVERY_STATE_")
    return [
        delivery.id,
        str(delivery.event.revision),
        state,
        str(delivery.attempts),
        str(delivery.last_status_code or "-"),
        output.timestamp(delivery.last_attempt_time),
        delivery.last_error,
    ]


def _deliveries(args: argparse.Namespace, session: Session) -> int:
    at_least("--page-size", args.page_size, 1)
    request = webhooks_pb2.ListDeliveriesRequest(
        tenant=check_tenant_name(args.tenant),
        webhook_id=args.id,
        state=_STATES[args.state] if args.state else webhooks_pb2.DELIVERY_STATE_UNSPECIFIED,
        page_size=args.page_size,
    )
    stub = _stub(session)
    return show_pages(
        args,
        lambda r: session.call(stub.ListDeliveries, r),
        request,
        lambda page: page.deliveries,
        _delivery_row,
        ["DELIVERY", "REVISION", "STATE", "ATTEMPTS", "HTTP", "LAST ATTEMPT", "ERROR"],
        "no deliveries",
    )


def _replay(args: argparse.Namespace, session: Session) -> int:
    response: webhooks_pb2.ReplayDeliveryResponse = session.call(
        _stub(session).ReplayDelivery,
        webhooks_pb2.ReplayDeliveryRequest(
            tenant=check_tenant_name(args.tenant), webhook_id=args.id, delivery_id=args.delivery
        ),
    )
    return report(args, response, f"delivery {response.delivery.id} queued again")


def register(commands: Any) -> None:
    parent = connection_options()
    sub = add_group(commands, "webhook", help="register webhooks, read their delivery log")
    create = add_command(
        sub,
        "create",
        _create,
        parent,
        help=f"register a webhook (signing secret from ${SECRET_ENV})",
    )
    create.add_argument("tenant", metavar="TENANT")
    create.add_argument("url", metavar="URL")
    create.add_argument("--env", default="", help="only changes in this environment")
    create.add_argument("--service", default="", help="only changes of this service")
    create.add_argument("--prefix", default="", help="only keys starting with this prefix")
    create.add_argument("--description", default="")
    ls = add_command(sub, "ls", _ls, parent, help="list a tenant's webhooks")
    ls.add_argument("tenant", metavar="TENANT")
    rm = add_command(sub, "rm", _rm, parent, help="delete a webhook")
    rm.add_argument("tenant", metavar="TENANT")
    rm.add_argument("id", metavar="ID")
    deliveries = add_command(
        sub,
        "deliveries",
        _deliveries,
        parent,
        help="a webhook's delivery log (--state dead: the dead letters)",
    )
    deliveries.add_argument("tenant", metavar="TENANT")
    deliveries.add_argument("id", metavar="ID")
    deliveries.add_argument("--state", choices=sorted(_STATES))
    add_paging_options(deliveries, 100)
    replay = add_command(sub, "replay", _replay, parent, help="send a delivery again")
    replay.add_argument("tenant", metavar="TENANT")
    replay.add_argument("id", metavar="ID")
    replay.add_argument("delivery", metavar="DELIVERY")
