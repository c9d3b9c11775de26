"""The official flagd evaluator suite (testbed ``evaluator/``) through ``flagd.evaluation.v1``.

Every scenario runs against a separate ``configsvc serve`` process over gRPC,
exactly as a flagd provider in RPC mode would call it; the result is read the
way ``openfeature-provider-flagd`` reads it (status code -> error code, no
variant on DEFAULT/DISABLED -> the caller's default). Scenarios tagged
``@fractional-v1`` use the flag set stored with ``legacy`` bucketing, all
others the default (current) one. No scenario is excluded.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from pytest_bdd import given, parsers, scenarios, then, when

from configsvc.flags._gen.flagd.evaluation.v1 import evaluation_pb2 as ev
from configsvc.flags._gen.flagd.evaluation.v1 import evaluation_pb2_grpc
from tests.helpers import key_credentials
from tests.integration.flags.conftest import KitFlags, typed
from tests.unit.flags.conformance import TESTBED

scenarios(str(TESTBED / "evaluator" / "gherkin"))

#: How a provider turns flagd status codes into OpenFeature error codes.
ERROR_CODES = {
    grpc.StatusCode.NOT_FOUND: "FLAG_NOT_FOUND",
    grpc.StatusCode.INVALID_ARGUMENT: "TYPE_MISMATCH",
    grpc.StatusCode.DATA_LOSS: "PARSE_ERROR",
}


@dataclass
class Call:
    """What the steps build up and what the evaluation returned."""

    selector: str = ""
    kind: str = ""
    key: str = ""
    default: Any = None
    context: dict[str, Any] = field(default_factory=dict)
    value: Any = None
    reason: str = ""
    variant: str = ""
    error_code: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@pytest.fixture
def channel(testkit: KitFlags) -> Iterator[grpc.Channel]:
    with grpc.secure_channel(testkit.server.address, key_credentials()) as opened:
        yield opened


@pytest.fixture
def call() -> Call:
    return Call()


@pytest.fixture
def scenario_context(call: Any) -> dict[str, Any]:
    """Where the shared context steps (conftest) put their attributes."""
    context: dict[str, Any] = call.context
    return context


@given("an evaluator")
def an_evaluator(call: Call, testkit: KitFlags, request: pytest.FixtureRequest) -> None:
    legacy = request.node.get_closest_marker("fractional-v1") is not None
    call.selector = testkit.legacy if legacy else testkit.current


@given(parsers.parse('a {kind}-flag with key "{key}" and a fallback value "{default}"'))
def a_flag(call: Call, kind: str, key: str, default: str) -> None:
    call.kind, call.key, call.default = kind, key, typed(kind, default)


_METHODS = {
    "Boolean": ("ResolveBoolean", ev.ResolveBooleanRequest),
    "String": ("ResolveString", ev.ResolveStringRequest),
    "Integer": ("ResolveInt", ev.ResolveIntRequest),
    "Float": ("ResolveFloat", ev.ResolveFloatRequest),
    "Object": ("ResolveObject", ev.ResolveObjectRequest),
}


@when("the flag was evaluated with details")
def evaluate(call: Call, channel: grpc.Channel) -> None:
    stub = evaluation_pb2_grpc.ServiceStub(channel)
    method, request_type = _METHODS[call.kind]
    request = request_type(flag_key=call.key)
    request.context.update(call.context)
    try:
        response = getattr(stub, method)(
            request, metadata=(("flagd-selector", call.selector),), timeout=10
        )
    except grpc.RpcError as exc:
        call.error_code = ERROR_CODES.get(exc.code(), "GENERAL")
        call.value, call.reason = call.default, "ERROR"
        return
    call.reason, call.variant = response.reason, response.variant
    call.metadata = json_format.MessageToDict(response.metadata)
    if call.kind == "Object":
        call.value = json_format.MessageToDict(response.value)
    else:
        call.value = response.value
    if call.reason in ("DEFAULT", "DISABLED") and not call.variant:
        call.value = call.default


@then(parsers.re(r'the resolved details value should be "(?P<expected>.*)"'))
def value_is(call: Call, expected: str) -> None:
    assert call.value == typed(call.kind, expected), call


@then(parsers.parse('the reason should be "{reason}"'))
def reason_is(call: Call, reason: str) -> None:
    assert call.reason == reason, call


@then(parsers.parse('the error-code should be "{code}"'))
def error_code_is(call: Call, code: str) -> None:
    assert call.error_code == code, call


@then("the resolved metadata should contain")
def metadata_contains(call: Call, datatable: list[list[str]]) -> None:
    header, *rows = datatable
    assert header == ["key", "metadata_type", "value"]
    for key, kind, value in rows:
        assert call.metadata.get(key) == typed(kind, value), (key, call.metadata)


@then("the resolved metadata is empty")
def metadata_empty(call: Call) -> None:
    assert call.metadata == {}, call
