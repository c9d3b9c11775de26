"""Roles, permissions and the matching of role bindings against request scopes.

A binding grants a role's permissions on a pattern over tenant, environment,
service and key prefix. Patterns are ``*``, an exact name, or a prefix ending
in ``*``; nothing else is special, so a pattern can never match more than it
says. A request scope names what the call touches; ``None`` in a scope means
"every" (a List without environment, an installation-wide RPC), which only a
``*`` pattern covers.
"""

from __future__ import annotations

from dataclasses import dataclass

from configsvc.model.keys import ConfigKey
from configsvc.v1 import auth_pb2

CONFIG_READ = "config.read"
CONFIG_WRITE = "config.write"
SECRET_READ = "secret.read"
AUDIT_READ = "audit.read"
ADMIN = "admin"
PERMISSIONS = (CONFIG_READ, CONFIG_WRITE, SECRET_READ, AUDIT_READ, ADMIN)

ROLE_PERMISSIONS: dict[auth_pb2.Role, frozenset[str]] = {
    auth_pb2.ROLE_VIEWER: frozenset({CONFIG_READ}),
    auth_pb2.ROLE_EDITOR: frozenset({CONFIG_READ, CONFIG_WRITE}),
    auth_pb2.ROLE_ADMIN: frozenset(PERMISSIONS),
    auth_pb2.ROLE_SECRET_READER: frozenset({SECRET_READ}),
    auth_pb2.ROLE_AUDITOR: frozenset({AUDIT_READ, CONFIG_READ}),
}

#: CLI and documentation names of the roles.
ROLE_NAMES: dict[str, auth_pb2.Role] = {
    "viewer": auth_pb2.ROLE_VIEWER,
    "editor": auth_pb2.ROLE_EDITOR,
    "admin": auth_pb2.ROLE_ADMIN,
    "secret-reader": auth_pb2.ROLE_SECRET_READER,
    "auditor": auth_pb2.ROLE_AUDITOR,
}

ANY = "*"


@dataclass(frozen=True, slots=True)
class Scope:
    """What one request touches; None means every value of that part."""

    tenant: str | None = None
    environment: str | None = None
    service: str | None = None
    key: str | None = None
    key_prefix: str | None = None


def matches(pattern: str, value: str | None) -> bool:
    """Does ``pattern`` cover ``value`` (None: every value)?"""
    if pattern == ANY:
        return True
    if value is None:
        return False
    if pattern.endswith(ANY):
        return value.startswith(pattern[:-1])
    return value == pattern


def overlaps(pattern: str, value: str | None) -> bool:
    """Could ``pattern`` cover part of ``value`` (None: every value)?"""
    return value is None or matches(pattern, value)


@dataclass(frozen=True, slots=True)
class Grant:
    """One binding's permissions on its patterns."""

    permissions: frozenset[str]
    tenant: str
    environment: str
    service: str
    key_prefix: str

    def covers(self, permission: str, scope: Scope) -> bool:
        """The grant allows ``permission`` on everything ``scope`` names."""
        if permission not in self.permissions:
            return False
        if not (
            matches(self.tenant, scope.tenant)
            and matches(self.environment, scope.environment)
            and matches(self.service, scope.service)
        ):
            return False
        if not self.key_prefix:
            return True
        named = scope.key if scope.key is not None else scope.key_prefix
        return named is not None and named.startswith(self.key_prefix)

    def overlaps(self, permission: str, scope: Scope) -> bool:
        """The grant allows ``permission`` on some of what ``scope`` names."""
        if permission not in self.permissions:
            return False
        # Tenants never partly overlap: a scope over every tenant needs tenant "*".
        if not (
            matches(self.tenant, scope.tenant)
            and overlaps(self.environment, scope.environment)
            and overlaps(self.service, scope.service)
        ):
            return False
        if not self.key_prefix:
            return True
        if scope.key is not None:
            return scope.key.startswith(self.key_prefix)
        prefix = scope.key_prefix or ""
        return prefix.startswith(self.key_prefix) or self.key_prefix.startswith(prefix)


def grant_of(binding: auth_pb2.RoleBinding) -> Grant:
    return Grant(
        ROLE_PERMISSIONS.get(binding.role, frozenset()),
        binding.tenant,
        binding.environment or ANY,
        binding.service or ANY,
        binding.key_prefix,
    )


def subject_matches(pattern: str, name: str) -> bool:
    return matches(pattern, name)


class Access:
    """The grants of one principal at one bindings generation.

    Shared by every call and stream of the principal until the bindings
    change, and hashed by identity, so the watch hub can cache its per-batch
    matching per (selectors, access) as cheaply as per selectors.
    """

    __slots__ = ("grants", "name")

    def __init__(self, name: str, grants: tuple[Grant, ...]) -> None:
        self.name = name
        self.grants = grants

    def allows(self, permission: str, scope: Scope) -> bool:
        return any(g.covers(permission, scope) for g in self.grants)

    def may_touch(self, permission: str, scope: Scope) -> bool:
        return any(g.overlaps(permission, scope) for g in self.grants)

    def readable(self, key: ConfigKey) -> bool:
        """May the principal read this entry? (the watch filter)"""
        return self.allows(CONFIG_READ, Scope(key.tenant, key.environment, key.service, key.key))


#: When auth is off: everything allowed (the watch hub sees access None instead).
UNRESTRICTED = Access("", (Grant(frozenset(PERMISSIONS), ANY, ANY, ANY, ""),))
