"""OFREP over HTTP and the Prometheus metrics, on a server started with ``ofrep_listen``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from configsvc.devstack.etcd import EtcdServer
from configsvc.server.app import PortInUseError
from configsvc.v1 import auth_pb2
from tests.helpers import ADMIN_KEY, Stack, open_stack
from tests.integration.auth.support import principal
from tests.integration.flags.support import ofrep_stack

#: OFREP providers send the API key as a header (``headers`` / ``apiKey`` options).
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}

FLAGS = {
    "metadata": {"team": "web"},
    "flags": {
        "banner": {
            "state": "ENABLED",
            "variants": {"a": "A", "b": "B"},
            "defaultVariant": "a",
            "targeting": {"if": [{"==": [{"var": "tenant"}, "{tenant}"]}, "b", "a"]},
        },
        "off": {"state": "DISABLED", "variants": {"x": 1}, "defaultVariant": "x"},
        "broken": {
            "state": "ENABLED",
            "variants": {"x": 1},
            "defaultVariant": "x",
            "targeting": {"if": [True, "missing", "x"]},
        },
    },
}


@pytest.fixture
async def ofrep(etcd: EtcdServer, stack: Stack, tenant: str) -> AsyncIterator[str]:
    definition = json.loads(json.dumps(FLAGS).replace("{tenant}", tenant))
    async with ofrep_stack(etcd, stack, tenant, definition) as served:
        yield f"http://127.0.0.1:{served.server.flags.ofrep_port}"


async def test_single_bulk_and_metrics(ofrep: str, tenant: str) -> None:
    async with aiohttp.ClientSession(headers=ADMIN) as http:
        async with http.post(
            f"{ofrep}/ofrep/v1/evaluate/flags/banner", json={"context": {"targetingKey": "u1"}}
        ) as response:
            assert response.status == 200
            assert await response.json() == {
                "key": "banner",
                "value": "B",
                "variant": "b",
                "reason": "TARGETING_MATCH",
                "metadata": {"team": "web"},
            }
        async with http.post(f"{ofrep}/ofrep/v1/evaluate/flags/off", json={}) as response:
            assert (response.status, (await response.json())["reason"]) == (200, "DISABLED")
        async with http.post(f"{ofrep}/ofrep/v1/evaluate/flags/nope", json={}) as response:
            body = await response.json()
            assert (response.status, body["errorCode"]) == (404, "FLAG_NOT_FOUND")
        async with http.post(f"{ofrep}/ofrep/v1/evaluate/flags/broken", json={}) as response:
            assert (response.status, (await response.json())["errorCode"]) == (400, "GENERAL")
        async with http.post(
            f"{ofrep}/ofrep/v1/evaluate/flags/banner", data=b"{not json"
        ) as response:
            assert (response.status, (await response.json())["errorCode"]) == (
                400,
                "INVALID_CONTEXT",
            )
        async with http.post(
            f"{ofrep}/ofrep/v1/evaluate/flags/banner",
            json={"context": {}},
            headers={"flagd-selector": f"{tenant}/staging"},
        ) as response:
            assert response.status == 404

        async with http.post(
            f"{ofrep}/ofrep/v1/evaluate/flags", json={"context": {"tenant": "other"}}
        ) as response:
            assert response.status == 200
            etag = response.headers["ETag"]
            bulk = await response.json()
        by_key = {entry["key"]: entry for entry in bulk["flags"]}
        assert by_key["banner"]["value"] == "A"
        assert "value" not in by_key["off"]
        assert by_key["broken"]["errorCode"] == "GENERAL"
        assert bulk["metadata"] == {"team": "web"}
        async with http.post(
            f"{ofrep}/ofrep/v1/evaluate/flags",
            json={"context": {"tenant": "other"}},
            headers={"If-None-Match": etag},
        ) as response:
            assert response.status == 304

        async with http.get(f"{ofrep}/metrics") as response:
            text = await response.text()
    assert response.status == 200
    assert "# TYPE configsvc_flag_evaluations_total counter" in text
    assert (
        f'configsvc_flag_evaluations_total{{tenant="{tenant}",environment="prod",'
        'flag="banner",variant="b",reason="TARGETING_MATCH"} 1'
    ) in text


async def test_a_busy_ofrep_port_fails_loudly(etcd: EtcdServer, ofrep: str, stack: Stack) -> None:
    port = ofrep.rsplit(":", 1)[1]
    with pytest.raises(PortInUseError, match="--ofrep-listen"):
        await open_stack(
            etcd.endpoint, stack.server.config.root_prefix, ofrep_listen=f"127.0.0.1:{port}"
        )


async def test_ofrep_admits_like_the_flagd_rpcs(ofrep: str, stack: Stack, tenant: str) -> None:
    _, service_key = await principal(stack, auth_pb2.ROLE_VIEWER, tenant, "prod", "api")
    _, staging_key = await principal(stack, auth_pb2.ROLE_VIEWER, tenant, "staging")
    url = f"{ofrep}/ofrep/v1/evaluate/flags/banner"
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json={}) as response:
            body = await response.json()
            assert (response.status, body["errorCode"]) == (401, "GENERAL")
            assert "X-API-Key" in body["errorDetails"]
        async with http.post(url, json={}, headers={"Authorization": "Basic x"}) as response:
            assert response.status == 401
        # Admission comes before the body is read: a malformed body without a credential
        # is 401, not 400 (and 400 once the caller is admitted).
        async with http.post(url, data=b"{not json") as response:
            assert response.status == 401
        async with http.post(
            url, data=b"{not json", headers={"X-API-Key": service_key}
        ) as response:
            assert (response.status, (await response.json())["errorCode"]) == (
                400,
                "INVALID_CONTEXT",
            )
        async with http.post(
            url, json={}, headers={"X-API-Key": "cs_0000000000000000_no"}
        ) as response:
            assert response.status == 401
        # Any read grant in the flag set's environment reads its flags (here: one service).
        async with http.post(url, json={}, headers={"X-API-Key": service_key}) as response:
            assert (response.status, (await response.json())["value"]) == (200, "B")
        async with http.post(
            url, json={}, headers={"Authorization": f"Bearer {staging_key}"}
        ) as response:
            assert response.status == 403
            assert "config.read" in (await response.json())["errorDetails"]
        async with http.post(
            f"{ofrep}/ofrep/v1/evaluate/flags", json={}, headers={"X-API-Key": staging_key}
        ) as response:
            assert response.status == 403
        # The metrics name every tenant: read on all of them.
        async with http.get(f"{ofrep}/metrics", headers={"X-API-Key": service_key}) as response:
            assert response.status == 403
        async with http.get(f"{ofrep}/metrics") as response:
            assert response.status == 401
