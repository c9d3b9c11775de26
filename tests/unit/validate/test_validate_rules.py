"""Business rules in JSON Logic: addressing with cfg, scopes, bad logic, the error shape."""

from __future__ import annotations

from typing import Any

import pytest

from configsvc.errors import FieldViolation, InvalidArgumentError
from configsvc.validate import (
    DocumentScope,
    Rule,
    RuleViolation,
    Scope,
    evaluate_rules,
    rule_violations_to_error,
)
from configsvc.validate.rules import (
    LOGIC_DEPTH_MAX,
    LOGIC_NODES_MAX,
    address_violation,
    logic_violations,
    split_address,
)

ACME = Scope("acme")

POOL_BOUNDS = {
    "if": [
        {"cfg_missing": ["db.pool/min", "db.pool/max"]},
        True,
        {"<=": [{"cfg": "db.pool/min"}, {"cfg": "db.pool/max"}]},
    ]
}
TIMEOUT_BELOW_UPSTREAM = {
    "<": [{"cfg": "client.timeout_ms"}, {"cfg": ["upstream.timeout_ms", 30000]}]
}


def rule(
    logic: dict[str, Any], name: str = "r", scope: Scope = ACME, message: str = "broken"
) -> Rule:
    return Rule(name, logic, message, scope)


def holds(logic: dict[str, Any], document: dict[str, Any]) -> bool:
    return rule(logic).holds(document)


def rejected(logic: Any) -> list[FieldViolation]:
    with pytest.raises(InvalidArgumentError) as caught:
        rule(logic)
    return caught.value.violations


# --- addressing ---------------------------------------------------------------------------


def test_pool_min_at_most_max() -> None:
    assert holds(POOL_BOUNDS, {"db.pool": {"min": 1, "max": 10}})
    assert holds(POOL_BOUNDS, {"db.pool": {"min": 10, "max": 10}})
    assert not holds(POOL_BOUNDS, {"db.pool": {"min": 11, "max": 10}})
    # Conditional on both members being set.
    assert holds(POOL_BOUNDS, {"db.pool": {"min": 11}})
    assert holds(POOL_BOUNDS, {})


def test_cross_key_rule_with_default() -> None:
    assert holds(TIMEOUT_BELOW_UPSTREAM, {"client.timeout_ms": 1000, "upstream.timeout_ms": 2000})
    assert not holds(
        TIMEOUT_BELOW_UPSTREAM, {"client.timeout_ms": 3000, "upstream.timeout_ms": 2000}
    )
    # The upstream default (30000) applies when the key is missing.
    assert holds(TIMEOUT_BELOW_UPSTREAM, {"client.timeout_ms": 29999})
    assert not holds(TIMEOUT_BELOW_UPSTREAM, {"client.timeout_ms": 30000})


def test_dotted_key_names_versus_nested_members() -> None:
    document = {
        "db.pool": {"max": 10, "min.idle": 2},
        "db": {"pool": {"max": 99}},  # a different key whose value nests pool.max
        "labels": {"app.kubernetes.io/name": "api", "a~b": 1},
        "http.routes": [{"timeout_ms": 100}, {"timeout_ms": 200}],
    }
    assert holds({"==": [{"cfg": "db.pool/max"}, 10]}, document)
    assert holds({"==": [{"cfg": "db/pool/max"}, 99]}, document)
    assert holds({"==": [{"cfg": "db.pool/min.idle"}, 2]}, document)
    assert holds({"==": [{"cfg": "labels/app.kubernetes.io~1name"}, "api"]}, document)
    assert holds({"==": [{"cfg": "labels/a~0b"}, 1]}, document)
    assert holds({"==": [{"cfg": "http.routes/1/timeout_ms"}, 200]}, document)
    assert holds({"==": [{"cfg": "db.pool"}, {"cfg": "db.pool"}]}, document)


@pytest.mark.parametrize(
    "address",
    [
        "nope",
        "db.pool/none",
        "http.routes/2",
        "http.routes/01",
        "http.routes/x",
        "http.routes/-",
        "db.pool/max/deeper",
        "nulled",
    ],
)
def test_missing_values_read_as_null_or_the_default(address: str) -> None:
    document = {"db.pool": {"max": 10}, "http.routes": [1, 2], "nulled": None}
    assert holds({"==": [{"cfg": address}, None]}, document)
    assert holds({"==": [{"cfg": [address, "dflt"]}, "dflt"]}, document)
    # JSON Logic's '==' compares arrays by identity; '===' compares them by value here.
    assert holds({"===": [{"cfg_missing": [address, "db.pool/max"]}, [address]]}, document)


