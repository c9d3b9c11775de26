"""The configsvc.v1.WatchService servicer.

Registered with a pass-through response serializer (``raw_responses``): the
hub hands over messages already encoded (once per change, shared by every
stream that wants it), so gRPC must not encode them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

from google.protobuf.message import DecodeError

from configsvc.errors import (
    InvalidArgumentError,
    PermissionDeniedError,
    StreamEndedError,
)
from configsvc.hier.watching import ResolvedViews, View, resolved_selector
from configsvc.model.grants import CONFIG_READ, Scope
from configsvc.rpc import principal, requests
from configsvc.rpc.context import CallContext
from configsvc.secrets import SecretsRuntime
from configsvc.secrets.stream import ResolvingStream
from configsvc.store.mirror import Mirror
from configsvc.store.tenants import require_tenant
from configsvc.v1 import watch_pb2
from configsvc.watch import selectors, wire
from configsvc.watch.history import History
from configsvc.watch.hub import End, Subscription, WatchHub


class WatchService:
    """Implements WatchService.Watch; see watch.proto for the stream contract."""

    def __init__(
        self,
        mirror: Mirror,
        hub: WatchHub,
        sync_timeout: float = 5.0,
        resolved: ResolvedViews | None = None,
        secrets: SecretsRuntime | None = None,
    ) -> None:
        self._mirror = mirror
        self._hub = hub
        self._sync_timeout = sync_timeout
        self._resolved = resolved
        self._secrets = secrets

    async def Watch(self, data: bytes, context: CallContext) -> None:
        """Writes with ``context.write`` rather than yielding: a coroutine is one frame
        per stream where an async generator (plus the error wrapper's) is two. The
        request arrives as bytes (``raw_requests``) and is decoded in ``_parse``, so
        only its small parts live as long as the stream."""
        request = _decode(data)
        view = resolved_selector(request) if self._resolved is not None else None
        chosen, start_revision, send_snapshot = _parse(request)
        resolve_secrets = request.resolve_secrets
        del request
        self._mirror.require_available(allow_stale=False)
        if view is not None and self._resolved is not None:
            await self._require_tenants((view.tenant,))
            await self._stream_view(view, context)
            return
        # The hub's shared copy of these selectors: this frame lives as long as the
        # stream, so it must not keep a private one (about 220 bytes per idle stream).
        shape = self._hub.shape(chosen)
        del chosen
        tenants = shape.tenants
        await self._require_tenants(tenants)
        resolving = None
        if self._secrets is not None and resolve_secrets:
            resolving = self._secrets.stream(requests.actor(context))
            await resolving.authorize(tenants)
        if start_revision - 1 > self._mirror.revision and await self._ahead_of_etcd(
            start_revision, context
        ):
            return
        caller = principal.current()
        sub, first = self._hub.open(
            shape,
            start_revision=start_revision,
            send_snapshot=send_snapshot,
            access=caller.access if caller else None,
            owner=caller,
            peer=context.peer(),
        )
        _end_with_credential(sub, caller)
        sub.sender = asyncio.current_task()
        if resolving is not None:
            resolving.attach(sub, resumed=not send_snapshot)
        try:
            if await self._send_first(sub, first, start_revision, context, resolving):
                return
            del first
            message: bytes | End | None
            while True:
                message = sub.pop()
                if message is None:
                    await sub.wakeup()
                    continue
                if isinstance(message, End):
                    if message.message:
                        raise StreamEndedError(message.message, message.resume_revision)
                    return
                if resolving is not None:
                    message = await self._resolve(sub, message, resolving)
                await context.write(message)
        except asyncio.CancelledError as cancelled:
            ended = self._hub.give_up(sub, cancelled)
            if ended is None:
                raise
            raise ended from None
        finally:
            self._hub.close(sub)
            if resolving is not None:
                resolving.detach()

    async def _send_first(
        self,
        sub: Subscription,
        first: Iterator[bytes | History],
        start_revision: int,
        context: CallContext,
        resolving: ResolvingStream | None,
    ) -> bool:
        """Send a stream's first messages (a coroutine of its own: it ends before the stream
        idles, so it costs an idle stream nothing). True when the stream must end: its
        history replay could not complete and ended with a RESET. Given up on (the client
        stopped reading) in here, the stream ends with where these messages stopped."""
        last: bytes | None = None
        try:
            for message in first:
                if isinstance(message, History):
                    # Closed at once if a write fails: that also ends its etcd watch.
                    async with contextlib.aclosing(aiter(message)) as replay:
                        async for item in replay:
                            out = item if resolving is None else await resolving.transform(item)
                            last = item  # handed to gRPC from here on
                            await context.write(out)
                    if message.reset:
                        return True
                    continue
                out = message if resolving is None else await resolving.transform(message)
                last = message
                await context.write(out)
        except asyncio.CancelledError as cancelled:
            resume = start_revision if last is None else (wire.resume_after(last) or 0)
            ended = self._hub.give_up(sub, cancelled, resume)
            if ended is None:
                raise
            raise ended from None
        return False

    async def _resolve(
        self, sub: Subscription, message: bytes, resolving: ResolvingStream
    ) -> bytes:
        """``message`` with its secrets resolved. Given up on (the client stopped reading)
        while Vault answers, the stream resumes at this message: it never reached gRPC."""
        try:
            return await resolving.transform(message)
        except asyncio.CancelledError as cancelled:
            ended = self._hub.give_up(sub, cancelled, wire.resume_point(message))
            if ended is None:
                raise
            raise ended from None

    async def _ahead_of_etcd(self, start_revision: int, context: CallContext) -> bool:
        """This replica lags the one the client came from, or the client is ahead of etcd
        itself (restore, other cluster): catch up with etcd to know which. True (after a
        RESUME_AHEAD reset) when the client is ahead of etcd."""
        current = await self._mirror.sync(self._sync_timeout)
        if start_revision - 1 <= current:
            return False
        await context.write(
            wire.reset(
                watch_pb2.RESET_REASON_RESUME_AHEAD,
                0,
                current,
                f"revision {start_revision - 1} is ahead of etcd ({current}): etcd "
                "was restored or the client's state is from another cluster; re-snapshot",
            )
        )
        return True

    async def _require_tenants(self, tenants: tuple[str, ...]) -> None:
        """NOT_FOUND for a tenant this replica does not know, after catching up with etcd:
        it may have been created through another replica a moment ago (only on this miss
        path)."""
        if any(self._mirror.tenant(t) is None for t in tenants):
            await self._mirror.sync(self._sync_timeout)
        for tenant in tenants:
            require_tenant(self._mirror, tenant)

    async def _stream_view(self, view: View, context: CallContext) -> None:
        """A resolved view merges every layer of (tenant, E, S): the caller needs read on
        that whole scope (as Resolve does), not just some keys of it. The stream ends
        with a RESET when the caller's grants change or its credential expires."""
        assert self._resolved is not None
        caller = principal.current()
        timer = None
        if caller is not None:
            scope = Scope(view.tenant, view.environment, view.service)
            if not caller.access.allows(CONFIG_READ, scope):
                raise PermissionDeniedError(
                    f"{caller.principal.name} lacks {CONFIG_READ} on tenant={view.tenant} "
                    f"environment={view.environment} service={view.service} (all keys) for "
                    "a resolved view; ask an admin for a role binding (configsvc auth bind)"
                )
            view.owner = caller
            if caller.principal.expires_at is not None:
                timer = asyncio.get_running_loop().call_later(
                    max(0.0, caller.principal.expires_at - time.time()),
                    self._resolved.reset_where,
                    lambda owner: owner is caller,
                    "the credential expired; re-open the stream with a valid one",
                )
        try:
            await self._resolved.stream(view, context.write)
        finally:
            if timer is not None:
                timer.cancel()


