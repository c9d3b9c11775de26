"""The validation engine: JSON Schemas per key and business rules across keys.

Pure functions and immutable values, no I/O: the server loads bindings and
rules, builds a ``SchemaRegistry``, and asks it before every write.

- ``schemas``: ``SchemaBinding``, ``SchemaRegistry``, ``check_values``,
  ``sensitive_pointers`` (JSON Schema Draft 2020-12 via ``jsonschema``).
- ``rules``: ``Rule``, ``evaluate_rules``, ``rule_violations_to_error``
  (JSON Logic via ``panzi-json-logic``, with the ``cfg`` operation).
- ``scope``: ``Scope`` (tenant, optional environment and service) and
  ``DocumentScope`` (the service and environment of a resolved document).

Values are parsed JSON (``json.loads`` of the stored text). Every problem
with a binding or rule is an ``InvalidArgumentError`` whose field violations
name the exact place: ``pattern``, ``schema/properties/pool/type``,
``logic/and/1/cfg``, ``value/pool/max``, ``rules/<name>``.
"""

from configsvc.validate.rules import (
    Rule,
    RuleViolation,
    evaluate_rules,
    rule_violations_to_error,
)
from configsvc.validate.schemas import (
    SchemaBinding,
    SchemaRegistry,
    check_values,
    sensitive_pointers,
)
from configsvc.validate.scope import DocumentScope, Scope

__all__ = [
    "DocumentScope",
    "Rule",
    "RuleViolation",
    "SchemaBinding",
    "SchemaRegistry",
    "Scope",
    "check_values",
    "evaluate_rules",
    "rule_violations_to_error",
    "sensitive_pointers",
]
