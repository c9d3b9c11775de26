"""The JSON forms of references and ciphertexts (pure)."""

from __future__ import annotations

import json

import pytest

from configsvc.errors import InvalidArgumentError
from configsvc.resolve.jsonvalue import canonical_json, parse_value
from configsvc.secrets.gateway import _replace_at
from configsvc.secrets.refs import (
    Ciphertext,
    SecretRef,
    might_hold_secrets,
    parse_ciphertext,
    ref_from_message,
    refs_in,
    substitute,
    walk,
)
from configsvc.v1 import secrets_pb2

REF = {"$secret": {"mount": "secret", "path": "db/prod", "field": "password"}}
CIPHER = {"$encrypted": {"key": "configsvc", "ciphertext": "vault:v1:abc"}}


def test_references_are_found_anywhere_with_their_pointer() -> None:
    value = parse_value(
        json.dumps({"a": REF, "list": [1, {"b": CIPHER}], "a/b": REF, "$schema": "x", "n": None})
    )
    found = list(walk(value))
    assert [pointer for pointer, _ in found] == ["/a", "/list/1/b", "/a~1b"]
    assert found[0][1] == SecretRef("secret", "db/prod", "password")
    assert found[1][1] == Ciphertext("configsvc", "vault:v1:abc")
    assert refs_in(value) == [SecretRef("secret", "db/prod", "password")]
    assert list(walk(parse_value(json.dumps(REF)))) == [("", found[0][1])]


def test_ref_text_and_message_never_carry_a_value() -> None:
    pinned = SecretRef("kv", "a/b", "f", 3)
    assert str(pinned) == "kv/a/b#f@v3"
    assert str(SecretRef("kv", "a", "f")) == "kv/a#f"
    assert pinned.secret == ("kv", "a/b")
    message = pinned.message()
    assert (message.mount, message.path, message.field, message.version) == ("kv", "a/b", "f", 3)
    assert not SecretRef("kv", "a", "f").message().HasField("version")
    assert ref_from_message(message) == pinned
    assert ref_from_message(secrets_pb2.SecretRef(mount="kv", path="a", field="f")).version is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"$secret": "db/prod"}, "a secret reference is an object"),
        (
            {"$secret": {"mount": "secret", "path": "db", "field": "f", "x": 1}},
            "unknown member 'x'",
        ),
        ({"$secret": {"mount": "", "path": "db", "field": "f"}}, '"mount" must be a non-empty'),
        ({"$secret": {"mount": "secret", "path": "a//b", "field": "f"}}, "invalid segment ''"),
        ({"$secret": {"mount": "secret", "path": "a/../b", "field": "f"}}, "invalid segment '..'"),
        ({"$secret": {"mount": "secret", "path": "a" * 600, "field": "f"}}, "longer than 512"),
        ({"$secret": {"mount": "secret", "path": "a", "field": ""}}, '"field" must be a string'),
        ({"$secret": {"mount": "secret", "path": "a", "field": "f", "version": 0}}, '"version"'),
        ({"$secret": {"mount": "secret", "path": "a", "field": "f", "version": True}}, '"version"'),
        ({"$secret": {"mount": "secret", "path": "a", "field": "f", "version": 1.5}}, '"version"'),
        ({"x": [{**REF, "other": 1}]}, 'at /x/0: an object with a "$secret" member'),
        ({"$encrypted": "vault:v1:x"}, "an encrypted value is"),
        ({"$encrypted": {"key": "a b", "ciphertext": "vault:v1:x"}}, "an encrypted value is"),
        ({"$encrypted": {"key": "k", "ciphertext": "plain"}}, "an encrypted value is"),
    ],
)
def test_malformed_forms_are_rejected_with_the_pointer(value: object, message: str) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        list(walk(parse_value(json.dumps(value))))
    assert message in err.value.message
    assert err.value.violations[0].field == "value"


def test_escaped_member_names_are_still_seen() -> None:
    text = '{"\\u0024secret": {"mount": "secret", "path": "p", "field": "f"}}'
    assert might_hold_secrets(text)
    assert refs_in(parse_value(text)) == [SecretRef("secret", "p", "f")]
    assert not might_hold_secrets('{"plain": "$other"}')


def test_substitute_replaces_or_keeps() -> None:
    value = parse_value(json.dumps({"a": REF, "b": [CIPHER, 2], "c": {"d": 1.10}}))

    def replace(found: SecretRef | Ciphertext, form: object) -> object:
        return "PLAIN" if isinstance(found, SecretRef) else form

    out = substitute(value, replace)  # type: ignore[arg-type]
    assert canonical_json(out) == canonical_json(
        parse_value(json.dumps({"a": "PLAIN", "b": [CIPHER, 2], "c": {"d": 1.10}}))
    )
    assert parse_ciphertext(CIPHER["$encrypted"], "").form() == CIPHER


def test_replace_at_copies_along_the_pointer() -> None:
    value = parse_value('{"a": {"b": [1, 2]}, "c": 3}')
    out = _replace_at(value, "/a/b/1", "X")
    assert canonical_json(out) == '{"a":{"b":[1,"X"]},"c":3}'
    assert canonical_json(value) == '{"a":{"b":[1,2]},"c":3}'
    assert _replace_at(value, "", "whole") == "whole"
