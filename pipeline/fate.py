"""Training ranks die with their launcher: a rank whose launcher is gone stops at once, so it never writes
checkpoints beside (or after) a resumed run that took over the run folder's lock.

    die_with(os.getppid())        # a torchrun rank: its parent is the torchrun agent
    die_with(driver_pid)          # a Ray Train worker on the driver's machine: the `dymesh train` process

On Linux the kernel signals the rank when its parent thread exits (PR_SET_PDEATHSIG) where the launcher is the
parent; a watch thread covers the rest (and other systems): it polls the launcher every half second and ends this
process with SIGKILL when the launcher is gone (reparented, or its pid no longer exists).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
POLL_S = 0.5


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kernel_signal_on_parent_death() -> None:
    """PR_SET_PDEATHSIG(SIGKILL) where the C library offers prctl (Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def die_with(launcher: int, what: str = "launcher") -> threading.Thread:
    """End this process when process `launcher` ends; returns the watch thread (a daemon)."""
    parent = os.getppid()
    if launcher == parent and sys.platform.startswith("linux"):
        _kernel_signal_on_parent_death()

    def watch() -> None:
        while True:
            gone = (launcher == parent and os.getppid() != parent) or not alive(launcher)
            if gone:
                print(f"dymesh: the {what} (pid {launcher}) is gone; this rank (pid {os.getpid()}) stops",
                      file=sys.stderr, flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(POLL_S)

    thread = threading.Thread(target=watch, name="dymesh-die-with-launcher", daemon=True)
    thread.start()
    return thread
