"""Change events from Pulsar, each delivered to the application once.

configsvc publishes every committed change as a ``ConfigurationUpdatedEvent``
to a Pulsar topic, at least once: after a publisher failover or a broker
outage an event can arrive again. :class:`EventConsumer` drops those repeats:
for each partition key (the config key) revisions only grow, so an event
whose revision is not above the last one seen for its key is a duplicate.
The check is :class:`EventDeduplicator`, usable on its own with any consumer.

Needs ``pulsar-client`` (``pip install 'configsvc-client[events]'``)::

    async with EventConsumer.connect("pulsar://broker:6650", TOPIC, "my-service") as events:
        async for event in events:            # acknowledged when the next one is requested
            print(event.key, event.revision, event.message.new_value)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self

from configsvc_client._gen.configsvc.v1 import events_pb2

__all__ = ["DEFAULT_TOPIC", "EventConsumer", "EventDeduplicator", "ReceivedEvent"]

DEFAULT_TOPIC = "persistent://public/default/configsvc-events"
_log = logging.getLogger("configsvc_client.pulsar")


class EventDeduplicator:
    """Remembers the highest revision seen per partition key (at most ``max_keys`` keys).

    Keys beyond ``max_keys`` are forgotten least-recently-seen first; a repeat
    of a forgotten key's event is then let through, which at-least-once
    consumers must tolerate anyway.
    """

    def __init__(self, max_keys: int = 100_000) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be 1 or more")
        self._max_keys = max_keys
        self._last: OrderedDict[str, int] = OrderedDict()
        self.duplicates = 0
        """How many events :meth:`accept` refused."""

    def accept(self, key: str, revision: int) -> bool:
        """True the first time (``key``, ``revision``) is newer than anything seen for ``key``."""
        last = self._last.get(key)
        if last is not None and revision <= last:
            self.duplicates += 1
            self._last.move_to_end(key)
            return False
        self._last[key] = revision
        self._last.move_to_end(key)
        if len(self._last) > self._max_keys:
            self._last.popitem(last=False)
        return True


@dataclass(frozen=True, slots=True)
class ReceivedEvent:
    """One change event: its partition key, revision and the decoded message."""

    key: str
    revision: int
    message: events_pb2.ConfigurationUpdatedEvent
    handle: Any
    """The Pulsar message, for :meth:`EventConsumer.acknowledge`."""


_TYPES = {
    "exclusive": "Exclusive",
    "shared": "Shared",
    "failover": "Failover",
    "key_shared": "KeyShared",
}


class EventConsumer:
    """A Pulsar subscription to configsvc change events, without duplicates."""

    def __init__(
        self, client: Any, consumer: Any, *, receive_timeout: float, deduplicator: EventDeduplicator
    ) -> None:
        self._client = client
        self._consumer = consumer
        self._timeout_ms = max(10, int(receive_timeout * 1000))
        self.deduplicator = deduplicator

    @classmethod
    def connect(
        cls,
        service_url: str,
        topic: str = DEFAULT_TOPIC,
        subscription: str = "configsvc-client",
        *,
        consumer_type: Literal["exclusive", "shared", "failover", "key_shared"] = "failover",
        from_earliest: bool = False,
        receive_timeout: float = 0.5,
        deduplicator: EventDeduplicator | None = None,
    ) -> Self:
        """Subscribe (blocking until the broker answers).

        ``consumer_type`` "failover" or "key_shared" keeps each key's events in
        order across several consumers of one subscription; "shared" does not.
        ``from_earliest`` starts a new subscription at the oldest retained event.
        """
        import pulsar  # noqa: PLC0415 - optional dependency, only for event consumers

        client = pulsar.Client(service_url, operation_timeout_seconds=10, logger=_log)
        try:
            consumer = client.subscribe(
                topic,
                subscription,
                consumer_type=getattr(pulsar.ConsumerType, _TYPES[consumer_type]),
                initial_position=(
                    pulsar.InitialPosition.Earliest
                    if from_earliest
                    else pulsar.InitialPosition.Latest
                ),
            )
        except BaseException:
            client.close()
            raise
        return cls(
            client,
            consumer,
            receive_timeout=receive_timeout,
            deduplicator=deduplicator or EventDeduplicator(),
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def receive(self) -> ReceivedEvent:
        """The next event not seen before (duplicates are acknowledged and skipped)."""
        import pulsar  # noqa: PLC0415

        while True:
            try:
                message = await asyncio.to_thread(self._consumer.receive, self._timeout_ms)
            except pulsar.Timeout:
                continue
            event = events_pb2.ConfigurationUpdatedEvent.FromString(message.data())
            key = message.partition_key() or event.event_id
            if self.deduplicator.accept(key, event.revision):
                return ReceivedEvent(key, event.revision, event, message)
            self._consumer.acknowledge(message)

    def acknowledge(self, event: ReceivedEvent) -> None:
        """Tell the broker ``event`` is processed; unacknowledged events come again."""
        self._consumer.acknowledge(event.handle)

    async def __aiter__(self) -> AsyncIterator[ReceivedEvent]:
        """Events forever; each is acknowledged when the loop asks for the next one."""
        while True:
            event = await self.receive()
            yield event
            self.acknowledge(event)

    async def close(self) -> None:
        consumer, client = self._consumer, self._client

        def shut() -> None:
            with contextlib.suppress(Exception):
                consumer.close()
            with contextlib.suppress(Exception):
                client.close()

        await asyncio.to_thread(shut)
