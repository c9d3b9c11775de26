"""``SyncConfigClient``: the asyncio client for code without an event loop.

The asyncio client runs on a private event loop in a daemon thread
("configsvc-client"). Reads (``get``, ``get_int``... ``entry``) and
``subscribe`` do not touch that loop: the cache is read directly, which is
safe across threads, so a read costs the same as with the async client.
Calls that do I/O (``put``, ``delete``, ``fetch``, ``wait_fresh``) are
submitted to the loop and block the calling thread until they finish.

Callbacks run on the client's thread, one at a time, in revision order:
guard data they share with other threads, and never call a blocking method
of this client from a callback (that would wait for the thread the callback
occupies; it raises RuntimeError instead). A callback that blocks holds that
thread and so the stream: :attr:`status`, computed from the clock, reports
stale once the silence limit has passed, and the client resumes when the
callback returns.

The thread is a daemon so a forgotten client never keeps a process alive,
but then nothing runs at interpreter exit: call :meth:`close` (or use
``with``) so the cache file gets its final write.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from types import TracebackType
from typing import Any, TypeVar, Unpack

from configsvc_client._reads import ConfigReader
from configsvc_client._transport import Metadata
from configsvc_client.client import _UNSET, ClientSettings, ConfigClient
from configsvc_client.keys import KeyLike
from configsvc_client.model import DeleteResult, Entry
from configsvc_client.status import Stats, Status

__all__ = ["SyncConfigClient"]

_T = TypeVar("_T")


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


class SyncConfigClient(ConfigReader):
    """A blocking facade over :class:`ConfigClient`; see the module docs for threading."""

    def __init__(
        self, client: ConfigClient, loop: asyncio.AbstractEventLoop, thread: threading.Thread
    ) -> None:
        self._client = client
        self._loop = loop
        self._thread = thread
        self._cache = client._cache
        self._selectors = client._selectors
        self._dispatcher = client._dispatcher
        self._closed = False

    @classmethod
    def connect(cls, target: str, **settings: Unpack[ClientSettings]) -> SyncConfigClient:
        """Start the thread and the client; arguments and errors as ``ConfigClient.connect``."""
        client = ConfigClient(target, **settings)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(
            target=_run_loop, args=(loop,), name="configsvc-client", daemon=True
        )
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(client.start(), loop).result()
        except BaseException:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            raise
        return cls(client, loop, thread)

    def _call(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError(
                "blocking SyncConfigClient calls cannot be made from a callback "
                "(it runs on the client's own thread)"
            )
        future: Future[_T] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result()

    @property
    def client(self) -> ConfigClient:
        """The underlying asyncio client (use it only on its loop)."""
        return self._client

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The client's event loop (for ``asyncio.run_coroutine_threadsafe``)."""
        return self._loop

    @property
    def status(self) -> Status:
        return self._client.status

    @property
    def stats(self) -> Stats:
        return self._client.stats

    def wait_fresh(self, *, timeout: float | None = None) -> bool:
        """Block until the cache follows the server live; False on timeout."""
        return self._call(self._client.wait_fresh(timeout=timeout))

    def wait_revision(self, revision: int, *, timeout: float | None = None) -> bool:
        """Block until the cache reflects ``revision``; False on timeout."""
        return self._call(self._client.wait_revision(revision, timeout=timeout))

    def put(
        self,
        path: KeyLike,
        value: Any = _UNSET,
        *,
        raw_json: str | None = None,
        expected_revision: int | None = None,
        reason: str = "",
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> Entry:
        """See :meth:`ConfigClient.put`."""
        return self._call(
            self._client.put(
                path,
                value,
                raw_json=raw_json,
                expected_revision=expected_revision,
                reason=reason,
                timeout=timeout,
                metadata=metadata,
            )
        )

    def delete(
        self,
        path: KeyLike,
        *,
        expected_revision: int | None = None,
        reason: str = "",
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> DeleteResult:
        """See :meth:`ConfigClient.delete`."""
        return self._call(
            self._client.delete(
                path,
                expected_revision=expected_revision,
                reason=reason,
                timeout=timeout,
                metadata=metadata,
            )
        )

    def fetch(
        self,
        path: KeyLike,
        *,
        consistent: bool = False,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> Entry:
        """See :meth:`ConfigClient.fetch`."""
        return self._call(
            self._client.fetch(path, consistent=consistent, timeout=timeout, metadata=metadata)
        )

    def close(self) -> None:
        """Close the client (final cache file write), then stop the thread. Idempotent."""
        if self._closed:
            return
        if threading.current_thread() is self._thread:
            raise RuntimeError("SyncConfigClient.close() cannot be called from a callback")
        self._closed = True
        try:
            self._call(self._client.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()

    def __enter__(self) -> SyncConfigClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Sync{self._client!r}"
