"""The write side of authentication state: API keys, role bindings, quotas.

Every change is one ``Writer.commit_records`` transaction with its audit
record (kind ``api-key``, ``role-binding`` or ``tenant-quota``, the caller as
actor, never a secret or its hash), so the mirror and every replica see it
at one revision. Pattern grammar is an allow-list like the address grammar:
a name, a name prefix followed by ``*``, or ``*`` alone.
"""

from __future__ import annotations

import os
import re

from configsvc.auth import apikeys
from configsvc.auth.apikeys import ApiKeys
from configsvc.auth.bindings import Bindings
from configsvc.auth.limits import Quotas
from configsvc.errors import (
    AlreadyExistsError,
    ConflictError,
    FieldViolation,
    InvalidArgumentError,
    NotFoundError,
)
from configsvc.model.grants import ANY, ROLE_PERMISSIONS
from configsvc.model.keys import key_violation, require_segment, segment_violation
from configsvc.model.values import VALUE_MAX_BYTES, validate_reason
from configsvc.store.codec import now_timestamp
from configsvc.store.keyspace import Keyspace
from configsvc.store.ports import WriterPort
from configsvc.store.writer import RecordChange
from configsvc.v1 import audit_pb2, auth_pb2, config_pb2

_PATTERN_PREFIX = re.compile(r"[a-z0-9][a-z0-9-]{0,61}")
_SUBJECT = re.compile(r"(key|cert|jwt):[\x21-\x7e]{1,250}\*?|(key|cert|jwt):\*|\*")
BOOTSTRAP_NAME = "bootstrap-admin"
BOOTSTRAP_MARKER = ("auth", "bootstrapped")
#: Set once the audit trail's key names were reserved (the upgrade to unique names).
NAMES_MARKER = ("auth", "key-names-reserved")
#: Name records per migration Txn (etcd allows 128 operations per Txn branch).
_NAMES_PER_TXN = 50


class KeyNameTakenError(AlreadyExistsError):
    """An API key name was used before; names are never reused (see ``apikeys``)."""

    def __init__(self, name: str, holder: str | None) -> None:
        super().__init__("API key name", name)
        by = f" by key {holder}" if holder else ""
        self.message = (
            f"the API key name {name!r} was already used{by}; names are never reused, so "
            "that identity's role bindings cannot pass to a new key: choose another name "
            "(for a rotation, e.g. a numbered name, then bind it and revoke the old key)"
        )
        self.args = (self.message,)


def pattern_violation(field: str, value: str, *, optional: bool) -> FieldViolation | None:
    """Why ``value`` is not a segment pattern (``*``, ``name`` or ``prefix*``), or None."""
    if not value and optional:
        return None
    if value == ANY:
        return None
    body = value[:-1] if value.endswith(ANY) else value
    if not _PATTERN_PREFIX.fullmatch(body):
        return FieldViolation(
            field,
            f"{value[:64]!a} is not a pattern: give '*', a name "
            "(a-z, 0-9, '-') or a name prefix followed by '*'",
        )
    return None


def audit(
    kind: str,
    name: str,
    operation: config_pb2.Operation,
    actor: str,
    reason: str = "",
    **attributes: str,
) -> audit_pb2.AuditRecord:
    return audit_pb2.AuditRecord(
        kind=kind, name=name, operation=operation, actor=actor, reason=reason, attributes=attributes
    )


