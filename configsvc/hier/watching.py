"""Resolved-view watches: the effective document of (service, environment) as it changes.

A view is woken by the mirror's listeners only when a change can alter its
document: a config key of its tenant whose environment is E or "all" and whose
service is S or "all", a template record of its tenant, or the extends list
of S. Woken views re-resolve and send a JSON patch when the document really
changed (a write of an identical value, or one hidden by a higher layer,
sends nothing). Wake-ups coalesce: a view that falls behind skips to the
newest document, so a slow reader costs one pending flag, never a queue.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from configsvc.errors import InvalidArgumentError, StreamEndedError
from configsvc.hier import records
from configsvc.hier.resolver import MirrorSource, resolve_scope
from configsvc.hier.state import StateCache
from configsvc.model.keys import ALL, require_segment
from configsvc.resolve import Resolved, canonical_json, json_patch
from configsvc.store.keyspace import Keyspace
from configsvc.store.mirror import ChangeBatch, RecordBatch
from configsvc.store.ports import MirrorPort
from configsvc.v1 import watch_pb2
from configsvc.watch import wire


@dataclass(eq=False)
class View:
    """One resolved-view stream: what it watches and a coalescing wake-up flag."""

    tenant: str
    environment: str
    service: str
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    owner: object = None
    """Who opened it (the auth ``Caller``), for ending it when its grants change."""
    reset: str = ""
    """Set (with ``wake``) to end the stream with a permissions-changed reset."""


def resolved_selector(request: watch_pb2.WatchRequest) -> View | None:
    """The view a request asks for, or None for an ordinary entry watch."""
    if not any(s.resolved for s in request.selectors):
        return None
    if len(request.selectors) != 1:
        raise InvalidArgumentError.single(
            "selectors", "a resolved selector must be the only selector of its stream"
        )
    selector = request.selectors[0]
    if selector.keys or selector.key_prefixes:
        raise InvalidArgumentError.single(
            "selectors[0].keys", "a resolved view takes no keys or key prefixes"
        )
    if request.start_revision:
        raise InvalidArgumentError.single(
            "start_revision",
            "resolved views always start with the whole document; reconnect without start_revision",
        )
    return View(
        require_segment("selectors[0].tenant", selector.tenant),
        require_segment("selectors[0].environment", selector.environment),
        require_segment("selectors[0].service", selector.service),
    )


class ResolvedViews:
    """Every open resolved-view stream of this process, woken by mirror changes."""

    def __init__(
        self, mirror: MirrorPort, ks: Keyspace, states: StateCache, lost_etcd_grace: float = 3.0
    ) -> None:
        self._mirror = mirror
        self._ks = ks
        self._states = states
        self._views: dict[View, tuple[bytes, bytes]] = {}
        """Each open view -> the record keys that wake it (its tenant's template prefix,
        its service's extends key), built once: record batches come with every write."""
        self._closing = ""
        self._lost_grace = lost_etcd_grace
        self._lost_timer: asyncio.TimerHandle | None = None
        mirror.add_change_listener(self._on_change)
        mirror.add_record_listener(self._on_records)
        mirror.add_sync_listener(self._on_sync)

    def __len__(self) -> int:
        return len(self._views)

    def _on_change(self, batch: ChangeBatch) -> None:
        for view in self._views:
            if any(
                key.tenant == view.tenant
                and key.environment in (view.environment, ALL)
                and key.service in (view.service, ALL)
                for key, _ in batch.changes
            ):
                view.wake.set()

    def _on_records(self, batch: RecordBatch) -> None:
        for view, (templates, extends) in self._views.items():
            if any(raw.startswith(templates) or raw == extends for raw, _ in batch.changes):
                view.wake.set()

    def _on_sync(self, synced: bool) -> None:
        """Views cannot see changes while etcd is lost: end them if it stays lost."""
        if self._lost_timer is not None:
            self._lost_timer.cancel()
            self._lost_timer = None
        if not synced:
            self._lost_timer = asyncio.get_running_loop().call_later(
                self._lost_grace,
                self._end_all,
                "this server has lost etcd; reconnect (to another replica)",
            )
        elif not self._closing.startswith("server shutting"):
            self._closing = ""

    def _end_all(self, reason: str) -> None:
        self._closing = reason
        for view in self._views:
            view.wake.set()

    def reset_where(self, predicate: Callable[[object], bool], message: str) -> int:
        """End every view whose owner ``predicate`` picks with a RESET (as entry watches
        do when their caller's grants change); the client re-opens and is re-admitted."""
        count = 0
        for view in self._views:
            if not view.reset and predicate(view.owner):
                view.reset = message
                view.wake.set()
                count += 1
        return count

    def shutdown(self) -> None:
        """End every view stream (the client resumes on another replica)."""
        self._end_all("server shutting down; reconnect to another replica")

    def _resolve(self, view: View) -> Resolved:
        return resolve_scope(
            MirrorSource(self._mirror, self._ks, view.tenant),
            self._states.get(view.tenant),
            view.environment,
            view.service,
        )

    async def stream(self, view: View, write: Callable[[bytes], Awaitable[None]]) -> None:
        """Send the document, then a patch per change, until the stream or server ends."""
        if self._closing:
            raise StreamEndedError(self._closing, self._mirror.revision + 1)
        self._views[view] = (
            self._ks.record_prefix(view.tenant, records.TEMPLATE),
            records.plain_key(self._ks, view.tenant, records.EXTENDS, view.service),
        )
        try:
            current = self._resolve(view)
            await write(_message(self._mirror.revision, current, document=True))
            while True:
                await view.wake.wait()
                view.wake.clear()
                if self._closing:
                    raise StreamEndedError(self._closing, self._mirror.revision + 1)
                if view.reset:
                    await write(
                        wire.reset(
                            watch_pb2.RESET_REASON_PERMISSIONS_CHANGED,
                            0,
                            self._mirror.revision,
                            view.reset,
                        )
                    )
                    return
                latest = self._resolve(view)
                if latest.canonical_json() != current.canonical_json():
                    await write(
                        _message(
                            self._mirror.revision,
                            latest,
                            patch=canonical_json(json_patch(current, latest)),
                        )
                    )
                    current = latest
        finally:
            self._views.pop(view, None)


def _message(
    revision: int, resolved: Resolved, *, document: bool = False, patch: str = ""
) -> bytes:
    text = resolved.canonical_json()
    view = watch_pb2.ResolvedView(
        revision=revision,
        document=text if document else "",
        patch=patch,
        last_change_revision=resolved.revision,
        document_digest=hashlib.sha256(text.encode()).hexdigest(),
    )
    return bytes(watch_pb2.WatchResponse(resolved=view).SerializeToString())
