"""The interceptor that admits every RPC: authenticate, authorize, limit.

A ``grpc.aio`` server interceptor sees every method, whichever way its
service was registered, so nothing can be added unguarded. It wraps each
method's handler once (cached by method name), so the per-call cost is the
interceptor call, one metadata scan, a cached key verification and a few
pattern compares (measured against the bare handler in README.md). Errors
are raised as typed exceptions and become statuses through the one table in
``configsvc.rpc.status``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.message import DecodeError
from google.protobuf.message_factory import GetMessageClass

from configsvc.auth.apikeys import PREFIX, ApiKeys
from configsvc.auth.bearer import JwtVerifier
from configsvc.auth.bindings import Bindings
from configsvc.auth.limits import Quotas, StreamCaps, TokenBuckets
from configsvc.auth.rules import AUTHENTICATED, HOOK_PUT_QUOTA, METHOD_RULES, PUBLIC, Rule
from configsvc.auth.scope import ScopePlan, plan, plan_none
from configsvc.errors import (
    ConfigsvcError,
    InvalidArgumentError,
    PermissionDeniedError,
    StreamEndedError,
    UnauthenticatedError,
)
from configsvc.model.grants import Access, Scope
from configsvc.rpc import principal as principals
from configsvc.rpc.principal import MTLS, Caller, Principal
from configsvc.rpc.status import abort_with

log = logging.getLogger(__name__)

_BEARER = "bearer "
_NO_CREDENTIAL = (
    "no credential: send 'authorization: Bearer <API key or JWT>' (grpcurl -H, CLI "
    "--api-key or CONFIGSVC_API_KEY) or connect with a client certificate")


class Authenticator:
    """Metadata (and the TLS peer) -> principal."""

    def __init__(self, api_keys: ApiKeys, jwt: JwtVerifier | None, mtls: bool) -> None:
        self._api_keys = api_keys
        self._jwt = jwt
        self._mtls = mtls

    async def authenticate(self, context: grpc.aio.ServicerContext) -> Principal:
        token = None
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                if not isinstance(value, str) or value[:7].lower() != _BEARER:
                    raise UnauthenticatedError(
                        "the authorization header must be 'Bearer <API key or JWT>'")
                token = value[7:].strip()
                break
        if token is not None:
            return await self.verify(token)
        if self._mtls:
            names = context.auth_context().get("x509_common_name")
            if names:
                return Principal(f"cert:{names[0].decode()}", MTLS)
        raise UnauthenticatedError(_NO_CREDENTIAL)

    async def verify(self, token: str) -> Principal:
        """An API key or JWT (from gRPC metadata or an HTTP header) -> principal."""
        if token.startswith(PREFIX):
            return self._api_keys.verify(token)
        if self._jwt is None:
            raise UnauthenticatedError(
                "the bearer token is not an API key (cs_...) and this server accepts "
                "no JWTs (no issuer/JWKS configured)")
        return await self._jwt.verify(token)


def _input_class(method: str) -> Any:
    service, _, name = method.lstrip("/").rpartition("/")
    found = descriptor_pool.Default().FindServiceByName(service).methods_by_name[name]
    return found.input_type, GetMessageClass(found.input_type)


Hook = Callable[[Any], None]
#: Reads the scopes of a request that does not name them in fields: (request,
#: invocation metadata) -> scopes; [] admits any authenticated caller (the
#: servicer refuses the call itself).
Scoper = Callable[[Any, Any], list[Scope]]


def _undecodable(data: bytes) -> Any:
    raise InvalidArgumentError.single("request", "cannot be read before authorization")


class _Method:
    """Everything the guard needs about one method, worked out once."""

    __slots__ = ("checks", "decode", "hook", "name", "plan", "request_type", "rule", "scoper")

    def __init__(self, name: str, rule: Rule, hooks: dict[str, Hook],
                 scopers: dict[str, Scoper]) -> None:
        self.name = name
        self.rule = rule
        self.hook = hooks[rule.hook] if rule.hook else None
        self.checks: tuple[tuple[str, ScopePlan], ...] = ()
        self.scoper = scopers[rule.scope_from] if rule.scope_from else None
        if self.scoper is not None:
            # The scope is not in the request's fields (flagd: a header); the request
            # type may live in a private descriptor pool, so it is not looked up.
            self.plan: ScopePlan = plan_none()
            self.decode: Callable[[bytes], Any] = _undecodable
            self.request_type = name
            return
        descriptor, cls = _input_class(name)
        self.plan = plan(descriptor, rule.aliases,
                                    installation_wide=rule.installation_wide,
                                    tenant_wide=rule.tenant_wide)
        #: The rule's further permissions, each on the scope its aliases read.
        self.checks = tuple(
            (check.permission, plan(descriptor, check.aliases, tenant_wide=rule.tenant_wide))
            for check in rule.also)
        self.decode = cls.FromString
        self.request_type = descriptor.name


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Deny by default; see the module docstring."""

    def __init__(self, authenticator: Authenticator, bindings: Bindings,
                 buckets: TokenBuckets, streams: StreamCaps, quotas: Quotas,
                 rules: dict[str, Rule] | None = None) -> None:
        self._authn = authenticator
        self._bindings = bindings
        self._buckets = buckets
        self.streams = streams
        self._rules = METHOD_RULES if rules is None else rules
        self._hooks: dict[str, Hook] = {HOOK_PUT_QUOTA: quotas.check_put}
        #: Named scope readers of rules with ``scope_from`` (registered by the features).
        self.scopers: dict[str, Scoper] = {}
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}
        #: Streams served by async generators (not the watch hub): task -> stream.
        self._open: dict[asyncio.Task[Any], _OpenStream] = {}

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], details: Any
    ) -> Any:
        handler = self._handlers.get(details.method)
        if handler is None:
            handler = await continuation(details)
            if handler is None:
                return None
            handler = self._wrap(details.method, handler)
            self._handlers[details.method] = handler
        return handler

    # ------------------------------------------------------------- admission

    async def admit(self, method: _Method, request: Any,
                    context: grpc.aio.ServicerContext) -> Caller:
        """Authenticate, rate-limit, authorize; the caller, or a typed error."""
        principal = await self._authn.authenticate(context)
        self._buckets.take(principal.name)
        access = self._bindings.access(principal.name)
        rule = method.rule
        if rule.permission != AUTHENTICATED:
            if isinstance(request, bytes):
                try:
                    request = method.decode(request)
                except DecodeError:
                    raise InvalidArgumentError.single(
                        "request", f"is not a valid {method.request_type}") from None
            scopes = (method.scoper(request, context.invocation_metadata())
                      if method.scoper is not None else method.plan.scopes(request))
            require(access, principal.name, rule.permission, scopes, method.name,
                    partial=rule.stream_filter or rule.overlap)
            for permission, also in method.checks:
                require(access, principal.name, permission, also.scopes(request), method.name)
            if method.hook is not None:
                method.hook(request)
        return Caller(principal, access)

    # -------------------------------------------------------------- wrapping

    def _wrap(self, name: str, handler: Any) -> Any:
        rule = self._rules.get(name)
        if rule is not None and rule.permission == PUBLIC:
            return handler
        if rule is None:
            log.error("RPC %s has no authorization rule; denied to everyone", name)
            return _denied(name, handler)
        method = _Method(name, rule, self._hooks, self.scopers)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(method, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        # Request streams: authenticated and authorized installation-wide before
        # the first message is read.
        wrap = self._unary if handler.stream_unary is not None else self._stream
        factory = (grpc.stream_unary_rpc_method_handler if handler.stream_unary is not None
                   else grpc.stream_stream_rpc_method_handler)
        inner = handler.stream_unary or handler.stream_stream
        method = _Method(name, Rule(rule.permission, installation_wide=True), self._hooks,
                         self.scopers)
        return factory(wrap(method, inner), request_deserializer=handler.request_deserializer,
                       response_serializer=handler.response_serializer)

    def _unary(self, method: _Method, inner: Callable[..., Any]) -> Callable[..., Any]:
        admit = self.admit

        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                caller = await admit(method, request, context)
            except ConfigsvcError as exc:
                await abort_with(context, exc)
                raise
            principals.enter(caller)
            return await inner(request, context)

        return guarded

    async def _open_stream(self, method: _Method, request: Any,
                           context: grpc.aio.ServicerContext) -> Caller:
        """Admit a stream and count it against its identity's cap (released by the caller)."""
        try:
            caller = await self.admit(method, request, context)
            self.streams.acquire(caller.principal.name)
        except ConfigsvcError as exc:
            await abort_with(context, exc)
            raise
        principals.enter(caller)
        return caller

    def _stream(self, method: _Method, inner: Callable[..., Any]) -> Callable[..., Any]:
        open_stream = self._open_stream
        release = self.streams.release

        if inspect.isasyncgenfunction(inner):
            registry = self._open

            async def guarded_gen(request: Any,
                                  context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                caller = await open_stream(method, request, context)
                task = asyncio.current_task()
                assert task is not None
                stream = registry[task] = _OpenStream(caller)
                if caller.principal.expires_at is not None:
                    stream.expiry = asyncio.get_running_loop().call_later(
                        max(0.0, caller.principal.expires_at - time.time()),
                        _end, task, stream, "the credential expired")
                try:
                    async for response in inner(request, context):
                        yield response
                except asyncio.CancelledError:
                    if not stream.ended:
                        raise  # the client went away
                    task.uncancel()
                    await abort_with(context, StreamEndedError(
                        f"{stream.ended}; reconnect (the stream is re-authorized)", 0))
                finally:
                    registry.pop(task, None)
                    if stream.expiry is not None:
                        stream.expiry.cancel()
                    release(caller.principal.name)

            return guarded_gen

        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            caller = await open_stream(method, request, context)
            try:
                return await inner(request, context)
            finally:
                release(caller.principal.name)

        return guarded


    def end_streams_where(self, predicate: Callable[[object], bool], message: str) -> int:
        """End the generator-served streams (flag syncs, audit exports) whose caller
        ``predicate`` picks, with UNAVAILABLE: the client reconnects and is admitted under
        the grants now in force. Watch streams are reset by the hub instead."""
        count = 0
        for task, stream in list(self._open.items()):
            if not stream.ended and predicate(stream.caller):
                _end(task, stream, message)
                count += 1
        return count


class _OpenStream:
    """A generator-served stream: its caller and why it is being ended."""

    __slots__ = ("caller", "ended", "expiry")

    def __init__(self, caller: Caller) -> None:
        self.caller = caller
        self.ended = ""
        self.expiry: asyncio.TimerHandle | None = None


def _end(task: asyncio.Task[Any], stream: _OpenStream, message: str) -> None:
    if not stream.ended:
        stream.ended = message
        task.cancel()


def require(access: Access, name: str, permission: str, scopes: list[Scope], method: str,
            *, partial: bool = False) -> None:
    """PERMISSION_DENIED unless ``access`` allows ``permission`` on every scope (with
    ``partial``: on some of each scope)."""
    check = access.may_touch if partial else access.allows
    for scope in scopes:
        if not check(permission, scope):
            raise _denied_on(name, permission, scope, method)


def _denied_on(name: str, permission: str, scope: Any, method: str) -> PermissionDeniedError:
    return PermissionDeniedError(
        f"{name} lacks {permission} on {_describe(scope)} for {method}; ask an admin for a "
        "role binding (configsvc auth bind)")


def _describe(scope: Any) -> str:
    parts = [f"{name}={value}" for name in ("tenant", "environment", "service", "key",
                                            "key_prefix")
             if (value := getattr(scope, name)) is not None]
    return " ".join(parts) if parts else "the whole installation (tenant *)"


def _denied(name: str, handler: Any) -> Any:
    async def deny(request: Any, context: grpc.aio.ServicerContext) -> None:
        await abort_with(context, PermissionDeniedError(
            f"{name} has no authorization rule on this server (configsvc.auth.rules); "
            "it is denied to everyone"))

    factory = (grpc.unary_unary_rpc_method_handler if handler.unary_unary is not None
               else grpc.unary_stream_rpc_method_handler if handler.unary_stream is not None
               else grpc.stream_unary_rpc_method_handler if handler.stream_unary is not None
               else grpc.stream_stream_rpc_method_handler)
    return factory(deny, request_deserializer=handler.request_deserializer,
                   response_serializer=handler.response_serializer)

