"""Paths, selectors and the typed read API (on a client that is never started)."""

from __future__ import annotations

import pytest

from configsvc_client import (
    ConfigClient,
    ConfigTypeError,
    Entry,
    InvalidArgumentError,
    Key,
    KeyNotWatchedError,
    KeyPrefix,
    Selector,
)
from configsvc_client.keys import parse_key, parse_prefix

VALUES = {
    "int": "9007199254740993",
    "neg": "-3",
    "float": "1.5",
    "intf": "2",
    "str": '"hi"',
    "bool": "true",
    "null": "null",
    "obj": '{"a": {"b": [1, 2]}}',
    "arr": "[1, 2]",
}


def client() -> ConfigClient:
    c = ConfigClient(
        "127.0.0.1:1",
        selectors=[
            Selector(tenant="acme", environment="prod", service="api"),
            Selector(tenant="acme", environment="all", service="all", keys=["global.flag"]),
        ],
    )
    c._cache.replace(
        [
            Entry(Key("acme", "prod", "api", k), v, revision=i + 1, version=1)
            for i, (k, v) in enumerate(VALUES.items())
        ],
        len(VALUES),
    )
    return c


def test_paths_parse_into_keys() -> None:
    assert parse_key("acme/prod/api/db.pool") == Key("acme", "prod", "api", "db.pool")
    assert parse_key(Key("a", "b", "c", "d")) == Key("a", "b", "c", "d")
    assert str(Key("a", "b", "c", "d")) == "a/b/c/d"
    assert parse_prefix("acme/prod/api/") == KeyPrefix("acme", "prod", "api", "")
    for bad in ["acme/prod/api", "acme/prod/api/k/x", "acme//api/k", "acme/prod/api/"]:
        with pytest.raises(InvalidArgumentError):
            parse_key(bad)


def test_selector_matching() -> None:
    scoped = Selector(tenant="acme", environment="prod", key_prefixes=["db."])
    assert scoped.matches(Key("acme", "prod", "web", "db.x"))
    assert not scoped.matches(Key("acme", "prod", "web", "cache.x"))
    assert not scoped.matches(Key("acme", "dev", "web", "db.x"))
    assert not scoped.matches(Key("other", "prod", "web", "db.x"))
    exact = Selector(tenant="acme", environment="prod", service="api", keys=["a"])
    assert exact.matches(Key("acme", "prod", "api", "a"))
    assert not exact.matches(Key("acme", "prod", "api", "ab"))
    assert scoped.overlaps(KeyPrefix("acme", "prod", "web", "db.pool."))
    assert scoped.overlaps(KeyPrefix("acme", "prod", "web", ""))
    assert not scoped.overlaps(KeyPrefix("acme", "prod", "web", "cache."))
    with pytest.raises(InvalidArgumentError):
        Selector(tenant="acme", keys=["a"])  # exact keys need environment and service
    with pytest.raises(InvalidArgumentError):
        Selector(tenant="")
    with pytest.raises(InvalidArgumentError):
        Selector(tenant="acme", key_prefixes="db.")  # type: ignore[arg-type]


def test_get_decodes_json_and_keeps_big_integers_exact() -> None:
    c = client()
    assert c.get("acme/prod/api/int") == 9007199254740993
    assert c.get(Key("acme", "prod", "api", "obj")) == {"a": {"b": (1, 2)}}  # arrays: tuples
    assert c.get("acme/prod/api/null", "dflt") is None  # present JSON null is not absent
    assert c.get("acme/prod/api/missing", "dflt") == "dflt"
    assert c.get("acme/prod/api/missing") is None
    entry = c.entry("acme/prod/api/float")
    assert entry is not None and entry.value == "1.5" and entry.revision == 3


def test_typed_getters() -> None:
    c = client()
    assert c.get_int("acme/prod/api/int") == 9007199254740993
    assert c.get_int("acme/prod/api/missing", 7) == 7
    assert c.get_float("acme/prod/api/float") == 1.5
    assert c.get_float("acme/prod/api/intf") == 2.0
    assert isinstance(c.get_float("acme/prod/api/intf"), float)
    assert c.get_float("acme/prod/api/missing", 0.25) == 0.25
    assert c.get_str("acme/prod/api/str") == "hi"
    assert c.get_bool("acme/prod/api/bool") is True
    assert c.get_json("acme/prod/api/arr") == [1, 2]
    for getter, path in [
        (c.get_int, "str"),
        (c.get_int, "bool"),
        (c.get_int, "float"),
        (c.get_float, "bool"),
        (c.get_float, "str"),
        (c.get_str, "int"),
        (c.get_bool, "int"),
        (c.get_bool, "null"),
        (c.get_json, "str"),
        (c.get_int, "null"),
    ]:
        with pytest.raises(ConfigTypeError) as exc:
            getter(f"acme/prod/api/{path}")  # type: ignore[operator]
        assert isinstance(exc.value, TypeError) and path in str(exc.value)


def test_get_json_returns_a_copy() -> None:
    c = client()
    value = c.get_json("acme/prod/api/obj")
    assert isinstance(value, dict)
    value["a"]["b"].append(3)
    assert c.get("acme/prod/api/obj") == {"a": {"b": (1, 2)}}


def test_keys_outside_the_selectors_are_an_error_not_a_default() -> None:
    c = client()
    with pytest.raises(KeyNotWatchedError):
        c.get("acme/dev/api/int", 5)
    with pytest.raises(KeyNotWatchedError):
        c.get("acme/all/all/other.flag")
    assert c.get("acme/all/all/global.flag", "off") == "off"
    with pytest.raises(KeyNotWatchedError):
        c.subscribe("acme/all/all/other.", print, prefix=True)
    c.subscribe("acme/all/all/global.", print, prefix=True).cancel()


def test_entries_lists_in_key_order() -> None:
    c = client()
    assert [e.key.key for e in c.entries("acme/prod/api/i")] == ["int", "intf"]
    assert len(c.entries()) == len(VALUES)


def test_selectors_are_validated() -> None:
    with pytest.raises(InvalidArgumentError):
        ConfigClient("x:1", selectors=[])
    with pytest.raises(InvalidArgumentError):
        ConfigClient("x:1", selectors=[Selector(tenant="a")] * 101)
