"""Events never carry a value that holds a secret reference or a ciphertext."""

from __future__ import annotations

import json

import pytest

from configsvc.events.redact import withhold_value
from configsvc.model.keys import ConfigKey

KEY = ConfigKey("acme", "prod", "api", "db")
REF = {"$secret": {"mount": "secret", "path": "db/prod", "field": "password"}}
CIPHER = {"$encrypted": {"key": "configsvc", "ciphertext": "vault:v1:abc"}}


@pytest.mark.parametrize(
    ("value", "withheld"),
    [
        ({"url": "postgres://db"}, False),
        (42, False),
        ("$secret is just a word here", False),
        ({"$other": 1}, False),
        (REF, True),
        ({"db": {"password": REF}}, True),
        ({"list": [1, CIPHER]}, True),
    ],
)
def test_values_with_references_or_ciphertexts_are_withheld(value: object, withheld: bool) -> None:
    assert withhold_value(KEY, json.dumps(value)) is withheld


def test_escaped_member_names_are_recognised() -> None:
    escaped = '{"\\u0024secret": {"mount": "secret", "path": "a", "field": "b"}}'
    assert withhold_value(KEY, escaped) is True


def test_malformed_reserved_forms_and_bad_json_are_withheld() -> None:
    assert withhold_value(KEY, '{"$secret": {"mount": 1}}') is True
    assert withhold_value(KEY, '{"$secret": ') is True
