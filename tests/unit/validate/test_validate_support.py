"""The pieces under the engine: JSON Pointers, scopes and the fixed format checks."""

from __future__ import annotations

import pytest

from configsvc.errors import InvalidArgumentError
from configsvc.model.keys import ConfigKey
from configsvc.validate import DocumentScope, Scope, formats, pointer

# --- JSON Pointer -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), ""),
        (("pool", "max"), "/pool/max"),
        (("items", 3), "/items/3"),
        (("a/b", "c~d", ""), "/a~1b/c~0d/"),
    ],
)
def test_pointer_round_trip(path: tuple[str | int, ...], text: str) -> None:
    assert pointer.to_pointer(path) == text
    assert pointer.parse(text) == [str(p) for p in path]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("pool", "must be empty or start with '/'"),
        ("/a~", "'~' must be followed by '0' or '1'"),
        ("/a~2", "'~' must be followed by '0' or '1'"),
    ],
)
def test_malformed_pointers(text: str, problem: str) -> None:
    violation = pointer.pointer_violation(text)
    assert violation is not None and problem in violation
    with pytest.raises(ValueError, match="is not a JSON Pointer"):
        pointer.parse(text)


def test_unescape_order() -> None:
    # '~01' is '~' followed by '1', not '/'.
    assert pointer.unescape("~01") == "~1"
    assert pointer.escape("~1") == "~01"


def test_resolve() -> None:
    document = {"a": {"b": [10, 20, {"c": None}]}, "": 1, "s": "text"}
    assert pointer.resolve(document, "") is document
    assert pointer.resolve(document, "/a/b/1") == 20
    assert pointer.resolve(document, "/a/b/2/c") is None
    assert pointer.resolve(document, "/") == 1
    for missing in ("/x", "/a/b/3", "/a/b/01", "/a/b/-", "/s/0", "/a/b/0/x"):
        assert pointer.resolve(document, missing) is pointer.MISSING


def test_sort_key_orders_indexes_numerically() -> None:
    paths: list[tuple[str | int, ...]] = [("a", 10), ("a", 2), ("b",), ("a",), ("a", "x")]
    assert sorted(paths, key=pointer.sort_key) == [("a",), ("a", 2), ("a", 10), ("a", "x"), ("b",)]


def test_is_within() -> None:
    assert pointer.is_within("/a/b", "/a")
    assert pointer.is_within("/a", "/a")
    assert pointer.is_within("/a", "")
    assert not pointer.is_within("/ab", "/a")


# --- scopes -------------------------------------------------------------------------------


def test_scope_normalizes_all() -> None:
    assert Scope("acme", "all", "all") == Scope("acme")
    assert str(Scope("acme")) == "tenant 'acme'"
    assert str(Scope("acme", "prod", "api")) == ("tenant 'acme', environment 'prod', service 'api'")
    assert [
        Scope("acme").rank,
        Scope("acme", "prod").rank,
        Scope("acme", service="api").rank,
        Scope("acme", "prod", "api").rank,
    ] == [0, 1, 2, 3]


def test_bad_scope_rejected_with_every_field() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        Scope("", "Prod", "a/b")
    assert [v.field for v in caught.value.violations] == [
        "scope.tenant",
        "scope.environment",
        "scope.service",
    ]


@pytest.mark.parametrize(
    ("scope", "key", "covered"),
    [
        (Scope("acme"), ConfigKey("acme", "prod", "api", "k"), True),
        (Scope("acme"), ConfigKey("other", "prod", "api", "k"), False),
        (Scope("acme", "prod"), ConfigKey("acme", "dev", "api", "k"), False),
        (Scope("acme", "prod"), ConfigKey("acme", "all", "api", "k"), True),
        (Scope("acme", "prod", "api"), ConfigKey("acme", "prod", "web", "k"), False),
        (Scope("acme", "prod", "api"), ConfigKey("acme", "all", "all", "k"), True),
    ],
)
def test_scope_covers_key(scope: Scope, key: ConfigKey, covered: bool) -> None:
    assert scope.covers_key(key) is covered


def test_scope_covers_document() -> None:
    prod_api = Scope("acme", "prod", "api")
    assert prod_api.covers_document(DocumentScope("api", "prod"))
    assert not prod_api.covers_document(DocumentScope("api", "dev"))
    assert not prod_api.covers_document(DocumentScope("web", "prod"))
    assert Scope("acme").covers_document(DocumentScope("web", "dev"))
    assert str(DocumentScope("api", "prod")) == "service 'api' in environment 'prod'"
    assert DocumentScope("api", "prod") == ("api", "prod")


# --- formats ------------------------------------------------------------------------------


def test_enforced_formats_are_fixed() -> None:
    assert sorted(formats.ENFORCED_FORMATS) == [
        "date",
        "date-time",
        "email",
        "idn-email",
        "ipv4",
        "ipv6",
        "regex",
        "time",
        "uri",
        "uuid",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "2024-02-29T00:00:00Z",
        "2024-12-31t23:59:60z",
        "2024-01-01T12:30:00.123456+14:00",
        "2024-01-01T12:30:00-23:59",
    ],
)
def test_date_time_accepts(text: str) -> None:
    assert formats.is_date_time(text)


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-01",
        "2024-01-01T12:30:00",
        "2024-01-01 12:30:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T12:60:00Z",
        "2024-01-01T12:00:61Z",
        "2024-01-01T12:00:00+24:00",
        "2024-01-01T12:00:00+01:60",
        "2024-1-01T12:00:00Z",
        "2023-02-29T00:00:00Z",
        "2024-01-01T12:00:00.Z",
        "\uff12024-01-01T00:00:00Z",
    ],
)
def test_date_time_rejects(text: str) -> None:
    assert not formats.is_date_time(text)


@pytest.mark.parametrize(
    ("check", "good", "bad"),
    [
        (formats.is_date, "2024-02-29", "2024-02-29T00:00:00Z"),
        (formats.is_time, "08:15:00.5-03:00", "08:15:00"),
        (formats.is_uri, "urn:isbn:0451450523", "http://a b"),
        (formats.is_uri, "http://[::1]:8080/p%20q", "http://x/%zz"),
        (formats.is_uri, "mailto:ops@example.com", "http://x/#a#b"),
        (formats.is_uri, "file:///etc/hosts", "1http://x"),
    ],
)
def test_other_formats(check: object, good: str, bad: str) -> None:
    assert callable(check)
    assert check(good)
    assert not check(bad)
    assert check(12)
