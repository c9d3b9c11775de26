"""The configsvc.v1.ConfigService servicer: validation, then mirror or writer.

Reads are answered from the mirror and stamped with its revision; writes go
through the writer's single transaction. Errors are raised as typed
exceptions and become statuses in ``configsvc.rpc.status``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from configsvc.api.wire import RESPONSE_WIRE
from configsvc.errors import (
    ConflictError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
)
from configsvc.hier.guard import WriteGuard
from configsvc.hier.listing import ListFilter
from configsvc.hier.resolver import MirrorSource, ScopeCache, input_fingerprint, resolve_scope
from configsvc.hier.sensitive import plain_sensitive_places
from configsvc.hier.state import StateCache
from configsvc.model.keys import ConfigKey, require_segment
from configsvc.model.labels import validate_labels
from configsvc.model.values import parse_json_value, validate_reason
from configsvc.resolve import TEMPLATE_LAYER_PREFIX, Resolved, Source
from configsvc.resolve.jsonvalue import check_value, parse_value
from configsvc.rpc import pagination, requests
from configsvc.rpc.context import CallContext
from configsvc.secrets.gateway import SecretGateway, Stored
from configsvc.store.idempotency import request_id
from configsvc.store.keyspace import Keyspace
from configsvc.store.mirror import Mirror
from configsvc.store.tenants import require_tenant
from configsvc.store.writer import WriteOptions, Writer
from configsvc.v1 import config_pb2, config_pb2_grpc
from configsvc.validate import SchemaRegistry

_MIRROR = config_pb2.READ_CONSISTENCY_MIRROR  # UNSPECIFIED (0) means the same
LIST_DEFAULT, LIST_MAX = 100, 1000
HISTORY_DEFAULT, HISTORY_MAX = 50, 1000
BATCH_MAX = 1000
#: Refusals that a retry of an already committed write can meet (the state moved on since
#: its first attempt: a schema, the key's revision, the value gone): the write's request id,
#: if remembered, answers the first result instead. Checked only then, so a first attempt
#: costs no extra etcd read; the write's Txn itself refuses a second commit of an id.
_REFUSALS = (InvalidArgumentError, FailedPreconditionError, NotFoundError, ConflictError)


@dataclass(frozen=True)
class ServiceLimits:
    """Per-call time budgets of the API."""

    request_timeout: float = 10.0
    """Longest a call may spend on etcd when the caller set no deadline (seconds)."""


class ConfigService(config_pb2_grpc.ConfigServiceServicer):  # type: ignore[misc]
    """Implements every ConfigService RPC; see the proto for the contract."""

    def __init__(
        self,
        mirror: Mirror,
        writer: Writer,
        keyspace: Keyspace,
        limits: ServiceLimits,
        secrets: SecretGateway | None = None,
        guard: WriteGuard | None = None,
    ) -> None:
        self._mirror = mirror
        mirror.use_encoder(RESPONSE_WIRE)  # Get's and Put's answers: item bytes + revision
        self._writer = writer
        self._ks = keyspace
        self._limits = limits
        self._resolved = ScopeCache()
        self._guard = guard or WriteGuard(mirror, keyspace, StateCache(mirror, keyspace))
        self._secrets = secrets

    # ------------------------------------------------------------------ helpers

    async def _read_gate(self, consistency: int, context: CallContext) -> bool:
        """Apply the requested consistency; returns whether the answer is stale."""
        requests.consistency(consistency)
        if consistency == config_pb2.READ_CONSISTENCY_STRONG:
            await self._mirror.sync(requests.time_left(context, self._limits.request_timeout))
            return False
        return self._mirror.require_available(
            allow_stale=consistency == config_pb2.READ_CONSISTENCY_STALE_OK
        )

    def _timeout(self, context: CallContext) -> float:
        return requests.time_left(context, self._limits.request_timeout)

    async def _resolve_secrets(
        self, entries: list[config_pb2.ConfigEntry], method: str, context: CallContext
    ) -> None:
        """Replace the values of ``entries`` (copies) with their secrets resolved."""
        if self._secrets is None or not entries:
            return
        texts = await self._secrets.resolve_texts(
            [Stored(e.key.tenant, _key_text(e.key), e.value) for e in entries],
            actor=requests.actor(context),
            method=method,
            timeout=self._timeout(context),
        )
        for entry, text in zip(entries, texts, strict=True):
            entry.value = text

    # -------------------------------------------------------------------- reads

    async def Get(self, request: config_pb2.GetRequest, context: CallContext) -> bytes:
        """Registered with raw responses: returns an encoded GetResponse.

        The common case (an existing key, mirror consistency) is one dict
        lookup and one concatenation of bytes encoded when the value changed;
        no validation is needed because only valid keys are ever stored.
        """
        k = request.key
        mirror = self._mirror
        item = mirror.lookup(k.tenant, k.environment, k.service, k.key)
        if (
            item is not None
            and request.consistency <= _MIRROR
            and mirror.synced
            and not request.resolve_secrets
        ):
            return item.encoded + mirror.encoded_revision
        key = requests.config_key(request)
        stale = await self._read_gate(request.consistency, context)
        require_tenant(self._mirror, key.tenant)
        entry = mirror.get(key)
        if entry is None:
            raise NotFoundError("config entry", str(key))
        response = config_pb2.GetResponse(entry=entry, revision=mirror.revision, stale=stale)
        if request.resolve_secrets:
            await self._resolve_secrets([response.entry], "Get", context)
        return bytes(response.SerializeToString())

    async def BatchGet(
        self, request: config_pb2.BatchGetRequest, context: CallContext
    ) -> config_pb2.BatchGetResponse:
        if not request.keys:
            raise InvalidArgumentError.single("keys", f"is empty; give 1 to {BATCH_MAX} keys")
        if len(request.keys) > BATCH_MAX:
            raise InvalidArgumentError.single(
                "keys", f"has {len(request.keys)} keys; the limit is {BATCH_MAX}"
            )
        keys = [requests.config_key_at(k, f"keys[{i}]") for i, k in enumerate(request.keys)]
        stale = await self._read_gate(request.consistency, context)
        for tenant in sorted({k.tenant for k in keys}):
            require_tenant(self._mirror, tenant)
        response = config_pb2.BatchGetResponse(revision=self._mirror.revision, stale=stale)
        for key, message in zip(keys, request.keys, strict=True):
            entry = self._mirror.get(key)
            if entry is None:
                response.missing.append(message)
            else:
                response.entries.append(entry)
        if request.resolve_secrets:
            await self._resolve_secrets(list(response.entries), "BatchGet", context)
        return response

    async def List(
        self, request: config_pb2.ListRequest, context: CallContext
    ) -> config_pb2.ListResponse:
        tenant = requests.optional_segment("tenant", request.tenant)
        if tenant is None:
            raise InvalidArgumentError.single("tenant", "is required")
        env = requests.optional_segment("environment", request.environment)
        service = requests.optional_segment("service", request.service)
        key_prefix = requests.optional_key_prefix("key_prefix", request.key_prefix)
        size = requests.page_size(request, default=LIST_DEFAULT, maximum=LIST_MAX)
        requests.timestamp_ns(request, "updated_after")  # in range before the filter reads it
        requests.timestamp_ns(request, "updated_before")
        filters = ListFilter.of(request)
        scope = (tenant, env or "", service or "", key_prefix, *filters.token_scope())
        position = pagination.decode(request.page_token, "list", scope)
        stale = await self._read_gate(request.consistency, context)
        require_tenant(self._mirror, tenant)

        base = self._ks.cfg_prefix(tenant)
        # The longest etcd key prefix the filters allow; the rest is filtered below.
        prefix = self._ks.scope_prefix(tenant, env or "", service or "")
        if env is not None and service is not None:
            prefix += key_prefix.encode()
        after = base + position.encode() if position is not None else None

        response = config_pb2.ListResponse(revision=self._mirror.revision, stale=stale)
        last: bytes | None = None
        for raw, entry in self._mirror.scan(prefix, after):
            k = entry.key
            if (
                (service is not None and k.service != service)
                or (key_prefix and not k.key.startswith(key_prefix))
                or not filters.matches(entry)
            ):
                continue
            if len(response.entries) == size:
                assert last is not None
                response.next_page_token = pagination.encode(
                    "list", scope, last[len(base) :].decode()
                )
                break
            response.entries.append(entry)
            last = raw
        return response

    # ------------------------------------------------------------------- writes

    def _write_options(
        self,
        request: Any,
        context: CallContext,
        labels: dict[str, str] | None = None,
        *,
        operation: str,
        key: ConfigKey,
    ) -> WriteOptions:
        """The validated reason, expected revision, actor, time budget and request id of a
        write (``operation`` and ``key`` name it in a reused request id's message)."""
        expected = requests.expected_revision(request)  # checked first, as it always was
        options = WriteOptions.of_call(
            context,
            self._limits.request_timeout,
            reason=validate_reason(request.reason),
            expected_revision=expected,
            labels=labels,
        )
        return options.remembered_as(
            request_id(
                request.request_id, operation, options.actor, request, f"{operation} of {key}"
            )
        )

    async def Put(self, request: config_pb2.PutRequest, context: CallContext) -> bytes:
        """Registered with raw responses: returns an encoded PutResponse."""
        k = request.key
        # A key the mirror holds was validated when it was first written: reuse it.
        held = self._mirror.lookup(k.tenant, k.environment, k.service, k.key)
        key = held.key if held is not None else requests.config_key(request)
        parsed = parse_json_value(request.value)
        # The resolution rules (tombstone form, depth) are checked on write, so every
        # stored value can be resolved.
        check_value(parsed, key=key.key)
        labels = validate_labels(request.labels)
        options = self._write_options(request, context, labels, operation="Put", key=key)
        try:
            # Schemas and rules judge the value as written (secret references, not ciphertext).
            self._guard.enforce(key.tenant, {key: request.value}, options.reason)
            value = request.value
            if self._secrets is not None:
                # References must exist; sensitive places are stored as transit ciphertext.
                value = await self._secrets.prepare_parsed(key, value, parsed, options.timeout)
            result = await self._writer.put(key, value, options)
        except _REFUSALS as refused:
            result = await self._writer.replay_or_raise(key, options, refused)
        item = self._mirror.lookup(key.tenant, key.environment, key.service, key.key)
        if item is not None and item.entry.mod_revision == result.revision:
            # Read-your-writes waited until the mirror applied the change, so it has
            # decoded and encoded this very entry: answer with its bytes.
            return item.encoded + RESPONSE_WIRE.revision(result.revision)
        return bytes(
            config_pb2.PutResponse(entry=result.entry, revision=result.revision).SerializeToString()
        )

    async def Delete(
        self, request: config_pb2.DeleteRequest, context: CallContext
    ) -> config_pb2.DeleteResponse:
        key = requests.config_key(request)
        options = self._write_options(request, context, operation="Delete", key=key)
        try:
            if self._mirror.tenant(key.tenant) is not None:
                self._guard.enforce(key.tenant, {key: None}, options.reason)
            result = await self._writer.delete(key, options)
        except _REFUSALS as refused:
            result = await self._writer.replay_or_raise(key, options, refused)
        return config_pb2.DeleteResponse(
            previous=result.previous, revision=result.revision, version=result.version
        )

    async def Rollback(
        self, request: config_pb2.RollbackRequest, context: CallContext
    ) -> config_pb2.RollbackResponse:
        key = requests.config_key(request)
        to_version = requests.positive("to_version", request.to_version)
        options = self._write_options(request, context, operation="Rollback", key=key)
        require_tenant(self._mirror, key.tenant)
        try:
            target = await self._writer.history_record(key, to_version, timeout=options.timeout)
            if target.operation != config_pb2.OPERATION_DELETE:
                self._guard.enforce(key.tenant, {key: target.value}, options.reason)
                _refuse_plain_sensitive(
                    self._guard.states.get(key.tenant).registry, key, target.value, to_version
                )
            result = await self._writer.rollback(key, to_version, options)
        except _REFUSALS as refused:
            result = await self._writer.replay_or_raise(key, options, refused)
        return config_pb2.RollbackResponse(entry=result.entry, revision=result.revision)

    # ------------------------------------------------------------------ resolve

    async def Resolve(self, request: config_pb2.ResolveRequest, context: CallContext) -> bytes:
        """Registered with raw responses: returns an encoded ResolveResponse.

        The document and provenance are encoded once per change of the scope's
        inputs (``input_fingerprint``), not per call and not per unrelated
        write; each answer is that body plus its own revision and stale flag
        (concatenated protobuf messages merge).
        """
        tenant = require_segment("tenant", request.tenant)
        environment = require_segment("environment", request.environment)
        service = require_segment("service", request.service)
        stale = await self._read_gate(request.consistency, context)
        require_tenant(self._mirror, tenant)
        revision = self._mirror.revision
        fingerprint = input_fingerprint(
            self._mirror,
            self._ks,
            tenant,
            environment,
            service,
            self._guard.states.generation(tenant),
        )

        def body() -> bytes:
            resolved = self._resolve(tenant, environment, service)
            return bytes(
                config_pb2.ResolveResponse(
                    document=resolved.canonical_json(),
                    provenance=[
                        _provenance(tenant, path, source)
                        for path, source in resolved.provenance.items()
                    ],
                    last_change_revision=resolved.revision,
                ).SerializeToString()
            )

        cached = self._resolved.get_or_build((tenant, service, environment), fingerprint, body)
        tail = config_pb2.ResolveResponse(revision=revision, stale=stale)
        if request.resolve_secrets and self._secrets is not None:
            response = config_pb2.ResolveResponse.FromString(cached)
            [response.document] = await self._secrets.resolve_texts(
                [Stored(tenant, f"{tenant}/{environment}/{service}", response.document)],
                actor=requests.actor(context),
                method="Resolve",
                timeout=self._timeout(context),
            )
            response.MergeFrom(tail)
            return bytes(response.SerializeToString())
        return cached + bytes(tail.SerializeToString())

    def _resolve(self, tenant: str, environment: str, service: str) -> Resolved:
        return resolve_scope(
            MirrorSource(self._mirror, self._ks, tenant),
            self._guard.states.get(tenant),
            environment,
            service,
        )

    # ------------------------------------------------------------------ history

    async def History(
        self, request: config_pb2.HistoryRequest, context: CallContext
    ) -> config_pb2.HistoryResponse:
        key = requests.config_key(request)
        size = requests.page_size(request, default=HISTORY_DEFAULT, maximum=HISTORY_MAX)
        position = pagination.decode(request.page_token, "history", _scope(key))
        before = _version_position(position)
        require_tenant(self._mirror, key.tenant)
        records, following, revision = await self._writer.history(
            key, page_size=size, before_version=before, timeout=self._timeout(context)
        )
        response = config_pb2.HistoryResponse(records=records, revision=revision)
        if following is not None:
            response.next_page_token = pagination.encode("history", _scope(key), str(following))
        return response


def _key_text(key: config_pb2.ConfigKey) -> str:
    return f"{key.tenant}/{key.environment}/{key.service}/{key.key}"


def _scope(key: ConfigKey) -> tuple[str, ...]:
    return (key.tenant, key.environment, key.service, key.key)


def _version_position(position: str | None) -> int | None:
    if position is None:
        return None
    if not position.isdigit() or int(position) < 1:
        raise InvalidArgumentError.single("page_token", "does not name a history position")
    return int(position)


def _provenance(tenant: str, path: str, source: Source) -> config_pb2.Provenance:
    return provenance_message(tenant, path, source)


def provenance_message(tenant: str, path: str, source: Source) -> config_pb2.Provenance:
    """A leaf's Source as the contract's Provenance (template layers name the template)."""
    if source.layer.startswith(TEMPLATE_LAYER_PREFIX):
        return config_pb2.Provenance(
            path=path,
            layer=source.layer,
            revision=source.revision,
            template=source.layer[len(TEMPLATE_LAYER_PREFIX) :],
            key=config_pb2.ConfigKey(tenant=tenant, key=source.key.rsplit("/", 1)[-1]),
        )
    environment, service, key = source.key.split("/")[1:]
    return config_pb2.Provenance(
        path=path,
        layer=source.layer,
        revision=source.revision,
        key=config_pb2.ConfigKey(tenant=tenant, environment=environment, service=service, key=key),
    )


def _refuse_plain_sensitive(
    registry: SchemaRegistry, key: ConfigKey, text: str, version: int
) -> None:
    """Rollback copies a stored version as it is: one written before a schema marked a
    place sensitive holds its plaintext, which must not become the current value (and an
    event) again. Put encrypts it instead."""
    if not registry.schemas_for(key):
        return
    places = plain_sensitive_places(registry, key, parse_value(text))
    if places:
        raise FailedPreconditionError(
            f"version {version} of {key} holds plaintext at {places[0] or '/'}, which a schema "
            "now marks x-sensitive; Put that value again instead (it is then stored as "
            "transit ciphertext)"
        )
