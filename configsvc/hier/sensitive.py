"""Where registered schemas meet secrets: sensitive fields, and places schemas cannot see.

Two directions of one integration:

* ``RegisteredSensitiveFields`` tells the secrets gateway which places of a
  value the tenant's registered schemas (``ValidationService.PutSchema``)
  mark ``"x-sensitive": true``, so Put and Promote store them as transit
  ciphertext. It reads the per-tenant state cache, so a new schema version
  applies to the next write without a restart.
* ``outside_secret_places`` drops schema violations at places holding a
  ``$secret`` reference or an ``$encrypted`` ciphertext. Put validates the
  plaintext before the gateway encrypts it, but stored values (Rollback,
  Promote, a client writing back what it read, PutSchema's and Validate's
  check of stored values) hold the ciphertext form, which can never match
  e.g. ``"type": "string"``; a reference likewise stands for a value only
  Vault holds. Everything around such a place is still checked.
"""

from __future__ import annotations

from collections.abc import Iterable

from configsvc.errors import FieldViolation, InvalidArgumentError
from configsvc.hier.state import StateCache
from configsvc.model.keys import ConfigKey
from configsvc.secrets.refs import walk
from configsvc.validate import SchemaRegistry, pointer

#: How ``SchemaRegistry.validate`` names the value in a violation's field.
_VALUE_FIELD = "value"


class RegisteredSensitiveFields:
    """``SensitiveFields`` (configsvc.secrets.gateway) from the registered schemas."""

    def __init__(self, states: StateCache) -> None:
        self._states = states

    def sensitive_pointers(self, key: ConfigKey, value: object) -> list[str]:
        return self._states.get(key.tenant).registry.sensitive_pointers(key, value)


def secret_places(value: object) -> list[str]:
    """JSON pointers of the references and ciphertexts in ``value``.

    A malformed reserved form yields none here: the secrets gateway refuses
    it on write with the precise reason.
    """
    try:
        return [place for place, _ in walk(value)]  # type: ignore[arg-type]
    except InvalidArgumentError:
        return []


def outside_secret_places(
    violations: Iterable[FieldViolation], value: object
) -> list[FieldViolation]:
    """``violations`` of ``value`` without those at or below a reference or ciphertext."""
    found = list(violations)
    if not found:
        return found
    places = secret_places(value)
    if not places:
        return found
    return [v for v in found if not any(pointer.is_within(_place(v.field), p) for p in places)]


def _place(field: str) -> str:
    """The JSON pointer a violation names (``value/a/0`` -> ``/a/0``)."""
    return field[len(_VALUE_FIELD) :] if field.startswith(_VALUE_FIELD) else field


def plain_sensitive_places(registry: SchemaRegistry, key: ConfigKey, value: object) -> list[str]:
    """Places ``registry`` marks sensitive in ``value`` that do not hold a reference or
    ciphertext: where ``value`` would keep plaintext if stored as it is."""
    sealed = secret_places(value)
    return [
        place
        for place in registry.sensitive_pointers(key, value)
        if not any(pointer.is_within(place, s) for s in sealed)
    ]
