"""tools/mutation_check.py stays runnable: each chosen line is still in its file exactly once and each named test
exists (the check itself, which runs the tests, is `python tools/mutation_check.py`; docs/testing.md)."""

from __future__ import annotations

import ast
import importlib.util
import sys

import pytest

from paths import REPO

spec = importlib.util.spec_from_file_location("mutation_check", REPO / "tools" / "mutation_check.py")
mutation_check = sys.modules.setdefault("mutation_check", importlib.util.module_from_spec(spec))
spec.loader.exec_module(mutation_check)


def test_at_least_ten_mutations_across_the_product():
    mutations = mutation_check.MUTATIONS
    assert len(mutations) >= 10 and len({m.name for m in mutations}) == len(mutations)
    assert len({m.path for m in mutations}) >= 8
    assert all(m.old != m.new and not m.path.startswith("tests/") for m in mutations)


@pytest.mark.parametrize("mutation", mutation_check.MUTATIONS, ids=lambda m: m.name)
def test_each_mutated_line_is_there_once_and_its_test_exists(mutation):
    text = (REPO / mutation.path).read_text()
    assert text.count(mutation.old) == 1, f"{mutation.path} changed: choose the line of '{mutation.name}' again"
    ast.parse(text.replace(mutation.old, mutation.new))  # the mutant still imports: a test, not a SyntaxError, fails
    path, _, name = mutation.test.partition("::")
    assert (REPO / path).is_file(), mutation.test
    if name:
        assert name in {n.name for n in ast.walk(ast.parse((REPO / path).read_text())) if isinstance(n, ast.FunctionDef)}
