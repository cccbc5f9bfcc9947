"""The yield funnel per source kind: how many items survive each step, from files harvested to clips in shards."""

from __future__ import annotations

from dataclasses import dataclass

# Every step the funnel knows, in order. A step no table records (e.g. windows before the pipeline counts them)
# is shown as not recorded; steps the data names that are not listed here are appended before "clips".
STEPS = ("files seen", "files harvested", "assets", "evaluated", "animations", "windows", "clips", "captioned", "sharded")


@dataclass(frozen=True)
class FunnelRow:
    source_kind: str
    counts: tuple[int | None, ...]  # one per step; None where the step is not recorded


@dataclass(frozen=True)
class Funnel:
    steps: tuple[str, ...]
    rows: tuple[FunnelRow, ...]  # one per source kind, sorted by kind
    total: FunnelRow

    def recorded(self, step: str) -> bool:
        return self.total.counts[self.steps.index(step)] is not None


def ordered_steps(named: set[str]) -> tuple[str, ...]:
    """STEPS, with any extra step the data names inserted before "clips" (sorted, so the order is stable)."""
    extra = sorted(named - set(STEPS))
    at = STEPS.index("clips")
    return STEPS[:at] + tuple(extra) + STEPS[at:]


def build_funnel(counts: dict[str, dict[str, int]], recorded: set[str] | frozenset[str] = frozenset()) -> Funnel:
    """`counts` is {source kind: {step: count}}; a step in `recorded` or named for any kind is recorded (0 where a
    kind lacks it), every other step of STEPS is shown as not recorded."""
    named = set(recorded) | {step for by_step in counts.values() for step in by_step}
    steps = ordered_steps(named)
    rows = tuple(
        FunnelRow(kind, tuple(int(counts[kind].get(step, 0)) if step in named else None for step in steps))
        for kind in sorted(counts)
    )
    total = tuple(sum(row.counts[i] for row in rows) if step in named else None for i, step in enumerate(steps))
    return Funnel(steps, rows, FunnelRow("all sources", total))


def step_ratio(counts: tuple[int | None, ...], index: int) -> float | None:
    """Count of step `index` over the nearest earlier recorded step with a positive count (None for the first)."""
    here = counts[index]
    if here is None:
        return None
    for earlier in reversed(counts[:index]):
        if earlier is not None:
            return here / earlier if earlier > 0 else None
    return None


def merge_counts(*parts: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Merge several {kind: {step: count}} maps (counts of the same kind and step add up)."""
    merged: dict[str, dict[str, int]] = {}
    for part in parts:
        for kind, by_step in part.items():
            for step, n in by_step.items():
                merged.setdefault(kind, {})
                merged[kind][step] = merged[kind].get(step, 0) + int(n or 0)
    return merged
