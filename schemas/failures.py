"""Which failures a rerun retries: the one table of transient error kinds (the `transient` column of `errors`).

A failure is transient when the same input may succeed later with no change to it or to the job: the network, a
time limit, memory, a lost worker, a full disk, a source that is not reachable right now. Every other failure is
permanent (malformed, unsupported, unsafe, over a limit, outside its root, a filter's rejection): the same bytes
and config fail the same way again, so only `dymesh run --retry-failed` tries it again.

A stage that knows better for one failure says so when it makes the row (`error_row(..., transient=True)`): harvest
marks what it gave up on after retrying a transient fetch error (an HTTP 503, a connection reset), whatever its kind.
"""

from __future__ import annotations

# kind -> why it may pass on a later run (every stage)
TRANSIENT_KINDS: dict[str, str] = {
    "network": "network error",
    "dns": "name resolution failed",
    "timeout": "over a time limit (a download, a file read, run.item_timeout_s)",
    "out-of-memory": "killed for memory by Ray's memory monitor",
    "MemoryError": "ran out of memory",
    "OutOfMemoryError": "ran out of (GPU) memory",  # torch.cuda.OutOfMemoryError
    "worker-crashed": "the worker process died",
    "worker-error": "Ray could not run the task or return its result",
    "disk-full": "no space left on a device",
    "objectstore": "object-store I/O error",
    "io": "I/O error while reading an input",
    "changed": "the input changed while it was read",
    "objaverse-metadata": "Objaverse metadata could not be read (offline?)",
    "source-unavailable": "the source cannot be reached",
}

# (stage, kind) -> why, for kinds that are transient in one stage only
TRANSIENT_STAGE_KINDS: dict[tuple[str, str], str] = {
    ("harvest", "not-found"): "a missing source folder, file or object may be back later",
}


def transient_reason(stage: str, kind: str) -> str | None:
    """Why a failure of `kind` in `stage` may pass on a later run; None for a permanent failure."""
    return TRANSIENT_STAGE_KINDS.get((stage, kind)) or TRANSIENT_KINDS.get(kind)


def is_transient(stage: str, kind: str, raised_transient: bool | None = None) -> bool:
    """True for a failure a rerun retries: the stage said so, or the kind is in the table."""
    return bool(raised_transient) or transient_reason(stage, kind) is not None


def row_is_transient(row: dict) -> bool:
    """Whether an error row (any table version) is a transient failure; skipped rows never are."""
    if row.get("status") != "failed":
        return False
    recorded = row.get("transient")
    return bool(recorded) if recorded is not None else is_transient(row["stage"], row["error_type"])


def error_row(
    stage: str,
    unit_id: str,
    error_type: str,
    message: str,
    *,
    source: str = "",
    status: str = "failed",
    attempt: int = 1,
    transient: bool | None = None,
) -> dict:
    """One `errors` row. status is "failed" for errors, "skipped" for filter rejections. `transient`: the stage
    says a retry may pass (else schemas.failures decides from the stage and kind; a skip is never transient)."""

    if status not in ("failed", "skipped"):
        raise ValueError(f"error_row status must be 'failed' or 'skipped', not {status!r}")
    return {
        "stage": stage,
        "unit_id": unit_id,
        "source": source,
        "attempt": int(attempt),
        "status": status,
        "error_type": error_type,
        "message": message,
        "transient": status == "failed" and is_transient(stage, error_type, transient),
    }
