"""Every command-line module lives in configsvc/cli and shares only the public toolkit.

The CLI is the top layer: a domain package that parses command lines (as
``flags/cli.py`` and ``secrets/cli.py`` once did) or imports ``configsvc.cli``
points the dependency the wrong way, and a command module that borrows another
module's ``_private`` helpers (as ``flags/cli.py`` did of ``cli/client.py``)
breaks as soon as that module is tidied. Read from the source, so the check
needs no server and covers modules no test imports.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import configsvc
from configsvc.cli import toolkit

PACKAGE = Path(configsvc.__file__).resolve().parent
GENERATED = ("v1", "internal", "flags/_gen")


def _sources() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if not relative.startswith(GENERATED):
            yield relative, ast.parse(path.read_text(), relative)


def _imports(tree: ast.Module) -> Iterator[tuple[str, list[str], int]]:
    """(module, imported names, line) of every import, function-local ones included."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, [alias.name for alias in node.names], node.lineno


def test_only_configsvc_cli_parses_command_lines_or_imports_the_cli() -> None:
    found = [
        f"configsvc/{relative}:{line} imports {module}"
        for relative, tree in _sources()
        if not relative.startswith("cli/")
        for module, _names, line in _imports(tree)
        if module in {"argparse", "configsvc.cli"} or module.startswith("configsvc.cli.")
    ]
    assert not found, "CLI code outside configsvc/cli:\n" + "\n".join(found)


def test_command_modules_import_no_private_name_of_another_module() -> None:
    found = [
        f"configsvc/{relative}:{line} imports {name} from {module}"
        for relative, tree in _sources()
        if relative.startswith("cli/")
        for module, names, line in _imports(tree)
        if module.startswith("configsvc.")
        for name in names
        if name.startswith("_") and name != "__version__"
    ]
    assert not found, "private names shared between modules:\n" + "\n".join(found)


def test_the_toolkit_documents_every_public_name() -> None:
    tree = ast.parse(Path(toolkit.__file__).read_text())
    undocumented = [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.ClassDef)
        and not node.name.startswith("_")
        and ast.get_docstring(node) is None
    ]
    assert not undocumented, f"toolkit names without a docstring: {undocumented}"
