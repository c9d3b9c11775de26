"""The one "tenant must exist" check, with the same actionable message everywhere.

Every RPC that names a tenant (and the writer, when etcd says the tenant key
is gone) refuses a missing one with NOT_FOUND and tells the caller how to
create it, instead of each servicer wording its own "not found".
"""

from __future__ import annotations

from configsvc.errors import NotFoundError
from configsvc.store.ports import TenantDirectory


def missing_tenant(name: str) -> NotFoundError:
    """The NOT_FOUND for a tenant that does not exist (raise it)."""
    return NotFoundError(
        "tenant",
        name,
        f"tenant {name!r} does not exist; create it first (CLI: configsvc tenant create {name})",
    )


def require_tenant(tenants: TenantDirectory, name: str) -> None:
    """Raise ``missing_tenant(name)`` unless ``tenants`` (the mirror) holds the tenant."""
    if tenants.tenant(name) is None:
        raise missing_tenant(name)
