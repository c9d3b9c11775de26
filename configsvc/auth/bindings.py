"""Role bindings: records under ``sys/rolebindings/<id>``, compiled per principal.

The compiled ``Access`` of a principal is cached per mirror records
generation, so a call costs one integer compare and one dict lookup; any
record change rebuilds lazily, and the guard's record listener resets open
watch streams whose grants changed.
"""

from __future__ import annotations

from configsvc.model.grants import Access, grant_of, subject_matches
from configsvc.store.keyspace import Keyspace
from configsvc.store.ports import MirrorPort
from configsvc.v1 import auth_pb2

KIND = "rolebindings"
_CACHE_MAX = 10_000


class Bindings:
    """Every role binding of the installation, as mirrored."""

    def __init__(self, mirror: MirrorPort, keyspace: Keyspace) -> None:
        self._mirror = mirror
        self._ks = keyspace
        self.prefix = keyspace.sys_key(KIND, "")
        self._generation = -1
        self._all: list[auth_pb2.RoleBinding] = []
        self._access: dict[str, Access] = {}

    def record_key(self, binding_id: str) -> bytes:
        return self._ks.sys_key(KIND, binding_id)

    def _refresh(self) -> None:
        if self._generation == self._mirror.records_generation:
            return
        loaded = []
        for _raw, record in self._mirror.records(self.prefix):
            binding = auth_pb2.RoleBinding.FromString(record.value)
            binding.create_revision = record.create_revision
            loaded.append(binding)
        self._all = loaded
        self._access = {}
        self._generation = self._mirror.records_generation

    def all(self) -> list[auth_pb2.RoleBinding]:
        self._refresh()
        return list(self._all)

    def of(self, name: str) -> list[auth_pb2.RoleBinding]:
        self._refresh()
        return [b for b in self._all if subject_matches(b.subject, name)]

    def access(self, name: str) -> Access:
        """The principal's grants now; the same object until bindings change."""
        self._refresh()
        access = self._access.get(name)
        if access is None:
            access = Access(name, tuple(grant_of(b) for b in self.of(name)))
            if len(self._access) >= _CACHE_MAX:
                self._access.clear()
            self._access[name] = access
        return access
