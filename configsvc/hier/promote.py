"""Promote: copy one service's entries from a source environment to a target one.

The planning lives here, free of gRPC, so every transport (the gRPC servicer
today, an HTTP route tomorrow) promotes by the same rules: which keys are
copied (the chosen ones, or all of the source scope; only those whose value
differs at the target), what may not be copied (a key missing at the source,
more than ``PROMOTE_MAX`` keys, and whatever the write guard refuses: schemas,
rules, a protected target without a reason), and the raw diff of the target
scope the copy produces. A dry run stops at the plan; ``apply`` writes it in
one Txn, as a Put of each key would (own version, history copy and audit
record, marked ``promoted_from``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from configsvc.errors import InvalidArgumentError, NotFoundError
from configsvc.hier.guard import WriteGuard
from configsvc.hier.resolver import MirrorSource, raw_scope
from configsvc.model.keys import ConfigKey, key_violation, require_segment
from configsvc.model.values import validate_reason
from configsvc.resolve import DiffRow, diff
from configsvc.secrets.gateway import SecretGateway
from configsvc.store.keyspace import Keyspace
from configsvc.store.mirror import Mirror
from configsvc.store.writer import WriteOptions, Writer, WriteResult

#: The most keys one Promote may name: the copy is one etcd Txn.
PROMOTE_MAX = 1000


@dataclass(frozen=True)
class PromoteSpec:
    """What a caller asked for (field names as in PromoteRequest); only ``tenant`` is
    checked already: the transport resolves it to an existing tenant first."""

    tenant: str
    service: str
    source_environment: str
    target_environment: str
    keys: Sequence[str] = ()
    reason: str = ""
    dry_run: bool = False


@dataclass(frozen=True)
class PromotePlan:
    """The checked copy: what to write at the target and what it changes there."""

    tenant: str
    service: str
    source: str
    target: str
    reason: str
    dry_run: bool
    #: Target key -> the value to store (already encrypted where the target's schemas
    #: mark it sensitive, unless a dry run); only keys whose value differs.
    changes: dict[ConfigKey, str]
    #: The raw diff of the target scope: before -> after the copy.
    rows: list[DiffRow]
    #: The mirror revision the plan was made at.
    revision: int


class Promoter:
    """Plans and applies promotions over the mirror, the write guard and the writer."""

    def __init__(
        self,
        mirror: Mirror,
        writer: Writer,
        keyspace: Keyspace,
        guard: WriteGuard,
        secrets: SecretGateway | None = None,
    ) -> None:
        self._mirror = mirror
        self._writer = writer
        self._ks = keyspace
        self._guard = guard
        self._secrets = secrets

    async def plan(self, spec: PromoteSpec, timeout: float) -> PromotePlan:
        """Check ``spec`` and plan the copy (``timeout``: seconds Vault may take to encrypt).

        Raises INVALID_ARGUMENT for a bad field or a value the guard refuses,
        NOT_FOUND for a key (or a whole scope) the source does not hold.
        """
        service = require_segment("service", spec.service)
        source = require_segment("source_environment", spec.source_environment)
        target = require_segment("target_environment", spec.target_environment)
        if source == target:
            raise InvalidArgumentError.single(
                "target_environment", "must differ from source_environment"
            )
        if len(spec.keys) > PROMOTE_MAX:
            raise InvalidArgumentError.single(
                "keys", f"has {len(spec.keys)} keys; the limit is {PROMOTE_MAX}"
            )
        for i, name in enumerate(spec.keys):
            violation = key_violation(f"keys[{i}]", name)
            if violation:
                raise InvalidArgumentError([violation])
        reason = validate_reason(spec.reason)
        tenant = spec.tenant
        changes = self._changes(tenant, service, source, target, spec.keys)
        self._guard.enforce(tenant, changes, reason)
        if self._secrets is not None and not spec.dry_run:
            # Like Put: ciphertext is copied as it is; a place only the target's schemas
            # mark sensitive is encrypted now; references must still exist.
            for key, value in changes.items():
                changes[key] = await self._secrets.prepare_write(key, value, timeout)
        before = raw_scope(MirrorSource(self._mirror, self._ks, tenant), target, service)
        after = raw_scope(
            MirrorSource(self._mirror, self._ks, tenant, changes, self._mirror.revision + 1),
            target,
            service,
        )
        return PromotePlan(
            tenant,
            service,
            source,
            target,
            reason,
            spec.dry_run,
            changes,
            diff(before, after),
            self._mirror.revision,
        )

    def _changes(
        self, tenant: str, service: str, source: str, target: str, keys: Sequence[str]
    ) -> dict[ConfigKey, str]:
        """The chosen source values that differ at the target (every key when none named)."""
        values = {
            item.key.key: item.entry.value
            for item in self._mirror.items(self._ks.scope_prefix(tenant, source, service))
        }
        chosen = sorted(set(keys)) if keys else sorted(values)
        missing = [name for name in chosen if name not in values]
        if missing or not chosen:
            where = f"{tenant}/{source}/{service}"
            raise NotFoundError(
                "config entry",
                f"{where}/{missing[0]}" if missing else where,
                f"{where} has no value for {missing[0]!r}"
                if missing
                else f"{where} has no entries to promote",
            )
        changes: dict[ConfigKey, str] = {}
        for name in chosen:
            key = ConfigKey(tenant, target, service, name)
            current = self._mirror.get(key)
            if current is None or current.value != values[name]:
                changes[key] = values[name]
        return changes

    async def apply(self, plan: PromotePlan, options: WriteOptions) -> list[WriteResult]:
        """Write ``plan``'s changes in one Txn; nothing for a dry run or an empty plan."""
        if plan.dry_run or not plan.changes:
            return []
        return await self._writer.put_many(
            list(plan.changes.items()), options, attributes={"promoted_from": plan.source}
        )