def _end_with_credential(sub: Subscription, caller: principal.Caller | None) -> None:
    """The stream ends (the client resumes and re-authenticates) when its credential
    does; the hub names that reason when the deadline it reaches is the credential's."""
    if caller is not None and caller.principal.expires_at is not None:
        left = caller.principal.expires_at - time.time()
        sub.deadline = min(sub.deadline, time.monotonic() + left)


def _decode(data: bytes) -> watch_pb2.WatchRequest:
    try:
        return watch_pb2.WatchRequest.FromString(data)
    except DecodeError:
        raise InvalidArgumentError.single("request", "is not a valid WatchRequest") from None


def _parse(request: watch_pb2.WatchRequest) -> tuple[tuple[selectors.Selector, ...], int, bool]:
    """Validate a WatchRequest; the caller drops the message itself."""
    chosen = selectors.parse(request.selectors)
    if request.start_revision < 0:
        raise InvalidArgumentError.single(
            "start_revision", f"is {request.start_revision}; revisions are 0 or positive"
        )
    if request.start_revision and request.send_snapshot:
        raise InvalidArgumentError.single(
            "start_revision",
            "cannot be combined with send_snapshot: a snapshot starts "
            "at the current revision; resume without one",
        )
    return chosen, request.start_revision, request.send_snapshot
