"""Typed stand-ins for the store's parts (``configsvc.store.ports``) in pure unit tests.

They satisfy the protocols structurally, so a test hands them over without
``type: ignore`` or ``cast``; anything a test does not expect to be called
fails loudly instead of answering something made up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from configsvc.errors import BackendUnavailableError
from configsvc.store.etcd import BACKEND
from configsvc.store.items import ChangeBatch, Item, Record
from configsvc.store.keyspace import Keyspace


class UnreachableEtcd:
    """An ``EtcdPort`` for tests that feed the mirror by hand: every call is UNAVAILABLE."""

    def _down(self) -> BackendUnavailableError:
        return BackendUnavailableError(BACKEND, "no etcd in this unit test")

    async def range(self, request: Any, *, timeout: float | None = None) -> Any:
        raise self._down()

    async def range_all(
        self, prefix: bytes, *, revision: int = 0, page: int = 1000, timeout: float | None = None
    ) -> list[Any]:
        raise self._down()

    async def txn(self, request: Any, *, timeout: float | None = None) -> Any:
        raise self._down()

    async def watch(self, create: Any) -> AsyncIterator[Any]:
        raise self._down()
        yield  # an async generator, like EtcdClient.watch

    async def lease_grant(self, ttl: int, *, timeout: float | None = None) -> tuple[int, int]:
        raise self._down()

    async def lease_keepalive(self, lease_id: int, *, timeout: float | None = None) -> int:
        raise self._down()

    async def lease_revoke(self, lease_id: int, *, timeout: float | None = None) -> None:
        raise self._down()


class FixedWatchSource:
    """A ``WatchSource`` at a fixed revision with no entries or records: the hub's
    listeners are registered (and kept, so a test may call them) but nothing feeds them."""

    def __init__(self, revision: int = 1, keyspace: Keyspace | None = None) -> None:
        self.revision = revision
        self.first_revision = 0
        self.keyspace = keyspace or Keyspace("/unit")
        self.etcd = UnreachableEtcd()
        self.change_listeners: list[Callable[[ChangeBatch], None]] = []
        self.sync_listeners: list[Callable[[bool], None]] = []

    def add_change_listener(self, listener: Callable[[ChangeBatch], None]) -> None:
        self.change_listeners.append(listener)

    def add_sync_listener(self, listener: Callable[[bool], None]) -> None:
        self.sync_listeners.append(listener)

    def record(self, raw: bytes) -> Record | None:
        return None

    def records(self, prefix: bytes) -> Iterator[tuple[bytes, Record]]:
        return iter(())

    def scope_prefix(self, tenant: str, environment: str = "", service: str = "") -> bytes:
        return self.keyspace.scope_prefix(tenant, environment, service)

    def items(self, prefix: bytes) -> Iterator[Item]:
        return iter(())
