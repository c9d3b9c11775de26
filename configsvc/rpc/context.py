"""What a servicer may use of its call, whichever transport carries it.

Servicers are written against ``CallContext``: the few things they ask of their
context (metadata in, peer, deadline, abort, write for streams written by
``context.write``). ``grpc.aio.ServicerContext`` has every one of them, so the gRPC
server hands servicers its own context with no adapter on the read path; the
``LocalContext`` below has them too, so a servicer can be invoked in-process (a
test, the coming REST gateway) with no gRPC call behind it, admitted by the same
function as over gRPC (``call_local``).

``PeerInfo`` is what admission reads of the peer: its address and the identity its
TLS handshake proved (the ``x509_common_name`` entry of gRPC's auth context).
Again gRPC's context has it as is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, NoReturn, Protocol

import grpc

from configsvc import errors
from configsvc.rpc import principal
from configsvc.rpc.principal import Caller
from configsvc.rpc.status import abort_with, wrap_unary

#: Call metadata as gRPC hands it over: (key, value) pairs, keys in lower case, values
#: text (``-bin`` keys: bytes).
Metadata = Sequence[tuple[str, str | bytes]]


class PeerInfo(Protocol):
    """The other end of a call, as admission sees it."""

    def peer(self) -> str:
        """Its address (gRPC's form: ``ipv4:127.0.0.1:50000``)."""
        ...

    def auth_context(self) -> Mapping[str, Sequence[bytes]]:
        """What its TLS handshake proved (``x509_common_name``: the client
        certificate's names); empty without a client certificate."""
        ...


class CallContext(Protocol):
    """Exactly what the servicers and their helpers use of a call's context."""

    def invocation_metadata(self) -> Metadata | None: ...

    def peer(self) -> str: ...

    def time_remaining(self) -> float | None:
        """Seconds to the caller's deadline; None when it set none."""
        ...

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Metadata = ()
    ) -> NoReturn:
        """End the call with ``code``; never returns (raises)."""
        ...

    async def write(self, message: Any) -> None:
        """Send one message of a server stream."""
        ...


class CallAborted(grpc.aio.AbortError):  # type: ignore[misc]
    """How ``LocalContext.abort`` ends a call: the status, as the caller would read it.

    A subclass of grpc's own abort exception, so the status wrappers of
    ``configsvc.rpc.status`` let it through unchanged, as they do gRPC's.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        details: str,
        trailing_metadata: tuple[tuple[str, str | bytes], ...],
    ) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details
        self.trailing_metadata = trailing_metadata


class LocalContext:
    """A ``CallContext`` (and ``PeerInfo``) for a call made in-process.

    ``metadata`` is what the caller sends (``authorization``, ``traceparent`` ...);
    ``timeout`` sets a deadline that many seconds from now; ``tls_names`` stands for
    the names of a verified client certificate. After the call, ``written`` holds the
    messages a stream wrote; after an abort, ``code``, ``details`` and
    ``trailing_metadata`` hold the status (also carried by the ``CallAborted`` raised).
    """

    def __init__(
        self,
        metadata: Metadata = (),
        *,
        peer: str = "local",
        timeout: float | None = None,
        tls_names: Sequence[str] = (),
    ) -> None:
        self.metadata: tuple[tuple[str, str | bytes], ...] = tuple(metadata)
        self._peer = peer
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._auth: dict[str, list[bytes]] = (
            {"x509_common_name": [name.encode() for name in tls_names]} if tls_names else {}
        )
        self.written: list[Any] = []
        self.code: grpc.StatusCode | None = None
        self.details = ""
        self.trailing_metadata: tuple[tuple[str, str | bytes], ...] = ()

    def invocation_metadata(self) -> Metadata:
        return self.metadata

    def peer(self) -> str:
        return self._peer

    def auth_context(self) -> Mapping[str, Sequence[bytes]]:
        return self._auth

    def time_remaining(self) -> float | None:
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - time.monotonic())

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Metadata = ()
    ) -> NoReturn:
        self.code, self.details = code, details
        self.trailing_metadata = tuple(trailing_metadata)
        raise CallAborted(code, details, self.trailing_metadata)

    async def write(self, message: Any) -> None:
        self.written.append(message)


#: An admission function (``configsvc.auth.admission.Admission.admit``): (method,
#: metadata, peer, request) -> the caller, or None for a public method; raises the
#: typed error that refuses the call.
Admit = Callable[[str, Metadata | None, PeerInfo | None, Any], Awaitable[Caller | None]]


async def call_local(
    admit: Admit | None,
    method: str,
    behavior: Callable[[Any, Any], Awaitable[Any]],
    request: Any,
    context: LocalContext,
) -> Any:
    """Call a unary servicer method in-process as the gRPC server would: admitted by
    ``admit`` (None: auth off), the caller set for the servicer, errors mapped by the
    one status table. A refusal raises ``CallAborted`` with the status gRPC would send.

    The call runs in a task of its own, as every RPC does, so the caller it sets does
    not outlive it.
    """

    async def run() -> Any:
        if admit is not None:
            try:
                caller = await admit(method, context.invocation_metadata(), context, request)
            except errors.ConfigsvcError as exc:
                await abort_with(context, exc)
                raise  # abort_with raised already; for the reader
            if caller is not None:
                principal.enter(caller)
        return await wrap_unary(behavior, method)(request, context)

    return await asyncio.create_task(run())
