"""What flag evaluation does, whatever the transport: select, enrich, evaluate, count.

The flagd gRPC servicers (``configsvc.api.flagd_service``) and the OFREP HTTP adapter
(``configsvc.http.ofrep``) both call ``FlagsCore``, so the two front ends cannot drift
apart in which flag set a call means, which context a rule sees or what the statistics
count. It knows no transport: a call's headers reach it as plain ``(name, value)`` pairs
(gRPC invocation metadata and aiohttp's ``headers.items()`` both are), never as a
``grpc`` or ``aiohttp`` object.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from configsvc.flags.analytics import FlagAnalytics
from configsvc.flags.evaluator import FlagType, Resolution, evaluate
from configsvc.flags.selector import HEADER, SERVICE_HEADER, FlagSetRef, enrich, header, resolve
from configsvc.flags.store import FlagStore, StoredFlagSet

#: How often an idle EventStream carries a keep-alive (flagd's providers expect traffic).
KEEPALIVE_SECONDS = 30.0
#: A call's headers as neutral ``(name, value)`` pairs; None when it has none.
Headers = Iterable[tuple[str, Any]] | None


@dataclass(frozen=True)
class FlagsSettings:
    """What the flag services need to know about the server."""

    default_selector: str = ""
    """Flag set for calls without a selector ('' = such calls are INVALID_ARGUMENT)."""
    keepalive: float = KEEPALIVE_SECONDS
    static_context: Mapping[str, str] = field(default_factory=dict)
    """Context every evaluation gets (the caller's own attributes win), as flagd's
    ``--context-value``; in-process providers receive it in ``sync_context``."""


class FlagsCore:
    """Evaluation shared by the gRPC and OFREP front ends: select, enrich, evaluate, count."""

    def __init__(self, store: FlagStore, analytics: FlagAnalytics, settings: FlagsSettings) -> None:
        self.store = store
        self.analytics = analytics
        self.settings = settings

    def select(self, metadata: Headers, request_selector: str = "") -> FlagSetRef:
        return resolve(metadata, request_selector, self.settings.default_selector)

    def flag_set(self, ref: FlagSetRef) -> StoredFlagSet:
        return self.store.require(ref.tenant, ref.environment)

    def selection(self, metadata: Headers, request_selector: str = "") -> FlagSetRef | None:
        """The flag set a call selects, or None when it names none and there is no
        default (the auth scope reader and GetMetadata then answer without a flag set)."""
        if not (header(metadata, HEADER) or request_selector or self.settings.default_selector):
            return None
        return self.select(metadata, request_selector)

    def context(self, ref: FlagSetRef, raw: Mapping[str, Any], metadata: Headers) -> dict[str, Any]:
        context = enrich(dict(raw), ref, header(metadata, SERVICE_HEADER))
        for key, value in self.settings.static_context.items():
            context.setdefault(key, value)
        return context

    def sync_context(self, ref: FlagSetRef) -> dict[str, Any]:
        """What in-process providers add to every evaluation: static context, tenant, env."""
        return {
            **self.settings.static_context,
            "tenant": ref.tenant,
            "environment": ref.environment,
        }

    def evaluate(
        self, ref: FlagSetRef, key: str, context: Mapping[str, Any], flag_type: FlagType | None
    ) -> Resolution:
        resolution = evaluate(self.flag_set(ref).flag_set, key, context, flag_type)
        self.analytics.record(
            ref.tenant,
            ref.environment,
            key,
            resolution.variant,
            resolution.error_code or resolution.reason,
        )
        return resolution

    def evaluate_all(
        self, ref: FlagSetRef, stored: StoredFlagSet, context: Mapping[str, Any]
    ) -> list[Resolution]:
        """Every flag of ``stored`` (the caller's ``flag_set(ref)``, already looked up)."""
        results = []
        for key in stored.flag_set.flags:
            resolution = evaluate(stored.flag_set, key, context)
            self.analytics.record(
                ref.tenant,
                ref.environment,
                key,
                resolution.variant,
                resolution.error_code or resolution.reason,
            )
            results.append(resolution)
        return results


def changed_flags(before: StoredFlagSet | None, after: StoredFlagSet | None) -> dict[str, str]:
    """flag key -> "write" | "update" | "delete" between two versions of a flag set."""
    old = _raw_flags(before)
    new = _raw_flags(after)
    changes = {key: "delete" for key in old if key not in new}
    for key, value in new.items():
        if key not in old:
            changes[key] = "write"
        elif old[key] != value:
            changes[key] = "update"
    return changes


def _raw_flags(stored: StoredFlagSet | None) -> dict[str, Any]:
    if stored is None:
        return {}
    flags = stored.flag_set.flags
    return {
        key: (f.enabled, f.variants, f.default_variant, f.targeting, f.metadata)
        for key, f in flags.items()
    }
