"""Every command shown in README.md and docs/*.md runs as written.

Each fenced block names its language. ```bash blocks are commands: they run literally, in document order (README
first: `make demo` makes the output the others read), in a scratch copy of the repository that has the project's
.venv and ../shared beside it, like a user's fresh clone. ```text blocks
are usage synopses (with placeholders) and sample output; ```python blocks are library excerpts (the recipes of
docs/tables.md run in tests/test_readers.py). A failing command fails the test with the document, block and
output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from checkout import Block, copy_checkout, fenced_blocks
from paths import REPO, SHARED

pytestmark = pytest.mark.slow
DOCUMENTS = ["README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md"))]
LANGUAGES = {"bash", "python", "text", "yaml", "sql", "json"}
RUN_BY_ANOTHER_TEST = {"docs/cluster.md": "tests/test_cluster.py runs these blocks against a real two-raylet cluster"}
NOT_RUN = {"make test": "it is this test suite"}
BLOCK_TIMEOUT_S = 900
VENV = Path(sys.prefix)  # the project's .venv, which runs this test


def all_blocks() -> list[Block]:
    return [b for document in DOCUMENTS for b in fenced_blocks(document)]


def test_every_fence_names_a_known_language():
    unnamed = [str(b) for b in all_blocks() if b.language not in LANGUAGES]
    assert not unnamed, f"fences without a known language ({sorted(LANGUAGES)}): {unnamed}"


def test_the_readme_shows_the_whole_journey_as_commands():
    commands = "\n".join(b.body for b in fenced_blocks("README.md") if b.language == "bash")
    for step in ("make demo", "dymesh train jobs/train-vae.yaml", "dymesh train jobs/train-flow.yaml",
                 "dymesh animate", "dymesh preview"):
        assert step in commands, f"README.md runs no `{step}`"


def copy_repository(target: Path) -> None:
    """The checkout with old mtimes (so make sees .venv as up to date), the project's .venv and Blender's beside."""
    copy_checkout(target, mtime=946684800)
    (target / ".venv").symlink_to(VENV)
    blender_python = os.environ.get("DYMESH_BLENDER_PYTHON")
    if blender_python and Path(blender_python).exists():
        (target / ".venv-blender").symlink_to(Path(blender_python).parents[1])


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    if not (VENV / "bin" / "dymesh").exists():
        pytest.fail(f"no dymesh in {VENV}: run the tests with the project's .venv (make test)")
    root = tmp_path_factory.mktemp("clone")
    (root / "shared").symlink_to(SHARED)
    copy_repository(root / "dymesh")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "RAY_ADDRESS"))}
    env.update(PATH=f"{root / 'dymesh' / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}",
               PYTHONPATH=str(root / "dymesh"), RAY_USAGE_STATS_ENABLED="0", PYTHONHASHSEED="0",
               VIRTUAL_ENV=str(root / "dymesh" / ".venv"))
    env.pop("DYMESH_SHARED", None)
    return root / "dymesh", env


def script_of(block: Block) -> str:
    lines = []
    for line in block.body.splitlines():
        command = line.split("#", 1)[0].strip()
        lines.append(f": not run here, {NOT_RUN[command]}" if command in NOT_RUN else line)
    return "set -euo pipefail\n" + "\n".join(lines) + "\n"


def run_block(block: Block, cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(["bash", "-c", script_of(block)], cwd=cwd, env=env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S)
    assert done.returncode == 0, (
        f"{block} exited {done.returncode}:\n{block.body}\n--- stdout\n{done.stdout[-4000:]}\n--- stderr\n"
        f"{done.stderr[-4000:]}")


def runnable(document: str) -> list[Block]:
    return [b for b in fenced_blocks(document) if b.language == "bash"]


@pytest.mark.parametrize("document", [d for d in DOCUMENTS if d not in RUN_BY_ANOTHER_TEST and runnable(d)])
def test_the_commands_of_each_document_run_as_written(document, clone):
    cwd, env = clone
    for block in runnable(document):
        run_block(block, cwd, env)
