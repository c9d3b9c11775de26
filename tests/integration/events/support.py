"""What the event tests share: a raw Pulsar collector and server settings."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

import pulsar

from configsvc.events.settings import EventSettings
from configsvc.v1 import events_pb2

_log = logging.getLogger("tests.pulsar_client")


def event_settings(url: str, topic: str, **overrides: object) -> EventSettings:
    """Small lease TTL and short intervals: failover and retries happen quickly in tests."""
    values: dict[str, object] = {
        "pulsar_url": url,
        "topic": topic,
        "lease_ttl": 2,
        "send_timeout": 2.0,
        "backoff": (0.1, 0.5),
        "cursor_interval": 0.05,
        **overrides,
    }
    return EventSettings(**values)  # type: ignore[arg-type]


def new_topic() -> str:
    return f"persistent://public/default/events-test-{uuid.uuid4().hex[:12]}"


@dataclass
class Received:
    """Every delivery as it arrived (duplicates included), in arrival order."""

    events: list[tuple[str, events_pb2.ConfigurationUpdatedEvent, dict[str, str]]] = field(
        default_factory=list
    )
    message_ids: list[str] = field(default_factory=list)

    def revisions(self) -> set[int]:
        return {event.revision for _, event, _ in self.events}

    def duplicates(self) -> int:
        return len(self.events) - len({(key, e.event_id) for key, e, _ in self.events})

    def published_again(self) -> int:
        """Duplicates the publisher sent (another message with the same event)."""
        messages = {
            (key, e.event_id, m)
            for (key, e, _), m in zip(self.events, self.message_ids, strict=True)
        }
        return len(messages) - len({(key, e.event_id) for key, e, _ in self.events})

    def summary(self) -> str:
        """Deliveries and duplicates, split by who made them."""
        again = self.published_again()
        return (
            f"deliveries {len(self.events)}, duplicates {self.duplicates()} "
            f"(published again {again}, broker re-dispatched {self.duplicates() - again})"
        )

    def first_arrivals_per_key(self) -> dict[str, list[int]]:
        """For each partition key, revisions in the order they first arrived."""
        seen: set[tuple[str, int]] = set()
        order: dict[str, list[int]] = {}
        for key, event, _ in self.events:
            if (key, event.revision) not in seen:
                seen.add((key, event.revision))
                order.setdefault(key, []).append(event.revision)
        return order


class Collector:
    """Subscribes from the earliest message and collects in a thread until closed."""

    def __init__(self, url: str, topic: str) -> None:
        self._client = pulsar.Client(url, operation_timeout_seconds=10, logger=_log)
        self._consumer = self._client.subscribe(
            topic, f"test-{uuid.uuid4().hex[:8]}", initial_position=pulsar.InitialPosition.Earliest
        )
        self.received = Received()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                message = self._consumer.receive(timeout_millis=200)
            except pulsar.Timeout:
                continue
            except Exception:  # the broker is down: the client reconnects by itself
                self._stop.wait(0.2)
                continue
            event = events_pb2.ConfigurationUpdatedEvent.FromString(message.data())
            with self._lock:
                self.received.events.append(
                    (message.partition_key(), event, dict(message.properties()))
                )
                self.received.message_ids.append(str(message.message_id()))
            self._consumer.acknowledge(message)

    def revisions(self) -> set[int]:
        with self._lock:
            return self.received.revisions()

    async def wait_for(self, revisions: Iterable[int], *, bound: float = 180.0) -> set[int]:
        """Wait until every revision arrived (bounded); returns those still missing."""
        wanted = set(revisions)
        for _ in range(int(bound / 0.1)):
            missing = wanted - self.revisions()
            if not missing:
                return set()
            await asyncio.sleep(0.1)
        return wanted - self.revisions()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._consumer.close()
        self._client.close()
