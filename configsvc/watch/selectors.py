"""Watch selectors: validated once at stream start, then matched per change."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from configsvc.errors import FieldViolation, InvalidArgumentError
from configsvc.model.keys import ConfigKey, key_violation, segment_violation
from configsvc.v1 import watch_pb2

MAX_SELECTORS = 100
MAX_KEYS = 1000
MAX_PREFIXES = 100


@dataclass(frozen=True, slots=True)
class Selector:
    """One validated selector; empty environment/service/keys/prefixes mean 'any'."""

    tenant: str
    environment: str
    service: str
    keys: frozenset[str] | tuple[()]  # () when empty: an empty frozenset costs 216 bytes
    prefixes: tuple[str, ...]

    def matches(self, key: ConfigKey) -> bool:
        if key.tenant != self.tenant:
            return False
        if self.environment and key.environment != self.environment:
            return False
        if self.service and key.service != self.service:
            return False
        if not self.keys and not self.prefixes:
            return True
        return key.key in self.keys or any(key.key.startswith(p) for p in self.prefixes)


def parse(messages: Sequence[watch_pb2.WatchSelector]) -> tuple[Selector, ...]:
    """Validate every selector, reporting every bad field at once."""
    if not messages:
        raise InvalidArgumentError.single("selectors", f"give 1 to {MAX_SELECTORS} selectors")
    if len(messages) > MAX_SELECTORS:
        raise InvalidArgumentError.single(
            "selectors", f"has {len(messages)} selectors; the limit is {MAX_SELECTORS}"
        )
    violations: list[FieldViolation] = []
    selectors = []
    for i, message in enumerate(messages):
        field = f"selectors[{i}]"
        found = [segment_violation(f"{field}.tenant", message.tenant)]
        if message.environment:
            found.append(segment_violation(f"{field}.environment", message.environment))
        if message.service:
            found.append(segment_violation(f"{field}.service", message.service))
        if len(message.keys) > MAX_KEYS:
            found.append(
                FieldViolation(
                    f"{field}.keys", f"has {len(message.keys)} keys; the limit is {MAX_KEYS}"
                )
            )
        elif message.keys and not (message.environment and message.service):
            found.append(
                FieldViolation(f"{field}.keys", "exact keys need both environment and service")
            )
        if len(message.key_prefixes) > MAX_PREFIXES:
            found.append(
                FieldViolation(
                    f"{field}.key_prefixes",
                    f"has {len(message.key_prefixes)} prefixes; the limit is {MAX_PREFIXES}",
                )
            )
        found += [key_violation(f"{field}.keys[{j}]", k) for j, k in enumerate(message.keys)]
        found += [
            key_violation(f"{field}.key_prefixes[{j}]", p)
            for j, p in enumerate(message.key_prefixes)
        ]
        violations += [v for v in found if v is not None]
        selectors.append(
            Selector(
                message.tenant,
                message.environment,
                message.service,
                frozenset(message.keys) if message.keys else (),
                tuple(message.key_prefixes),
            )
        )
    if violations:
        raise InvalidArgumentError(violations)
    return tuple(selectors)
