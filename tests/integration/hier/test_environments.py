"""Declared environments and the protected marker (real etcd)."""

from __future__ import annotations

import grpc
import pytest

from configsvc.v1 import config_pb2, environment_pb2
from tests.helpers import ckey
from tests.integration.hier.support import Hier, bad_request


async def test_create_list_describe_update(hier: Hier, tenant: str) -> None:
    envs = hier.environments
    created = await envs.CreateEnvironment(
        environment_pb2.CreateEnvironmentRequest(
            tenant=tenant, name="prod", description="production", protected=True
        )
    )
    assert created.environment.protected and created.environment.revision == created.revision
    await envs.CreateEnvironment(
        environment_pb2.CreateEnvironmentRequest(tenant=tenant, name="dev")
    )
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await envs.CreateEnvironment(
            environment_pb2.CreateEnvironmentRequest(tenant=tenant, name="prod")
        )
    assert exc.value.code() == grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await envs.CreateEnvironment(
            environment_pb2.CreateEnvironmentRequest(tenant=tenant, name="all")
        )
    assert bad_request(exc.value)[0][0] == "name"

    await hier.put(tenant, "prod", "api", "a", 1, reason="first value")
    await hier.put(tenant, "qa", "api", "a", 1)  # undeclared environments keep working
    listed = await envs.ListEnvironments(environment_pb2.ListEnvironmentsRequest(tenant=tenant))
    assert [e.name for e in listed.environments] == ["dev", "prod"]
    assert list(listed.undeclared) == ["qa"]
    described = await envs.GetEnvironment(
        environment_pb2.GetEnvironmentRequest(tenant=tenant, name="prod")
    )
    assert (described.environment.description, list(described.services), described.entry_count) == (
        "production",
        ["api"],
        1,
    )
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await envs.GetEnvironment(environment_pb2.GetEnvironmentRequest(tenant=tenant, name="qa"))
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND

    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await envs.UpdateEnvironment(
            environment_pb2.UpdateEnvironmentRequest(tenant=tenant, name="prod", protected=False)
        )
    assert bad_request(exc.value)[0][0] == "reason"
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await envs.UpdateEnvironment(
            environment_pb2.UpdateEnvironmentRequest(
                tenant=tenant, name="prod", protected=False, reason="x", expected_revision=1
            )
        )
    assert exc.value.code() == grpc.StatusCode.ABORTED
    updated = await envs.UpdateEnvironment(
        environment_pb2.UpdateEnvironmentRequest(
            tenant=tenant, name="prod", protected=False, reason="decommissioned"
        )
    )
    assert not updated.environment.protected
    assert updated.environment.description == "production"
    await hier.put(tenant, "prod", "api", "a", 2)  # no longer protected: no reason needed


async def test_writes_into_a_protected_environment_need_a_reason(hier: Hier, tenant: str) -> None:
    await hier.environments.CreateEnvironment(
        environment_pb2.CreateEnvironmentRequest(tenant=tenant, name="prod", protected=True)
    )
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await hier.put(tenant, "prod", "api", "a", 1)
    [(field, description)] = bad_request(exc.value)
    assert field == "reason" and "'prod' is protected" in description
    await hier.put(tenant, "prod", "api", "a", 1, reason="ticket 42")
    await hier.put(tenant, "staging", "api", "a", 1)  # other environments are not affected
    await hier.put(tenant, "all", "api", "a", 1)  # nor are wide values
    for call in (
        hier.stack.config.Delete(config_pb2.DeleteRequest(key=ckey(tenant, "a"))),
        hier.stack.config.Rollback(config_pb2.RollbackRequest(key=ckey(tenant, "a"), to_version=1)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await call
        assert bad_request(exc.value)[0][0] == "reason"
    await hier.stack.config.Delete(
        config_pb2.DeleteRequest(key=ckey(tenant, "a"), reason="cleanup")
    )
