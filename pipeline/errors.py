"""Exceptions shared by the CLI, the runner and the executor."""


class UserError(Exception):
    """An error the user can fix (bad path, bad job spec); printed as one line, no traceback."""


class StalledError(RuntimeError):
    """Nothing finished for run.stall_timeout_s (the run is resumable)."""


class CaptionWorkerError(RuntimeError):
    """The caption actors keep dying: a setup problem (backend, model, GPU), not a problem of the clips."""
