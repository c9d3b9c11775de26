"""Generate the client's own gRPC stubs from ``protos/`` into ``configsvc_client._gen``.

The client must not import the server package ``configsvc``, so it ships its
own copy of the ``configsvc.v1`` stubs under a private package. protoc writes
``from configsvc.v1 import ...`` for cross-file imports; those lines are
rewritten to the private package. The output is deterministic (same protoc,
same protos, same bytes), so CI can regenerate into a temporary directory and
compare: ``python clients/python/tools/generate.py --check``.

Usage::

    python clients/python/tools/generate.py            # regenerate in place
    python clients/python/tools/generate.py OUT_DIR    # generate into OUT_DIR
    python clients/python/tools/generate.py --check    # exit 1 if the committed stubs are stale
"""

from __future__ import annotations

import argparse
import filecmp
import re
import subprocess
import sys
import tempfile
from pathlib import Path

CLIENT_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = CLIENT_DIR.parent.parent
PROTO_ROOT = REPO_DIR / "protos"
PROTO_PACKAGE = Path("configsvc") / "v1"
DEFAULT_OUT = CLIENT_DIR / "src" / "configsvc_client" / "_gen"
PRIVATE_PACKAGE = "configsvc_client._gen.configsvc.v1"

_IMPORT = re.compile(r"^from configsvc\.v1 import ", re.MULTILINE)
_INIT_TEXT = {
    Path("__init__.py"): '"""Generated stubs of the configsvc protos (tools/generate.py)."""\n',
    Path("configsvc") / "__init__.py": "",
    PROTO_PACKAGE / "__init__.py": "",
}
_GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def proto_files() -> list[Path]:
    """The public contract's protos, relative to ``protos/``, in a fixed order."""
    return sorted(p.relative_to(PROTO_ROOT) for p in (PROTO_ROOT / PROTO_PACKAGE).glob("*.proto"))


def generate(out: Path) -> None:
    """Write the stubs and package ``__init__`` files into ``out`` (replacing old stubs)."""
    package_dir = out / PROTO_PACKAGE
    if package_dir.is_dir():
        for old in package_dir.iterdir():
            if old.name.endswith(_GENERATED_SUFFIXES):
                old.unlink()
    package_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--pyi_out={out}",
        *(str(p) for p in proto_files()),
    ]
    subprocess.run(command, check=True, cwd=PROTO_ROOT)
    for path in sorted(package_dir.iterdir()):
        if path.name.endswith(_GENERATED_SUFFIXES):
            text = path.read_text(encoding="utf-8")
            path.write_text(_IMPORT.sub(f"from {PRIVATE_PACKAGE} import ", text), encoding="utf-8")
    for relative, text in _INIT_TEXT.items():
        (out / relative).write_text(text, encoding="utf-8")


def _tree(root: Path) -> set[Path]:
    return {
        p.relative_to(root) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    }


def stale_files(committed: Path) -> list[str]:
    """Names of files that differ between ``committed`` and a fresh generation."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        generate(fresh)
        have, want = _tree(committed) if committed.is_dir() else set(), _tree(fresh)
        differing = [
            str(p)
            for p in sorted(have & want)
            if not filecmp.cmp(committed / p, fresh / p, shallow=False)
        ]
        return (
            differing
            + [f"{p} (missing)" for p in sorted(want - have)]
            + [f"{p} (not generated)" for p in sorted(have - want)]
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "out",
        nargs="?",
        type=Path,
        default=DEFAULT_OUT,
        help=f"output directory (default: {DEFAULT_OUT})",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare OUT with a fresh generation instead of writing it",
    )
    args = parser.parse_args(argv)
    out: Path = args.out.resolve()
    if args.check:
        stale = stale_files(out)
        for name in stale:
            print(f"stale generated stub: {name} (run clients/python/tools/generate.py)")
        if not stale:
            print("client stubs are current")
        return 1 if stale else 0
    if out.exists() and not out.is_dir():
        parser.error(f"{out} is not a directory")
    generate(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
