"""JSON Schema bindings: exact violation fields, precedence, bad schemas, sensitive fields."""

from __future__ import annotations

from typing import Any

import pytest

from configsvc.errors import FieldViolation, InvalidArgumentError
from configsvc.model.keys import ConfigKey
from configsvc.validate import (
    SchemaBinding,
    SchemaRegistry,
    Scope,
    check_values,
    sensitive_pointers,
)
from configsvc.validate.schemas import schema_violations, violations_of

ACME = Scope("acme")

POOL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "pool": {
            "type": "object",
            "required": ["min", "max"],
            "properties": {
                "min": {"type": "integer", "minimum": 0},
                "max": {"type": "integer", "maximum": 100},
            },
            "additionalProperties": False,
        },
        "hosts": {"type": "array", "items": {"type": "string", "format": "ipv4"}},
        "mode": {"enum": ["primary", "replica"]},
        "name": {"type": "string", "pattern": "^[a-z]+$", "minLength": 3},
    },
}


def key(name: str, env: str = "prod", service: str = "api", tenant: str = "acme") -> ConfigKey:
    return ConfigKey.parse(tenant, env, service, name)


def bind(
    schema: dict[str, Any],
    pattern: str = "db",
    scope: Scope = ACME,
    source: str = "db.json",
    version: int = 1,
) -> SchemaBinding:
    return SchemaBinding(pattern, schema, version, source, scope)


def fields(violations: list[FieldViolation]) -> list[str]:
    return [v.field for v in violations]


def only(violations: list[FieldViolation]) -> FieldViolation:
    assert len(violations) == 1, violations
    return violations[0]


# --- violation fields ---------------------------------------------------------------------


def test_valid_value_has_no_violations() -> None:
    value = {"pool": {"min": 1, "max": 10}, "hosts": ["10.0.0.1"], "mode": "primary"}
    assert bind(POOL_SCHEMA).validate(value) == []


def test_nested_member_names_the_deepest_pointer() -> None:
    violation = only(bind(POOL_SCHEMA).validate({"pool": {"min": 1, "max": 101}}))
    assert violation.field == "value/pool/max"
    assert violation.description.startswith("101 is greater than the maximum of 100")
    assert "schema 'db.json' version 1" in violation.description
    assert "keyword 'maximum' at #/properties/pool/properties/max/maximum" in (
        violation.description
    )


def test_required_member_is_reported_on_its_object() -> None:
    violation = only(bind(POOL_SCHEMA).validate({"pool": {"min": 1}}))
    assert violation.field == "value/pool"
    assert "'max' is a required property" in violation.description
    assert "keyword 'required'" in violation.description


def test_additional_property() -> None:
    violation = only(bind(POOL_SCHEMA).validate({"pool": {"min": 1, "max": 2, "maxx": 3}}))
    assert violation.field == "value/pool"
    assert "Additional properties are not allowed ('maxx' was unexpected)" in (
        violation.description
    )


def test_array_item_pointer() -> None:
    violation = only(
        bind(POOL_SCHEMA).validate({"hosts": ["10.0.0.1", "10.0.0.2", "10.0.0.3", "not-an-ip"]})
    )
    assert violation.field == "value/hosts/3"
    assert "'not-an-ip' is not a 'ipv4'" in violation.description
    assert "keyword 'format'" in violation.description


@pytest.mark.parametrize(
    ("value", "field", "text"),
    [
        ({"pool": {"min": "1", "max": 2}}, "value/pool/min", "'1' is not of type 'integer'"),
        ({"pool": {"min": -1, "max": 2}}, "value/pool/min", "-1 is less than the minimum of 0"),
        ({"mode": "leader"}, "value/mode", "'leader' is not one of ['primary', 'replica']"),
        ({"name": "Abc"}, "value/name", "'Abc' does not match '^[a-z]+$'"),
        ({"name": "ab"}, "value/name", "'ab' is too short"),
        ([], "value", "[] is not of type 'object'"),
    ],
)
def test_keyword_failures(value: object, field: str, text: str) -> None:
    violation = only(bind(POOL_SCHEMA).validate(value))
    assert violation.field == field
    assert text in violation.description


