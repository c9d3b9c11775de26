"""Leader election over etcd: a lease, and one key created under it.

The leader is whoever created ``<root>/sys/publisher/leader`` with a Txn that
requires the key to be absent (``create_revision == 0``), attaching it to its
own lease. The key disappears when the lease ends (crash, partition, revoke),
so another replica can take over within the lease TTL. The key's
``create_revision`` identifies one term of leadership: writes the leader
makes on behalf of the term (the cursor) compare it, so a deposed leader that
has not noticed yet cannot move the cursor (fencing).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from typing import Any

from aetcd import rpc

from configsvc.store.ports import EtcdPort

log = logging.getLogger(__name__)


def new_identity() -> str:
    """``host:pid:random``: unique per process start, readable in status output."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


class Leadership:
    """One term of leadership: the lease is kept alive until ``lost`` is set or resign()."""

    def __init__(self, etcd: EtcdPort, key: bytes, lease_id: int, term: int, ttl: int) -> None:
        self._etcd = etcd
        self.key = key
        self.lease_id = lease_id
        self.term = term
        """The leader key's create_revision: fences every write of this term."""
        self.ttl = ttl
        self.lost = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._keep_alive())

    def fence(self) -> Any:
        """A Txn compare that holds only while this term is the current one."""
        return rpc.Compare(
            result=rpc.Compare.EQUAL,
            target=rpc.Compare.CREATE,
            key=self.key,
            create_revision=self.term,
        )

    async def _keep_alive(self) -> None:
        """Refresh every TTL/3; give up when etcd says the lease is gone or it expires unseen."""
        loop = asyncio.get_running_loop()
        expires = loop.time() + self.ttl
        interval = max(0.1, self.ttl / 3)
        try:
            while loop.time() < expires:
                await asyncio.sleep(interval)
                try:
                    remaining = await self._etcd.lease_keepalive(
                        self.lease_id, timeout=max(0.1, min(interval, expires - loop.time()))
                    )
                except Exception as exc:  # etcd unreachable: retry until the lease would expire
                    log.warning("publisher lease refresh failed: %s", exc)
                    continue
                if remaining <= 0:
                    break
                expires = loop.time() + remaining
            log.warning("publisher lease %x lost", self.lease_id)
        finally:
            self.lost.set()

    async def resign(self) -> None:
        """Stop refreshing and revoke the lease, so a successor need not wait for the TTL."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        with contextlib.suppress(Exception):
            await self._etcd.lease_revoke(self.lease_id, timeout=1.0)
        self.lost.set()


class Election:
    """Campaigns for ``key`` with a lease of ``ttl`` seconds."""

    def __init__(self, etcd: EtcdPort, key: bytes, identity: str, ttl: int) -> None:
        self._etcd = etcd
        self.key = key
        self.identity = identity
        self.ttl = ttl

    async def try_acquire(self) -> Leadership | None:
        """One attempt: the term if this replica became leader, None if another one leads."""
        lease_id, granted = await self._etcd.lease_grant(self.ttl)
        try:
            response = await self._etcd.txn(
                rpc.TxnRequest(
                    compare=[
                        rpc.Compare(
                            result=rpc.Compare.EQUAL,
                            target=rpc.Compare.CREATE,
                            key=self.key,
                            create_revision=0,
                        )
                    ],
                    success=[
                        rpc.RequestOp(
                            request_put=rpc.PutRequest(
                                key=self.key, value=self.identity.encode(), lease=lease_id
                            )
                        )
                    ],
                )
            )
        except BaseException:
            with contextlib.suppress(Exception):
                await self._etcd.lease_revoke(lease_id, timeout=1.0)
            raise
        if not response.succeeded:
            await self._etcd.lease_revoke(lease_id)
            return None
        log.info("publisher elected", extra={"identity": self.identity})
        return Leadership(self._etcd, self.key, lease_id, int(response.header.revision), granted)

    async def current_leader(self) -> tuple[str, int]:
        """(identity, revision of the read); identity empty when nobody leads."""
        response = await self._etcd.range(rpc.RangeRequest(key=self.key))
        leader = response.kvs[0].value.decode() if response.kvs else ""
        return leader, int(response.header.revision)

    async def wait_vacant(self, after_revision: int, timeout: float) -> None:
        """Return when the leader key is deleted after ``after_revision``, or after ``timeout``."""
        create = rpc.WatchCreateRequest(
            key=self.key, start_revision=after_revision + 1, filters=[rpc.WatchCreateRequest.NOPUT]
        )

        async def watch() -> None:
            async for response in self._etcd.watch(create):
                if response.canceled or response.events:
                    return

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(watch(), timeout)

    async def acquire(self, backoff: tuple[float, float]) -> Leadership:
        """Campaign until this replica leads (etcd failures are retried with backoff)."""
        delay = backoff[0]
        while True:
            try:
                leadership = await self.try_acquire()
                if leadership is not None:
                    return leadership
                leader, revision = await self.current_leader()
                if leader:
                    await self.wait_vacant(revision, self.ttl)
                delay = backoff[0]
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("publisher election: %s", exc)
                await asyncio.sleep(delay)
                delay = min(backoff[1], delay * 2)
