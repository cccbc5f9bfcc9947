"""Seconds spent per resample step, summed over calls (for benchmarks and progress reports)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator


class StepClock:
    """`with clock.step("weld"): ...` adds the block's wall time to `seconds["weld"]` and this process's CPU time
    to `cpu_seconds["weld"]` (CPU time is what a core costs; wall time also counts waiting for a shared core)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - wall
            self.cpu_seconds[name] = self.cpu_seconds.get(name, 0.0) + time.process_time() - cpu
