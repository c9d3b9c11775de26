"""Promote's domain module on its own: plans and writes with no gRPC in the way (real etcd).

The servicer only translates; these tests call ``configsvc.hier.promote`` directly, the way
an HTTP route would, and get the same outcomes (the plan, the domain errors, the write).
"""

from __future__ import annotations

import pytest

from configsvc.errors import InvalidArgumentError, NotFoundError
from configsvc.hier.guard import WriteGuard
from configsvc.hier.promote import PROMOTE_MAX, Promoter, PromoteSpec
from configsvc.hier.state import StateCache
from configsvc.model.keys import ConfigKey
from configsvc.store.writer import WriteOptions
from tests.integration.hier.support import Hier


def _promoter(hier: Hier) -> Promoter:
    server = hier.stack.server
    guard = WriteGuard(server.mirror, server.keyspace, StateCache(server.mirror, server.keyspace))
    return Promoter(server.mirror, server.writer, server.keyspace, guard)


def _spec(tenant: str, **overrides: object) -> PromoteSpec:
    values: dict[str, object] = {
        "tenant": tenant,
        "service": "api",
        "source_environment": "staging",
        "target_environment": "prod",
        **overrides,
    }
    return PromoteSpec(**values)  # type: ignore[arg-type]


async def test_plan_copies_only_what_differs_and_apply_writes_it(hier: Hier, tenant: str) -> None:
    await hier.put(tenant, "staging", "api", "pool", {"max": 20})
    await hier.put(tenant, "staging", "api", "same", "x")
    await hier.put(tenant, "prod", "api", "same", "x")
    promoter = _promoter(hier)

    dry = await promoter.plan(_spec(tenant, dry_run=True), timeout=5)
    assert dry.changes == {ConfigKey(tenant, "prod", "api", "pool"): '{"max": 20}'}
    assert [(r.path, r.left_json, r.right_json) for r in dry.rows] == [("/pool/max", None, "20")]
    options = WriteOptions(
        expected_revision=None,
        reason="",
        actor="test",
        timeout=5,
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
    )
    assert await promoter.apply(dry, options) == []  # a dry run writes nothing
    assert (await hier.resolve(tenant, "prod", "api")) == {"same": "x"}

    plan = await promoter.plan(_spec(tenant, reason="release 7"), timeout=5)
    results = await promoter.apply(plan, options)
    assert [r.revision for r in results] == [results[0].revision]
    assert (await hier.resolve(tenant, "prod", "api")) == {"pool": {"max": 20}, "same": "x"}
    # Promoted again: nothing differs any more.
    again = await promoter.plan(_spec(tenant), timeout=5)
    assert again.changes == {} and again.rows == []


async def test_plan_refuses_with_domain_errors(hier: Hier, tenant: str) -> None:
    await hier.put(tenant, "staging", "api", "pool", 1)
    promoter = _promoter(hier)
    with pytest.raises(NotFoundError, match="has no value for 'gone'"):
        await promoter.plan(_spec(tenant, keys=("gone",)), timeout=5)
    with pytest.raises(NotFoundError, match="has no entries to promote"):
        await promoter.plan(_spec(tenant, service="empty"), timeout=5)
    with pytest.raises(InvalidArgumentError, match="must differ"):
        await promoter.plan(_spec(tenant, target_environment="staging"), timeout=5)
    with pytest.raises(InvalidArgumentError, match=f"the limit is {PROMOTE_MAX}"):
        await promoter.plan(
            _spec(tenant, keys=tuple(f"k{i}" for i in range(PROMOTE_MAX + 1))), timeout=5
        )
