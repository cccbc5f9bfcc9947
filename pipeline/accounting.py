"""Per-stage accounting: every item a stage saw is ok, skipped or failed (seen = ok + skipped + failed)."""

from __future__ import annotations

from collections import Counter

STAGES = ("harvest", "evaluate", "resample", "caption", "shard")


def by_unit(rows: list[dict]) -> dict[str, list[dict]]:
    """Error rows grouped by the `unit_id` they name."""
    grouped: dict[str, list[dict]] = {}
    for row in rows:
        grouped.setdefault(row["unit_id"], []).append(row)
    return grouped


def outcome(is_ok: bool, rows: list[dict]) -> str | None:
    """ok / failed / skipped for one item from whether it produced output and the error rows about it."""
    if is_ok:
        return "ok"
    statuses = {row["status"] for row in rows}
    return "failed" if "failed" in statuses else "skipped" if statuses else None


def account(stage: str, seen: list[str], ok: set[str], errors_by_item: dict[str, list[dict]],
            sources: dict[str, str] | None = None) -> tuple[dict, list[dict]]:
    """Counts for one stage over the items it saw, plus a failed "no-output" row for any item without an outcome.

    An item is ok when it is in `ok`, else failed when one of its error rows failed, else skipped when it has
    "skipped" rows. Nothing disappears silently: an item with neither output nor rows gets a row here.
    """
    from schemas.tables import error_row  # here, not at import: `dymesh status` reads counts without pyarrow

    counts = Counter()
    extra = []
    for item in seen:
        status = outcome(item in ok, errors_by_item.get(item, []))
        if status is None:
            status = "failed"
            extra.append(error_row(stage, item, "no-output", f"{item}: {stage} produced neither output nor an "
                                   "error row for this item", source=(sources or {}).get(item, "")))
        counts[status] += 1
    rows = [r for item in seen for r in errors_by_item.get(item, [])] + extra
    return {
        "seen": len(seen),
        "ok": counts["ok"],
        "skipped": counts["skipped"],
        "failed": counts["failed"],
        "error_types": dict(sorted(Counter(r["error_type"] for r in rows).items())),
        "error_rows": len(rows),
    }, extra


def merge(counts: list[dict]) -> dict:
    """Sum the counts of several units of one stage."""
    total = Counter()
    types = Counter()
    for c in counts:
        for key, value in c.items():
            if key == "error_types":
                types.update(value)
            elif isinstance(value, (int, float)):
                total[key] += value
    merged = {k: total[k] for k in sorted(total)}
    for key in ("seen", "ok", "skipped", "failed"):
        merged.setdefault(key, 0)
    merged["error_types"] = dict(sorted(types.items()))
    return merged


def balanced(counts: dict) -> bool:
    return counts["seen"] == counts["ok"] + counts["skipped"] + counts["failed"]