def test_cfg_missing_takes_a_list_too() -> None:
    logic = {"===": [{"cfg_missing": [["a", "b/c"]]}, ["b/c"]]}
    assert holds(logic, {"a": 1, "b": {}})
    assert holds({"!": {"cfg_missing": []}}, {})


def test_var_reads_items_inside_iterations_cfg_still_reads_the_document() -> None:
    logic = {
        "all": [{"cfg": "upstreams"}, {"<": [{"var": "timeout_ms"}, {"cfg": "global.timeout_ms"}]}]
    }
    document = {"upstreams": [{"timeout_ms": 10}, {"timeout_ms": 20}], "global.timeout_ms": 50}
    assert holds(logic, document)
    document["global.timeout_ms"] = 15
    assert not holds(logic, document)
    total = {
        "<=": [
            {
                "reduce": [
                    {"cfg": "shards"},
                    {"+": [{"var": "accumulator"}, {"var": "current.size"}]},
                    0,
                ]
            },
            100,
        ]
    }
    assert holds(total, {"shards": [{"size": 40}, {"size": 60}]})
    assert not holds(total, {"shards": [{"size": 40}, {"size": 61}]})
    none_missing = {"none": [{"cfg": "users"}, {"missing": ["name"]}]}
    assert holds(none_missing, {"users": [{"name": "a"}]})
    assert not holds(none_missing, {"users": [{"name": "a"}, {}]})


def test_dynamic_addresses() -> None:
    logic = {"some": [["a", "b"], {"==": [{"cfg": {"cat": [{"var": ""}, "/on"]}}, True]}]}
    assert holds(logic, {"b": {"on": True}})
    assert not holds(logic, {"a": {"on": False}})


@pytest.mark.parametrize(
    ("address", "parts"),
    [
        ("db.pool", ("db.pool", "")),
        ("db.pool/min", ("db.pool", "/min")),
        ("a/b/c~1d", ("a", "/b/c~1d")),
        ("a/", ("a", "/")),
    ],
)
def test_split_address(address: str, parts: tuple[str, str]) -> None:
    assert split_address(address) == parts


@pytest.mark.parametrize(
    ("address", "text"),
    [
        ("", "key name is required"),
        ("/min", "key name is required"),
        ("db pool/min", "key name 'db pool' is invalid"),
        ("db..pool", "is invalid"),
        ("db.pool/~2", "'~' must be followed by '0' or '1'"),
        ("db.pool/a~", "'~' must be followed by '0' or '1'"),
    ],
)
def test_bad_addresses(address: str, text: str) -> None:
    problem = address_violation(address)
    assert problem is not None
    assert problem.startswith(f"config address {address!r}: ")
    assert text in problem
    with pytest.raises(ValueError, match="config address"):
        split_address(address)


# --- evaluation over documents ------------------------------------------------------------


def test_several_scopes_at_once_report_the_exact_documents() -> None:
    bounds = rule(POOL_BOUNDS, name="pool-bounds", message="db.pool min must not exceed max")
    timeouts = rule(
        TIMEOUT_BELOW_UPSTREAM,
        name="timeouts",
        scope=Scope("acme", "prod"),
        message="client timeout must stay below the upstream timeout",
    )
    worker_only = rule(
        {"!!": {"cfg": "queue.name"}},
        name="queue-named",
        scope=Scope("acme", service="worker"),
        message="name the queue",
    )
    documents: dict[tuple[str, str], dict[str, object]] = {
        ("api", "prod"): {"db.pool": {"min": 5, "max": 2}, "client.timeout_ms": 40000},
        ("api", "dev"): {"db.pool": {"min": 5, "max": 2}, "client.timeout_ms": 40000},
        ("worker", "prod"): {"client.timeout_ms": 100, "upstream.timeout_ms": 50},
        ("worker", "dev"): {"queue.name": "jobs"},
        ("web", "prod"): {"db.pool": {"min": 1, "max": 2}, "client.timeout_ms": 1},
    }
    violations = evaluate_rules([timeouts, worker_only, bounds], documents)
    assert violations == [
        RuleViolation(
            "pool-bounds", DocumentScope("api", "dev"), "db.pool min must not exceed max"
        ),
        RuleViolation(
            "pool-bounds", DocumentScope("api", "prod"), "db.pool min must not exceed max"
        ),
        RuleViolation("queue-named", DocumentScope("worker", "prod"), "name the queue"),
        RuleViolation(
            "timeouts",
            DocumentScope("api", "prod"),
            "client timeout must stay below the upstream timeout",
        ),
        RuleViolation(
            "timeouts",
            DocumentScope("worker", "prod"),
            "client timeout must stay below the upstream timeout",
        ),
    ]
    assert violations[0].scope.service == "api" and violations[0].scope.environment == "dev"


