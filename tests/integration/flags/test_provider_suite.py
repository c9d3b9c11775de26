"""The official flagd provider suite (testbed ``gherkin/``) with the real OpenFeature provider.

``openfeature-provider-flagd`` runs unchanged against a ``configsvc serve``
process, once in RPC mode (``flagd.evaluation.v1``) and once in in-process
mode (``flagd.sync.v1``; the provider evaluates itself), for every scenario
whose tags name that mode. The testbed's flag files are loaded as flag sets
(``conftest.testbed``); "the flag was modified" flips ``changing-flag``
through ``configsvc.v1.FlagService``. Scenarios not run are listed with their
reason in ``provider_exclusions.py`` and reported as skips.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import CacheType, ResolverType
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.provider import ProviderStatus
from pytest_bdd import given, parsers, scenarios, then, when

from configsvc.v1 import auth_pb2, auth_pb2_grpc, flags_pb2, flags_pb2_grpc
from tests.helpers import ADMIN_KEY, key_credentials
from tests.integration.flags.conftest import TestbedFlags, selector_for, typed
from tests.unit.flags.conformance import TESTBED

scenarios(str(TESTBED / "gherkin"))

#: Longest wait for a provider event (a bounded wait, not a timing assertion).
EVENT_WAIT = 15.0
_domains = itertools.count(1)
_EVENTS = {
    "ready": ProviderEvent.PROVIDER_READY,
    "error": ProviderEvent.PROVIDER_ERROR,
    "stale": ProviderEvent.PROVIDER_STALE,
    "change": ProviderEvent.PROVIDER_CONFIGURATION_CHANGED,
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "resolver" in metafunc.fixturenames:
        metafunc.parametrize("resolver", ["rpc", "in-process"])


@pytest.fixture(autouse=True)
def provider_mode(resolver: str) -> str:
    return resolver


@dataclass
class Events:
    """Provider events seen by the scenario's handlers."""

    seen: dict[str, list[EventDetails]] = field(default_factory=dict)
    condition: threading.Condition = field(default_factory=threading.Condition)

    def handler(self, name: str) -> Any:
        self.seen.setdefault(name, [])

        def record(details: EventDetails) -> None:
            with self.condition:
                self.seen[name].append(details)
                self.condition.notify_all()

        return record

    def wait(self, name: str, count: int = 1) -> EventDetails:
        with self.condition:
            assert self.condition.wait_for(
                lambda: len(self.seen.get(name, [])) >= count, EVENT_WAIT
            ), f"no {name} event"
            return self.seen[name][count - 1]


@dataclass
class Scenario:
    """What the steps build up."""

    mode: str
    options: dict[str, Any] = field(default_factory=dict)
    provider: FlagdProvider | None = None
    client: OpenFeatureClient | None = None
    selector: str = "testbed/all"
    kind: str = ""
    key: str = ""
    default: Any = None
    context: dict[str, Any] = field(default_factory=dict)
    details: Any = None
    events: Events = field(default_factory=Events)
    changes_expected: int = 0


@pytest.fixture
def scenario_state(resolver: str, testbed: TestbedFlags) -> Iterator[Scenario]:
    state = Scenario(resolver)
    yield state
    if state.provider is not None:
        state.provider.shutdown()


@pytest.fixture
def scenario_context(scenario_state: Any) -> dict[str, Any]:
    """Where the shared context steps (conftest) put their attributes."""
    context: dict[str, Any] = scenario_state.context
    return context


_OPTIONS = {
    "cache": "cache",
    "selector": "selector",
    "deadlineMs": "deadline_ms",
    "fatalStatusCodes": "fatal_status_codes",
    "retryGracePeriod": "retry_grace_period",
}


@given(
    parsers.re(
        r'an option "(?P<name>[^"]*)" of type "(?P<kind>[^"]*)" with value '
        r'"(?P<value>[^"]*)"'
    )
)
def an_option(scenario_state: Scenario, name: str, kind: str, value: str) -> None:
    if kind == "CacheType":
        scenario_state.options[name] = CacheType(value)
    elif kind == "Integer":
        scenario_state.options[name] = int(value)
    elif kind == "StringList":
        scenario_state.options[name] = [v.strip() for v in value.split(",")]
    else:
        scenario_state.options[name] = value


@given(parsers.parse("a {name} flagd provider"))
def a_provider(
    scenario_state: Scenario, testbed: TestbedFlags, name: str, request: pytest.FixtureRequest
) -> None:
    options = dict(scenario_state.options)
    if "selector" in options:
        scenario_state.selector = selector_for(options["selector"])
    elif scenario_state.mode == "rpc" and request.node.get_closest_marker("fractional-v1"):
        scenario_state.selector = "testbed/all-legacy"  # the legacy-bucketing flag set
    host, port = testbed.server.address.rsplit(":", 1)
    kwargs = {_OPTIONS[k]: v for k, v in options.items() if k in _OPTIONS}
    kwargs["selector"] = scenario_state.selector
    kwargs.setdefault("deadline_ms", 5000)
    # The API key goes as call credentials; a "forbidden" provider's key has no binding.
    key = _unbound_key(testbed.server.address) if name == "forbidden" else ADMIN_KEY
    provider = FlagdProvider(
        host=host,
        port=int(port),
        resolver_type=ResolverType(scenario_state.mode),
        sync_metadata_disabled=name == "syncpayload",
        channel_credentials=key_credentials(key),
        **kwargs,
    )
    domain = f"scenario-{next(_domains)}"
    scenario_state.provider = provider
    scenario_state.client = api.get_client(domain)
    api.set_provider(provider, domain)
    # Added after the provider: a ready handler runs at once if the provider already is.
    scenario_state.client.add_handler(
        ProviderEvent.PROVIDER_READY, scenario_state.events.handler("ready")
    )
    if name != "forbidden":  # the launchpad's "stable" provider is a ready one
        scenario_state.events.wait("ready")


