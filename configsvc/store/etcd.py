"""A small typed etcd v3 client on the stubs that ``aetcd`` ships.

aetcd's high-level ``Client`` ignores most range options (revision, limits,
mod-revision filters), has no per-call deadline and no way to own the watch
stream, all of which the mirror and the write path need. Its generated
``aetcd.rpc`` stubs are complete, so this module uses them directly on a
``grpc.aio`` channel it configures itself (fast reconnect, keepalive), and
turns every transport failure into one ``BackendUnavailableError("etcd")``.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import grpc
from aetcd import rpc

from configsvc.errors import BackendUnavailableError, InvalidArgumentError

BACKEND = "etcd"
log = logging.getLogger(__name__)


class CompactedError(Exception):
    """The requested revision has been compacted away; a full resync is needed."""

    def __init__(self, compact_revision: int) -> None:
        super().__init__(f"revision compacted (compact revision {compact_revision})")
        self.compact_revision = compact_revision


@dataclass(frozen=True)
class EtcdTLS:
    """Client TLS for etcd; paths to PEM files."""

    ca_file: Path | None = None
    """CA bundle that signs etcd's server certificate (system roots if None)."""
    cert_file: Path | None = None
    """Client certificate for etcd's client-cert auth, with ``key_file``."""
    key_file: Path | None = None
    """Private key of ``cert_file``."""


def _target(endpoints: Sequence[str]) -> str:
    """One gRPC target for the endpoints: a static address list, or one DNS name."""
    cleaned = [e.removeprefix("http://").removeprefix("https://") for e in endpoints]
    if not cleaned:
        raise ValueError("at least one etcd endpoint is required")
    if len(cleaned) == 1:
        return cleaned[0]
    hosts = []
    for endpoint in cleaned:
        host, _, port = endpoint.rpartition(":")
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            raise ValueError(
                f"etcd endpoint {endpoint!r}: several endpoints must be IP addresses; "
                "for host names give one DNS name that resolves to every member"
            ) from None
        hosts.append(f"{host}:{port}")
    scheme = "ipv6" if hosts[0].startswith("[") else "ipv4"
    return f"{scheme}:" + ",".join(hosts)


_CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    # etcd's default keepalive enforcement allows pings every 5 s.
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    # Reconnect quickly after an etcd restart (gRPC's default backs off to 120 s).
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2_000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 8 * 1024 * 1024),
]


_CAUSES = {
    grpc.StatusCode.UNAVAILABLE: "cannot connect",
    grpc.StatusCode.DEADLINE_EXCEEDED: "no answer before the deadline",
    grpc.StatusCode.CANCELLED: "request cancelled",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "etcd is overloaded or out of space",
}


def translate_rpc_error(exc: grpc.aio.AioRpcError) -> Exception:
    """Map an etcd gRPC failure to the error a configsvc caller should see.

    The caller's message names etcd and the kind of failure but not etcd's
    addresses or internal error text; those go to the server log.
    """
    code = exc.code()
    details = exc.details() or code.name
    if code == grpc.StatusCode.OUT_OF_RANGE and "compacted" in details:
        return CompactedError(0)
    if code == grpc.StatusCode.INVALID_ARGUMENT and "too large" in details:
        return InvalidArgumentError.single("value", "is too large for etcd's request limit")
    log.warning("etcd call failed: %s: %s", code.name, details)
    return BackendUnavailableError(BACKEND, _CAUSES.get(code, f"etcd answered {code.name}"))


class EtcdPort(Protocol):
    """The etcd calls the domain makes (``EtcdClient`` below; ``configsvc.store.ports``
    re-exports it): every one takes an explicit timeout, none is retried behind the
    caller's back. Unit tests pass typed stand-ins for it."""

    async def range(self, request: Any, *, timeout: float | None = None) -> Any: ...

    async def range_all(
        self, prefix: bytes, *, revision: int = 0, page: int = 1000, timeout: float | None = None
    ) -> list[Any]: ...

    async def txn(self, request: Any, *, timeout: float | None = None) -> Any: ...

    def watch(self, create: Any) -> AsyncIterator[Any]: ...

    async def lease_grant(self, ttl: int, *, timeout: float | None = None) -> tuple[int, int]: ...

    async def lease_keepalive(self, lease_id: int, *, timeout: float | None = None) -> int: ...

    async def lease_revoke(self, lease_id: int, *, timeout: float | None = None) -> None: ...


