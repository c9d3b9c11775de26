"""Fixtures of the flag tests: the official conformance data and a flag server process.

The gherkin suites run with pytest-bdd, whose steps are synchronous; the flag
server they call therefore runs as its own ``configsvc serve`` process (on the
session etcd and root prefix), fed through the session stack's flag store, so
every scenario also crosses the etcd watch between two processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from pytest_bdd import given, parsers
from pytest_bdd.scenario import scenario_wrapper_template_registry
from pytest_bdd.utils import registry_get_safe

from configsvc.devstack.etcd import EtcdServer
from configsvc.devstack.ports import free_port
from configsvc.flags._gen.flagd.sync.v1 import sync_pb2, sync_pb2_grpc
from configsvc.v1 import tenant_pb2
from tests.helpers import SERVE_ENV, Stack, key_credentials, serve_argv, wait_process_serving
from tests.integration.flags import provider_exclusions as exclusions
from tests.unit.flags.conformance import EVALUATOR_FLAGS, TESTBED

#: Tags of the official features, registered so --strict-markers accepts them.
_TAGS = sorted(
    {
        tag.lstrip("@")
        for feature in TESTBED.rglob("*.feature")
        for line in feature.read_text().splitlines()
        if line.strip().startswith("@")
        for tag in line.split()
    }
)


def pytest_configure(config: pytest.Config) -> None:
    for tag in _TAGS:
        config.addinivalue_line("markers", f"{tag}: flagd testbed tag")


def _exclusion(item: pytest.Item, mode: str) -> str | None:
    """Why a provider-suite scenario is not run in ``mode`` (None: it runs)."""
    template = registry_get_safe(
        scenario_wrapper_template_registry, getattr(item, "function", None)
    )
    feature = Path(template.feature.filename).name if template is not None else ""
    if feature in exclusions.BY_FEATURE:
        return exclusions.BY_FEATURE[feature]
    name = template.name if template is not None else ""
    if name in exclusions.BY_SCENARIO:
        return exclusions.BY_SCENARIO[name]
    tags = {mark.name for mark in item.iter_markers()}
    for tag, reason in exclusions.BY_TAG.items():
        if tag in tags:
            return f"@{tag}: {reason}"
    for rule in exclusions.BY_MODE:
        if rule.mode == mode and rule.tag in tags:
            return f"@{rule.tag} in {mode} mode: {rule.reason}"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Provider scenarios run in the modes their tags name; listed exclusions are skipped."""
    keep, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        mode = callspec.params.get("resolver") if callspec is not None else None
        if mode is None or "test_provider_suite" not in item.nodeid:
            keep.append(item)
            continue
        if mode not in {mark.name for mark in item.iter_markers()}:
            dropped.append(item)  # the scenario's own tags say it is not for this mode
            continue
        reason = _exclusion(item, mode)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))
        keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@dataclass
class FlagServer:
    """A ``configsvc serve`` process sharing the session's etcd and root prefix."""

    address: str
    process: subprocess.Popen[bytes]


@contextmanager
def serve(etcd: EtcdServer, root: str, *options: str) -> Iterator[FlagServer]:
    """Run ``configsvc serve`` until the block ends; yields once it reports SERVING."""
    port = free_port()
    process = subprocess.Popen(
        serve_argv(
            etcd.endpoint,
            root,
            port,
            "--grace-period",
            "1",
            *options,
        ),
        env={**os.environ, **SERVE_ENV},
    )
    address = f"127.0.0.1:{port}"
    try:
        wait_process_serving(address, process)
        yield FlagServer(address, process)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="session")
def flag_server(etcd: EtcdServer, stack: Stack) -> Iterator[FlagServer]:
    """The flag server of the suites: default flag set testbed/all, testbed context value."""
    with serve(
        etcd,
        stack.server.config.root_prefix,
        "--flags-default-selector",
        "testbed/all",
        "--flags-context-value",
        "injectedmetadata=set",
    ) as server:
        yield server


def wait_for_flag_set(address: str, selector: str, expected: dict[str, Any]) -> None:
    """Block until the server at ``address`` serves ``expected`` for ``selector`` (bounded)."""
    with grpc.secure_channel(address, key_credentials()) as channel:
        stub = sync_pb2_grpc.FlagSyncServiceStub(channel)
        for _ in range(300):
            try:
                got = stub.FetchAllFlags(
                    sync_pb2.FetchAllFlagsRequest(),
                    metadata=(("flagd-selector", selector),),
                    timeout=2,
                )
                if json.loads(got.flag_configuration) == expected:
                    return
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.NOT_FOUND:
                    raise
            time.sleep(0.05)
    pytest.fail(f"{address} never served the flag set {selector}")


