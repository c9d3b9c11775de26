"""Admission of one call, whatever carries it: authenticate, rate-limit, authorize.

``Admission.admit(method, metadata, peer, request)`` is the one function every
transport calls (``admit_planned`` when the caller already holds the method's
plan, as the interceptor does): the gRPC interceptor (``configsvc.api.interceptor``) for every RPC,
``AuthRuntime.admit_http`` for OFREP and ``/metrics`` (so the HTTP middleware of
the REST gateway will too), ``configsvc.rpc.context.call_local`` for a servicer
called in-process. It imports nothing of gRPC: metadata is (key, value) pairs,
the peer anything with gRPC's ``peer()`` / ``auth_context()`` (``PeerInfo``).

Per method the work is done once (``MethodPlan``: the rule, where the request
keeps its scopes, the hooks); per call it is one metadata scan, a cached key
verification, one token bucket and a few pattern compares: the work the interceptor
did itself before admission was split out of it (a Get loop with auth on measured
no slower after the split). Refusals are typed exceptions; each transport
turns them into its status through the one table in ``configsvc.rpc.status``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pool
from google.protobuf.message import DecodeError
from google.protobuf.message_factory import GetMessageClass

from configsvc.auth.apikeys import PREFIX, ApiKeys
from configsvc.auth.bearer import JwtVerifier
from configsvc.auth.bindings import Bindings
from configsvc.auth.limits import Quotas, TokenBuckets
from configsvc.auth.rules import AUTHENTICATED, HOOK_PUT_QUOTA, METHOD_RULES, PUBLIC, Rule
from configsvc.auth.scope import ScopePlan, plan, plan_none
from configsvc.errors import InvalidArgumentError, PermissionDeniedError, UnauthenticatedError
from configsvc.model.grants import Access, Scope
from configsvc.rpc.context import Metadata, PeerInfo
from configsvc.rpc.principal import MTLS, Caller, Principal

_BEARER = "bearer "


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one transport carries credentials, and what its callers are told."""

    api_key_header: str | None
    """A header holding a bare API key (HTTP's ``x-api-key``); None: not accepted."""
    bad_scheme: str
    no_credential: str
    certificates: bool
    """Whether a verified client certificate authenticates (gRPC over mTLS)."""


GRPC = Dialect(
    None,
    "the authorization header must be 'Bearer <API key or JWT>'",
    "no credential: send 'authorization: Bearer <API key or JWT>' (grpcurl -H, CLI "
    "--api-key or CONFIGSVC_API_KEY) or connect with a client certificate",
    True,
)
HTTP = Dialect(
    "x-api-key",
    "the Authorization header must be 'Bearer <API key or JWT>'",
    "no credential: send 'Authorization: Bearer <API key or JWT>' or 'X-API-Key: <API key>'",
    False,
)


class Authenticator:
    """Credentials (metadata, the TLS peer) -> principal."""

    def __init__(self, api_keys: ApiKeys, jwt: JwtVerifier | None, mtls: bool) -> None:
        self._api_keys = api_keys
        self._jwt = jwt
        self._mtls = mtls

    async def authenticate(
        self, metadata: Metadata | None, peer: PeerInfo | None, dialect: Dialect = GRPC
    ) -> Principal:
        """The principal of the first ``authorization`` entry (``Bearer <token>``), else of
        the dialect's API key header, else of the peer's client certificate."""
        token: str | None = None
        api_key: str | bytes | None = None
        api_key_header = dialect.api_key_header
        for key, value in metadata or ():
            if key == "authorization":
                if not value and api_key_header is not None:
                    continue  # HTTP: an empty Authorization header is no header
                if not isinstance(value, str) or value[:7].lower() != _BEARER:
                    raise UnauthenticatedError(dialect.bad_scheme)
                token = value[7:].strip()
                break
            if key == api_key_header:
                api_key = value
        if token is None and isinstance(api_key, str):
            token = api_key.strip()
        if token is not None and (token or api_key_header is None):
            return await self.verify(token)
        if dialect.certificates and self._mtls and peer is not None:
            names = peer.auth_context().get("x509_common_name")
            if names:
                return Principal(f"cert:{names[0].decode()}", MTLS)
        raise UnauthenticatedError(dialect.no_credential)

    async def verify(self, token: str) -> Principal:
        """An API key or JWT (from gRPC metadata or an HTTP header) -> principal."""
        if token.startswith(PREFIX):
            return self._api_keys.verify(token)
        if self._jwt is None:
            raise UnauthenticatedError(
                "the bearer token is not an API key (cs_...) and this server accepts "
                "no JWTs (no issuer/JWKS configured)"
            )
        return await self._jwt.verify(token)