def test_no_violations_when_every_rule_holds() -> None:
    assert evaluate_rules([rule(POOL_BOUNDS)], {("api", "prod"): {}}) == []
    assert evaluate_rules([], {("api", "prod"): {}}) == []


def test_rules_of_other_tenants() -> None:
    mine = rule({"!!": {"cfg": "x"}}, name="mine")
    theirs = rule({"!!": {"cfg": "x"}}, name="theirs", scope=Scope("other"))
    documents: dict[tuple[str, str], dict[str, object]] = {("api", "prod"): {}}
    with pytest.raises(ValueError, match="several tenants"):
        evaluate_rules([mine, theirs], documents)
    assert [v.rule for v in evaluate_rules([mine, theirs], documents, tenant="acme")] == ["mine"]
    assert [v.rule for v in evaluate_rules([theirs], documents)] == ["theirs"]


def test_a_rule_that_raises_on_a_document_is_broken_there() -> None:
    ratio = rule(
        {
            "if": [
                {"cfg_missing": ["a", "b"]},
                True,
                {"<": [{"/": [{"cfg": "a"}, {"cfg": "b"}]}, 2]},
            ]
        },
        name="ratio",
        message="a/b must stay below 2",
    )
    violations = evaluate_rules(
        [ratio], {("api", "prod"): {"a": 1, "b": 0}, ("api", "dev"): {"a": 1, "b": 1}}
    )
    assert violations == [
        RuleViolation(
            "ratio",
            DocumentScope("api", "prod"),
            "a/b must stay below 2 (the rule could not be evaluated: "
            "ZeroDivisionError: division by zero)",
        )
    ]


def test_dynamic_address_errors_break_the_rule() -> None:
    dynamic = rule({"==": [{"cfg": {"cfg": "which"}}, 1]}, name="dyn")
    [violation] = evaluate_rules([dynamic], {("api", "prod"): {"which": 7}})
    assert "TypeError: cfg takes a config address such as 'db.pool/min', not 7" in (
        violation.message
    )
    [violation] = evaluate_rules([dynamic], {("api", "prod"): {"which": "bad name"}})
    assert "ValueError: config address 'bad name'" in violation.message
    assert evaluate_rules([dynamic], {("api", "prod"): {"which": "n", "n": 1}}) == []
    # A computed address that is null reads as null.
    [violation] = evaluate_rules([dynamic], {("api", "prod"): {}})
    assert violation.message == "broken"


# --- the error for broken rules -----------------------------------------------------------


def test_rule_violations_to_error() -> None:
    error = rule_violations_to_error(
        [
            RuleViolation("timeouts", DocumentScope("worker", "prod"), "keep timeouts ordered"),
            RuleViolation("pool-bounds", DocumentScope("api", "prod"), "min <= max"),
            RuleViolation("timeouts", DocumentScope("api", "prod"), "keep timeouts ordered"),
            RuleViolation(
                "timeouts",
                DocumentScope("api", "dev"),
                "keep timeouts ordered (the rule could not be evaluated: X)",
            ),
        ]
    )
    assert isinstance(error, InvalidArgumentError)
    assert error.violations == [
        FieldViolation(
            "rules/pool-bounds", "min <= max (broken for service 'api' in environment 'prod')"
        ),
        FieldViolation(
            "rules/timeouts",
            "keep timeouts ordered (the rule could not be evaluated: X) (broken for "
            "service 'api' in environment 'dev'); keep timeouts ordered (broken for "
            "service 'api' in environment 'prod', service 'worker' in environment "
            "'prod')",
        ),
    ]
    assert error.message.startswith(
        "rules/pool-bounds: min <= max (broken for service 'api' in environment 'prod'); "
        "rules/timeouts: "
    )
    with pytest.raises(ValueError, match="no rule violations"):
        rule_violations_to_error([])


# --- rejected rules -----------------------------------------------------------------------


def test_valid_rule_is_copied_and_compares_by_value() -> None:
    logic: dict[str, Any] = {"!!": {"cfg": "a"}}
    first = rule(logic)
    logic["!!"] = False
    assert first.logic == {"!!": {"cfg": "a"}}
    assert first == rule({"!!": {"cfg": "a"}})
    assert first.applies_to(DocumentScope("any", "where"))
    assert not rule(logic, scope=Scope("acme", "prod")).applies_to(DocumentScope("x", "dev"))