def test_several_failures_at_one_place_make_one_violation() -> None:
    violation = only(bind(POOL_SCHEMA).validate({"name": "A"}))
    assert violation.field == "value/name"
    assert "keyword 'pattern'" in violation.description
    assert "; also 'A' is too short" in violation.description


def test_several_violations_sorted_by_pointer_with_numeric_indexes() -> None:
    hosts = ["x"] + ["10.0.0.1"] * 9 + ["y", "10.0.0.2", "z"]
    value = {"pool": {"min": -1, "max": 200}, "hosts": hosts, "mode": "?", "name": "ok"}
    assert fields(bind(POOL_SCHEMA).validate(value)) == [
        "value/hosts/0",
        "value/hosts/10",
        "value/hosts/12",
        "value/mode",
        "value/name",
        "value/pool/max",
        "value/pool/min",
    ]


def test_any_of_failure_descends_to_the_deepest_pointer() -> None:
    schema = {
        "properties": {
            "retry": {
                "anyOf": [
                    {
                        "type": "object",
                        "properties": {"backoff": {"properties": {"max_ms": {"type": "integer"}}}},
                    },
                    {"type": "boolean"},
                ]
            }
        }
    }
    violation = only(bind(schema).validate({"retry": {"backoff": {"max_ms": "1s"}}}))
    assert violation.field == "value/retry/backoff/max_ms"
    assert "'1s' is not of type 'integer'" in violation.description


def test_ref_inside_the_schema_is_followed() -> None:
    schema = {
        "$defs": {"port": {"type": "integer", "maximum": 65535}},
        "properties": {"port": {"$ref": "#/$defs/port"}},
    }
    violation = only(bind(schema).validate({"port": 70000}))
    assert violation.field == "value/port"
    # jsonschema's schema path leaves out the '$ref' it went through.
    assert "keyword 'maximum' at #/properties/port/maximum" in violation.description


def test_member_names_are_escaped_in_pointers() -> None:
    schema = {"additionalProperties": {"type": "integer"}}
    violation = only(bind(schema).validate({"a/b~c.d": "x"}))
    assert violation.field == "value/a~1b~0c.d"


def test_too_deep_value_is_a_violation_not_a_crash() -> None:
    schema = {
        "$defs": {"n": {"type": "array", "items": {"$ref": "#/$defs/n"}}},
        "$ref": "#/$defs/n",
    }
    value: list[Any] = []
    for _ in range(5000):
        value = [value]
    assert bind(schema).validate(value) == [
        FieldViolation("value", "is nested too deeply to validate")
    ]


# --- formats ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "good", "bad"),
    [
        ("date-time", "2024-02-29T12:30:00.25+01:00", "2024-02-30T12:30:00Z"),
        ("date", "2024-02-29", "2023-02-29"),
        ("time", "23:59:60Z", "24:00:00Z"),
        ("email", "ops@example.com", "ops.example.com"),
        ("ipv4", "192.168.0.1", "192.168.0.256"),
        ("ipv6", "::1", "::g"),
        ("uri", "https://example.com/a?b=c#d", "/relative/path"),
        ("uuid", "0f8fad5b-d9cb-469f-a165-70867728950e", "0f8fad5b"),
        ("regex", "^a+$", "(unclosed"),
    ],
)
def test_formats_are_enforced(fmt: str, good: str, bad: str) -> None:
    binding = bind({"format": fmt})
    assert binding.validate(good) == []
    violation = only(binding.validate(bad))
    assert violation.field == "value"
    assert f"is not a {fmt!r}" in violation.description
    assert binding.validate(42) == []  # formats only constrain strings


def test_unknown_format_is_an_annotation() -> None:
    assert bind({"format": "hostname-of-my-dreams"}).validate("anything") == []


# --- bindings: patterns, schemas, fields --------------------------------------------------


@pytest.mark.parametrize(
    "pattern", ["db.pool", "db.*", "*.timeout_ms", "*", "db.pool?", "_internal.*", "?x", "a-b_c.D9"]
)
def test_valid_patterns(pattern: str) -> None:
    assert bind({}, pattern=pattern).pattern == pattern