class EtcdClient:
    """The etcd calls configsvc makes, each with an explicit timeout."""

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        tls: EtcdTLS | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.endpoints = tuple(endpoints)
        self.timeout = timeout
        target = _target(endpoints)
        if tls is None:
            self._channel = grpc.aio.insecure_channel(target, options=_CHANNEL_OPTIONS)
        else:
            creds = grpc.ssl_channel_credentials(
                root_certificates=tls.ca_file.read_bytes() if tls.ca_file else None,
                private_key=tls.key_file.read_bytes() if tls.key_file else None,
                certificate_chain=tls.cert_file.read_bytes() if tls.cert_file else None,
            )
            self._channel = grpc.aio.secure_channel(target, creds, options=_CHANNEL_OPTIONS)
        self._kv = rpc.KVStub(self._channel)
        self._watch = rpc.WatchStub(self._channel)
        self._lease = rpc.LeaseStub(self._channel)

    def _deadline(self, timeout: float | None) -> float:
        return self.timeout if timeout is None else max(0.05, min(timeout, self.timeout))

    async def range(self, request: Any, *, timeout: float | None = None) -> Any:
        """One Range call; a linearizable read unless ``request.serializable``."""
        try:
            return await self._kv.Range(request, timeout=self._deadline(timeout))
        except grpc.aio.AioRpcError as exc:
            raise translate_rpc_error(exc) from None

    async def range_all(
        self, prefix: bytes, *, revision: int = 0, page: int = 1000, timeout: float | None = None
    ) -> list[Any]:
        """Every key under ``prefix`` at ``revision`` (0: now), fetched in bounded pages."""
        end = prefix_range_end(prefix)
        start = prefix
        kvs: list[Any] = []
        while True:
            resp = await self.range(
                rpc.RangeRequest(key=start, range_end=end, revision=revision, limit=page),
                timeout=timeout,
            )
            kvs.extend(resp.kvs)
            if not resp.more or not resp.kvs:
                return kvs
            start = resp.kvs[-1].key + b"\0"

    async def txn(self, request: Any, *, timeout: float | None = None) -> Any:
        """One Txn. Not retried here: the caller decides whether a retry is safe."""
        try:
            return await self._kv.Txn(request, timeout=self._deadline(timeout))
        except grpc.aio.AioRpcError as exc:
            raise translate_rpc_error(exc) from None

    async def compact(self, revision: int, *, timeout: float | None = None) -> None:
        try:
            await self._kv.Compact(
                rpc.CompactionRequest(revision=revision, physical=True),
                timeout=self._deadline(timeout),
            )
        except grpc.aio.AioRpcError as exc:
            raise translate_rpc_error(exc) from None

    async def watch(self, create: Any) -> AsyncIterator[Any]:
        """Open one watch and yield its responses until the stream ends or fails.

        The request side stays open: etcd keeps a watch alive after the client
        half-closes, but an open stream lets us add requests later.
        """
        call = self._watch.Watch()
        try:
            await call.write(rpc.WatchRequest(create_request=create))
            while True:
                response = await call.read()
                if response is grpc.aio.EOF:
                    raise BackendUnavailableError(BACKEND, "watch stream closed by etcd")
                yield response
        except grpc.aio.AioRpcError as exc:
            raise translate_rpc_error(exc) from None
        finally:
            call.cancel()

    async def lease_grant(self, ttl: int, *, timeout: float | None = None) -> tuple[int, int]:
        """A new lease of ``ttl`` seconds: (lease id, granted TTL)."""
        try:
            response = await self._lease.LeaseGrant(
                rpc.LeaseGrantRequest(TTL=ttl), timeout=self._deadline(timeout)
            )
        except grpc.aio.AioRpcError as exc:
            raise translate_rpc_error(exc) from None
        if response.error:
            raise BackendUnavailableError(BACKEND, f"lease grant refused: {response.error}")
        return int(response.ID), int(response.TTL)

    async def lease_keepalive(self, lease_id: int, *, timeout: float | None = None) -> int:
        """Refresh a lease once; returns its remaining TTL (0: the lease has expired).

        One short stream per refresh rather than one long-lived stream: a
        refresh every TTL/3 is cheap, and a broken stream cannot silently
        leave the lease unrefreshed.
        """
        call = self._lease.LeaseKeepAlive(timeout=self._deadline(timeout))
        try:
            await call.write(rpc.LeaseKeepAliveRequest(ID=lease_id))
            response = await call.read()
            if response is grpc.aio.EOF:
                raise BackendUnavailableError(BACKEND, "lease keepalive stream closed by etcd")
            return int(response.TTL)
        except grpc.aio.AioRpcError as exc:
            raise translate_rpc_error(exc) from None
        finally:
            call.cancel()

    async def lease_revoke(self, lease_id: int, *, timeout: float | None = None) -> None:
        """End a lease now; keys attached to it are deleted."""
        try:
            await self._lease.LeaseRevoke(
                rpc.LeaseRevokeRequest(ID=lease_id), timeout=self._deadline(timeout)
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return  # already expired
            raise translate_rpc_error(exc) from None

    async def close(self) -> None:
        await self._channel.close()


def prefix_range_end(prefix: bytes) -> bytes:
    """The etcd ``range_end`` that selects every key starting with ``prefix``."""
    end = bytearray(prefix)
    for i in range(len(end) - 1, -1, -1):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[: i + 1])
    return b"\0"
