"""Where a schema or a rule applies: a tenant, optionally narrowed to one environment and service.

An empty environment or service means "every one". The marker ``all`` (the
environment/service of global and wide values) means the same thing here and
is stored as empty, so ``Scope("acme", "all")`` equals ``Scope("acme")``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from configsvc.errors import FieldViolation, InvalidArgumentError
from configsvc.model.keys import ALL, ConfigKey, segment_violation


class DocumentScope(NamedTuple):
    """The (service, environment) of one resolved document, the key of ``documents``."""

    service: str
    environment: str

    def __str__(self) -> str:
        return f"service {self.service!r} in environment {self.environment!r}"


@dataclass(frozen=True, order=True)
class Scope:
    """A tenant plus an optional environment and service; validated on construction."""

    tenant: str
    environment: str = ""
    service: str = ""

    def __post_init__(self) -> None:
        if self.environment == ALL:
            object.__setattr__(self, "environment", "")
        if self.service == ALL:
            object.__setattr__(self, "service", "")
        found = [segment_violation("scope.tenant", self.tenant)]
        if self.environment:
            found.append(segment_violation("scope.environment", self.environment))
        if self.service:
            found.append(segment_violation("scope.service", self.service))
        violations: list[FieldViolation] = [v for v in found if v is not None]
        if violations:
            raise InvalidArgumentError(violations)

    @property
    def rank(self) -> int:
        """How narrow the scope is: 3 environment and service, 2 service, 1 environment, 0 tenant.

        A service-wide scope counts as narrower than an environment-wide one:
        it is written by the service's owners for that service's keys.
        """
        return (2 if self.service else 0) + (1 if self.environment else 0)

    def covers_key(self, key: ConfigKey) -> bool:
        """True if a value stored at ``key`` can reach this scope.

        A value written for every environment or service (``all``) is resolved
        into every narrower scope, so a schema of environment ``prod`` applies
        to it too: otherwise a wide write could slip an invalid value into
        ``prod`` that a direct write there would be refused.
        """
        if key.tenant != self.tenant:
            return False
        if self.environment and key.environment not in (self.environment, ALL):
            return False
        return not (self.service and key.service not in (self.service, ALL))

    def covers_document(self, document: DocumentScope) -> bool:
        """True if the resolved document of ``(service, environment)`` lies in this scope."""
        if self.environment and document.environment != self.environment:
            return False
        return not (self.service and document.service != self.service)

    def __str__(self) -> str:
        parts = [f"tenant {self.tenant!r}"]
        if self.environment:
            parts.append(f"environment {self.environment!r}")
        if self.service:
            parts.append(f"service {self.service!r}")
        return ", ".join(parts)
