"""Assembles authentication for one server process and keeps it current.

Owns the key verifier, the bindings, the limits, the admission function every
transport calls (``admission``; the gRPC interceptor around it is built by the server,
``configsvc.api.interceptor``, since transports sit above the domain), the one-time
bootstrap of a new installation, and the record listener that resets
open watch streams whose caller lost grants or credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from configsvc.auth.admin import BOOTSTRAP_MARKER, AuthAdmin
from configsvc.auth.admission import HTTP, Admission, Authenticator, Scoper
from configsvc.auth.apikeys import ApiKeys
from configsvc.auth.bearer import JwtVerifier
from configsvc.auth.bindings import Bindings
from configsvc.auth.limits import Quotas, StreamCaps, TokenBuckets
from configsvc.auth.secrets_policy import RbacSecretPolicy
from configsvc.auth.settings import AUTH_OFF, AuthSettings, ServerTLS
from configsvc.errors import BackendUnavailableError, ConflictError, DeadlineError
from configsvc.model.grants import Scope
from configsvc.rpc.principal import Caller
from configsvc.store.keyspace import Keyspace
from configsvc.store.mirror import Mirror, RecordBatch
from configsvc.store.writer import Writer
from configsvc.v1 import watch_pb2
from configsvc.watch.hub import Subscription, WatchHub

log = logging.getLogger(__name__)


class AuthRuntime:
    """Everything auth for one ``ConfigServer``."""

    def __init__(
        self,
        settings: AuthSettings,
        tls: ServerTLS | None,
        mirror: Mirror,
        keyspace: Keyspace,
        writer: Writer,
        hub: WatchHub,
    ) -> None:
        self.settings = settings
        self.enabled = settings.mode != AUTH_OFF
        self._mirror = mirror
        self._ks = keyspace
        self._hub = hub
        self.api_keys = ApiKeys(mirror, keyspace)
        self.bindings = Bindings(mirror, keyspace)
        self.quotas = Quotas(
            mirror, keyspace, settings.max_keys_per_tenant, settings.max_value_bytes_per_tenant
        )
        self.admin = AuthAdmin(writer, keyspace, self.api_keys, self.bindings, self.quotas)
        #: The secrets integration's read policy when authentication is on.
        self.secret_policy = RbacSecretPolicy(self.bindings)
        jwt = JwtVerifier(settings.jwt) if settings.jwt.enabled else None
        mtls = tls is not None and tls.client_ca_file is not None
        self.authenticator = Authenticator(self.api_keys, jwt, mtls)
        self.buckets = TokenBuckets(settings.rate_per_identity, settings.burst_per_identity)
        #: Authenticate, rate-limit, authorize: the one function over (method,
        #: credentials, peer, request) that gRPC, HTTP and in-process calls go through.
        self.admission = Admission(self.authenticator, self.bindings, self.buckets, self.quotas)
        self.streams = StreamCaps(settings.max_streams_per_identity)
        self.bootstrapped = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: Other stream registries (resolved views) to reset when grants change:
        #: each is called with a predicate over stream owners and a message.
        self.stream_resetters: list[Callable[[Callable[[object], bool], str], object]] = []
        self._watched = (self.api_keys.record_key(""), self.bindings.prefix)
        mirror.add_record_listener(self._on_records)

    def add_scoper(self, name: str, scoper: Scoper) -> None:
        """Register the scope reader of rules with ``scope_from=name`` (a feature whose
        requests name their scope outside the request fields, as flagd's header)."""
        self.admission.scopers[name] = scoper

    def start(self) -> None:
        self._task = asyncio.create_task(self._bootstrap(), name="configsvc-auth-bootstrap")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _bootstrap(self) -> None:
        token = self.settings.bootstrap_admin_key
        delay = 0.2
        while True:
            await self._mirror.wait_synced(3600)
            if not token:
                if (
                    self.enabled
                    and self._mirror.record(self._ks.sys_key(*BOOTSTRAP_MARKER)) is None
                ):
                    log.warning(
                        "this installation has no admin yet and nobody can call it: "
                        "start one replica with CONFIGSVC_BOOTSTRAP_ADMIN_KEY set to a "
                        "key from 'configsvc auth new-key'"
                    )
                break
            try:
                await self.admin.bootstrap(token, timeout=5.0)
                log.info("bootstrap admin key installed (identity key:bootstrap-admin)")
                break
            except ConflictError:
                break  # bootstrapped before (by this or another replica)
            except (BackendUnavailableError, DeadlineError) as exc:
                log.warning("bootstrap waits for etcd: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        await self._reserve_key_names()
        self.bootstrapped.set()

    async def _reserve_key_names(self) -> None:
        """Make the names of keys from before unique names unusable for new keys.

        Retried while etcd is away; a race with another replica doing the same
        (a lost compare) re-reads and tries again, a few times.
        """
        delay = 0.2
        for _attempt in range(50):
            try:
                reserved = await self.admin.reserve_key_names(timeout=10.0)
            except ConflictError:
                await asyncio.sleep(delay)
                continue
            except (BackendUnavailableError, DeadlineError) as exc:
                log.warning("reserving API key names waits for etcd: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if reserved:
                log.info(
                    "reserved %d API key names of earlier keys (names are never reused)", reserved
                )
            return
        log.error(
            "could not reserve the names of earlier API keys; a new key could take "
            "the name of a revoked one until a restart succeeds"
        )

    # ------------------------------------------------------- open streams

    def _on_records(self, batch: RecordBatch) -> None:
        if not any(raw.startswith(self._watched) for raw, _ in batch.changes):
            return
        message = (
            "the caller's credential or role bindings changed; re-open the stream "
            "(it re-authenticates) and re-snapshot"
        )
        self._hub.reset_where(
            self._lost_sub_grants, watch_pb2.RESET_REASON_PERMISSIONS_CHANGED, message
        )
        for reset in self.stream_resetters:
            reset(self._lost_grants, message)

    async def admit_http(
        self,
        headers: Mapping[str, str],
        permission: str,
        scopes: list[Scope],
        what: str,
        *,
        partial: bool = False,
    ) -> None:
        """Admit an HTTP request (OFREP, metrics) like an RPC: ``Authorization: Bearer
        <API key or JWT>`` or ``X-API-Key: <API key>``, the identity's rate limit, then
        ``permission`` on ``scopes``, through the same admission function as every RPC.
        Raises the typed error; a no-op with auth off."""
        if not self.enabled:
            return
        admission = self.admission
        metadata = (
            ("authorization", headers.get("Authorization", "")),
            ("x-api-key", headers.get("X-API-Key", "")),
        )
        await admission.admit_planned(
            admission.given(what, permission, partial),
            metadata,
            None,
            None,
            dialect=HTTP,
            scopes=scopes,
        )

    def _lost_sub_grants(self, sub: Subscription) -> bool:
        return self._lost_grants(sub.owner)

    def _lost_grants(self, owner: object) -> bool:
        caller: Any = owner
        if not isinstance(caller, Caller):
            return False
        principal = caller.principal
        if principal.key_id and not self.api_keys.exists(principal.key_id):
            return True
        return self.bindings.access(principal.name).grants != caller.access.grants
