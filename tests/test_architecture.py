"""The layers of docs/architecture.md, checked on the source: stages/ and schemas/ never import Ray or pipeline/
(nor schemas/ the stages), and no pipeline/ module grows past 400 lines. Imports are found with ast (also inside
functions, and `importlib.import_module("...")` with a literal name), not with grep."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN = {"stages": {"ray", "pipeline"}, "schemas": {"ray", "pipeline", "stages"}}


def imported_modules(source: str) -> set[str]:
    """Every module a Python source imports, anywhere in it (top-level package names and full names)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            function = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if function in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                names.add(node.args[0].value)
    return names


def violations(layer: str) -> list[str]:
    found = []
    for path in sorted((REPO / layer).rglob("*.py")):
        for name in sorted(imported_modules(path.read_text())):
            if name.split(".")[0] in FORBIDDEN[layer]:
                found.append(f"{path.relative_to(REPO)} imports {name}")
    return found


def test_the_scanner_finds_imports_anywhere():
    source = "import os\ndef f():\n    from ray.train import report\n    import pipeline.config\n" \
             "    importlib.import_module('ray.data')\n"
    assert {"ray.train", "pipeline.config", "ray.data", "os"} <= imported_modules(source)


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_lower_layers_never_import_upper_ones(layer):
    assert violations(layer) == []


def test_pipeline_modules_stay_small():
    sizes = {str(p.relative_to(REPO)): len(p.read_text().splitlines()) for p in (REPO / "pipeline").rglob("*.py")}
    assert sizes and {path: n for path, n in sizes.items() if n > 400} == {}
