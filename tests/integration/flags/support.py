"""What the OFREP tests share: a second server on the test's etcd that serves OFREP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from configsvc.devstack.etcd import EtcdServer
from tests.helpers import Stack, close_stack, open_stack


@asynccontextmanager
async def ofrep_stack(
    etcd: EtcdServer, stack: Stack, tenant: str, definition: Any, **overrides: object
) -> AsyncIterator[Stack]:
    """Store ``definition`` as the flag set ``tenant/prod`` (through ``stack``), then run a
    server on the same etcd and root prefix with OFREP on a free port and that set as its
    default selector (``overrides`` go to its ServerConfig); yields once its mirror has
    caught up with the write."""
    await stack.server.flags.store.put(
        tenant,
        "prod",
        definition,
        bucketing=None,
        actor="t",
        reason="",
        expected_revision=None,
        timeout=10,
    )
    served = await open_stack(
        etcd.endpoint,
        stack.server.config.root_prefix,
        ofrep_listen="127.0.0.1:0",
        flags_default_selector=f"{tenant}/prod",
        **overrides,
    )
    try:
        assert await served.server.mirror.wait_applied(stack.server.mirror.revision, 10)
        yield served
    finally:
        await close_stack(served)
