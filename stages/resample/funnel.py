"""The yield funnel of one asset: animations seen -> windows cut -> clips kept, and rows per rejection reason."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

ASSET_LEVEL = ("no-animation",)  # rejections of the whole asset: they have no window


@dataclass
class Funnel:
    """Counts of one `clips_from_scene` call (add several with `+=` for a source or a job).

    Every error row is counted once in `rejected` by its error_type; every row except the asset-level ones
    (`no-animation`) stands for one window, so windows == clips + window_rejections()."""

    assets: int = 0
    animations: int = 0
    windows: int = 0
    clips: int = 0
    rejected: Counter = field(default_factory=Counter)

    def count(self, rows: list[dict]) -> None:
        """Add error rows (one per window, or per asset for ASSET_LEVEL types)."""
        for row in rows:
            self.rejected[row["error_type"]] += 1
            if row["error_type"] not in ASSET_LEVEL:
                self.windows += 1

    def window_rejections(self) -> int:
        return sum(n for kind, n in self.rejected.items() if kind not in ASSET_LEVEL)

    def __iadd__(self, other: "Funnel") -> "Funnel":
        self.assets += other.assets
        self.animations += other.animations
        self.windows += other.windows
        self.clips += other.clips
        self.rejected.update(other.rejected)
        return self

    def to_dict(self) -> dict:
        """Plain JSON-able counts, rejection reasons sorted."""
        return {"assets": self.assets, "animations": self.animations, "windows": self.windows, "clips": self.clips,
                "rejected": dict(sorted(self.rejected.items()))}
