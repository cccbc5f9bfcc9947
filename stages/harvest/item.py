"""One listed input of a source, its fetch errors, and the retry policy (transient I/O only)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, TypeVar

T = TypeVar("T")


class FetchError(Exception):
    """An input that cannot be fetched; `kind` is the error type written to the errors table."""

    def __init__(self, kind: str, message: str, attempts: int = 1):
        super().__init__(message)
        self.kind = kind
        self.attempts = attempts


class TransientError(FetchError):
    """A fetch failure worth retrying (timeouts, connection resets, HTTP 5xx/429)."""


@dataclass
class Item:
    """One input file: where it is, what the source says about it, and how to get its bytes."""

    kind: str  # source kind (schemas.tables.SOURCE.kind)
    uri: str
    fetch: Callable[[], tuple[bytes, str]]  # -> (asset bytes, "glb" | "gltf"); raises FetchError
    name: str = ""
    license: str = ""
    attribution: str = ""
    tags: tuple[str, ...] = ()


def with_retries(action: Callable[[], T], retries: int, backoff_s: float) -> T:
    """Run `action`, retrying TransientError up to `retries` times with doubling back-off; still failing, it
    raises a TransientError (the failure stays one a later run may retry)."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return action()
        except TransientError as exc:
            if attempt > retries:
                raise TransientError(exc.kind, f"{exc} (gave up after {attempt} attempts)", attempt) from None
            time.sleep(backoff_s * 2 ** (attempt - 1))


def read_bounded(read: Callable[[int], bytes], cap: int, deadline: float | None, what: str,
                 chunk: int = 8 * 1024 * 1024) -> bytes:
    """Read a stream through `read(n)` (returning what has arrived) up to EOF: more than `cap` bytes is a
    FetchError of kind "limit", passing `deadline` (time.monotonic) a TransientError of kind "timeout"."""
    parts, total = [], 0
    while True:
        if deadline is not None and time.monotonic() > deadline:
            raise TransientError("timeout", f"{what}: download took longer than harvest.transfer_timeout_s")
        data = read(min(chunk, cap + 1 - total))
        if not data:
            return b"".join(parts)
        parts.append(data)
        total += len(data)
        if total > cap:
            raise FetchError("limit", f"{what}: larger than the {cap} byte cap (harvest.max_asset_bytes)")


def format_of(name: str) -> str:
    return "gltf" if name.lower().endswith(".gltf") else "glb"


ASSET_SUFFIXES = (".glb", ".gltf")
