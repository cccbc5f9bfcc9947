"""Progress on stderr: items, rate and ETA; a redrawn line on a terminal, one line every few seconds otherwise."""

from __future__ import annotations

import sys
import time


def format_seconds(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


class Progress:
    """`Progress("clips", total).update(n)`; `close()` prints the final line."""

    def __init__(self, label: str, total: int, unit: str = "items", stream=None, interval_s: float = 5.0,
                 enabled: bool = True):
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval_s = 0.2 if self.tty else interval_s
        self.enabled = enabled
        self.done = 0
        self.start = time.monotonic()
        self.last_print = 0.0
        self.extra = ""

    def line(self) -> str:
        elapsed = time.monotonic() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 and self.total else 0.0
        return (f"{self.label}: {self.done}/{self.total} {self.unit} [{format_seconds(elapsed)}, "
                f"{rate:.2f} {self.unit}/s, ETA {format_seconds(eta)}]{self.extra}")

    def update(self, n: int = 1, extra: str | None = None) -> None:
        self.done += n
        if extra is not None:
            self.extra = f" {extra}"
        now = time.monotonic()
        if self.enabled and now - self.last_print >= self.interval_s:
            self.last_print = now
            self._emit(final=False)

    def _emit(self, final: bool) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + self.line() + ("\n" if final else ""))
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._emit(final=True)
