"""Who is calling: the authenticated principal of the current RPC.

The guard sets it once per call in a context variable; each RPC runs in its
own task, so servicers (audit actor, watch filters) read it without it being
threaded through every signature.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from configsvc.model.grants import Access

API_KEY = "api-key"
MTLS = "mtls"
JWT = "jwt"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated identity: the name role bindings refer to."""

    name: str
    """``key:<name>``, ``cert:<common name>`` or ``jwt:<subject>``."""
    method: str
    """``api-key``, ``mtls`` or ``jwt``."""
    expires_at: float | None = None
    """Epoch seconds after which the credential is no longer valid."""
    key_id: str = ""
    """The API key id, for revocation of open streams."""


@dataclass(frozen=True, slots=True)
class Caller:
    """The principal of one call and the grants it was admitted with."""

    principal: Principal
    access: Access


_CALLER: ContextVar[Caller | None] = ContextVar("configsvc_caller", default=None)


def current() -> Caller | None:
    """The caller of the RPC running in this task; None when auth is off."""
    return _CALLER.get()


def enter(caller: Caller) -> None:
    _CALLER.set(caller)