@dataclass
class KitFlags:
    """The evaluator testkit flags loaded twice: current and legacy bucketing."""

    server: FlagServer
    current: str
    legacy: str


@pytest.fixture(scope="session")
async def testkit(stack: Stack, flag_server: FlagServer) -> KitFlags:
    tenant = "testkit"
    await stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name=tenant))
    definition = json.loads(EVALUATOR_FLAGS.read_text())
    store = stack.server.flags.store
    for environment, bucketing in (("current", "current"), ("legacy", "legacy")):
        await store.put(
            tenant,
            environment,
            definition,
            bucketing=bucketing,  # type: ignore[arg-type]
            actor="tests",
            reason="testkit",
            expected_revision=None,
            timeout=10,
        )
        wait_for_flag_set(flag_server.address, f"{tenant}/{environment}", definition)
    return KitFlags(flag_server, f"{tenant}/current", f"{tenant}/legacy")


#: The testbed's selectors and the flag sets they mean here (selectors are
#: "tenant/environment"; file names are no valid environment names).
SELECTORS = {"flags/allFlags.json": "testbed/all"}
_SELECTOR_FILES = ("selector-flags.json", "selector-flag-combined-metadata.json")


def selector_for(testbed_selector: str) -> str:
    if testbed_selector in SELECTORS:
        return SELECTORS[testbed_selector]
    folder, _, name = testbed_selector.partition("/")
    return f"{folder}/{name.removesuffix('.json')}"


@dataclass
class TestbedFlags:
    """The provider suite's flags: every file merged as testbed/all, each also on its own.

    The testbed's files deliberately hold rules the flagd schemas reject (to test
    evaluation errors), so they are stored through ``FlagStore.put``, below the
    API's schema validation; edits through the API then only refuse new violations.
    """

    __test__ = False

    server: FlagServer
    stack: Stack


@pytest.fixture(scope="session")
async def testbed(stack: Stack, flag_server: FlagServer) -> TestbedFlags:
    store = stack.server.flags.store
    for tenant in ("testbed", "rawflags"):
        await stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name=tenant))
    merged: dict[str, Any] = {"flags": {}, "$evaluators": {}}
    loads: list[tuple[str, str, dict[str, Any], str]] = []
    for path in sorted((TESTBED / "flags").glob("*.json")):
        document = json.loads(path.read_text())
        loads.append(("rawflags", path.stem, document, "current"))
        if path.name not in _SELECTOR_FILES:
            merged["flags"].update(document.get("flags", {}))
            merged["$evaluators"].update(document.get("$evaluators", {}))
    loads.append(("testbed", "all", merged, "current"))
    loads.append(("testbed", "all-legacy", merged, "legacy"))
    for tenant, environment, document, bucketing in loads:
        await store.put(
            tenant,
            environment,
            document,
            bucketing=bucketing,  # type: ignore[arg-type]
            actor="tests",
            reason="testbed",
            expected_revision=None,
            timeout=10,
        )
    for tenant, environment, document, _ in loads:
        wait_for_flag_set(flag_server.address, f"{tenant}/{environment}", document)
    return TestbedFlags(flag_server, stack)


# ------------------------------------------------- steps shared by both gherkin suites


def typed(kind: str, text: str) -> Any:
    """A gherkin table value as the OpenFeature type it names."""
    if kind == "Boolean":
        return text == "true"
    if kind == "Integer":
        return int(text)
    if kind == "Float":
        return float(text)
    if kind == "Object":
        return json.loads(text.replace('\\"', '"'))
    return text


@given(
    parsers.re(
        r'a context containing a nested property with outer key "(?P<outer>[^"]*)" '
        r'and inner key "(?P<inner>[^"]*)", with value "(?P<value>[^"]*)"'
    )
)
def nested_property(scenario_context: dict[str, Any], outer: str, inner: str, value: str) -> None:
    scenario_context.setdefault(outer, {})[inner] = value


@given(parsers.re(r'a context containing a targeting key with value "(?P<value>[^"]*)"'))
def targeting_key(scenario_context: dict[str, Any], value: str) -> None:
    scenario_context["targetingKey"] = value


@given(
    parsers.re(
        r'a context containing a key "(?P<key>[^"]*)", with type "(?P<kind>[^"]*)" '
        r'and with value "(?P<value>.*)"$'
    )
)
def context_key(scenario_context: dict[str, Any], key: str, kind: str, value: str) -> None:
    scenario_context[key] = typed(kind, value)
