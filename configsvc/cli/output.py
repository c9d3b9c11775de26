"""Rendering for the client commands: JSON for programs, text for people.

JSON output is the ProtoJSON mapping of the response messages (field names as
in the proto, every field present even when zero) so scripts can rely on one
shape whatever the values are. Integers below 2^53 are written as numbers
rather than ProtoJSON's quoted strings, because revisions and versions are
what scripts compare; ``value`` stays a JSON string holding the stored text,
so 64-bit integers inside it survive any JSON parser unchanged.

Errors are printed from the ``grpc-status-details-bin`` trailer the server
attaches (see ``configsvc.rpc.status``), so what a program can act on (field
names, the current revision) is also what a person reads.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC
from typing import Any

from google.protobuf import json_format, message, timestamp_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from configsvc.v1 import config_pb2

VALUE_COLUMN_MAX = 40


# ---------------------------------------------------------------------- JSON


def to_json(msg: message.Message, *, indent: int | None = 2) -> str:
    """ProtoJSON with proto field names, zero fields present and small integers unquoted."""
    text: str = json_format.MessageToJson(
        msg,
        preserving_proto_field_name=True,
        indent=indent,
        always_print_fields_with_no_presence=True,
        unquote_int64_if_possible=True,
    )
    return text


def print_json(msg: message.Message) -> None:
    """One response as indented JSON (``--json``)."""
    print(to_json(msg))


def print_json_lines(messages: Iterable[message.Message]) -> None:
    """One compact object per line, so output can be streamed page by page."""
    for msg in messages:
        print(to_json(msg, indent=None))


# ---------------------------------------------------------------------- text


def key_path(key: config_pb2.ConfigKey) -> str:
    """The same TENANT/ENV/SERVICE/KEY form the commands accept, so it can be pasted back."""
    return f"{key.tenant}/{key.environment}/{key.service}/{key.key}"


def timestamp(ts: timestamp_pb2.Timestamp) -> str:
    """UTC to the second for a table cell; ``-`` for an unset time."""
    if not ts.seconds and not ts.nanos:
        return "-"
    return ts.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def operation(record: config_pb2.HistoryRecord) -> str:
    """``PUT``, ``DELETE`` or ``ROLLBACK(to N)``: which version a rollback restored matters."""
    name = config_pb2.Operation.Name(record.operation).removeprefix("OPERATION_")
    if record.operation == config_pb2.OPERATION_ROLLBACK:
        return f"{name}(to {record.rolled_back_to})"
    return name


def short_value(value: str) -> str:
    """Values can be large, multi-line documents; a table cell only hints at them."""
    flat = " ".join(value.split())
    if len(flat) <= VALUE_COLUMN_MAX:
        return flat
    return flat[: VALUE_COLUMN_MAX - 3] + "..."


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Columns padded to their widest cell; the last one is left ragged (it may be long)."""
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)]
        print("  ".join([*cells, row[-1]]).rstrip())


def print_value(value: str) -> None:
    """Print the stored text unchanged, adding a newline only when it lacks one."""
    sys.stdout.write(value if value.endswith("\n") else value + "\n")


# -------------------------------------------------------------------- errors


def _bad_request(detail: Any, _message: str) -> list[str]:
    return [f"  {v.field}: {v.description}" for v in detail.field_violations]


def _error_info(detail: Any, _message: str) -> list[str]:
    lines = [f"  reason: {detail.reason}"] if detail.reason else []
    return lines + [f"  {name}: {value}" for name, value in sorted(detail.metadata.items())]


def _resource_info(detail: Any, _message: str) -> list[str]:
    return [f"  {detail.resource_type}: {detail.resource_name}"]


def _precondition(detail: Any, message: str) -> list[str]:
    """The server puts the message itself in here; repeating it would only add noise."""
    return [f"  {v.type}: {v.description}" for v in detail.violations if v.description != message]


def _retry_info(detail: Any, _message: str) -> list[str]:
    delay = detail.retry_delay.seconds + detail.retry_delay.nanos / 1e9
    return [f"  retry after {delay:g}s"]


_RENDERERS: tuple[tuple[Any, Callable[[Any, str], list[str]]], ...] = (
    (error_details_pb2.BadRequest, _bad_request),
    (error_details_pb2.ErrorInfo, _error_info),
    (error_details_pb2.ResourceInfo, _resource_info),
    (error_details_pb2.PreconditionFailure, _precondition),
    (error_details_pb2.RetryInfo, _retry_info),
)


def _detail_lines(packed: Any, message: str) -> list[str]:
    for cls, render in _RENDERERS:
        if packed.Is(cls.DESCRIPTOR):
            detail = cls()
            packed.Unpack(detail)
            return render(detail, message)
    return [f"  ({packed.type_url})"]


def status_details(err: Any) -> list[Any]:
    """The packed google.rpc details of a failed call; none when the trailer is absent."""
    try:
        status = rpc_status.from_call(err)
    except ValueError:  # trailer contradicts the call's own code/message
        return []
    return list(status.details) if status is not None else []


def _backend(details: Sequence[Any]) -> str | None:
    """Which backend the server reported down: UNAVAILABLE from the server, not the network."""
    for packed in details:
        if packed.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            packed.Unpack(info)
            if "backend" in info.metadata:
                backend: str = info.metadata["backend"]
                return backend
    return None


def _hint(code: str, details: Sequence[Any], server: str, timeout: float) -> list[str]:
    if code == "UNAVAILABLE":
        backend = _backend(details)
        if backend is not None:
            return [f"  the server at {server} is up but cannot reach {backend}; retry shortly"]
        return [f"  is the server running at {server}? (start one with: make run)"]
    if code == "DEADLINE_EXCEEDED":
        return [f"  no answer from {server} within {timeout:g}s; retry or raise --timeout"]
    return []


def error_lines(err: Any, server: str, timeout: float) -> list[str]:
    """``configsvc: CODE: message``, then the decoded details, then a hint if one helps."""
    code = err.code().name
    message = err.details()
    details = status_details(err)
    lines = [f"configsvc: {code}: {message}"]
    for packed in details:
        lines.extend(_detail_lines(packed, message))
    return lines + _hint(code, details, server, timeout)
