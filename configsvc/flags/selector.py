"""How a flagd request names its flag set: the selector ``<tenant>/<environment>``.

flagd providers send their configured ``selector`` in the ``flagd-selector``
header on every RPC (evaluation and sync) and, for older providers, in the
deprecated ``selector`` field of the sync requests; the header wins. configsvc
reads it as ``tenant/environment`` (for example ``acme/prod``). Without a
selector the server's ``--flags-default-selector`` applies; without that the
request is INVALID_ARGUMENT, because guessing a tenant would leak flags.

The selected tenant and environment are added to the evaluation context as
``tenant`` and ``environment`` (and the ``x-configsvc-service`` header as
``service``) unless the caller already set them, so targeting rules can use
them the same way in RPC mode and, through ``sync_context``, in process.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from configsvc.errors import InvalidArgumentError
from configsvc.model.keys import segment_violation

HEADER = "flagd-selector"
SERVICE_HEADER = "x-configsvc-service"


@dataclass(frozen=True, slots=True)
class FlagSetRef:
    """A flag set's address."""

    tenant: str
    environment: str

    def __str__(self) -> str:
        return f"{self.tenant}/{self.environment}"


def parse(selector: str, field: str = "selector") -> FlagSetRef:
    """``tenant/environment``; INVALID_ARGUMENT with the expected shape otherwise."""
    parts = selector.split("/")
    if len(parts) != 2:
        raise InvalidArgumentError.single(
            field,
            f"is {selector!r}; configsvc selectors are '<tenant>/<environment>', "
            "for example 'acme/prod'",
        )
    for name, value in zip(("tenant", "environment"), parts, strict=True):
        problem = segment_violation(f"{field}.{name}", value)
        if problem:
            raise InvalidArgumentError([problem])
    return FlagSetRef(parts[0], parts[1])


def header(metadata: Iterable[tuple[str, Any]] | None, name: str) -> str:
    for key, value in metadata or ():
        if key == name and isinstance(value, str):
            return value
    return ""


def resolve(
    metadata: Iterable[tuple[str, Any]] | None, request_selector: str, default: str
) -> FlagSetRef:
    """The flag set a call addresses: header, then request field, then the server default."""
    from_header = header(metadata, HEADER)
    if from_header:
        return parse(from_header, f"metadata[{HEADER}]")
    if request_selector:
        return parse(request_selector)
    if default:
        return parse(default, "flags_default_selector")
    raise InvalidArgumentError.single(
        f"metadata[{HEADER}]",
        "is missing; set the provider's selector to "
        "'<tenant>/<environment>' (for example 'acme/prod')",
    )


def enrich(context: dict[str, Any], ref: FlagSetRef, service: str = "") -> dict[str, Any]:
    """``context`` with tenant, environment (and service) filled in where the caller left them."""
    context.setdefault("tenant", ref.tenant)
    context.setdefault("environment", ref.environment)
    if service:
        context.setdefault("service", service)
    return context
