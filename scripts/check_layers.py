"""Fail on an import that points up configsvc's layer order or closes a circle.

    python scripts/check_layers.py          (part of ``make lint``)

The order, lowest first, is the architecture brief's: leaf modules (errors, generated
stubs, the local dev stack), ``model``, ``rpc`` (status table, request helpers, method
registry: what the domain may use of the call), ``store``, the domain packages in a
fixed order, the transports (``api``, ``http``), ``server`` (wiring), ``cli``. A module
may import its own layer and any lower one; type-only imports (``if TYPE_CHECKING``) and
imports inside functions count too, since they couple as much as any other. Separately,
no two packages and no two modules may import each other, directly or round a longer
circle. Every finding names the file, the line and the rule, and the exit status is 1.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "configsvc"

#: Layer of each top-level part of the package, lowest first. Domain packages get a
#: layer each, so that between them too dependencies point one way.
LAYERS: dict[str, int] = {
    "errors": 0,
    "ratelog": 0,
    "v1": 0,
    "internal": 0,
    "devstack": 0,
    "__init__": 0,
    "__main__": 90,
    "model": 10,
    "rpc": 20,
    "store": 30,
    "watch": 40,
    "resolve": 41,
    "validate": 42,
    "secrets": 43,
    "events": 44,
    "hier": 45,
    "auth": 46,
    "audit": 47,
    "flags": 48,
    "api": 60,
    "http": 60,
    "server": 70,
    "cli": 80,
}
#: Generated code: imported by everyone, checked by no one.
GENERATED = ("configsvc/v1/", "configsvc/internal/", "configsvc/flags/_gen/")


def modules(root: Path) -> Iterator[tuple[str, Path]]:
    for path in sorted((root / PACKAGE).rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if relative.startswith(GENERATED):
            continue
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), path


def imports(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """Every configsvc module ``module`` imports, with the line."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.split(".")[0] != PACKAGE:
                continue
            # ``from configsvc.api import status`` may name a module: count the deepest.
            for alias in node.names:
                yield f"{target}.{alias.name}", node.lineno


def part(module: str) -> str:
    """The top-level part of the package a module belongs to."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else "__init__"


def resolve(name: str, known: set[str]) -> str | None:
    """The longest known module that ``name`` (a module or a name in one) refers to."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def check(root: Path = ROOT) -> list[str]:
    """Every problem in the package under ``root``, one line each."""
    found = dict(modules(root))
    known = set(found)
    problems: list[str] = []
    module_graph: dict[str, set[str]] = defaultdict(set)
    part_graph: dict[str, set[str]] = defaultdict(set)
    for module, path in found.items():
        source = part(module)
        if source not in LAYERS:
            problems.append(
                f"{path.relative_to(root)}: '{source}' has no layer; add it to "
                "LAYERS in scripts/check_layers.py"
            )
            continue
        seen: set[tuple[str, int]] = set()
        for name, line in imports(module, path):
            target = resolve(name, known)
            if target is None or target == module or (target, line) in seen:
                continue
            seen.add((target, line))
            where = f"{path.relative_to(root)}:{line}"
            destination = part(target)
            if LAYERS.get(destination, 0) > LAYERS[source]:
                problems.append(
                    f"{where}: {module} imports {target}: '{source}' (layer "
                    f"{LAYERS[source]}) may not import '{destination}' (layer "
                    f"{LAYERS[destination]}), which sits above it"
                )
            # A package's __init__ re-exporting its modules is not a circle.
            if not (path.name == "__init__.py" and target.startswith(module + ".")):
                module_graph[module].add(target)
            if destination != source:
                part_graph[source].add(destination)
    for component in cycles(part_graph):
        problems.append("packages import each other in a circle: " + ", ".join(component))
    for component in cycles(module_graph):
        problems.append("modules import each other in a circle: " + ", ".join(component))
    return problems


def main() -> int:
    problems = check()
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} layer problem(s); the order is in scripts/check_layers.py")
        return 1
    print("imports follow the layer order; no circles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
