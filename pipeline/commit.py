"""The one commit path of every stage: account for a unit's items, write its tables and error rows atomically, then
its completion marker (written last, so a unit with a marker is whole).

    commit(manifest, "resample", stage_hash, unit, UnitOutcome(seen, ok, errors, outputs={path: table}))

Each item the stage saw is classified in one place, pipeline.accounting.account (ok / skipped / failed, and a
"no-output" row for an item with neither output nor error row), so `seen = ok + skipped + failed` holds per unit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.accounting import account, by_unit
from pipeline.manifest import Manifest, printable, table_from_rows
from schemas.failures import row_is_transient
from schemas.tables import ERRORS
from stages.storage import write_table_atomically


@dataclass
class UnitOutcome:
    """What a stage did with one unit of work."""

    seen: list[str]  # every item the stage was given, in order
    ok: set[str]  # the items that gave output
    errors: list[dict]  # error rows, in the order they are written
    outputs: dict[Path, Any] = field(default_factory=dict)  # partition path -> pyarrow Table, written in order
    counts: dict = field(default_factory=dict)  # extra marker counts (clips, captions, shards, ...)
    errors_by_item: dict[str, list[dict]] | None = None  # default: the rows grouped by their unit_id
    sources: dict[str, str] = field(default_factory=dict)  # item -> where it came from, for "no-output" rows


def error_record(row: dict) -> dict:
    """An error row as stored: its transient flag filled in (schemas.failures), control characters in its text
    (from file names, say) escaped so that printing it never drives a terminal."""
    text = {key: printable(row[key]) for key in ("unit_id", "source", "message") if isinstance(row.get(key), str)}
    return {**row, **text, "transient": row_is_transient(row)}


def commit(manifest: Manifest, stage: str, stage_hash: str, unit: str, outcome: UnitOutcome) -> dict:
    """Write one unit of one stage and mark it done; returns the marker's counts."""
    by_item = outcome.errors_by_item if outcome.errors_by_item is not None else by_unit(outcome.errors)
    counts, extra = account(stage, outcome.seen, outcome.ok, by_item, outcome.sources)
    for path, table in outcome.outputs.items():
        write_table_atomically(path, table, durable=True)
    rows = [error_record(row) for row in outcome.errors + extra]
    write_table_atomically(manifest.errors(stage, stage_hash, unit), table_from_rows(rows, ERRORS), durable=True)
    counts = {**counts, **outcome.counts}
    manifest.commit(stage, stage_hash, unit, counts)
    return counts
