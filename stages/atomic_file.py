"""Atomic file writes: a temp file beside the target, then one rename, so a reader never sees half a file.

Temp names start with TEMP_PREFIX; the runner removes leftovers of a killed run by that prefix.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

TEMP_PREFIX = ".tmp-"


def temporary_path(path: Path) -> Path:
    """A temp name beside `path`, unique per process and thread (concurrent writers never share one)."""
    return path.with_name(f"{TEMP_PREFIX}{path.name}.{os.getpid()}.{threading.get_ident()}")


def write_bytes_atomically(path: Path, data: bytes, *, durable: bool) -> None:
    """Write `data` to `path` via a temp file and a rename; `durable` fsyncs before the rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
