"""Exceptions and exit codes shared by the CLI, the runner and the executor."""

import errno


class UserError(Exception):
    """An error the user can fix (bad path, bad job spec); printed as one line, no traceback."""


class LockedError(UserError):
    """Another live process holds the folder's lock (pipeline.lock; one line, exit 3)."""


class ClusterError(UserError):
    """The Ray cluster to join does not answer, wants a token, or went away during the run (one line, exit 69)."""


class StalledError(RuntimeError):
    """Nothing finished for run.stall_timeout_s (the run is resumable)."""


class CaptionWorkerError(RuntimeError):
    """The caption actors keep dying: a setup problem (backend, model, GPU), not a problem of the clips."""


# exit codes of `dymesh` commands besides 0 (done), 1 (the job failed: see its message) and 2 (a usage error)
EXIT_LOCKED = 3  # another run holds the folder (pipeline.lock)
EXIT_CLUSTER = 69  # the Ray cluster is unreachable, refuses this machine, or went away (sysexits EX_UNAVAILABLE)
EXIT_CANNOT_WRITE = 73  # permission denied or a read-only file system (sysexits EX_CANTCREAT)
EXIT_NO_SPACE = 74  # no space left on a device (sysexits EX_IOERR)

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
CANNOT_WRITE = (errno.EACCES, errno.EPERM, errno.EROFS)


def storage_problem(exc: BaseException) -> tuple[int, str] | None:
    """(exit code, one line saying what to do) for a full disk or a permission problem (`exc` or what caused it),
    else None."""
    while exc is not None and not (isinstance(exc, OSError) and exc.errno in NO_SPACE + CANNOT_WRITE):
        exc = exc.__cause__ or exc.__context__
    if exc is None:
        return None
    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno in NO_SPACE:
        return EXIT_NO_SPACE, (f"no space left on the device{where}: free some space (df -h) or choose another "
                               "output folder; everything committed so far is kept, and re-running the same "
                               "command resumes")
    reason = "read-only file system" if exc.errno == errno.EROFS else "permission denied"
    return EXIT_CANNOT_WRITE, (f"{reason}{where}: make it writable (or readable, for an input) or choose "
                               "another folder; everything committed so far is kept")
