"""This machine's processes from /proc (Linux), for tests that must find, and stop, only what they started."""

from __future__ import annotations

from pathlib import Path


def process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every live (not zombie) process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            table[int(entry.name)] = (int(fields[1]), cmdline)
    return table


def with_descendants(pids: set[int], table: dict[int, tuple[int, str]]) -> set[int]:
    """`pids` and every process below them."""
    found = set(pids)
    while True:
        more = {pid for pid, (parent, _) in table.items() if parent in found} - found
        if not more:
            return found
        found |= more


def processes_naming(text: str) -> set[int]:
    """Live processes whose command line contains `text` (a temp folder of one test's), and their descendants."""
    table = process_table()
    return with_descendants({pid for pid, (_, cmdline) in table.items() if text in cmdline}, table)


def children(pid: int) -> list[int]:
    """Live processes whose parent is `pid`."""
    return sorted(p for p, (parent, _) in process_table().items() if parent == pid)


def alive(pid: int) -> bool:
    """`pid` runs (a zombie does not)."""
    return pid in process_table()


def cluster_workers_running(ray, task: str) -> list[int]:
    """pids of this test session's Ray workers whose process title starts with `ray::<task>` (children of its
    raylet): a task's name while it runs, or an actor's `Class.method` while it runs a call."""
    raylet = ray._private.worker._global_node.all_processes["raylet"][0].process.pid
    return sorted(pid for pid, (parent, cmdline) in process_table().items()
                  if parent == raylet and cmdline.startswith(f"ray::{task}"))
