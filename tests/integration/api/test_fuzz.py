"""Every served RPC under random and hostile requests: never UNKNOWN, INTERNAL or
DEADLINE_EXCEEDED, never a traceback in the server log (issue 17, acceptance).

The services are the ones the server actually serves, listed by its own reflection
service, and requests are built from the descriptors reflection returns: random field
values biased to the extremes (huge and negative integers, 2**62 seconds, NaN and
Infinity, long strings, control characters, deep Structs, out-of-range enums), plus raw
garbage bytes. Each runs as the admin (so requests get past authorization into the
servicers) and anonymously. The server runs on its own root prefix, so the writes this
makes touch no other test's data. Bounded: ``ROUNDS`` structured and ``GARBAGE``
raw requests per method and caller for each seed, two seeds (a fixed one and one per
run, printed; ``FUZZ_SEED`` picks it), a few thousand requests in all.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import os
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from configsvc.devstack.etcd import EtcdServer
from configsvc.v1 import config_pb2, flags_pb2, flags_pb2_grpc, tenant_pb2
from tests.helpers import ADMIN_KEY, Stack, bearer, ckey, close_stack, open_stack

FIXED_SEED = 17
ROUNDS = int(os.environ.get("FUZZ_ROUNDS") or 12)  # more for a deeper local run
GARBAGE = 3
CONCURRENCY = 12
#: How long an open stream may stay silent before the fuzzer moves on (not an error).
STREAM_IDLE = 1.0
CALL_TIMEOUT = 15.0
FORBIDDEN = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.DEADLINE_EXCEEDED}

_I32, _I64 = (-(2**31), 2**31 - 1), (-(2**63), 2**63 - 1)
_U32, _U64 = (0, 2**32 - 1), (0, 2**64 - 1)
_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: _I32,
    FieldDescriptor.TYPE_SINT32: _I32,
    FieldDescriptor.TYPE_SFIXED32: _I32,
    FieldDescriptor.TYPE_INT64: _I64,
    FieldDescriptor.TYPE_SINT64: _I64,
    FieldDescriptor.TYPE_SFIXED64: _I64,
    FieldDescriptor.TYPE_UINT32: _U32,
    FieldDescriptor.TYPE_FIXED32: _U32,
    FieldDescriptor.TYPE_UINT64: _U64,
    FieldDescriptor.TYPE_FIXED64: _U64,
}
_STRINGS = [
    "",
    "a",
    "prod",
    "api",
    "t1",
    "k",
    "*",
    "all",
    "..",
    "a/b",
    "a..b",
    "-x",
    ".hidden",
    "x" * 300,
    "y" * 70_000,
    "\x00",
    "a\nb\r\t",
    "\x1b[31m",
    "\u202e",
    "pr\u043ed",
    "\U0001f600",
    "{}",
    "[]",
    "1",
    "-1",
    "NaN",
    "Infinity",
    '{"a":',
    "[" * 300 + "]" * 300,
    "9" * 5000,
    '{"$secret": {"mount": "kv", "path": "p", "field": "f"}}',
    "cs_00000000000000ad_x",
    "t1/prod",
    "%2f",
    "' OR 1=1 --",
    "http://127.0.0.1:9/hook",
    "https://127.0.0.1:9/",
    '{"flags": {"f": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a"}}}',
    '{"type": "object", "properties": {"a": {"type": "integer"}}}',
    '{"==": [1, 1]}',
    base64.urlsafe_b64encode(b"[" * 1530).decode(),  # a forged page token, deeply nested
]
_FLAG_SET = (
    '{"flags": {"on": {"state": "ENABLED", "variants": {"t": true, "f": false}, '
    '"defaultVariant": "t", "targeting": {"if": [{"==": [{"var": "n"}, 1]}, "f", '
    "null]}}}}"
)
#: Values that get a request past the first checks (the fixture creates tenant t1, a
#: flag set t1/prod and the entry t1/prod/api/k), so the extremes in its other fields
#: reach the code that reads them. Chosen for a field of that name 60 % of the time.
_PLAUSIBLE: dict[str, object] = {
    "tenant": "t1",
    "environment": "prod",
    "service": "api",
    "key": "k",
    "flag_key": "on",
    "name": "n1",
    "selector": "t1/prod",
    "value": "1",
    "definition": _FLAG_SET,
    "reason": "fuzz",
    "page_size": 10,
    "key_prefix": "k",
    "source_environment": "prod",
    "target_environment": "prod",
    "permission": "config.read",
    "role": 1,
}
_DOUBLES = [0.0, -0.0, 1.0, -1.0, math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324]
_SECONDS = [
    0,
    1,
    -1,
    2**62,
    -(2**62),
    2**63 - 1,
    -(2**63),
    -62_135_596_801,
    253_402_300_800,
    315_576_000_001,
    1_700_000_000,
]
_NANOS = [0, -1, 10**9, 999_999_999, -999_999_999, -(2**31), 2**31 - 1]


def _integer(rng: random.Random, kind: int) -> int:
    low, high = _INT_RANGES[kind]
    choice = rng.choice(
        [
            0,
            1,
            -1,
            2,
            1000,
            2**31 - 1,
            -(2**31),
            2**62,
            2**63 - 1,
            -(2**63),
            rng.randint(-(10**6), 10**6),
        ]
    )
    return min(max(choice, low), high)


def _struct_value(rng: random.Random, depth: int) -> Any:
    """JSON-like data for a Struct: deep nesting, non-finite numbers, long strings."""
    roll = rng.random()
    if depth > 0 and roll < 0.5:
        inner = _struct_value(rng, depth - 1)
        return {rng.choice(_STRINGS[:12]) or "k": inner} if rng.random() < 0.5 else [inner]
    return rng.choice(
        [None, True, 1.5, math.nan, math.inf, -math.inf, 2.0**70, "s", "x" * 1000, "\x00", 0]
    )


@dataclass
class Builder:
    """Random messages of one descriptor pool, biased to the extremes."""

    rng: random.Random

    def scalar(self, fd: FieldDescriptor) -> Any:
        rng = self.rng
        plausible = _PLAUSIBLE.get(fd.name)
        if plausible is not None and rng.random() < 0.6:
            kind = str if fd.type == FieldDescriptor.TYPE_STRING else int
            if isinstance(plausible, kind):
                return plausible
        if fd.type in _INT_RANGES:
            return _integer(rng, fd.type)
        if fd.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            value = rng.choice(_DOUBLES)
            return (
                value
                if fd.type == FieldDescriptor.TYPE_DOUBLE
                or abs(value) < 3e38
                or not math.isfinite(value)
                else math.inf
            )
        if fd.type == FieldDescriptor.TYPE_BOOL:
            return rng.random() < 0.5
        if fd.type == FieldDescriptor.TYPE_STRING:
            return rng.choice(_STRINGS)
        if fd.type == FieldDescriptor.TYPE_BYTES:
            return rng.randbytes(rng.choice([0, 1, 16, 4096]))
        if fd.type == FieldDescriptor.TYPE_ENUM:
            values = [v.number for v in fd.enum_type.values]
            return rng.choice([*values, max(values) + 1, 999, -1])
        raise AssertionError(fd.type)

    def fill(self, message: Message, depth: int) -> None:
        descriptor: Descriptor = message.DESCRIPTOR
        name = descriptor.full_name
        rng = self.rng
        if name in ("google.protobuf.Timestamp", "google.protobuf.Duration"):
            message.seconds = rng.choice(_SECONDS)  # type: ignore[attr-defined]
            message.nanos = rng.choice(_NANOS)  # type: ignore[attr-defined]
            return
        if name == "google.protobuf.Struct":
            message.update(
                {
                    "k": _struct_value(rng, rng.choice([1, 5, 30])),  # type: ignore[attr-defined]
                    "n": rng.choice(_DOUBLES),
                }
            )
            return
        for fd in descriptor.fields:
            if rng.random() < 0.4:
                continue
            if fd.type == FieldDescriptor.TYPE_MESSAGE:
                if fd.message_type.GetOptions().map_entry:
                    target = getattr(message, fd.name)
                    value_fd = fd.message_type.fields_by_name["value"]
                    for _ in range(rng.choice([1, 2, 70])):
                        key = self.scalar(fd.message_type.fields_by_name["key"])
                        if value_fd.type == FieldDescriptor.TYPE_MESSAGE:
                            if depth > 0:
                                self.fill(target[key], depth - 1)
                        else:
                            target[key] = self.scalar(value_fd)
                    continue
                if depth <= 0:
                    continue
                if fd.is_repeated:
                    for _ in range(rng.choice([1, 2, 3, 120])):
                        self.fill(getattr(message, fd.name).add(), depth - 1)
                else:
                    child = getattr(message, fd.name)
                    child.SetInParent()
                    self.fill(child, depth - 1)
            elif fd.is_repeated:
                items = [self.scalar(fd) for _ in range(rng.choice([1, 3, 300]))]
                getattr(message, fd.name).extend(items)
            else:
                setattr(message, fd.name, self.scalar(fd))

    def request(self, cls: type[Message]) -> bytes:
        message = cls()
        self.fill(message, depth=4)
        return message.SerializeToString()

    def garbage(self) -> bytes:
        rng = self.rng
        return rng.choice(
            [
                rng.randbytes(rng.randint(1, 64)),
                b"\x0a\x05ab",  # a length past the end
                b"\xff" * 11,  # a varint that never ends
                b"\x0a" * 200 + b"\x01",  # nested lengths
                bytes([0x80 | rng.randint(0, 127) for _ in range(rng.randint(1, 12))]),
            ]
        )


# ---------------------------------------------------------------------------- discovery


async def served_methods(channel: grpc.aio.Channel) -> list[tuple[MethodDescriptor, type[Message]]]:
    """(method, request class) of every method of every service the server lists in its
    reflection, from the file descriptors the server itself returns."""
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)  # type: ignore[no-untyped-call]
    call = stub.ServerReflectionInfo(timeout=CALL_TIMEOUT)
    await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
    listed = await call.read()
    services = [s.name for s in listed.list_services_response.service]
    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    for service in services:
        await call.write(reflection_pb2.ServerReflectionRequest(file_containing_symbol=service))
        answer = await call.read()
        for raw in answer.file_descriptor_response.file_descriptor_proto:
            proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
            files.setdefault(proto.name, proto)
    await call.done_writing()
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()
    while len(added) < len(files):
        progress = False
        for name, proto in files.items():
            if name not in added and all(dep in added for dep in proto.dependency):
                pool.Add(proto)
                added.add(name)
                progress = True
        assert progress, f"unresolvable imports among {sorted(set(files) - added)}"
    methods = []
    for service in services:
        for method in pool.FindServiceByName(service).methods:
            methods.append((method, GetMessageClass(method.input_type)))
    return methods


# ----------------------------------------------------------------------------- calling


@dataclass
class Outcome:
    """What came back, per method and status code, and every forbidden answer."""

    calls: int = 0
    codes: dict[str, int] = field(default_factory=dict)
    bad: list[str] = field(default_factory=list)

    def record(
        self, method: str, code: grpc.StatusCode, details: str, caller: str, what: str
    ) -> None:
        self.calls += 1
        self.codes[code.name] = self.codes.get(code.name, 0) + 1
        if code in FORBIDDEN:
            self.bad.append(f"{method} ({caller}, {what}): {code.name} {details[:300]}")


async def _read_stream(call: Any) -> None:
    """Read a few messages of a response stream; a stream that stays open and silent is
    healthy (a watch with nothing to say): it is cancelled after ``STREAM_IDLE``."""
    for _ in range(3):
        try:
            message = await asyncio.wait_for(call.read(), STREAM_IDLE)
        except TimeoutError:
            call.cancel()
            return
        if message is grpc.aio.EOF:
            return
    call.cancel()  # a live stream that keeps talking: enough has been seen


async def call_once(
    channel: grpc.aio.Channel,
    method: MethodDescriptor,
    data: bytes,
    metadata: tuple[tuple[str, str], ...],
) -> tuple[grpc.StatusCode, str]:
    path = f"/{method.containing_service.full_name}/{method.name}"
    try:
        if method.client_streaming:
            call: Any = (
                channel.stream_stream(path)(timeout=CALL_TIMEOUT, metadata=metadata)
                if method.server_streaming
                else channel.stream_unary(path)(timeout=CALL_TIMEOUT, metadata=metadata)
            )
            await call.write(data)
            await call.done_writing()
            if method.server_streaming:
                await _read_stream(call)
            else:
                await call
        elif method.server_streaming:
            call = channel.unary_stream(path)(data, timeout=CALL_TIMEOUT, metadata=metadata)
            await _read_stream(call)
        else:
            call = channel.unary_unary(path)(data, timeout=CALL_TIMEOUT, metadata=metadata)
            await call
        code = await call.code()
        return code, await call.details() or ""
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""


def _metadata(rng: random.Random, admin: bool) -> tuple[tuple[str, str], ...]:
    extra: list[tuple[str, str]] = []
    if rng.random() < 0.5:  # flagd calls name their flag set in a header
        extra.append(("flagd-selector", rng.choice(["t1/prod", "x", "UPPER/prod", "/", "a/b/c"])))
    if rng.random() < 0.2:
        extra.append(("x-configsvc-service", rng.choice(["api", "", "A B"])))
    if rng.random() < 0.1:
        extra.append(("traceparent", "00-" + "f" * 32 + "-" + "1" * 16 + "-01"))
    if admin:
        return (*bearer(ADMIN_KEY), *extra)
    if rng.random() < 0.3:  # anonymous, or a credential that proves nothing
        extra.append(
            (
                "authorization",
                rng.choice(["Bearer cs_x", "Bearer a.b.c", "Basic x", "Bearer " + "A" * 2000]),
            )
        )
    return tuple(extra)


async def fuzz(
    channel: grpc.aio.Channel,
    methods: list[tuple[MethodDescriptor, type[Message]]],
    seed: int,
    outcome: Outcome,
) -> None:
    rng = random.Random(seed)
    builder = Builder(rng)
    jobs: list[tuple[MethodDescriptor, bytes, bool, str]] = []
    for method, cls in methods:
        for admin in (True, False):
            for _ in range(ROUNDS):
                jobs.append((method, builder.request(cls), admin, "structured"))
            for _ in range(GARBAGE):
                jobs.append((method, builder.garbage(), admin, "garbage"))
    rng.shuffle(jobs)
    headers = [_metadata(rng, admin) for _, _, admin, _ in jobs]
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(index: int) -> None:
        method, data, admin, what = jobs[index]
        async with gate:
            code, details = await call_once(channel, method, data, headers[index])
        outcome.record(
            method.full_name,
            code,
            details,
            "admin" if admin else "anonymous",
            f"{what}, seed {seed}, job {index}",
        )

    await asyncio.gather(*(one(i) for i in range(len(jobs))))


@pytest.fixture
async def fuzz_stack(etcd: EtcdServer) -> AsyncIterator[Stack]:
    opened = await open_stack(etcd.endpoint, f"/configsvc-fuzz-{os.getpid()}-{time.time_ns()}")
    await opened.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="t1"))
    await opened.config.Put(config_pb2.PutRequest(key=ckey("t1", "k"), value='{"a": 1}'))
    flags = flags_pb2_grpc.FlagServiceStub(opened.channel)  # type: ignore[no-untyped-call]
    await flags.PutFlagSet(
        flags_pb2.PutFlagSetRequest(
            ref=flags_pb2.FlagSetRef(tenant="t1", environment="prod"), definition=_FLAG_SET
        )
    )
    yield opened
    await close_stack(opened)


def _server_problems(records: list[logging.LogRecord]) -> list[str]:
    return [
        f"{r.name} {r.levelname}: {r.getMessage()[:300]}"
        for r in records
        if r.exc_info or r.levelno >= logging.ERROR or "Traceback" in r.getMessage()
    ]


async def test_fuzz_every_served_rpc(
    fuzz_stack: Stack, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    run_seed = int(os.environ.get("FUZZ_SEED") or random.SystemRandom().randrange(2**32))
    with capsys.disabled():
        print(
            f"\nfuzz seeds: {FIXED_SEED} (fixed) and {run_seed} (this run; "
            f"FUZZ_SEED={run_seed} repeats it)"
        )
    caplog.set_level(logging.INFO)
    async with grpc.aio.insecure_channel(fuzz_stack.address) as channel:
        methods = await served_methods(channel)
        services = {m.containing_service.full_name for m, _ in methods}
        # What the server must be serving: configsvc's own, flagd's, health, reflection.
        for expected in (
            "configsvc.v1.ConfigService",
            "configsvc.v1.WatchService",
            "flagd.evaluation.v1.Service",
            "flagd.evaluation.v2.Service",
            "flagd.sync.v1.FlagSyncService",
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
        ):
            assert expected in services, sorted(services)
        assert len(methods) >= 75
        outcome = Outcome()
        started = time.monotonic()
        for seed in (FIXED_SEED, run_seed):
            await fuzz(channel, methods, seed, outcome)
        elapsed = time.monotonic() - started
    with capsys.disabled():
        print(
            f"fuzz: {outcome.calls} calls over {len(methods)} methods in {elapsed:.1f} s: "
            f"{dict(sorted(outcome.codes.items()))}"
        )
    assert outcome.calls >= 2 * len(methods) * 2 * (ROUNDS + GARBAGE)
    assert not outcome.bad, "\n".join(outcome.bad[:40])
    problems = _server_problems(caplog.records)
    assert not problems, "\n".join(problems[:40])
    # Admitted calls reached the servicers: not everything was refused at the door.
    assert outcome.codes.get("OK", 0) > 0 and outcome.codes.get("INVALID_ARGUMENT", 0) > 0


def test_builder_is_deterministic_per_seed() -> None:
    """The same seed builds the same requests, so a failure's seed reproduces it."""

    def build(seed: int) -> list[bytes]:
        builder = Builder(random.Random(seed))
        return [builder.request(config_pb2.PutRequest) for _ in range(20)]

    assert build(5) == build(5)
    assert build(5) != build(6)