@pytest.mark.parametrize(
    "pattern",
    [
        "",
        "db/pool",
        "db..pool",
        ".db",
        "-db",
        "db pool",
        "db.[ab]",
        "db.{a,b}",
        "db\x00",
        "d\u00e9",
        "a" * 257,
    ],
)
def test_invalid_patterns_rejected(pattern: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        bind({}, pattern=pattern)
    assert fields(caught.value.violations) == ["pattern"]


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("db.pool", "db.pool", True),
        ("db.pool", "db.pool.max", False),
        ("db.pool", "dbxpool", False),  # '.' is literal
        ("db.*", "db.pool", True),
        ("db.*", "db.pool.max", True),  # '*' crosses dots
        ("db.*", "db", False),
        ("*.timeout_ms", "http.client.timeout_ms", True),
        ("*.timeout_ms", "timeout_ms", False),
        ("db.pool?", "db.pool2", True),
        ("db.pool?", "db.pool", False),
        ("db.pool?", "db.pool12", False),
    ],
)
def test_pattern_matching(pattern: str, name: str, matches: bool) -> None:
    assert bind({}, pattern=pattern).matches_name(name) is matches


def test_bad_version_and_source_rejected_with_everything_else() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        SchemaBinding("db/x", {"type": "nope"}, 0, "", ACME)
    assert fields(caught.value.violations) == ["pattern", "version", "source", "schema/type"]
    with pytest.raises(InvalidArgumentError) as caught:
        SchemaBinding("db", {}, True, "db.json\n", ACME)
    assert fields(caught.value.violations) == ["version", "source"]


@pytest.mark.parametrize(
    ("schema", "field", "text"),
    [
        ({"type": "strin"}, "schema/type", "is not valid JSON Schema (Draft 2020-12)"),
        (
            {"properties": {"pool": {"properties": {"max": {"minimum": "0"}}}}},
            "schema/properties/pool/properties/max/minimum",
            "'0' is not of type 'number'",
        ),
        (
            {"properties": {"name": {"pattern": "(unclosed"}}},
            "schema/properties/name/pattern",
            "'(unclosed' is not a 'regex'",
        ),
        ({"required": "max"}, "schema/required", "'max' is not of type 'array'"),
        ({"items": [{"type": "string"}]}, "schema/items", "is not of type 'object', 'boolean'"),
        ({"$ref": "#/$defs/missing"}, "schema/$ref", "cannot be resolved"),
        (
            {"properties": {"a": {"$ref": "https://example.com/remote.json"}}},
            "schema/properties/a/$ref",
            "nothing is fetched",
        ),
        (
            {"$defs": {"x": {"$dynamicRef": "other.json#x"}}},
            "schema/$defs/x/$dynamicRef",
            "cannot be resolved",
        ),
        (
            {"properties": {"pw": {"x-sensitive": "yes"}}},
            "schema/properties/pw/x-sensitive",
            "it must be true or false",
        ),
        (
            {"$schema": "http://json-schema.org/draft-07/schema#"},
            "schema/$schema",
            "only Draft 2020-12",
        ),
        ([{"type": "object"}], "schema", "must be a JSON object"),
    ],
)
def test_invalid_schemas_rejected_naming_the_schema_path(
    schema: Any, field: str, text: str
) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        bind(schema)
    violation = only(caught.value.violations)
    assert violation.field == field
    assert text in violation.description


def test_several_schema_problems_reported_at_once_sorted() -> None:
    violations = schema_violations({"properties": {"b": {"type": 1}, "a": {"minimum": "x"}}})
    assert fields(violations) == ["schema/properties/a/minimum", "schema/properties/b/type"]


def test_schema_with_draft_2020_12_declared_and_nested_id_accepted() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema#",
        "$id": "https://configsvc.example/db.json",
        "properties": {
            "a": {"$ref": "#/$defs/port"},
            "b": {"$id": "inner.json", "$defs": {"n": {"type": "integer"}}, "$ref": "#/$defs/n"},
            "c": {"$ref": "inner.json#/$defs/n"},
        },
        "$defs": {"port": {"type": "integer", "x-sensitive": False}},
    }
    binding = bind(schema)
    assert fields(binding.validate({"a": "x", "b": "y", "c": "z"})) == [
        "value/a",
        "value/b",
        "value/c",
    ]


