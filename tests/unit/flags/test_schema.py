"""Flag sets against the official flagd schemas: every test document of flagd-schemas.

Positive documents must be accepted and negative ones rejected with a
violation that names a place which exists in the document (JSON Pointer below
``definition``). Documents pick their schema with ``$schema`` (flags.json or
flagd.json), as upstream's own test runner does; the targeting documents are
rules checked against targeting.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from configsvc.errors import InvalidArgumentError
from configsvc.flags import schema
from configsvc.validate import pointer
from tests.unit.flags.conformance import SCHEMA_TESTS

DOCUMENTS = sorted(p for p in SCHEMA_TESTS.rglob("*.json"))


def test_the_conformance_documents_are_there() -> None:
    # A missing ../shared/conformance must fail loudly, not parametrise to nothing.
    assert len(DOCUMENTS) >= 30, f"expected the flagd-schemas test documents in {SCHEMA_TESTS}"


def _schema_for(path: Path, document: object) -> str:
    if path.parts[-3] == "targeting":
        return schema.TARGETING_SCHEMA
    return schema.schema_of(document)


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: "/".join(p.parts[-3:]))
def test_official_document(path: Path) -> None:
    document = json.loads(path.read_text())
    found = schema.violations(document, schema_id=_schema_for(path, document))
    if path.parts[-2] == "positive":
        assert found == []
        return
    assert found, f"{path.name} must be rejected"
    for violation in found:
        assert violation.field.startswith("definition")
        place = violation.field[len("definition") :]
        assert pointer.resolve(document, place) is not pointer.MISSING, violation
        assert "flagd schema" in violation.description


@pytest.mark.parametrize(
    ("name", "field", "words"),
    [
        ("state-set-incorrectly.json", "definition/flags/myBoolFlag/state", "WILL-FAIL"),
        (
            "mixed-variant-types.ffconfig.json",
            "definition/flags/myBoolFlag/variants/off",
            "not of type 'boolean'",
        ),
        ("with-invalid-flag-set-metadata.json", "definition/metadata/invalid", "not of type"),
        ("empty-variants.json", "definition/flags/myBoolFlag/variants", "non-empty"),
    ],
)
def test_negative_documents_name_the_offending_place(name: str, field: str, words: str) -> None:
    document = json.loads((SCHEMA_TESTS / "flags" / "negative" / name).read_text())
    with pytest.raises(InvalidArgumentError) as raised:
        schema.require_valid(document)
    assert [v.field for v in raised.value.violations] == [field]
    assert words in raised.value.violations[0].description


def test_documents_without_schema_use_flags_json() -> None:
    assert schema.schema_of({"flags": {}}) == schema.FLAGS_SCHEMA
    assert (
        schema.schema_of({"$schema": "https://flagd.dev/schema/v0/flagd.json"})
        == schema.FLAGD_SCHEMA
    )
    assert schema.schema_of([]) == schema.FLAGS_SCHEMA