class AuthAdmin:
    """Creates and deletes keys, bindings and quotas; the servicer validates first."""

    def __init__(
        self,
        writer: WriterPort,
        keyspace: Keyspace,
        api_keys: ApiKeys,
        bindings: Bindings,
        quotas: Quotas,
    ) -> None:
        self._writer = writer
        self._ks = keyspace
        self.api_keys = api_keys
        self.bindings = bindings
        self.quotas = quotas

    async def create_key(
        self, name: str, description: str, ttl_seconds: float | None, *, actor: str, timeout: float
    ) -> tuple[auth_pb2.ApiKey, str, int]:
        require_segment("name", name)
        description = validate_reason(description, field="description")
        holder = self.api_keys.name_holder(name)
        if holder is not None:
            raise KeyNameTakenError(name, holder)
        key_id, token = apikeys.new_key()
        key = auth_pb2.ApiKey(
            id=key_id,
            name=name,
            description=description,
            create_time=now_timestamp(),
            created_by=actor,
        )
        if ttl_seconds is not None:
            key.expire_time.FromNanoseconds(
                key.create_time.ToNanoseconds() + int(ttl_seconds * 1e9)
            )
        value = apikeys.stored(key, token).SerializeToString()
        try:
            revision = await self._writer.commit_records(
                None,
                [
                    RecordChange(
                        self.api_keys.name_key(name), key_id.encode(), 0, f"API key name {name}"
                    ),
                    RecordChange(self.api_keys.record_key(key_id), value, 0, f"API key {key_id}"),
                ],
                [
                    audit(
                        "api-key",
                        key_id,
                        config_pb2.OPERATION_PUT,
                        actor,
                        description,
                        identity=apikeys.identity(name),
                    )
                ],
                timeout=timeout,
            )
        except ConflictError:  # another replica took the name meanwhile
            raise KeyNameTakenError(name, None) from None
        key.create_revision = revision
        return key, token, revision

    async def revoke_key(self, key_id: str, *, actor: str, timeout: float) -> int:
        found = self.api_keys.load(key_id) if re.fullmatch(r"[0-9a-f]{16}", key_id) else None
        if found is None:
            raise NotFoundError("API key", key_id)
        record_key = self.api_keys.record_key(key_id)
        return await self._writer.commit_records(
            None,
            [RecordChange(record_key, None, None, f"API key {key_id}")],
            [
                audit(
                    "api-key",
                    key_id,
                    config_pb2.OPERATION_DELETE,
                    actor,
                    identity=apikeys.identity(found[0].api_key.name),
                )
            ],
            timeout=timeout,
        )

    def check_binding(self, binding: auth_pb2.RoleBinding, field: str = "binding") -> None:
        violations = []
        if not _SUBJECT.fullmatch(binding.subject):
            violations.append(
                FieldViolation(
                    f"{field}.subject",
                    "must be key:<name>, cert:<common name> or jwt:<subject> "
                    "(printable ASCII, no spaces, at most 255 characters), optionally ending in *",
                )
            )
        if binding.role not in ROLE_PERMISSIONS:
            violations.append(
                FieldViolation(
                    f"{field}.role",
                    "must be one of ROLE_VIEWER, ROLE_EDITOR, ROLE_ADMIN, "
                    "ROLE_SECRET_READER, ROLE_AUDITOR",
                )
            )
        found = [
            pattern_violation(f"{field}.tenant", binding.tenant, optional=False),
            pattern_violation(f"{field}.environment", binding.environment, optional=True),
            pattern_violation(f"{field}.service", binding.service, optional=True),
        ]
        if binding.key_prefix:
            found.append(key_violation(f"{field}.key_prefix", binding.key_prefix))
        violations += [v for v in found if v is not None]
        if violations:
            raise InvalidArgumentError(violations)

    async def create_binding(
        self, binding: auth_pb2.RoleBinding, *, actor: str, timeout: float
    ) -> tuple[auth_pb2.RoleBinding, int]:
        self.check_binding(binding)
        stored = auth_pb2.RoleBinding()
        stored.CopyFrom(binding)
        stored.id = os.urandom(8).hex()
        stored.create_time.CopyFrom(now_timestamp())
        stored.created_by = actor
        stored.ClearField("create_revision")
        revision = await self._writer.commit_records(
            None,
            [
                RecordChange(
                    self.bindings.record_key(stored.id),
                    stored.SerializeToString(),
                    0,
                    f"role binding {stored.id}",
                )
            ],
            [
                audit(
                    "role-binding",
                    stored.id,
                    config_pb2.OPERATION_PUT,
                    actor,
                    subject=stored.subject,
                    role=auth_pb2.Role.Name(stored.role),
                    scope=f"{stored.tenant}/{stored.environment or ANY}/"
                    f"{stored.service or ANY}/{stored.key_prefix}",
                )
            ],
            timeout=timeout,
        )
        stored.create_revision = revision
        return stored, revision

    async def delete_binding(self, binding_id: str, *, actor: str, timeout: float) -> int:
        match = [b for b in self.bindings.all() if b.id == binding_id] if binding_id else []
        if not match:
            raise NotFoundError("role binding", binding_id)
        return await self._writer.commit_records(
            None,
            [
                RecordChange(
                    self.bindings.record_key(binding_id), None, None, f"role binding {binding_id}"
                )
            ],
            [
                audit(
                    "role-binding",
                    binding_id,
                    config_pb2.OPERATION_DELETE,
                    actor,
                    subject=match[0].subject,
                )
            ],
            timeout=timeout,
        )

    async def set_quota(
        self, quota: auth_pb2.TenantQuota, *, actor: str, timeout: float
    ) -> tuple[auth_pb2.TenantQuota, int]:
        require_segment("quota.tenant", quota.tenant)
        violations = []
        if quota.max_keys < 0:
            violations.append(FieldViolation("quota.max_keys", "must be 0 (default) or more"))
        if not 0 <= quota.max_value_bytes <= VALUE_MAX_BYTES:
            violations.append(
                FieldViolation("quota.max_value_bytes", f"must be 0 (default) to {VALUE_MAX_BYTES}")
            )
        if violations:
            raise InvalidArgumentError(violations)
        revision = await self._writer.commit_records(
            quota.tenant,
            [
                RecordChange(
                    self.quotas.record_key(quota.tenant),
                    quota.SerializeToString(),
                    None,
                    f"quota of {quota.tenant}",
                )
            ],
            [
                audit(
                    "tenant-quota",
                    quota.tenant,
                    config_pb2.OPERATION_PUT,
                    actor,
                    max_keys=str(quota.max_keys),
                    max_value_bytes=str(quota.max_value_bytes),
                )
            ],
            timeout=timeout,
        )
        return self.quotas.of(quota.tenant), revision

    async def bootstrap(self, token: str, *, timeout: float) -> bool:
        """Create the bootstrap admin key and binding unless the installation has one.

        One transaction guarded by the marker ``sys/auth/bootstrapped``: it
        happens once per installation whichever replica gets there first, and
        a revoked bootstrap key is never re-created by a restart.
        """
        marker = self._ks.sys_key(*BOOTSTRAP_MARKER)
        key_id = apikeys.key_id_of(token)
        if key_id is None:
            raise InvalidArgumentError.single(
                "bootstrap_admin_key",
                "is not an API key (cs_<16 hex>_<secret>); make one with 'configsvc auth new-key'",
            )
        key = auth_pb2.ApiKey(
            id=key_id,
            name=BOOTSTRAP_NAME,
            create_time=now_timestamp(),
            created_by="bootstrap",
            description="bootstrap admin key (revoke once real keys exist)",
        )
        binding = auth_pb2.RoleBinding(
            id="bootstrap",
            subject=apikeys.identity(BOOTSTRAP_NAME),
            role=auth_pb2.ROLE_ADMIN,
            tenant=ANY,
            create_time=now_timestamp(),
            created_by="bootstrap",
        )
        await self._writer.commit_records(
            None,
            [
                RecordChange(marker, b"1", 0, "bootstrap marker"),
                RecordChange(
                    self.api_keys.name_key(BOOTSTRAP_NAME), key_id.encode(), 0, "bootstrap key name"
                ),
                RecordChange(
                    self.api_keys.record_key(key_id),
                    apikeys.stored(key, token).SerializeToString(),
                    0,
                    "bootstrap key",
                ),
                RecordChange(
                    self.bindings.record_key("bootstrap"),
                    binding.SerializeToString(),
                    0,
                    "bootstrap binding",
                ),
            ],
            [
                audit(
                    "api-key",
                    key_id,
                    config_pb2.OPERATION_PUT,
                    "bootstrap",
                    "bootstrap admin",
                    identity=apikeys.identity(BOOTSTRAP_NAME),
                )
            ],
            timeout=timeout,
        )
        return True

    async def reserve_key_names(self, *, timeout: float) -> int:
        """Record the names of keys made before names were unique; returns how many.

        Reserved: every live key's name (keys made by a replica of an older
        version too, so this runs at every start and costs a mirror scan), the
        bootstrap name once the installation is bootstrapped, and, once per
        installation, every name the installation-wide audit trail shows a key
        was created under (revoked keys whose bindings may remain). A name
        already recorded is left as it is; a replica racing on the same name
        loses its compare and re-reads.
        """
        wanted: dict[str, str] = {}
        if self._marked(BOOTSTRAP_MARKER):
            wanted[BOOTSTRAP_NAME] = ""
        scan_audit = not self._marked(NAMES_MARKER)
        if scan_audit:
            for kv in await self._writer.scan(self._ks.sys_audit_prefix, timeout=timeout):
                record = audit_pb2.AuditRecord.FromString(kv.value)
                identity = record.attributes.get("identity", "")
                if record.kind == "api-key" and identity.startswith("key:"):
                    wanted.setdefault(identity[4:], record.name)
        for key in self.api_keys.listing():
            wanted[key.name] = key.id
        missing = sorted(
            name
            for name in wanted
            if self.api_keys.name_holder(name) is None and segment_violation("name", name) is None
        )
        reserved = 0
        for start in range(0, max(len(missing), 1), _NAMES_PER_TXN):
            chunk = missing[start : start + _NAMES_PER_TXN]
            changes = [
                RecordChange(
                    self.api_keys.name_key(name), wanted[name].encode(), 0, f"API key name {name}"
                )
                for name in chunk
            ]
            last = start + _NAMES_PER_TXN >= len(missing)
            if last and scan_audit:
                changes.append(
                    RecordChange(self._ks.sys_key(*NAMES_MARKER), b"1", None, "key names marker")
                )
            if not changes:
                continue
            # Only reservations are audited; the marker alone (a new installation) is not.
            audits = (
                [
                    audit(
                        "api-key-name",
                        "upgrade",
                        config_pb2.OPERATION_PUT,
                        "upgrade",
                        "API key names are now unique and never reused; reserved the "
                        "names of existing and earlier keys",
                        names=",".join(chunk),
                    )
                ]
                if chunk
                else []
            )
            await self._writer.commit_records(None, changes, audits, timeout=timeout)
            reserved += len(chunk)
        return reserved

    def _marked(self, marker: tuple[str, str]) -> bool:
        return self.api_keys.has_record(self._ks.sys_key(*marker))
