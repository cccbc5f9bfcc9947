"""Progress on stderr: items, rate and ETA; a redrawn line on a terminal, one line every few seconds otherwise.

The rate is measured over a recent window that starts at the first finished item, so start-up time (Ray
workers, imports, the first asset's warm-up) does not count as work and a change of pace shows within the
window; a stall makes the rate fall and the ETA grow. No rate or ETA is shown before `min_items` items have
finished after the first one: an estimate from one or two items is a guess.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from typing import Callable


def format_seconds(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


class RateWindow:
    """Items per second over the last `window_s` seconds of completions (at least `min_items` of them)."""

    def __init__(self, window_s: float = 60.0, min_items: int = 3):
        self.window_s, self.min_items = window_s, min_items
        self.samples: deque[tuple[float, int]] = deque()  # (time, items done by then), oldest first

    def add(self, now: float, done: int) -> None:
        self.samples.append((now, done))
        while (len(self.samples) > 2 and self.samples[1][0] < now - self.window_s
               and done - self.samples[1][1] >= self.min_items):
            self.samples.popleft()

    def rate(self, now: float) -> float | None:
        """None until `min_items` items finished after the first sample; measured up to `now`, so a stall
        lowers it."""
        if len(self.samples) < 2:
            return None
        (t0, d0), (_, d1) = self.samples[0], self.samples[-1]
        if d1 - d0 < self.min_items or now <= t0:
            return None
        return (d1 - d0) / (now - t0)


class Progress:
    """`Progress("clips", total).update(n)`; `close()` prints the final line (with the average rate)."""

    def __init__(self, label: str, total: int, unit: str = "items", stream=None, interval_s: float = 5.0,
                 enabled: bool = True, clock: Callable[[], float] = time.monotonic, window_s: float = 60.0,
                 min_items: int = 3):
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval_s = 0.2 if self.tty else interval_s
        self.enabled = enabled
        self.clock = clock
        self.done = 0
        self.start = clock()
        self.last_print = 0.0
        self.extra = ""
        self.window = RateWindow(window_s, min_items)

    def line(self, final: bool = False) -> str:
        now = self.clock()
        elapsed = now - self.start
        if final:
            rate = self.done / elapsed if elapsed > 0 else None
            eta = format_seconds(0)
        else:
            rate = self.window.rate(now)
            remaining = self.total - self.done
            eta = format_seconds(remaining / rate) if rate and self.total and remaining >= 0 else "--:--"
        shown = f"{rate:.2f}" if rate is not None else "--"
        return (f"{self.label}: {self.done}/{self.total} {self.unit} [{format_seconds(elapsed)}, "
                f"{shown} {self.unit}/s, ETA {eta}]{self.extra}")

    def update(self, n: int = 1, extra: str | None = None) -> None:
        self.done += n
        if extra is not None:
            self.extra = f" {extra}"
        now = self.clock()
        if n:
            self.window.add(now, self.done)
        if self.enabled and now - self.last_print >= self.interval_s:
            self.last_print = now
            self._emit(final=False)

    def _emit(self, final: bool) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + self.line(final) + ("\n" if final else ""))
        else:
            self.stream.write(self.line(final) + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._emit(final=True)
