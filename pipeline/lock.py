"""One writer per folder: an exclusive lock held for a run's whole life (a dataset run's --out, a training run folder).

    with FolderLock(out, "dymesh run", stream=sys.stderr):
        ...                                    # a second run on `out` raises LockedError at once

The lock is `fcntl.flock` on `<folder>/.dymesh.lock`, which also records the holder (host, pid, since, command) as
JSON. The kernel releases a flock when its holder dies, however it dies, so a lock left by a killed run is free:
the next run takes it over and says whose it was. A clean exit empties the record (the file stays, so two runs
never lock two different files of one name). Object-store folders (s3://, gs://) have no such lock: the lock is
then taken on a local file named after the URI (~/.cache/dymesh/locks/), which keeps two runs of this machine apart
but not runs of two machines (docs/runs.md says so).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import time
from pathlib import Path

from pipeline.errors import LockedError, UserError
from stages.storage import is_remote

LOCK_NAME = ".dymesh.lock"


def lock_path(folder: str | Path) -> Path:
    """The lock file of a folder (local), or of an object-store prefix (a local file named after it)."""
    if is_remote(folder):
        key = hashlib.sha256(str(folder).rstrip("/").encode()).hexdigest()[:32]
        return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dymesh" / "locks" / f"{key}.lock"
    return Path(str(folder).removeprefix("file://")) / LOCK_NAME


def describe(holder: dict) -> str:
    """`pid 123 on host h since 2026-01-01 10:00:00 (dymesh run)` from a holder record."""
    since = holder.get("since")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if isinstance(since, (int, float)) else "?"
    return (f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')} since {when}"
            f" ({holder.get('command', '?')})")


def read_holder(fd: int) -> dict:
    """The holder record in an open lock file ({} when empty or unreadable)."""
    os.lseek(fd, 0, os.SEEK_SET)
    data = os.read(fd, 4096)
    try:
        holder = json.loads(data) if data.strip() else {}
    except ValueError:
        return {}
    return holder if isinstance(holder, dict) else {}


class FolderLock:
    """Exclusive lock on `folder` for `command` (a context manager; the folder is created if missing)."""

    def __init__(self, folder: str | Path, command: str, stream=None):
        self.folder, self.command, self.stream = str(folder), command, stream
        self.path = lock_path(folder)
        self.fd: int | None = None
        self.taken_over: dict = {}  # the record of a dead holder whose lock this one took over

    def acquire(self) -> FolderLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except (FileExistsError, NotADirectoryError):
            raise UserError(f"{self.folder} cannot be a folder: it, or a folder above it, is a file; choose another "
                            "output folder") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = read_holder(fd)
            os.close(fd)
            raise LockedError(f"{self.folder} is in use by {describe(holder)}; wait for that run to finish or stop "
                              f"it (kill {holder.get('pid', 'PID')}), then run again") from None
        except BaseException:
            os.close(fd)
            raise
        try:
            self.taken_over = read_holder(fd)
            record = {"host": socket.gethostname(), "pid": os.getpid(), "since": round(time.time(), 3),
                      "command": self.command}
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(record, sort_keys=True) + "\n").encode(), 0)
            os.fsync(fd)
        except BaseException:
            os.close(fd)  # closing releases the flock
            raise
        self.fd = fd
        if self.taken_over and self.stream is not None:
            print(f"{self.command}: took over the lock of {self.folder} left by {describe(self.taken_over)}, "
                  "which is gone (killed?); its committed work is kept", file=self.stream)
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):  # a full or read-only disk: closing still releases the lock
            os.ftruncate(self.fd, 0)
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> bool:
        self.release()
        return False