@pytest.mark.parametrize("name", ["", "Pool", "pool_bounds", "-pool", "a" * 64, "pool bounds"])
def test_bad_names_rejected(name: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        rule({"!!": True}, name=name)
    assert [v.field for v in caught.value.violations] == ["name"]


@pytest.mark.parametrize("message", ["", "   ", "x" * 1025])
def test_bad_messages_rejected(message: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        rule({"!!": True}, message=message)
    assert [v.field for v in caught.value.violations] == ["message"]


@pytest.mark.parametrize(
    ("logic", "field", "text"),
    [
        ([{"cfg": "a"}], "logic", "must be a JSON Logic operation"),
        ({"and": [True, {"bogus": 1}]}, "logic/and/1/bogus", "'bogus' is not a known operation"),
        ({"or": [{"cfg": "a"}, {"log": "x"}]}, "logic/or/1/log", "'log' is not a known operation"),
        ({"db.pool": 1}, "logic/db.pool", "not a known operation"),
        (
            {"<=": [{"cfg": "a"}, {"min": 1, "max": 2}]},
            "logic/<=/1",
            "is an object with 2 keys: an operation has exactly one key",
        ),
        ({"!!": {}}, "logic/!!", "is an object with 0 keys"),
        (
            {"==": [{"var": "db.pool.min"}, 1]},
            "logic/==/0/var",
            "'var' reads the current item inside map",
        ),
        ({"!": {"missing": ["db.pool"]}}, "logic/!/missing", "read configuration with"),
        ({"!": {"missing_some": [1, ["a"]]}}, "logic/!/missing_some", "cfg_missing"),
        ({"!!": {"cfg": "db pool"}}, "logic/!!/cfg", "key name 'db pool' is invalid"),
        ({"!!": {"cfg": ["db.pool/~x", 1]}}, "logic/!!/cfg/0", "'~' must be followed"),
        ({"!!": {"cfg": 5}}, "logic/!!/cfg", "is 5: a config address is a string"),
        ({"!!": {"cfg": []}}, "logic/!!/cfg", "needs a config address"),
        (
            {"!": {"cfg_missing": ["ok", "no way", {"cat": ["dyn", "amic"]}]}},
            "logic/!/cfg_missing/1",
            "key name 'no way' is invalid",
        ),
        ({"!": {"cfg_missing": [["ok", None]]}}, "logic/!/cfg_missing/0/1", "is None"),
        ({"/": [1, {"cfg": "x"}]}, "logic", "fails on an empty configuration: ZeroDivisionError"),
        (
            {"and": [True, {"<": [1, {"%": [{"cfg": "a"}, {"cfg": "b"}]}]}]},
            "logic/and/1/</1",
            "ZeroDivisionError: integer modulo by zero",
        ),
        ({"!!": [[1, {"/": [1, 0]}]]}, "logic/!!/0/1", "ZeroDivisionError"),
        ({"!!": {"cat": [b"bytes"]}}, "logic/!!/cat/0", "is bytes, not JSON"),
    ],
)
def test_bad_logic_rejected_with_its_path(logic: Any, field: str, text: str) -> None:
    violations = rejected(logic)
    assert [v.field for v in violations] == [field]
    assert text in violations[0].description


def test_every_bad_place_in_logic_reported() -> None:
    violations = rejected({"and": [{"bogus": 1}, {"var": "a"}, {"cfg": "a b"}]})
    assert [v.field for v in violations] == [
        "logic/and/0/bogus",
        "logic/and/1/var",
        "logic/and/2/cfg",
    ]


def test_rule_errors_reported_together() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        Rule("Bad Name", {"bogus": 1}, "", ACME)
    assert [v.field for v in caught.value.violations] == ["name", "message", "logic/bogus"]


def test_unevaluated_branches_are_checked_too() -> None:
    # The empty document never reaches the second branch; the static check does.
    assert [v.field for v in rejected({"and": [{"cfg": "a"}, {"nope": 1}]})] == ["logic/and/1/nope"]


def test_size_limits() -> None:
    deep: dict[str, Any] = {"!!": True}
    for _ in range(LOGIC_DEPTH_MAX):
        deep = {"!": deep}
    violation = rejected(deep)[0]
    assert violation.field.startswith("logic/!/!/")
    assert violation.description == f"is nested more than {LOGIC_DEPTH_MAX} levels deep"
    # The operation counts, its argument list does not: 1 + (LOGIC_NODES_MAX - 1) is the limit.
    assert logic_violations({"and": [True] * (LOGIC_NODES_MAX - 1)}) == []
    for size in (LOGIC_NODES_MAX, 10 * LOGIC_NODES_MAX):
        assert logic_violations({"and": [True] * size}) == [
            FieldViolation("logic", f"has more than {LOGIC_NODES_MAX} values and operations")
        ]
