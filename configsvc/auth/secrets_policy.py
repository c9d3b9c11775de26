"""Role bindings as the secret-read policy of ``configsvc.secrets``.

The secrets integration asks ``allows(actor, tenant)`` before it reveals
plaintext (its ``AccessPolicy`` seam; a static reader list until this issue).
With authentication on, the actor is the authenticated identity and the
answer is its ``secret.read`` grant. The seam names only the tenant, so the
grant must cover the whole tenant (every environment, service and key);
narrower secret-reader bindings need the seam to pass the key, then
``allows_key`` answers exactly.
"""

from __future__ import annotations

from configsvc.auth.bindings import Bindings
from configsvc.model.grants import SECRET_READ, Scope
from configsvc.model.keys import ConfigKey


class RbacSecretPolicy:
    """``AccessPolicy`` for ``configsvc.secrets`` backed by role bindings."""

    hint = (
        "role secret-reader on the whole tenant: configsvc auth bind SUBJECT "
        "secret-reader --tenant TENANT"
    )

    def __init__(self, bindings: Bindings) -> None:
        self._bindings = bindings

    def allows(self, actor: str, tenant: str) -> bool:
        return self._bindings.access(actor).allows(SECRET_READ, Scope(tenant))

    def allows_key(self, actor: str, key: ConfigKey) -> bool:
        return self._bindings.access(actor).allows(
            SECRET_READ, Scope(key.tenant, key.environment, key.service, key.key)
        )
