"""Resolution: the pure engine that merges configuration layers with provenance.

No I/O and no gRPC: the server reads the layers and calls ``resolve``.

Layers
------
For (tenant, service S, environment E) the layers are, lowest first:

- the templates S extends, in ``expand_templates`` order (layer ``template:<name>@<version>``);
- ``global``: environment "all", service "all";
- ``env``: environment E, service "all";
- ``service``: environment "all", service S;
- ``service-env``: environment E, service S.

Each layer maps a config key name to a JSON value. The resolved document is a
JSON object with one member per key name -- key names are not split on dots:
key "db.pool" is the single member "db.pool" -- whose value is the merge of
that key's values across the layers, lowest first.

Merge rules
-----------
1. Objects merge recursively: for each member the higher layer wins per leaf.
   Members the higher object does not mention are inherited unchanged.
2. Arrays replace as a whole; elements are never merged.
3. Tombstone: the exact value ``{"$unset": true}``, as a key's whole value or
   as the value of an object member, removes the inherited value at that path
   (the whole key, or that member with everything below it). A tombstone with
   nothing to remove does nothing, and a higher layer may set the path again.
   Tombstones never appear in the resolved document.
4. Type clash: when either the inherited or the higher value is not an object
   (object over scalar or array, scalar or array over object, scalar over
   array, ...), the higher value replaces the inherited one entirely, with all
   of its provenance. Tombstones inside the replacing value then have nothing
   to remove.
5. Reserved names: object member names starting with "$" are reserved for the
   tombstone. Any other object with a "$unset" member (``{"$unset": false}``,
   ``{"$unset": 1}``, ``{"$unset": true, "x": 1}``), any other "$" member, a
   tombstone anywhere inside an array (arrays replace whole, so it could
   remove nothing) and values nested deeper than 128 arrays/objects are
   rejected with INVALID_ARGUMENT naming the source key, the layer and the
   JSON pointer of the offending value. Duplicate member names in one object:
   the last one wins.
6. An object whose members were all removed stays, as ``{}``.
7. Deterministic: members are sorted by name (Unicode code point order) at
   every level, also inside arrays, and the canonical text is
   ``json.dumps(document, sort_keys=True, separators=(",", ":"),
   ensure_ascii=False)`` (unpaired surrogates are written as ``\\udXXX``
   escapes so the text is valid UTF-8). Numbers keep their exact value:
   integers of any size stay integers, other numbers keep their digits,
   trailing zeros included (``1.10`` stays ``1.10``); only the exponent
   notation may be rewritten (``1e5`` -> ``1E+5``, ``2.50e2`` -> ``250``,
   ``0.0000001`` -> ``1E-7``). The same layers always give byte-identical text,
   whatever the order of entries and members in the input. Values are
   compared by canonical text, so ``1``, ``1.0`` and ``true`` differ.
8. Provenance: every leaf of the document -- scalar, array or empty object --
   has a JSON pointer (RFC 6901, e.g. "/db.pool/max") mapped to the layer, the
   config key (tenant/environment/service/key) and the etcd revision of the
   value it came from. An empty object's source is the highest layer that
   supplied an object at that path. The document revision is the highest
   revision among all entries of the layers (overridden values and tombstones
   included).

Templates
---------
A service extends templates by reference ``name@version``; a template is a
mapping key -> value and may extend other templates. ``expand_templates``
lists them lowest first: for A extends [B, C], B's chain, then C's chain,
then A. A template reached twice (a diamond) is applied once, at its first
position. Cycles, missing templates, chains deeper than 16 templates and
invalid references are INVALID_ARGUMENT, the message naming the chain.
"""

from configsvc.resolve.compare import DiffRow, diff, json_patch, leaves
from configsvc.resolve.jsonvalue import (
    MAX_VALUE_DEPTH,
    JsonValue,
    canonical_json,
    escape_pointer_token,
    is_tombstone,
    parse_value,
)
from configsvc.resolve.merge import (
    ENV,
    GLOBAL,
    SERVICE,
    SERVICE_ENV,
    Layer,
    LayerValue,
    Resolved,
    Scope,
    Source,
    resolve,
    scope_layers,
)
from configsvc.resolve.templates import (
    MAX_TEMPLATE_DEPTH,
    TEMPLATE_LAYER_PREFIX,
    Template,
    expand_templates,
    parse_template_ref,
    template_layers,
)

__all__ = [
    "ENV",
    "GLOBAL",
    "MAX_TEMPLATE_DEPTH",
    "MAX_VALUE_DEPTH",
    "SERVICE",
    "SERVICE_ENV",
    "TEMPLATE_LAYER_PREFIX",
    "DiffRow",
    "JsonValue",
    "Layer",
    "LayerValue",
    "Resolved",
    "Scope",
    "Source",
    "Template",
    "canonical_json",
    "diff",
    "escape_pointer_token",
    "expand_templates",
    "is_tombstone",
    "json_patch",
    "leaves",
    "parse_template_ref",
    "parse_value",
    "resolve",
    "scope_layers",
    "template_layers",
]