#: An extra admission check a rule names (``Rule.hook``): request -> None or raises.
Hook = Callable[[Any], None]
#: Reads the scopes of a request that does not name them in fields: (request,
#: invocation metadata) -> scopes; [] admits any authenticated caller (the
#: servicer refuses the call itself).
Scoper = Callable[[Any, Any], list[Scope]]


def _input_type(method: str) -> Any:
    service, _, name = method.lstrip("/").rpartition("/")
    return descriptor_pool.Default().FindServiceByName(service).methods_by_name[name].input_type


def _undecodable(data: bytes) -> Any:
    raise InvalidArgumentError.single("request", "cannot be read before authorization")


class MethodPlan:
    """Everything admission needs about one method, worked out once."""

    __slots__ = ("checks", "decode", "hook", "name", "plan", "request_type", "rule", "scoper")

    def __init__(
        self,
        name: str,
        rule: Rule,
        hooks: dict[str, Hook],
        scopers: dict[str, Scoper],
        *,
        typed: bool = True,
    ) -> None:
        self.name = name
        self.rule = rule
        self.hook = hooks[rule.hook] if rule.hook else None
        self.checks: tuple[tuple[str, ScopePlan], ...] = ()
        self.scoper = scopers[rule.scope_from] if rule.scope_from else None
        if self.scoper is not None or not typed:
            # The scope is not in the request's fields (flagd: a header; HTTP: given by
            # the adapter); the request type may live in a private descriptor pool, so
            # it is not looked up.
            self.plan: ScopePlan = plan_none()
            self.decode: Callable[[bytes], Any] = _undecodable
            self.request_type = name
            return
        descriptor = _input_type(name)
        self.plan = plan(
            descriptor,
            rule.aliases,
            installation_wide=rule.installation_wide,
            tenant_wide=rule.tenant_wide,
        )
        #: The rule's further permissions, each on the scope its aliases read.
        self.checks = tuple(
            (check.permission, plan(descriptor, check.aliases, tenant_wide=rule.tenant_wide))
            for check in rule.also
        )
        self.decode = GetMessageClass(descriptor).FromString
        self.request_type = descriptor.name


