"""The checkout as a user's clone would have it, for tests (and tools/mutation_check.py) that run commands in a
scratch copy: its files, and the fenced blocks of its Markdown."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from paths import REPO

FENCE = re.compile(r"^```(\S*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)


def copy_checkout(target: Path, mtime: float | None = None) -> None:
    """The tracked and untracked (not ignored) files as they are in the working tree, copied to `target`; with
    `mtime`, every copy gets that modification time (old ones let make see an existing .venv as up to date)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source, destination = REPO / name, target / name
        if not source.is_file():
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)
        if mtime is not None:
            os.utime(destination, (mtime, mtime))


@dataclass(frozen=True)
class Block:
    """One fenced block of a Markdown file: where it starts, its language and its text."""

    document: str
    line: int
    language: str
    body: str

    def __str__(self) -> str:
        return f"{self.document}:{self.line} ({self.language})"


def fenced_blocks(document: str) -> list[Block]:
    """Every fenced block of `document` (a path relative to the checkout), in order."""
    text = (REPO / document).read_text(encoding="utf-8")
    return [Block(document, text.count("\n", 0, m.start()) + 1, m.group(1), m.group(2)) for m in FENCE.finditer(text)]
