"""Pure parts of the hierarchy package: affected documents, scope cache, list filters."""

from __future__ import annotations

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from configsvc.errors import ConflictError, InvalidArgumentError
from configsvc.hier import records
from configsvc.hier.listing import ListFilter
from configsvc.hier.records import StoredRecord
from configsvc.hier.resolver import ScopeCache, affected_documents
from configsvc.model.keys import ConfigKey
from configsvc.model.labels import validate_labels
from configsvc.store.keyspace import Keyspace
from configsvc.v1 import config_pb2

SERVICES = {"api", "web"}
ENVIRONMENTS = {"prod", "staging"}


@pytest.mark.parametrize(
    ("environment", "service", "expected"),
    [
        ("prod", "api", [("api", "prod")]),
        ("all", "api", [("api", "prod"), ("api", "staging")]),
        ("prod", "all", [("api", "prod"), ("web", "prod")]),
        ("all", "all", [("api", "prod"), ("api", "staging"), ("web", "prod"), ("web", "staging")]),
        ("qa", "new", [("new", "qa")]),
    ],
)
def test_a_key_affects_the_documents_its_layer_feeds(
    environment: str, service: str, expected: list[tuple[str, str]]
) -> None:
    key = ConfigKey("t", environment, service, "k")
    assert affected_documents([key], SERVICES, ENVIRONMENTS) == expected


def test_scope_cache_rebuilds_only_when_the_fingerprint_moves() -> None:
    cache = ScopeCache(max_entries=2)
    built: list[str] = []

    def build(text: str) -> bytes:
        built.append(text)
        return text.encode()

    assert cache.get_or_build(("t", "a", "e"), (1, 1, 0), lambda: build("one")) == b"one"
    assert cache.get_or_build(("t", "a", "e"), (1, 1, 0), lambda: build("again")) == b"one"
    assert cache.get_or_build(("t", "a", "e"), (2, 1, 0), lambda: build("two")) == b"two"
    cache.get_or_build(("t", "b", "e"), (1, 1, 0), lambda: build("b"))
    cache.get_or_build(("t", "c", "e"), (1, 1, 0), lambda: build("c"))  # evicts a
    cache.get_or_build(("t", "a", "e"), (2, 1, 0), lambda: build("a-again"))
    assert built == ["one", "two", "b", "c", "a-again"] and cache.hits == 1


def entry(key: str, author: str, seconds: int, **labels: str) -> config_pb2.ConfigEntry:
    return config_pb2.ConfigEntry(
        key=config_pb2.ConfigKey(tenant="t", environment="e", service="s", key=key),
        updated_by=author,
        update_time=Timestamp(seconds=seconds),
        labels=labels,
    )


def test_list_filter_matches_every_condition() -> None:
    request = config_pb2.ListRequest(
        tenant="t",
        key_glob="db.*",
        labels={"team": "data"},
        updated_by="alice",
        updated_after=Timestamp(seconds=10),
        updated_before=Timestamp(seconds=20),
    )
    found = ListFilter.of(request)
    assert found.matches(entry("db.pool", "alice", 15, team="data", x="y"))
    assert not found.matches(entry("http.pool", "alice", 15, team="data"))
    assert not found.matches(entry("db.pool", "bob", 15, team="data"))
    assert not found.matches(entry("db.pool", "alice", 20, team="data"))
    assert not found.matches(entry("db.pool", "alice", 9, team="data"))
    assert not found.matches(entry("db.pool", "alice", 15, team="web"))
    assert found.token_scope() != ()
    assert ListFilter.of(config_pb2.ListRequest(tenant="t")).token_scope() == ()
    with pytest.raises(InvalidArgumentError) as exc:
        ListFilter.of(config_pb2.ListRequest(tenant="t", updated_by="x" * 257))
    assert exc.value.violations[0].field == "updated_by"


def test_labels_grammar() -> None:
    assert validate_labels({"app.kubernetes.io": "x", "a": ""}) == {
        "app.kubernetes.io": "x",
        "a": "",
    }
    with pytest.raises(InvalidArgumentError) as exc:
        validate_labels({"-bad": "x", "ok": "\n"})
    assert [v.field for v in exc.value.violations] == ["labels['-bad']", "labels[ok]"]


def test_versions_and_record_keys() -> None:
    current = StoredRecord("s", 3, {}, 9, 9)
    assert records.next_version(None, None, "schema") == 1
    assert records.next_version(current, 3, "schema") == 4
    with pytest.raises(ConflictError) as exc:
        records.next_version(current, 2, "schema 's'")
    assert exc.value.current_revision == 3 and "expected version 2" in exc.value.message
    ks = Keyspace("/root")
    key = records.version_key(ks, "acme", records.SCHEMA, "pool", 7)
    assert key == b"/root/t/acme/schema/pool/00000000000000000007"
    assert records.tenant_of_record(ks, key) == "acme"
    assert records.tenant_of_record(ks, b"/root/t/acme/cfg/prod/api/k") is None
    assert records.tenant_of_record(ks, b"/root/sys/commit") is None
