"""What one generated asset should contain, decided before any geometry is made."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stages.generate.keyframes import INTERPOLATIONS


@dataclass(frozen=True)
class AssetPlan:
    """Kind, seed, tessellation `detail` (1.0 = a few hundred to a few thousand vertices), the
    interpolation of the first animation (later animations take the next modes) and how many
    animations the asset has."""

    kind: str
    seed: int
    detail: float = 1.0
    interpolation: str = "LINEAR"
    animations: int = 1

    def interpolation_of(self, animation: int) -> str:
        start = INTERPOLATIONS.index(self.interpolation)
        return INTERPOLATIONS[(start + animation) % len(INTERPOLATIONS)]

    def segments(self, base: int) -> int:
        """Tessellation count scaled so vertex counts grow about linearly with `detail`."""
        return max(3, int(round(base * np.sqrt(self.detail))))


@dataclass(frozen=True)
class Timing:
    """Duration and cycle period of one animation; a looping one holds whole cycles (first pose == last)."""

    duration: float
    period: float
    looping: bool

    @classmethod
    def draw(cls, rng: np.random.Generator, looping: bool) -> "Timing":
        cycles = int(rng.integers(1, 4)) + (0.0 if looping else float(rng.uniform(0.25, 0.75)))
        duration = float(rng.uniform(0.6, 1.4)) * cycles
        # A looping clip lasts a multiple of 0.5 s: exact in float32 key times and on the 10 fps grid,
        # so its last sampled frame lands on the last key and equals the first.
        duration = max(1.0, round(duration * 2) / 2) if looping else round(duration, 2)
        return cls(duration, duration / cycles, looping)

    @property
    def omega(self) -> float:
        return 2 * np.pi / self.period
