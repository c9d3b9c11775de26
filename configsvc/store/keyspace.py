"""Where everything lives in etcd.

The layout fixes tenant isolation structurally: every key a tenant owns sits
under ``<root>/t/<tenant>/`` and every segment has passed the grammar in
``configsvc.model.keys``, so no crafted name can reach another tenant's prefix.
Version numbers are zero-padded so etcd's byte order is numeric order and
History can page with a plain range.
"""

from __future__ import annotations

import os
import time

from configsvc.model.keys import ConfigKey

_VERSION_WIDTH = 20

#: Tenant-scoped record kinds the mirror holds in memory besides config entries
#: (``<root>/t/<tenant>/<kind>/...``), for example environments or schemas.
#: A feature that stores small, read-often records adds its kind here; bulky
#: append-only kinds (``hist``, ``audit``) stay out and are read from etcd.
RECORD_KINDS: tuple[str, ...] = (
    "webhooks",
    "schema",
    "rule",
    "template",
    "extends",
    "environment",
    "flags",
)


def new_audit_id() -> str:
    """A time-ordered unique id: nanoseconds since the epoch plus 64 random bits."""
    return f"{time.time_ns():020d}-{os.urandom(8).hex()}"


class Keyspace:
    """Builds and parses the etcd keys under one root prefix."""

    def __init__(self, root: str) -> None:
        root = "/" + root.strip("/")
        if root == "/":
            raise ValueError("root prefix must not be empty")
        self.root = root
        self._root_b = root.encode()
        self.all_prefix = self._root_b + b"/"
        self.tenants_prefix = self._root_b + b"/sys/tenants/"
        #: Touched by every write transaction; its mod_revision is the latest
        #: revision that changed anything the mirror holds (see Mirror.sync).
        self.commit_marker = self._root_b + b"/sys/commit"

        #: Installation-wide records (API keys, role bindings, cursors, ...):
        #: everything under ``<root>/sys/`` is mirrored as records.
        self.sys_prefix = self._root_b + b"/sys/"

    def sys_key(self, *parts: str) -> bytes:
        """``<root>/sys/<part>/<part>...``: the caller validates the parts."""
        return self.sys_prefix + "/".join(parts).encode()

    def record_prefix(self, tenant: str, kind: str) -> bytes:
        """``<root>/t/<tenant>/<kind>/``: where a tenant's records of one kind live."""
        return self._tenant_prefix(tenant) + kind.encode() + b"/"

    def record_key(self, tenant: str, kind: str, *parts: str) -> bytes:
        """One record of ``kind``; the caller validates the parts."""
        return self.record_prefix(tenant, kind) + "/".join(parts).encode()

    def is_record_key(self, raw: bytes) -> bool:
        """True for keys the mirror keeps as records: ``sys/...`` and RECORD_KINDS."""
        if raw.startswith(self.sys_prefix):
            return True
        if not raw.startswith(self._root_b + b"/t/"):
            return False
        parts = raw[len(self._root_b) + 3 :].split(b"/", 2)
        return len(parts) == 3 and parts[1].decode() in RECORD_KINDS

    def tenant_key(self, tenant: str) -> bytes:
        return self.tenants_prefix + tenant.encode()

    def tenant_from_key(self, key: bytes) -> str | None:
        if key.startswith(self.tenants_prefix):
            return key[len(self.tenants_prefix) :].decode()
        return None

    def _tenant_prefix(self, tenant: str) -> bytes:
        return self._root_b + b"/t/" + tenant.encode() + b"/"

    def cfg_prefix(self, tenant: str) -> bytes:
        return self._tenant_prefix(tenant) + b"cfg/"

    def scope_prefix(self, tenant: str, environment: str = "", service: str = "") -> bytes:
        """The longest cfg prefix that covers a scope; empty parts mean 'any'."""
        prefix = self.cfg_prefix(tenant)
        if environment:
            prefix += f"{environment}/".encode()
            if service:
                prefix += f"{service}/".encode()
        return prefix

    def cfg_key(self, key: ConfigKey) -> bytes:
        return self.cfg_prefix(key.tenant) + f"{key.environment}/{key.service}/{key.key}".encode()

    def parse_cfg_key(self, raw: bytes) -> ConfigKey | None:
        """Recover the ConfigKey of a ``cfg`` etcd key; None for any other key."""
        if not raw.startswith(self._root_b + b"/t/"):
            return None
        parts = raw[len(self._root_b) + 3 :].decode().split("/")
        if len(parts) != 5 or parts[1] != "cfg":
            return None
        return ConfigKey(parts[0], parts[2], parts[3], parts[4])

    def hist_prefix(self, key: ConfigKey) -> bytes:
        return (
            self._tenant_prefix(key.tenant)
            + f"hist/{key.environment}/{key.service}/{key.key}/".encode()
        )

    def hist_key(self, key: ConfigKey, version: int) -> bytes:
        return self.hist_prefix(key) + f"{version:0{_VERSION_WIDTH}d}".encode()

    @staticmethod
    def version_from_hist_key(raw: bytes) -> int:
        return int(raw.rsplit(b"/", 1)[1])

    #: Audit records of installation-wide objects (API keys, role bindings):
    #: outside ``sys/`` so the mirror does not hold them, outside ``t/`` so no
    #: tenant can list them.
    @property
    def sys_audit_prefix(self) -> bytes:
        return self._root_b + b"/audit/"

    def audit_prefix(self, tenant: str) -> bytes:
        return self._tenant_prefix(tenant) + b"audit/"

    def audit_key(self, tenant: str, audit_id: str) -> bytes:
        return self.audit_prefix(tenant) + audit_id.encode()
