"""Flag evaluation throughput: ``ResolveBoolean`` under ``ghz`` and in-process evaluation time.

Starts etcd and ``configsvc serve`` (one process, default selector
``bench/prod``), loads a small flag set through ``FlagService``, then drives
``flagd.evaluation.v1.Service/ResolveBoolean`` with ``ghz`` (bounded request
count) for a static flag and a targeted one, and times in-process evaluation
(``configsvc.flags.evaluator`` and ``openfeature-flagd-core``) per call. The
side-by-side run against flagd itself could not be made here: the Go module
proxy refuses ``github.com/open-feature/flagd/flagd`` (403).

    python -m bench.flags [--requests N]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import timeit
from pathlib import Path
from typing import Any

import grpc
from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext

from bench import native
from configsvc.devstack import EtcdServer, free_port
from configsvc.flags._gen.flagd.evaluation.v1 import evaluation_pb2
from configsvc.flags.evaluator import FlagType, compile_flag_set, evaluate
from configsvc.v1 import flags_pb2, tenant_pb2

FLAGS: dict[str, Any] = {
    "flags": {
        "static": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "on",
        },
        "targeted": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {
                "if": [
                    {"ends_with": [{"var": "email"}, "@example.com"]},
                    {"fractional": [{"var": "targetingKey"}, ["on", 50], ["off", 50]]},
                    "off",
                ]
            },
        },
    }
}
CONTEXT = {"targetingKey": "user-42", "email": "a@example.com"}


def _load(port: int) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        channel.unary_unary(
            "/configsvc.v1.TenantService/CreateTenant",
            request_serializer=tenant_pb2.CreateTenantRequest.SerializeToString,
            response_deserializer=tenant_pb2.CreateTenantResponse.FromString,
        )(tenant_pb2.CreateTenantRequest(name="bench"), timeout=10)
        channel.unary_unary(
            "/configsvc.v1.FlagService/PutFlagSet",
            request_serializer=flags_pb2.PutFlagSetRequest.SerializeToString,
            response_deserializer=flags_pb2.PutFlagSetResponse.FromString,
        )(
            flags_pb2.PutFlagSetRequest(
                ref=flags_pb2.FlagSetRef(tenant="bench", environment="prod"),
                definition=json.dumps(FLAGS),
            ),
            timeout=10,
        )


def _per_call_us(function: Any) -> float:
    return min(timeit.repeat(function, number=5000, repeat=3)) / 5000 * 1e6


def in_process() -> dict[str, float]:
    ours = compile_flag_set(FLAGS)
    library = FlagdCore()
    library.set_flags(json.loads(json.dumps(FLAGS)))
    context = EvaluationContext(
        targeting_key=CONTEXT["targetingKey"], attributes={"email": CONTEXT["email"]}
    )
    return {
        "configsvc_static_us": _per_call_us(lambda: evaluate(ours, "static", {}, FlagType.BOOLEAN)),
        "configsvc_targeted_us": _per_call_us(
            lambda: evaluate(ours, "targeted", CONTEXT, FlagType.BOOLEAN)
        ),
        "flagd_core_static_us": _per_call_us(
            lambda: library.resolve_boolean_value("static", False)
        ),
        "flagd_core_targeted_us": _per_call_us(
            lambda: library.resolve_boolean_value("targeted", False, context)
        ),
    }


def rpc(requests: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        etcd = EtcdServer(Path(tmp) / "etcd", free_port(), free_port())
        etcd.start()
        try:
            port = free_port()
            command = native.configsvc(etcd, port, 1)
            command[0] += ["--flags-default-selector", "bench/prod"]
            protos = Path(tmp) / "flagd.protoset"
            protos.write_bytes(native.protoset(evaluation_pb2.DESCRIPTOR))
            with native.processes(command):
                native.wait_healthy(f"127.0.0.1:{port}")
                _load(port)
                for name, data in (
                    ("static", {"flag_key": "static"}),
                    ("targeted", {"flag_key": "targeted", "context": CONTEXT}),
                ):
                    report = native.ghz(
                        f"127.0.0.1:{port}",
                        "flagd.evaluation.v1.Service.ResolveBoolean",
                        protos,
                        json.dumps(data),
                        requests=requests,
                        concurrency=50,
                    )
                    figures[f"{name}_rps"] = float(report["rps"])
                    figures[f"{name}_p99_ms"] = native.percentile_ms(report, 99)
        finally:
            etcd.stop()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args()
    print(json.dumps({"in_process": in_process(), "resolve_boolean": rpc(args.requests)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