def test_deeply_nested_schema_rejected() -> None:
    schema: dict[str, Any] = {}
    for _ in range(3000):
        schema = {"not": schema}
    assert schema_violations(schema) == [FieldViolation("schema", "is nested too deeply")]


def test_schema_is_copied() -> None:
    schema: dict[str, Any] = {"type": "integer"}
    binding = bind(schema)
    schema["type"] = "string"
    assert binding.schema == {"type": "integer"}
    assert binding.validate(1) == []


def test_sensitive_keyword_is_allowed() -> None:
    binding = bind({"properties": {"password": {"type": "string", "x-sensitive": True}}})
    assert binding.validate({"password": "s3cret"}) == []


# --- registry: which schemas apply, in which order ---------------------------------------


def test_scope_and_pattern_select_bindings() -> None:
    exact = bind({}, pattern="db.pool", source="exact")
    other_tenant = bind({}, pattern="db.pool", scope=Scope("other"), source="other")
    staging = bind({}, pattern="db.*", scope=Scope("acme", "staging"), source="staging")
    worker = bind({}, pattern="db.*", scope=Scope("acme", service="worker"), source="worker")
    registry = SchemaRegistry([exact, other_tenant, staging, worker])
    assert registry.schemas_for(key("db.pool")) == [exact]
    assert registry.schemas_for(key("db.pool", env="staging")) == [exact, staging]
    assert registry.schemas_for(key("db.pool", service="worker")) == [exact, worker]
    assert registry.schemas_for(key("db.pool", tenant="nobody")) == []
    assert registry.schemas_for(key("cache.ttl")) == []
    # A value written for every environment and service reaches staging and worker too.
    assert registry.schemas_for(key("db.pool", env="all", service="all")) == [
        exact,
        worker,
        staging,
    ]
    assert registry.bindings == (exact, worker, staging, other_tenant)


def test_specificity_order() -> None:
    tenant_exact = bind({}, pattern="db.pool", source="tenant-exact")
    env_exact = bind({}, pattern="db.pool", scope=Scope("acme", "prod"), source="env-exact")
    narrow_exact = bind(
        {}, pattern="db.pool", scope=Scope("acme", "prod", "api"), source="narrow-exact"
    )
    service_glob = bind(
        {}, pattern="db.*", scope=Scope("acme", service="api"), source="service-glob"
    )
    env_glob = bind({}, pattern="db.*", scope=Scope("acme", "prod"), source="env-glob")
    long_glob = bind({}, pattern="db.po*", source="long-glob")
    one_char = bind({}, pattern="db.poo?", source="one-char")
    short_glob = bind({}, pattern="db.*", source="short-glob")
    star = bind({}, pattern="*", source="star")
    shuffled = [
        star,
        short_glob,
        env_glob,
        tenant_exact,
        one_char,
        long_glob,
        service_glob,
        narrow_exact,
        env_exact,
    ]
    ordered = SchemaRegistry(shuffled).schemas_for(key("db.pool"))
    assert [b.source for b in ordered] == [
        "narrow-exact",
        "env-exact",
        "tenant-exact",  # exact keys, narrowest scope first
        "service-glob",
        "env-glob",  # then patterns, narrowest scope first
        "one-char",
        "long-glob",
        "short-glob",
        "star",  # then most literal characters
    ]
    assert not tenant_exact.is_pattern and star.is_pattern


