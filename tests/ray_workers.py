"""This test session's Ray worker processes, found through /proc (never another session's on a shared machine)."""

from __future__ import annotations

from pathlib import Path


def cluster_workers_running(ray, task: str) -> list[int]:
    """pids of this test session's Ray workers whose process title starts with `ray::<task>` (children of its
    raylet): a task's name while it runs, or an actor's `Class.method` while it runs a call."""
    raylet = ray._private.worker._global_node.all_processes["raylet"][0].process.pid
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == raylet \
                    and (proc / "cmdline").read_bytes().startswith(f"ray::{task}".encode()):
                found.append(int(proc.name))
        except (OSError, ValueError, IndexError):
            continue
    return found
