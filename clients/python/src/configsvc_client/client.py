"""``ConfigClient``: one Watch stream, a local cache, hot reload, last-known-good.

Reads never do an RPC: they look at the cache the stream keeps current.
The client starts by asking for a snapshot; if the server cannot be reached
within ``connect_timeout`` it serves the cache file written by an earlier run
(reporting itself stale) and keeps reconnecting in the background, resuming
from the file's revision when the server still has it, re-snapshotting
otherwise. With neither server nor file it refuses to start
(:class:`ConfigUnavailableError`): running with no configuration at all is
rarely what a service wants.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Generator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Required, TypedDict, Unpack

import grpc

from configsvc_client import lkg
from configsvc_client._delivery import DEFAULT_MAX_PENDING
from configsvc_client._gen.configsvc.v1 import config_pb2
from configsvc_client._persist import Persister
from configsvc_client._reads import ConfigReader, selectors_tuple
from configsvc_client._transport import Metadata, Transport, merge_metadata
from configsvc_client._watch import (
    DEFAULT_PROGRESS_INTERVAL,
    DEFAULT_SILENCE_INTERVALS,
    Watcher,
    silence_limit,
)
from configsvc_client._writes import DEFAULT_WRITE_ATTEMPTS, new_request_id, send_write
from configsvc_client.auth import bearer_metadata
from configsvc_client.backoff import Backoff
from configsvc_client.cache import Cache
from configsvc_client.errors import (
    ClientClosedError,
    ConfigError,
    ConfigUnavailableError,
    InvalidArgumentError,
)
from configsvc_client.keys import Key, KeyLike, KeyPrefix, Selector, parse_key
from configsvc_client.model import DeleteResult, Entry
from configsvc_client.status import Stats, Status
from configsvc_client.subscriptions import ChangeStream, Dispatcher

__all__ = ["ConfigClient"]

log = logging.getLogger("configsvc_client")


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _Unset()


def _proto_key(key: Key) -> config_pb2.ConfigKey:
    return config_pb2.ConfigKey(
        tenant=key.tenant, environment=key.environment, service=key.service, key=key.key
    )


def encode_value(value: Any, raw_json: str | None) -> str:
    """The JSON text to send: ``raw_json`` as is, else ``value`` serialised (NaN refused)."""
    if raw_json is not None:
        if value is not _UNSET:
            raise InvalidArgumentError.single("value", "pass either value or raw_json, not both")
        if not isinstance(raw_json, str):
            raise InvalidArgumentError.single("raw_json", "must be a str of JSON text")
        return raw_json
    if value is _UNSET:
        raise InvalidArgumentError.single("value", "a value (or raw_json) is required")
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError.single("value", f"not JSON-serialisable: {exc}") from exc


class ClientSettings(TypedDict, total=False):
    """The keyword arguments of ``ConfigClient``/``connect`` and ``SyncConfigClient.connect``,
    declared once (PEP 692) so the three signatures cannot drift apart."""

    selectors: Required[Sequence[Selector]]
    """What to watch: one Watch stream carries all of them."""
    cache_file: Path | str | None
    """Last-known-good file (written atomically); default None: no file."""
    connect_timeout: float
    """Seconds to wait for the first snapshot before falling back to the file; default 5."""
    metadata: Metadata | None
    """Sent with every call (e.g. an auth header); default None."""
    api_key: str | None
    """API key (``cs_...``) or JWT, sent as ``authorization: Bearer ...`` with every call;
    default None."""
    backoff: Backoff | None
    """Reconnect backoff (exponential, full jitter); default ``Backoff()``."""
    credentials: grpc.ChannelCredentials | None
    """TLS for the channel; default None: plaintext."""
    channel_options: Sequence[tuple[str, Any]]
    """Extra gRPC channel options; default none."""
    default_timeout: float | None
    """Deadline of unary calls that pass no ``timeout``; default 10 s."""
    persist_interval: float
    """Minimum seconds between cache file writes; default 0.5."""
    progress_interval: float
    """The server's ``--watch-progress-interval``: it sends a heartbeat on a stream quiet for
    that long (jittered +-20%); default 10. Set it when the server's differs: the client
    judges silence by it."""
    silence_intervals: float
    """Progress intervals a stream may stay silent before the client treats it as dead
    (reports stale, cancels it, resumes on a new one); default 3, i.e. 30 s with the
    server's default interval; at least 1.5. Silence means the server gave up on the
    stream without a status that got through, hangs, or the connection stopped carrying
    data: TCP keepalive alone would take about 40 s and misses a live connection."""
    max_pending_changes: int
    """Changes the cache may be ahead of slow callbacks before they get the net difference
    (in revision order) instead of every change; default 10,000. The stream is read on
    regardless."""


class ConfigClient(ConfigReader):
    """An asyncio configsvc client; see :meth:`connect`.

    All methods must be called on the event loop the client was started on,
    except the reads and :meth:`subscribe`, which are safe from any thread.
    """

    def __init__(self, target: str, **settings: Unpack[ClientSettings]) -> None:
        """See :class:`ClientSettings`; the defaults are applied here, and only here."""
        self.target = target
        self._selectors = selectors_tuple(settings["selectors"])
        cache_file = settings.get("cache_file")
        self.cache_file = Path(cache_file) if cache_file is not None else None
        self.connect_timeout = settings.get("connect_timeout", 5.0)
        self._metadata = settings.get("metadata")
        api_key = settings.get("api_key")
        if api_key is not None:
            self._metadata = merge_metadata(bearer_metadata(api_key), self._metadata)
        self._backoff = settings.get("backoff") or Backoff()
        self._credentials = settings.get("credentials")
        self._channel_options = tuple(settings.get("channel_options", ()))
        self.default_timeout = settings.get("default_timeout", 10.0)
        self._persist_interval = settings.get("persist_interval", 0.5)
        self._silence_limit = silence_limit(
            settings.get("progress_interval", DEFAULT_PROGRESS_INTERVAL),
            settings.get("silence_intervals", DEFAULT_SILENCE_INTERVALS),
        )
        self._max_pending = settings.get("max_pending_changes", DEFAULT_MAX_PENDING)
        self._cache = Cache()
        self._dispatcher = Dispatcher()
        self._stats = Stats()
        self._transport: Transport | None = None
        self._watcher: Watcher | None = None
        self._persister: Persister | None = None
        self._state = "new"

    @classmethod
    def connect(cls, target: str, **settings: Unpack[ClientSettings]) -> _Connecting:
        """A started client: ``async with ConfigClient.connect(...) as c`` or ``await ...``.

        ``target`` is a gRPC target (``host:port``, ``dns:///name:port``...);
        ``credentials`` makes the channel TLS (see ``tls_credentials``);
        ``api_key`` authenticates every call; ``metadata`` is sent with every
        call. ``default_timeout`` applies to unary calls
        that pass no ``timeout``. ``persist_interval`` spaces cache file writes.
        """
        return _Connecting(cls(target, **settings))

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Connect (or fall back to the cache file); raises if neither works."""
        if self._state != "new":
            raise ConfigError(f"the client cannot be started twice (it is {self._state})")
        self._state = "starting"
        self._transport = Transport(
            self.target,
            backoff=self._backoff,
            credentials=self._credentials,
            options=self._channel_options,
            metadata=self._metadata,
        )
        if self.cache_file is not None:
            self._persister = Persister(
                self.cache_file,
                self._selectors,
                self._cache,
                self._stats,
                self._persist_interval,
                self.target,
            )
            self._persister.start()
        watcher = self._watcher = Watcher(
            self._transport,
            self._selectors,
            self._cache,
            self._dispatcher,
            self._stats,
            backoff=self._backoff,
            persister=self._persister,
            silence_limit=self._silence_limit,
            max_pending=self._max_pending,
        )
        watcher.start()
        try:
            try:
                await asyncio.wait_for(asyncio.shield(watcher.started), self.connect_timeout)
            except TimeoutError:
                watcher.end_startup()
                await self._fall_back()
        except BaseException:
            await self.close()
            raise
        self._state = "running"

    async def _fall_back(self) -> None:
        assert self._watcher is not None
        reason = self._watcher.last_error or "no answer"
        cache_file = await self._load_cache_file()
        if cache_file is not None and self._watcher.adopt(cache_file, self.target):
            log.warning(
                "configsvc at %s unreachable within %.1fs (%s); serving the cache file "
                "%s (revision %d, saved %s) until it is back",
                self.target,
                self.connect_timeout,
                reason,
                self.cache_file,
                cache_file.revision,
                cache_file.saved_at or "at an unknown time",
            )
            return
        if self._cache.has_base:  # the snapshot arrived while the file was read
            return
        raise ConfigUnavailableError(
            f"cannot reach configsvc at {self.target} within {self.connect_timeout}s "
            f"({reason}) and no usable cache file"
            + (f" at {self.cache_file}" if self.cache_file else " (cache_file not set)")
        )

    async def _load_cache_file(self) -> lkg.CacheFile | None:
        if self.cache_file is None:
            return None
        try:
            return await asyncio.to_thread(lkg.load, self.cache_file)
        except lkg.CacheFileError as exc:
            log.warning("ignoring the configsvc cache file %s: %s", self.cache_file, exc.message)
            return None

    async def close(self) -> None:
        """Stop the stream, write the cache file, end iterators, close the channel.

        Idempotent. Reads keep answering from the last cache after close.
        """
        if self._state == "closed":
            return
        self._state = "closed"
        if self._watcher is not None:
            await self._watcher.stop()
        if self._persister is not None:
            await self._persister.close()
        self._dispatcher.close()
        if self._transport is not None:
            await self._transport.close()

    async def __aenter__(self) -> ConfigClient:
        if self._state == "new":
            await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- state -------------------------------------------------------------------

    @property
    def status(self) -> Status:
        """Connected / stale / revision / last error (see :class:`Status`)."""
        watcher = self._watcher
        connected = (
            watcher is not None
            and watcher.connected
            and not watcher.silent
            and self._state != "closed"
        )
        return Status(
            connected=connected,
            stale=not (connected and watcher is not None and watcher.fresh.is_set()),
            revision=self._cache.revision,
            last_error=watcher.last_error if watcher is not None else None,
        )

    @property
    def stats(self) -> Stats:
        """A copy of the counters."""
        return dataclasses.replace(self._stats)

    @property
    def selectors(self) -> tuple[Selector, ...]:
        return self._selectors

    def _running_watcher(self) -> Watcher:
        if self._state == "closed":
            raise ClientClosedError("the client is closed")
        if self._watcher is None:
            raise ConfigError("the client is not started")
        return self._watcher

    async def wait_fresh(self, *, timeout: float | None = None) -> bool:
        """Wait until the cache follows the server live; False on timeout."""
        return await self._running_watcher().wait_fresh(timeout)

    async def wait_revision(self, revision: int, *, timeout: float | None = None) -> bool:
        """Wait until the cache reflects ``revision`` (e.g. a ``put``'s); False on timeout.

        It covers reads (``get`` and the typed getters). Subscription callbacks and
        change streams for that revision are delivered in order after the cache is
        updated, by a task of their own (so a slow callback never stalls the stream):
        they may not have run yet when this returns.
        """
        return await self._running_watcher().wait_revision(revision, timeout)

    def changes(
        self,
        prefix: str | KeyPrefix | None = None,
        *,
        key: KeyLike | None = None,
        max_queue: int = 1000,
    ) -> ChangeStream:
        """An async iterator of changes (all, under ``prefix``, or of one ``key``).

        It receives changes applied after this call. See :class:`ChangeStream`
        for what happens when it falls ``max_queue`` changes behind.
        """
        if prefix is not None and key is not None:
            raise TypeError("pass prefix or key, not both")
        matcher: Key | KeyPrefix | None = None
        if prefix is not None:
            matcher = self._matcher(prefix, True)
        elif key is not None:
            matcher = self._matcher(key, False)
        return self._dispatcher.open_stream(matcher, max_queue)

    # -- unary helpers -------------------------------------------------------------

    def _transport_for_call(self) -> Transport:
        if self._state == "closed":
            raise ClientClosedError("the client is closed")
        if self._transport is None:
            raise ConfigError("the client is not started")
        return self._transport

    def _timeout(self, timeout: float | None) -> float | None:
        return self.default_timeout if timeout is None else timeout

    async def put(
        self,
        path: KeyLike,
        value: Any = _UNSET,
        *,
        raw_json: str | None = None,
        expected_revision: int | None = None,
        reason: str = "",
        request_id: str | None = None,
        write_attempts: int = DEFAULT_WRITE_ATTEMPTS,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> Entry:
        """Write a value (any JSON-serialisable object, or ``raw_json`` text); the entry written.

        ``expected_revision`` makes it a compare-and-swap (0: only if absent):
        :class:`ConflictError` with ``current_revision`` when it does not match.
        The local cache shows the write once the stream delivers it; use
        ``await client.wait_revision(entry.revision)`` to read your own write.

        The write carries a request id (``request_id``, or a new UUID) and is
        retried with the same id on UNAVAILABLE or DEADLINE_EXCEEDED, up to
        ``write_attempts`` attempts of ``timeout`` each: a write that committed
        but whose answer was lost is answered, not written twice.
        """
        request = config_pb2.PutRequest(
            key=_proto_key(parse_key(path)),
            value=encode_value(value, raw_json),
            reason=reason,
            request_id=request_id or new_request_id(),
        )
        if expected_revision is not None:
            request.expected_revision = expected_revision
        transport = self._transport_for_call()
        response = await send_write(
            lambda: transport.put(request, timeout=self._timeout(timeout), metadata=metadata),
            attempts=write_attempts,
        )
        return Entry.from_proto(response.entry)

    async def delete(
        self,
        path: KeyLike,
        *,
        expected_revision: int | None = None,
        reason: str = "",
        request_id: str | None = None,
        write_attempts: int = DEFAULT_WRITE_ATTEMPTS,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> DeleteResult:
        """Delete a value (history is kept); :class:`NotFoundError` if it has none.

        Request id and retries as in :meth:`put`.
        """
        request = config_pb2.DeleteRequest(
            key=_proto_key(parse_key(path)),
            reason=reason,
            request_id=request_id or new_request_id(),
        )
        if expected_revision is not None:
            request.expected_revision = expected_revision
        transport = self._transport_for_call()
        response = await send_write(
            lambda: transport.delete(request, timeout=self._timeout(timeout), metadata=metadata),
            attempts=write_attempts,
        )
        return DeleteResult(
            previous=Entry.from_proto(response.previous),
            revision=response.revision,
            version=response.version,
        )

    async def fetch(
        self,
        path: KeyLike,
        *,
        consistent: bool = False,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> Entry:
        """Read one entry from the server (a Get RPC, bypassing the cache).

        ``consistent`` asks for a strong read (reflects every write acknowledged
        before the call). :class:`NotFoundError` if the key has no value. Works
        for keys outside the selectors too.
        """
        consistency = (
            config_pb2.READ_CONSISTENCY_STRONG if consistent else config_pb2.READ_CONSISTENCY_MIRROR
        )
        request = config_pb2.GetRequest(key=_proto_key(parse_key(path)), consistency=consistency)
        response = await self._transport_for_call().get(
            request, timeout=self._timeout(timeout), metadata=metadata
        )
        return Entry.from_proto(response.entry)

    def __repr__(self) -> str:
        status = self.status
        return (
            f"ConfigClient({self.target!r}, {self._state}, revision={status.revision}, "
            f"stale={status.stale})"
        )


class _Connecting:
    """What :meth:`ConfigClient.connect` returns: await it, or use it with ``async with``."""

    def __init__(self, client: ConfigClient) -> None:
        self._client = client

    def __await__(self) -> Generator[Any, None, ConfigClient]:
        return self._start().__await__()

    async def _start(self) -> ConfigClient:
        await self._client.start()
        return self._client

    async def __aenter__(self) -> ConfigClient:
        return await self._start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._client.close()