def test_registry_validates_against_every_schema_most_specific_first() -> None:
    wide = bind(
        {"type": "object", "required": ["max"]}, pattern="db.*", source="wide.json", version=3
    )
    exact = bind(
        {"type": "object", "properties": {"max": {"type": "integer"}}, "required": ["min"]},
        pattern="db.pool",
        source="pool.json",
        version=7,
    )
    registry = SchemaRegistry([wide, exact])
    violations = registry.validate(key("db.pool"), {"max": "ten"})
    assert fields(violations) == ["value", "value/max"]
    root = violations[0].description
    assert root.startswith("'min' is a required property (schema 'pool.json' version 7")
    assert "; also 'max' is a required property (schema 'wide.json' version 3" not in root
    assert violations[1].description.startswith("'ten' is not of type 'integer'")
    both = registry.validate(key("db.pool"), {})
    assert len(both) == 1
    assert both[0].description.index("pool.json") < both[0].description.index("wide.json")
    assert "; also 'max' is a required property (schema 'wide.json' version 3" in (
        both[0].description
    )
    assert registry.validate(key("cache.ttl"), "anything") == []


# --- dry run of a schema change -----------------------------------------------------------


def test_check_values_reports_only_values_the_change_breaks() -> None:
    proposed = bind(
        {"type": "integer", "maximum": 1000},
        pattern="*.timeout_ms",
        scope=Scope("acme", "prod"),
        source="timeouts.json",
        version=2,
    )
    existing: dict[ConfigKey, object] = {
        key("http.timeout_ms"): 500,
        key("grpc.timeout_ms"): 5000,
        key("db.timeout_ms", service="worker"): "5s",
        key("db.timeout_ms", env="dev"): 5000,  # other environment: not covered
        key("db.pool"): {"min": 1},  # other key: not covered
        key("cache.timeout_ms", env="all", service="all"): 2000,  # reaches prod
        key("http.timeout_ms", tenant="other"): 9999,  # other tenant
    }
    report = check_values(proposed, existing)
    assert list(report) == [  # ConfigKey order: tenant, environment, service, key
        key("cache.timeout_ms", env="all", service="all"),
        key("grpc.timeout_ms"),
        key("db.timeout_ms", service="worker"),
    ]
    assert fields(report[key("grpc.timeout_ms")]) == ["value"]
    assert "5000 is greater than the maximum of 1000 (schema 'timeouts.json' version 2" in (
        report[key("grpc.timeout_ms")][0].description
    )
    assert (
        "'5s' is not of type 'integer'"
        in report[key("db.timeout_ms", service="worker")][0].description
    )
    assert check_values(proposed, {key("http.timeout_ms"): 1}) == {}


# --- sensitive fields ---------------------------------------------------------------------

SECRET_SCHEMA: dict[str, Any] = {
    "$defs": {"secret": {"type": "string", "x-sensitive": True}},
    "properties": {
        "password": {"$ref": "#/$defs/secret"},
        "tls": {
            "properties": {
                "key": {"x-sensitive": True, "minLength": 10},
                "cert": {"type": "string"},
            }
        },
        "tokens": {"type": "array", "items": {"x-sensitive": True}},
        "pairs": {"prefixItems": [{"type": "string"}, {"x-sensitive": True}]},
        "vault": {"x-sensitive": True, "properties": {"inner": {"x-sensitive": True}}},
        "maybe": {"anyOf": [{"type": "integer"}, {"type": "string", "x-sensitive": True}]},
    },
    "patternProperties": {"_secret$": {"x-sensitive": True}},
    "additionalProperties": {"properties": {"pin": {"x-sensitive": True}}},
}


def test_sensitive_pointers() -> None:
    value = {
        "password": "p",
        "tls": {"key": "k", "cert": "c"},
        "tokens": ["a", "b"],
        "pairs": ["name", "value"],
        "vault": {"inner": 1},
        "maybe": 3,
        "api_secret": "s",
        "card": {"pin": 1234, "name": "x"},
        "plain": 1,
        "a/b_secret": "escaped",
    }
    expected = [
        "/a~1b_secret",
        "/api_secret",
        "/card/pin",
        "/maybe",
        "/pairs/1",
        "/password",
        "/tls/key",
        "/tokens/0",
        "/tokens/1",
        "/vault",
    ]
    assert sensitive_pointers(SECRET_SCHEMA, value) == expected
    assert bind(SECRET_SCHEMA).sensitive_pointers(value) == expected


def test_sensitive_pointers_only_name_places_that_exist() -> None:
    assert sensitive_pointers(SECRET_SCHEMA, {"tls": {"cert": "c"}, "tokens": []}) == []
    assert sensitive_pointers(SECRET_SCHEMA, "not an object") == []
    assert sensitive_pointers({"x-sensitive": True}, {"a": 1}) == [""]