class Admission:
    """Deny by default: a method without a rule is refused to everyone."""

    def __init__(
        self,
        authenticator: Authenticator,
        bindings: Bindings,
        buckets: TokenBuckets,
        quotas: Quotas,
        rules: dict[str, Rule] | None = None,
    ) -> None:
        self.authenticator = authenticator
        self._bindings = bindings
        self._buckets = buckets
        #: Full method name -> rule (``configsvc.auth.rules``).
        self.rules = METHOD_RULES if rules is None else rules
        self._hooks: dict[str, Hook] = {HOOK_PUT_QUOTA: quotas.check_put}
        #: Named scope readers of rules with ``scope_from`` (registered by the features).
        self.scopers: dict[str, Scoper] = {}
        self._plans: dict[str, MethodPlan | None] = {}
        self._given: dict[tuple[str, str, bool], MethodPlan] = {}

    def plan(self, method: str, *, installation_wide: bool = False) -> MethodPlan | None:
        """The plan of ``method``: None when it is public; PERMISSION_DENIED when it has no
        rule. ``installation_wide``: for request streams, authorized on tenant ``*``
        before their first message is read."""
        rule = self.rules.get(method)
        if rule is None:
            raise no_rule(method)
        if rule.permission == PUBLIC:
            return None
        if installation_wide:
            rule = Rule(rule.permission, installation_wide=True)
        return MethodPlan(method, rule, self._hooks, self.scopers)

    def given(self, what: str, permission: str, partial: bool) -> MethodPlan:
        """The (cached) plan of a call whose scopes its transport names itself (OFREP's
        flag set, ``/metrics``): ``permission`` on them, on part of them with
        ``partial``; ``what`` names the call in refusals."""
        key = (what, permission, partial)
        found = self._given.get(key)
        if found is None:
            found = self._given[key] = MethodPlan(
                what, Rule(permission, overlap=partial), self._hooks, self.scopers, typed=False
            )
        return found

    async def admit(
        self, method: str, metadata: Metadata | None, peer: PeerInfo | None, request: Any
    ) -> Caller | None:
        """Admit a call of ``method`` (a full gRPC method name): the caller, None for a
        public method, or the typed error that refuses it. ``request`` is the decoded
        request or its bytes (decoded here only if the rule needs its fields)."""
        found = self._plans.get(method)
        if found is None:
            if method in self._plans:
                return None  # public
            found = self._plans[method] = self.plan(method)
            if found is None:
                return None
        return await self.admit_planned(found, metadata, peer, request)

    async def admit_planned(
        self,
        method: MethodPlan,
        metadata: Metadata | None,
        peer: PeerInfo | None,
        request: Any,
        *,
        dialect: Dialect = GRPC,
        scopes: list[Scope] | None = None,
    ) -> Caller:
        """``admit`` with the method's plan at hand (the interceptor keeps it per
        method). ``scopes``: the scopes the transport names itself (``given`` plans)."""
        principal = await self.authenticator.authenticate(metadata, peer, dialect)
        self._buckets.take(principal.name)
        access = self._bindings.access(principal.name)
        rule = method.rule
        if rule.permission != AUTHENTICATED:
            if scopes is None:
                if isinstance(request, bytes):
                    try:
                        request = method.decode(request)
                    except DecodeError:
                        raise InvalidArgumentError.single(
                            "request", f"is not a valid {method.request_type}"
                        ) from None
                scopes = (
                    method.scoper(request, metadata)
                    if method.scoper is not None
                    else method.plan.scopes(request)
                )
            require(
                access,
                principal.name,
                rule.permission,
                scopes,
                method.name,
                partial=rule.stream_filter or rule.overlap,
            )
            for permission, also in method.checks:
                require(access, principal.name, permission, also.scopes(request), method.name)
            if method.hook is not None:
                method.hook(request)
        return Caller(principal, access)


def no_rule(method: str) -> PermissionDeniedError:
    """The refusal of a method missing from the rules table."""
    return PermissionDeniedError(
        f"{method} has no authorization rule on this server (configsvc.auth.rules); "
        "it is denied to everyone"
    )


def require(
    access: Access,
    name: str,
    permission: str,
    scopes: Sequence[Scope],
    method: str,
    *,
    partial: bool = False,
) -> None:
    """PERMISSION_DENIED unless ``access`` allows ``permission`` on every scope (with
    ``partial``: on some of each scope)."""
    check = access.may_touch if partial else access.allows
    for scope in scopes:
        if not check(permission, scope):
            raise _denied_on(name, permission, scope, method)


def _denied_on(name: str, permission: str, scope: Any, method: str) -> PermissionDeniedError:
    return PermissionDeniedError(
        f"{name} lacks {permission} on {_describe(scope)} for {method}; ask an admin for a "
        "role binding (configsvc auth bind)"
    )


def _describe(scope: Any) -> str:
    parts = [
        f"{name}={value}"
        for name in ("tenant", "environment", "service", "key", "key_prefix")
        if (value := getattr(scope, name)) is not None
    ]
    return " ".join(parts) if parts else "the whole installation (tenant *)"
