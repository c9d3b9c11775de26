"""Where events go: a small protocol, and Pulsar behind it.

``pulsar-client`` is a blocking library over a C++ core whose callbacks run
on its own threads; this module keeps that out of the event loop: connect and
close run in a worker thread, and acknowledgements come back as asyncio
futures resolved on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

from configsvc.errors import BackendUnavailableError
from configsvc.events.build import OutgoingEvent
from configsvc.events.settings import PulsarTLS

BACKEND = "pulsar"
log = logging.getLogger(__name__)
_client_log = logging.getLogger("configsvc.events.pulsar_client")


class EventSink(Protocol):
    """A destination that acknowledges each event; sends from one sink keep their order."""

    async def open(self) -> None:
        """Connect; raises BackendUnavailableError when the destination cannot be reached."""

    def send(self, event: OutgoingEvent) -> asyncio.Future[None]:
        """Start sending; the future completes on acknowledgement or fails."""

    async def close(self) -> None:
        """Release the connection (pending sends fail)."""


class PulsarSink:
    """One Pulsar producer on ``topic``; messages keyed by config key, revision in properties."""

    def __init__(
        self,
        url: str,
        topic: str,
        *,
        send_timeout: float,
        max_pending: int,
        tls: PulsarTLS | None = None,
    ) -> None:
        self.url = url
        self._tls = tls or PulsarTLS()
        self.topic = topic
        self._send_timeout_ms = max(1000, int(send_timeout * 1000))
        self._max_pending = max_pending
        self._client: Any = None
        self._producer: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            self._client, self._producer = await asyncio.to_thread(self._connect)
        except Exception as exc:  # pulsar raises its own hierarchy
            raise BackendUnavailableError(
                BACKEND, f"cannot create a producer on {self.topic}: {exc}"
            ) from None

    def _connect(self) -> tuple[Any, Any]:
        import pulsar  # noqa: PLC0415 - only replicas that publish need the library loaded

        timeout_s = max(1, self._send_timeout_ms // 1000)
        options = self._tls.client_options() if self.url.startswith("pulsar+ssl://") else {}
        if options and self._tls.cert_file:
            options["authentication"] = pulsar.AuthenticationTLS(
                self._tls.cert_file, self._tls.key_file
            )
        client = pulsar.Client(
            self.url,
            operation_timeout_seconds=timeout_s,
            connection_timeout_ms=self._send_timeout_ms,
            logger=_client_log,
            **options,
        )
        try:
            producer = client.create_producer(
                self.topic,
                send_timeout_millis=self._send_timeout_ms,
                max_pending_messages=self._max_pending,
                block_if_queue_full=False,
                batching_enabled=False,
            )
        except BaseException:
            client.close()
            raise
        return client, producer

    def send(self, event: OutgoingEvent) -> asyncio.Future[None]:
        loop = self._loop
        assert loop is not None and self._producer is not None, "open() first"
        future: asyncio.Future[None] = loop.create_future()

        def done(result: Any, _message_id: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(_settle, future, result)

        try:
            self._producer.send_async(
                event.payload, done, properties=event.properties, partition_key=event.partition_key
            )
        except Exception as exc:
            future.set_exception(BackendUnavailableError(BACKEND, f"send failed: {exc}"))
        return future

    async def close(self) -> None:
        client, producer, self._client, self._producer = self._client, self._producer, None, None
        if client is None:
            return

        def shut() -> None:
            with contextlib.suppress(Exception):
                producer.close()
            with contextlib.suppress(Exception):
                client.close()

        await asyncio.to_thread(shut)


def _settle(future: asyncio.Future[None], result: Any) -> None:
    if future.done():
        return
    import pulsar  # noqa: PLC0415

    if result == pulsar.Result.Ok:
        future.set_result(None)
    else:
        future.set_exception(
            BackendUnavailableError(BACKEND, f"broker did not acknowledge: {result}")
        )
