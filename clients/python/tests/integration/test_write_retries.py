"""Writes are retried with one request id per logical write (issue 17, item 12).

The server commits, then its answer is lost (the writer stalls after the commit until
the client's deadline passes): the client's retry carries the same request id, so the
server answers the first result and the key gets one version, not two.
"""

from __future__ import annotations

import asyncio

import pytest

from clients.python.tests.integration.support import Server
from configsvc.model.keys import ConfigKey
from configsvc.store.writer import WriteOptions, Writer, WriteResult
from configsvc.v1 import config_pb2
from configsvc_client import ConfigClient, DeadlineExceededError, Selector


def stall_first_answers(monkeypatch: pytest.MonkeyPatch, count: int) -> list[int]:
    """Make the next ``count`` writes stall after their commit (about 3 s, past the
    client's 1 s deadline); returns the list of revisions that were stalled."""
    real = Writer._catch_up
    stalled: list[int] = []

    async def catch_up(self: Writer, revision: int) -> None:
        if len(stalled) < count:
            stalled.append(revision)
            await asyncio.sleep(3)
        await real(self, revision)

    monkeypatch.setattr(Writer, "_catch_up", catch_up)
    return stalled


def record_request_ids(monkeypatch: pytest.MonkeyPatch, stall: float = 0.0) -> list[str]:
    """Record the request id of every Put the server's writer is asked to commit
    (optionally stalling each before it starts, past the client's deadline: nothing is
    written then)."""
    real = Writer.put
    seen: list[str] = []

    async def put(self: Writer, key: ConfigKey, value: str, options: WriteOptions) -> WriteResult:
        seen.append(options.request.value if options.request is not None else "")
        if stall:
            await asyncio.sleep(stall)
        return await real(self, key, value, options)

    monkeypatch.setattr(Writer, "put", put)
    return seen


async def versions(server: Server, tenant: str, key: str) -> list[int]:
    reply = await server.config.History(
        config_pb2.HistoryRequest(
            key=config_pb2.ConfigKey(tenant=tenant, environment="prod", service="api", key=key)
        )
    )
    return [r.version for r in reply.records]


async def test_a_put_whose_answer_is_lost_is_retried_with_the_same_id(
    server: Server, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with ConfigClient.connect(server.address, selectors=[Selector(tenant=tenant)]) as client:
        stalled = stall_first_answers(monkeypatch, 1)
        ids = record_request_ids(monkeypatch)
        entry = await client.put(f"{tenant}/prod/api/retried", 1, timeout=1.0)
        assert len(stalled) == 1 and entry.revision == stalled[0] and entry.version == 1
        assert len(ids) == 2 and ids[0] == ids[1] and ids[0]  # one id, sent twice
        assert await versions(server, tenant, "retried") == [1]
        # Compare-and-swap too: the retry is answered, not refused as a conflict.
        stalled = stall_first_answers(monkeypatch, 1)
        swapped = await client.put(
            f"{tenant}/prod/api/retried", 2, timeout=1.0, expected_revision=entry.revision
        )
        assert swapped.revision == stalled[0] and swapped.version == 2
        stalled = stall_first_answers(monkeypatch, 1)
        deleted = await client.delete(f"{tenant}/prod/api/retried", timeout=1.0)
        assert deleted.revision == stalled[0] and deleted.version == 3
        assert await versions(server, tenant, "retried") == [3, 2, 1]


async def test_each_logical_write_gets_its_own_id(server: Server, tenant: str) -> None:
    async with ConfigClient.connect(server.address, selectors=[Selector(tenant=tenant)]) as client:
        first = await client.put(f"{tenant}/prod/api/twice", 1)
        second = await client.put(f"{tenant}/prod/api/twice", 1)
        assert second.version == 2 and second.revision > first.revision
        # A caller that retries by itself passes its own id: still one version.
        mine = await client.put(f"{tenant}/prod/api/once", 1, request_id="caller-1")
        again = await client.put(f"{tenant}/prod/api/once", 1, request_id="caller-1")
        assert again.revision == mine.revision
        assert await versions(server, tenant, "once") == [1]


async def test_write_attempts_are_bounded(
    server: Server, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with ConfigClient.connect(server.address, selectors=[Selector(tenant=tenant)]) as client:
        ids = record_request_ids(monkeypatch, stall=3.0)
        with pytest.raises(DeadlineExceededError):
            await client.put(f"{tenant}/prod/api/bounded", 1, timeout=1.0, write_attempts=2)
        assert len(ids) == 2 and ids[0] == ids[1]
        assert await versions(server, tenant, "bounded") == []
