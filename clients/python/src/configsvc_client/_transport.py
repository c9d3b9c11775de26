"""The gRPC channel and the calls the client makes, with errors mapped.

Method callables are built from the service descriptors (not from the
untyped generated ``*_pb2_grpc`` classes), so method names stay those of the
contract and the module type-checks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias, TypeVar

import grpc

from configsvc_client._gen.configsvc.v1 import config_pb2, watch_pb2
from configsvc_client.backoff import Backoff
from configsvc_client.errors import from_rpc_error

__all__ = ["Metadata", "Transport", "merge_metadata"]

Metadata: TypeAlias = Mapping[str, str] | Sequence[tuple[str, str | bytes]]
"""Call metadata: a mapping or a sequence of (key, value) pairs."""

_Response = TypeVar("_Response")


def merge_metadata(
    base: tuple[tuple[str, str | bytes], ...], extra: Metadata | None
) -> tuple[tuple[str, str | bytes], ...]:
    """The client's default metadata followed by a call's own."""
    if not extra:
        return base
    pairs = extra.items() if isinstance(extra, Mapping) else extra
    return base + tuple((str(k).lower(), v) for k, v in pairs)


def _path(descriptor: Any, service: str, method: str) -> str:
    return f"/{descriptor.services_by_name[service].full_name}/{method}"


def channel_options(backoff: Backoff) -> list[tuple[str, Any]]:
    """Channel settings for a long-lived watch stream.

    * gRPC's own reconnect backoff defaults to 120 s at most; while it waits,
      calls fail at once without trying. Capped at the client's maximum so a
      returning server is found as soon as the client's own backoff allows.
    * Keepalive pings (also while the stream is quiet, with no limit on pings
      without data) find a half-open connection in about 40 s; the server
      allows pings every 10 s.
    * Snapshots are sent in chunks, but one chunk may be large.
    """
    reconnect_ms = max(100, int(backoff.maximum * 1000))
    return [
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", reconnect_ms),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ]


class Transport:
    """One channel to the server; unary calls raise typed :mod:`errors`."""

    def __init__(
        self,
        target: str,
        *,
        backoff: Backoff,
        credentials: grpc.ChannelCredentials | None = None,
        options: Sequence[tuple[str, Any]] = (),
        metadata: Metadata | None = None,
    ) -> None:
        merged = {name: value for name, value in channel_options(backoff)}
        merged.update(dict(options))
        if credentials is None:
            self.channel = grpc.aio.insecure_channel(target, options=list(merged.items()))
        else:
            self.channel = grpc.aio.secure_channel(
                target, credentials, options=list(merged.items())
            )
        self.target = target
        self.metadata = merge_metadata((), metadata)
        watch_path = _path(watch_pb2.DESCRIPTOR, "WatchService", "Watch")
        self._watch = self.channel.unary_stream(
            watch_path,
            request_serializer=watch_pb2.WatchRequest.SerializeToString,
            response_deserializer=watch_pb2.WatchResponse.FromString,
        )
        config = config_pb2.DESCRIPTOR
        self._get = self.channel.unary_unary(
            _path(config, "ConfigService", "Get"),
            request_serializer=config_pb2.GetRequest.SerializeToString,
            response_deserializer=config_pb2.GetResponse.FromString,
        )
        self._put = self.channel.unary_unary(
            _path(config, "ConfigService", "Put"),
            request_serializer=config_pb2.PutRequest.SerializeToString,
            response_deserializer=config_pb2.PutResponse.FromString,
        )
        self._delete = self.channel.unary_unary(
            _path(config, "ConfigService", "Delete"),
            request_serializer=config_pb2.DeleteRequest.SerializeToString,
            response_deserializer=config_pb2.DeleteResponse.FromString,
        )

    def watch(self, request: watch_pb2.WatchRequest, metadata: Metadata | None = None) -> Any:
        """Open a Watch stream (a ``grpc.aio.UnaryStreamCall``); fails fast when unreachable."""
        return self._watch(
            request, metadata=merge_metadata(self.metadata, metadata), wait_for_ready=False
        )

    async def _unary(
        self, method: Any, request: Any, timeout: float | None, metadata: Metadata | None
    ) -> Any:
        try:
            return await method(
                request, timeout=timeout, metadata=merge_metadata(self.metadata, metadata)
            )
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from exc

    async def get(
        self, request: config_pb2.GetRequest, *, timeout: float | None, metadata: Metadata | None
    ) -> config_pb2.GetResponse:
        response: config_pb2.GetResponse = await self._unary(self._get, request, timeout, metadata)
        return response

    async def put(
        self, request: config_pb2.PutRequest, *, timeout: float | None, metadata: Metadata | None
    ) -> config_pb2.PutResponse:
        response: config_pb2.PutResponse = await self._unary(self._put, request, timeout, metadata)
        return response

    async def delete(
        self, request: config_pb2.DeleteRequest, *, timeout: float | None, metadata: Metadata | None
    ) -> config_pb2.DeleteResponse:
        response: config_pb2.DeleteResponse = await self._unary(
            self._delete, request, timeout, metadata
        )
        return response

    async def close(self) -> None:
        await self.channel.close()