def test_sensitive_pointers_follow_conditionals_dependents_contains_and_unevaluated() -> None:
    schema = {
        "if": {"properties": {"kind": {"const": "db"}}},
        "then": {"properties": {"dsn": {"x-sensitive": True}}},
        "else": {"properties": {"url": {"x-sensitive": True}}},
        "dependentSchemas": {"user": {"properties": {"pass": {"x-sensitive": True}}}},
        "properties": {
            "list": {"contains": {"x-sensitive": True}, "unevaluatedItems": False},
            "rest": {"unevaluatedProperties": {"x-sensitive": True}},
        },
    }
    value = {
        "dsn": "d",
        "url": "u",
        "user": "me",
        "pass": "p",
        "list": [1, 2],
        "rest": {"anything": 1},
    }
    assert sensitive_pointers(schema, value) == [
        "/dsn",
        "/list/0",
        "/list/1",
        "/pass",
        "/rest/anything",
        "/url",
    ]


def test_sensitive_pointers_below_a_sensitive_place_are_not_listed() -> None:
    schema = {
        "allOf": [
            {"properties": {"tls": {"properties": {"key": {"x-sensitive": True}}}}},
            {"properties": {"tls": {"x-sensitive": True}}},
        ]
    }
    assert sensitive_pointers(schema, {"tls": {"key": "k", "cert": "c"}}) == ["/tls"]


def test_sensitive_pointers_survive_recursive_refs() -> None:
    schema = {
        "$defs": {
            "node": {
                "properties": {"secret": {"x-sensitive": True}, "child": {"$ref": "#/$defs/node"}},
                "allOf": [{"$ref": "#/$defs/node"}],
            }
        },
        "$ref": "#/$defs/node",
    }
    value = {"secret": 1, "child": {"child": {"secret": 2}}}
    assert sensitive_pointers(schema, value) == ["/child/child/secret", "/secret"]


def test_sensitive_pointers_with_unresolvable_ref_raise() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        sensitive_pointers({"$ref": "#/nowhere"}, 1)
    assert only(caught.value.violations).field == "schema"


def test_registry_sensitive_pointers_union_is_minimal() -> None:
    registry = SchemaRegistry(
        [
            bind(
                {"properties": {"tls": {"properties": {"key": {"x-sensitive": True}}}}},
                pattern="svc.*",
                source="a",
            ),
            bind(
                {"properties": {"tls": {"x-sensitive": True}, "pw": {"x-sensitive": True}}},
                pattern="svc.conn",
                source="b",
            ),
        ]
    )
    value = {"tls": {"key": "k"}, "pw": "p"}
    assert registry.sensitive_pointers(key("svc.conn"), value) == ["/pw", "/tls"]
    assert registry.sensitive_pointers(key("svc.other"), value) == ["/tls/key"]
    assert registry.sensitive_pointers(key("nothing"), value) == []


def test_messages_do_not_repeat_sensitive_values() -> None:
    binding = bind(
        {
            "properties": {
                "password": {"type": "string", "minLength": 12, "x-sensitive": True},
                "tls": {
                    "type": "object",
                    "maxProperties": 1,
                    "required": ["cert"],
                    "properties": {"key": {"x-sensitive": True}},
                },
            }
        }
    )
    violations = binding.validate({"password": "hunter2", "tls": {"key": "PRIVATE", "other": 1}})
    assert fields(violations) == ["value/password", "value/tls"]
    for violation in violations:
        assert "hunter2" not in violation.description
        assert "PRIVATE" not in violation.description
    assert violations[0].description.startswith(
        "fails 'minLength'; the value is marked x-sensitive and not shown (schema"
    )
    # 'required' names members only, so its message is kept.
    assert "'cert' is a required property" in violations[1].description
    assert "fails 'maxProperties'; the value is marked x-sensitive" in violations[1].description


def test_violations_of_without_bindings_is_empty() -> None:
    assert violations_of([], {"anything": 1}) == []
