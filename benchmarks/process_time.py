"""Whole-process timing shared by the benchmarks that compare a `dymesh` command with a Blender process."""

from __future__ import annotations

import compileall
import resource
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed_run(command: list[str], **kwargs) -> tuple[subprocess.CompletedProcess, float, float]:
    """(result, wall seconds, CPU seconds: user + system of the child and its children) of one process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return result, wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def compile_bytecode() -> None:
    """Write this tree's .pyc files, as installing a package does (the Blender venv ships its own): where
    PYTHONDONTWRITEBYTECODE is set, every `dymesh` process would otherwise compile its modules from source."""
    for folder in ("pipeline", "stages", "schemas"):
        compileall.compile_dir(REPO / folder, quiet=1)
