"""The layer check of ``make lint`` (scripts/check_layers.py) finds what it promises."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "check_layers.py"


def _checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_layers", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in {"configsvc/__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_an_upward_import_is_named_with_file_and_line(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "configsvc/store/__init__.py": "",
            "configsvc/store/mirror.py": "import json\nfrom configsvc.api.status import x\n",
            "configsvc/api/__init__.py": "",
            "configsvc/api/status.py": "from configsvc.store import mirror\n",
        },
    )
    problems = _checker().check(root)
    assert any(
        p.startswith("configsvc/store/mirror.py:2: ") and "'store'" in p and "'api'" in p
        for p in problems
    ), problems
    assert any("packages import each other in a circle: api, store" in p for p in problems)


def test_type_only_and_function_local_imports_count(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "configsvc/model/__init__.py": "",
            "configsvc/model/keys.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                "    from configsvc.server import app\n"
                "def f():\n    from configsvc import cli\n"
            ),
            "configsvc/server/__init__.py": "",
            "configsvc/server/app.py": "",
            "configsvc/cli/__init__.py": "",
        },
    )
    problems = _checker().check(root)
    assert sum("configsvc/model/keys.py" in p for p in problems) == 2, problems


def test_a_module_circle_inside_one_package_is_found(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "configsvc/watch/__init__.py": "",
            "configsvc/watch/a.py": "from configsvc.watch import b\n",
            "configsvc/watch/b.py": "from configsvc.watch.a import thing\n",
        },
    )
    assert _checker().check(root) == [
        "modules import each other in a circle: configsvc.watch.a, configsvc.watch.b"
    ]


def test_downward_imports_and_package_reexports_pass(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "configsvc/errors.py": "",
            "configsvc/model/__init__.py": "from configsvc.model.keys import K\n",
            "configsvc/model/keys.py": "from configsvc.errors import E\n",
            "configsvc/cli/__init__.py": "",
            "configsvc/cli/main.py": "from configsvc.model import K\n",
        },
    )
    assert _checker().check(root) == []


def test_a_part_without_a_layer_is_a_problem(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"configsvc/newthing/__init__.py": ""})
    assert any("'newthing' has no layer" in p for p in _checker().check(root))
