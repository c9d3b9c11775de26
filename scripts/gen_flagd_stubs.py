"""Generate the server's stubs of the vendored flagd protos into ``configsvc/flags/_gen``.

The protos keep their upstream package names (``flagd.evaluation.v1``,
``flagd.sync.v1``) so unchanged OpenFeature providers talk to the server; the
Python modules live under the server package so no top-level ``flagd`` package
is installed. protoc writes ``from flagd.… import`` for cross-file imports;
those lines are rewritten to the private package. Deterministic output, so
``--check`` regenerates into a temporary directory and compares.

Usage::

    python scripts/gen_flagd_stubs.py           # regenerate in place
    python scripts/gen_flagd_stubs.py --check   # exit 1 if the committed stubs are stale
"""

from __future__ import annotations

import argparse
import filecmp
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROTO_ROOT = REPO / "protos"
OUT = REPO / "configsvc" / "flags" / "_gen"
PACKAGE = "configsvc.flags._gen"
_IMPORT = re.compile(r"^from flagd\.", re.MULTILINE)
#: Register in configsvc.flags.pool.POOL instead of the default pool (see that module).
_POOL_IMPORT = "from google.protobuf import descriptor_pool as _descriptor_pool\n"
_POOL_USE = "_descriptor_pool.Default().AddSerializedFile("
_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def protos() -> list[Path]:
    return sorted(p.relative_to(PROTO_ROOT) for p in (PROTO_ROOT / "flagd").rglob("*.proto"))


def generate(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            f"--pyi_out={out}",
            *(str(p) for p in protos()),
        ],
        check=True,
    )
    for path in out.rglob("*"):
        if path.name.endswith(_SUFFIXES):
            text = _IMPORT.sub(f"from {PACKAGE}.flagd.", path.read_text())
            text = text.replace(
                _POOL_IMPORT,
                _POOL_IMPORT + "from configsvc.flags.pool import POOL as _flagd_pool\n",
            )
            path.write_text(text.replace(_POOL_USE, "_flagd_pool.AddSerializedFile("))
    for directory in [out, *(p for p in out.rglob("*") if p.is_dir())]:
        init = directory / "__init__.py"
        if not init.exists():
            init.write_text(
                '"""Generated (scripts/gen_flagd_stubs.py)."""\n' if directory == out else ""
            )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    if not args.check:
        generate(OUT)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        stale = [
            str(p.relative_to(tmp))
            for p in Path(tmp).rglob("*")
            if p.is_file()
            and not (
                (OUT / p.relative_to(tmp)).is_file()
                and filecmp.cmp(p, OUT / p.relative_to(tmp), shallow=False)
            )
        ]
    for name in stale:
        print(f"stale generated flagd stub: {name} (run make proto)")
    if not stale:
        print("generated flagd stubs are current")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
