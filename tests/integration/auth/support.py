"""Principals for auth tests: API keys bound to roles, made through the admin RPCs."""

from __future__ import annotations

import itertools
import os
from typing import Any

import grpc

from configsvc.v1 import auth_pb2, auth_pb2_grpc
from tests.helpers import Stack, auth_channel, bearer

_names = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_names)}-{os.getpid()}"


def admin(stack: Stack) -> auth_pb2_grpc.AuthServiceStub:
    return auth_pb2_grpc.AuthServiceStub(stack.channel)  # type: ignore[no-untyped-call]


async def new_key(stack: Stack, name: str) -> str:
    created = await admin(stack).CreateApiKey(auth_pb2.CreateApiKeyRequest(name=name))
    secret: str = created.secret
    return secret


async def bind(
    stack: Stack,
    subject: str,
    role: int,
    tenant: str,
    environment: str = "",
    service: str = "",
    key_prefix: str = "",
) -> str:
    response = await admin(stack).CreateRoleBinding(
        auth_pb2.CreateRoleBindingRequest(
            binding=auth_pb2.RoleBinding(
                subject=subject,
                role=role,
                tenant=tenant,
                environment=environment,
                service=service,
                key_prefix=key_prefix,
            )
        )
    )
    binding_id: str = response.binding.id
    return binding_id


async def principal(
    stack: Stack,
    role: int,
    tenant: str,
    environment: str = "",
    service: str = "",
    key_prefix: str = "",
) -> tuple[str, str]:
    """A fresh identity with one binding: (name, API key)."""
    name = unique("p")
    key = await new_key(stack, name)
    await bind(stack, f"key:{name}", role, tenant, environment, service, key_prefix)
    return name, key


def channel_for(stack: Stack, key: str | None) -> grpc.aio.Channel:
    if key is None:
        return grpc.aio.insecure_channel(stack.address)
    return auth_channel(stack.address, key)


async def acting_as(
    stack: Stack, tenant: str, *names: str, role: int = auth_pb2.ROLE_EDITOR
) -> dict[str, tuple[tuple[str, str], ...]]:
    """Per name, call metadata that authenticates as ``key:<name>`` (bound to ``role`` on
    the tenant): audit records and ``updated_by`` name the authenticated identity."""
    callers = {}
    for name in names:
        # API key names are never reused: the first call on a stack makes the key.
        installation = (stack.server.config.etcd_endpoints, stack.server.config.root_prefix)
        known = _named_keys.setdefault(installation, {})
        if name not in known:
            known[name] = await new_key(stack, name)
        callers[name] = bearer(known[name])
        await bind(stack, f"key:{name}", role, tenant)
    return callers


#: Per installation (etcd endpoints, root prefix), the key ``acting_as`` made per name.
_named_keys: dict[tuple[tuple[str, ...], str], dict[str, str]] = {}


async def code_of(call: Any) -> grpc.StatusCode:
    """The status code a call ends with (OK when it succeeds)."""
    try:
        await call
    except grpc.aio.AioRpcError as err:
        return err.code()
    return grpc.StatusCode.OK
