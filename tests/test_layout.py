"""The layout's rules: imports run pipelines -> assets -> appshot_model, and no module imports a private
(``_name``) name from another module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("appshot_model", "assets", "pipelines")


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """``(module, imported names)`` of every import statement of a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
    return found


def _files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package, forbidden", [("appshot_model", ("dagster", "assets", "pipelines")),
                                                ("assets", ("pipelines",))])
def test_imports_run_one_way(package, forbidden):
    wrong = [f"{path.relative_to(ROOT)} imports {module}" for path in _files(package)
             for module, _ in _imports(path) if module.split(".")[0] in forbidden]
    assert not wrong, wrong


def test_no_private_names_imported_from_other_modules():
    wrong = [f"{path.relative_to(ROOT)}: from {module} import {name}"
             for package in PACKAGES for path in _files(package)
             for module, names in _imports(path) if module.split(".")[0] in PACKAGES
             for name in names if name.startswith("_")]
    assert not wrong, wrong
