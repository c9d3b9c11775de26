"""Pure units of configsvc.hier.sensitive: which violations and places secrets hide."""

from __future__ import annotations

from configsvc.errors import FieldViolation
from configsvc.hier.sensitive import (
    outside_secret_places,
    plain_sensitive_places,
    secret_places,
)
from configsvc.model.keys import ConfigKey
from configsvc.validate import SchemaBinding, SchemaRegistry, Scope

CIPHER = {"$encrypted": {"key": "configsvc", "ciphertext": "vault:v1:abc"}}
REF = {"$secret": {"mount": "secret", "path": "db", "field": "password"}}
KEY = ConfigKey("acme", "prod", "api", "creds")


def test_secret_places_lists_references_and_ciphertexts() -> None:
    value = {"a": CIPHER, "b": [1, REF], "c": "plain"}
    assert secret_places(value) == ["/a", "/b/1"]
    assert secret_places(CIPHER) == [""]
    # A malformed form is the gateway's to refuse: nothing is hidden here.
    assert secret_places({"a": {"$secret": "nope"}}) == []


def test_violations_at_or_below_secret_places_are_dropped() -> None:
    value = {"token": CIPHER, "user": 5}
    violations = [
        FieldViolation("value", "required 'x'"),
        FieldViolation("value/token", "is not a string"),
        FieldViolation("value/token/$encrypted", "deep"),
        FieldViolation("value/user", "is not a string"),
    ]
    kept = outside_secret_places(violations, value)
    assert [v.field for v in kept] == ["value", "value/user"]
    assert outside_secret_places(violations, {"token": "x"}) == violations
    assert outside_secret_places([], value) == []
    assert outside_secret_places(violations[:1], CIPHER) == []


def test_plain_sensitive_places_ignore_sealed_places() -> None:
    registry = SchemaRegistry(
        [
            SchemaBinding(
                pattern="creds",
                version=1,
                source="t",
                scope=Scope("acme"),
                schema={
                    "properties": {"token": {"x-sensitive": True}, "keys": {"x-sensitive": True}}
                },
            )
        ]
    )
    assert plain_sensitive_places(registry, KEY, {"token": "p", "keys": REF}) == ["/token"]
    assert plain_sensitive_places(registry, KEY, {"token": CIPHER, "user": "u"}) == []
    # A sensitive object with only part of it sealed still holds plaintext.
    assert plain_sensitive_places(registry, KEY, {"keys": {"a": REF, "b": "p"}}) == ["/keys"]
