"""The configsvc.v1.EventService servicer: the publisher's state for operators.

Every replica answers from its mirror (the leader key and the cursor live
under ``sys/``, which the mirror holds, and the commit marker's revision is
the head); the leader adds what only it knows.
"""

from __future__ import annotations

from configsvc.events.publisher import Publisher, parse_cursor, publisher_keys
from configsvc.rpc.context import CallContext
from configsvc.store.keyspace import Keyspace
from configsvc.store.mirror import Mirror
from configsvc.v1 import events_pb2, events_pb2_grpc


class EventService(events_pb2_grpc.EventServiceServicer):  # type: ignore[misc]
    """Implements GetPublisherStatus; see the proto for the contract."""

    def __init__(self, mirror: Mirror, keyspace: Keyspace, publisher: Publisher | None) -> None:
        self._mirror = mirror
        self._ks = keyspace
        self._publisher = publisher

    async def GetPublisherStatus(
        self, request: events_pb2.GetPublisherStatusRequest, context: CallContext
    ) -> events_pb2.GetPublisherStatusResponse:
        self._mirror.require_available(allow_stale=False)
        leader_key, cursor_key = publisher_keys(self._ks)
        leader = self._mirror.record(leader_key)
        cursor = self._mirror.record(cursor_key)
        marker = self._mirror.record(self._ks.commit_marker)
        status = events_pb2.GetPublisherStatusResponse(
            leader=leader.value.decode() if leader else "",
            cursor_revision=parse_cursor(cursor.value) if cursor else 0,
            head_revision=marker.mod_revision if marker else 0,
        )
        publisher = self._publisher
        if publisher is not None:
            state = publisher.state
            status.topic = publisher.topic
            if state.is_leader:
                status.is_leader = True
                status.pending_events = state.pending_events
                status.published_events = state.published_events
                status.cursor_revision = max(status.cursor_revision, state.acknowledged_revision)
        status.backlog_revisions = max(0, status.head_revision - status.cursor_revision)
        status.healthy, status.reason = self._health(status)
        return status

    def _health(self, status: events_pb2.GetPublisherStatusResponse) -> tuple[bool, str]:
        publisher = self._publisher
        if status.is_leader and publisher is not None and publisher.state.failing:
            return False, f"publishing paused: {publisher.state.last_error}"
        if not status.leader and status.backlog_revisions > 0:
            return False, (
                "no publisher elected (is any replica started with --pulsar-url?); "
                "events wait in the audit trail"
            )
        return True, ""
