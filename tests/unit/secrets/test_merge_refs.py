"""References merge as one value across layers (pure resolve engine)."""

from __future__ import annotations

import json

from configsvc.resolve import GLOBAL, SERVICE_ENV, Layer, LayerValue, resolve


def test_a_higher_reference_replaces_the_lower_one_whole() -> None:
    lower = {
        "password": {"$secret": {"mount": "secret", "path": "old", "field": "pw", "version": 3}},
        "pool": 4,
    }
    higher = {"password": {"$secret": {"mount": "secret", "path": "new", "field": "pw"}}}
    resolved = resolve(
        [
            Layer(GLOBAL, {"db": LayerValue(json.dumps(lower), 5, "t/all/all/db")}),
            Layer(SERVICE_ENV, {"db": LayerValue(json.dumps(higher), 6, "t/prod/api/db")}),
        ]
    )
    document = json.loads(resolved.canonical_json())
    assert document["db"] == {
        "password": {"$secret": {"mount": "secret", "path": "new", "field": "pw"}},
        "pool": 4,
    }
    # The reference is one leaf, from the layer that wrote it.
    assert resolved.provenance["/db/password"].layer == SERVICE_ENV
    assert resolved.provenance["/db/pool"].layer == GLOBAL

    # A plain object over a reference replaces it too (type clash rule), and the other way.
    plain = {"password": {"env": "DB_PASSWORD"}}
    over = resolve(
        [
            Layer(GLOBAL, {"db": LayerValue(json.dumps(lower), 5, "t/all/all/db")}),
            Layer(SERVICE_ENV, {"db": LayerValue(json.dumps(plain), 6, "t/prod/api/db")}),
        ]
    )
    assert json.loads(over.canonical_json())["db"]["password"] == {"env": "DB_PASSWORD"}