@given(parsers.parse("a {name} event handler"))
def an_event_handler(scenario_state: Scenario, name: str) -> None:
    if name == "ready":
        return  # registered with the provider, before it could fire
    assert scenario_state.client is not None
    scenario_state.client.add_handler(_EVENTS[name], scenario_state.events.handler(name))


@given(parsers.parse('a {kind}-flag with key "{key}" and a default value "{default}"'))
def a_flag(scenario_state: Scenario, kind: str, key: str, default: str) -> None:
    scenario_state.kind, scenario_state.key = kind, key
    scenario_state.default = typed(kind, default)


@when("the flag was evaluated with details")
@given("the flag was evaluated with details")
def evaluate(scenario_state: Scenario) -> None:
    client = scenario_state.client
    assert client is not None
    context = dict(scenario_state.context)
    targeting = context.pop("targetingKey", None)
    evaluation = EvaluationContext(targeting_key=targeting, attributes=context)
    method = {
        "Boolean": client.get_boolean_details,
        "String": client.get_string_details,
        "Integer": client.get_integer_details,
        "Float": client.get_float_details,
        "Object": client.get_object_details,
    }[scenario_state.kind]
    scenario_state.details = method(scenario_state.key, scenario_state.default, evaluation)


@when(parsers.parse("a {name} event was fired"))
@given(parsers.parse("a {name} event was fired"))
def event_fired(scenario_state: Scenario, name: str) -> None:
    count = scenario_state.changes_expected if name == "change" else 1
    scenario_state.events.wait(name, max(count, 1))


@when("the flag was modified")
def modify_flag(scenario_state: Scenario, testbed: TestbedFlags) -> None:
    tenant, environment = scenario_state.selector.split("/")
    ref = flags_pb2.FlagSetRef(tenant=tenant, environment=environment)
    with grpc.secure_channel(testbed.server.address, key_credentials()) as channel:
        stub = flags_pb2_grpc.FlagServiceStub(channel)  # type: ignore[no-untyped-call]
        current = json.loads(
            stub.GetFlagSet(flags_pb2.GetFlagSetRequest(ref=ref), timeout=10).flag_set.definition
        )
        flag = current["flags"][scenario_state.key]
        flag["defaultVariant"] = "bar" if flag["defaultVariant"] == "foo" else "foo"
        stub.PutFlag(
            flags_pb2.PutFlagRequest(
                ref=ref,
                flag_key=scenario_state.key,
                definition=json.dumps(flag),
                reason="provider suite",
            ),
            timeout=10,
        )
    scenario_state.changes_expected += 1


@then(parsers.parse("the {name} event handler should have been executed"))
def handler_executed(scenario_state: Scenario, name: str) -> None:
    scenario_state.events.wait(name)


@then(parsers.parse("the {name} event handler should have been executed within {ms:d}ms"))
def handler_executed_within(scenario_state: Scenario, name: str, ms: int) -> None:
    scenario_state.events.wait(name)  # bounded by EVENT_WAIT: no timing assertion here


@then("the client should be in fatal state")
def client_fatal(scenario_state: Scenario) -> None:
    assert scenario_state.client is not None
    assert scenario_state.client.get_provider_status() == ProviderStatus.FATAL


def _unbound_key(address: str) -> str:
    """A fresh API key without any role binding: every flagd call is PERMISSION_DENIED."""
    with grpc.secure_channel(address, key_credentials()) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)  # type: ignore[no-untyped-call]
        made = stub.CreateApiKey(
            auth_pb2.CreateApiKeyRequest(name=f"forbidden-{next(_domains)}"), timeout=10
        )
    secret: str = made.secret
    return secret


@then("the flag should be part of the event payload")
def flag_in_payload(scenario_state: Scenario) -> None:
    details = scenario_state.events.wait("change", scenario_state.changes_expected)
    assert scenario_state.key in (details.flags_changed or [])


def _text(value: Any) -> Any:
    return getattr(value, "value", value)


@then(parsers.re(r'the resolved details value should be "(?P<expected>.*)"'))
def value_is(scenario_state: Scenario, expected: str) -> None:
    assert scenario_state.details.value == typed(scenario_state.kind, expected), (
        scenario_state.details
    )


@then(parsers.parse('the reason should be "{reason}"'))
def reason_is(scenario_state: Scenario, reason: str) -> None:
    assert _text(scenario_state.details.reason) == reason, scenario_state.details


@then(parsers.parse('the variant should be "{variant}"'))
def variant_is(scenario_state: Scenario, variant: str) -> None:
    assert scenario_state.details.variant == variant, scenario_state.details


@then(parsers.re(r'the error-code should be "(?P<code>[^"]*)"'))
def error_code_is(scenario_state: Scenario, code: str) -> None:
    assert _text(scenario_state.details.error_code) == (code or None), scenario_state.details


@then("the resolved metadata should contain")
def metadata_contains(scenario_state: Scenario, datatable: list[list[str]]) -> None:
    _, *rows = datatable
    metadata = dict(scenario_state.details.flag_metadata or {})
    for key, kind, value in rows:
        assert metadata.get(key) == typed(kind, value), (key, metadata)


@then("the resolved metadata is empty")
def metadata_empty(scenario_state: Scenario) -> None:
    assert not scenario_state.details.flag_metadata, scenario_state.details
