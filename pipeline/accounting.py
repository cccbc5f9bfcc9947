"""Per-stage accounting: every item a stage saw is ok, skipped or failed (seen = ok + skipped + failed)."""

from __future__ import annotations

from collections import Counter

from pipeline.manifest import printable
from schemas.failures import row_is_transient

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
    "skipped" rows; "transient" counts the failed items with a transient failure (schemas.failures). Nothing
    disappears silently: an item with neither output nor rows gets a row here.
    """
    from schemas.tables import error_row  # here, not at import: `dymesh status` reads counts without pyarrow

    counts = Counter()
    extra = []
    for item in seen:
        rows = errors_by_item.get(item, [])
        status = outcome(item in ok, rows)
        if status is None:
            status = "failed"
            extra.append(error_row(stage, item, "no-output", f"{item}: {stage} produced neither output nor an "
                                   "error row for this item", source=(sources or {}).get(item, "")))
        counts[status] += 1
        if status == "failed" and any(row_is_transient(row) for row in rows):
            counts["transient"] += 1  # failed items a rerun tries again
    rows = [r for item in seen for r in errors_by_item.get(item, [])] + extra
    return {
        "seen": len(seen),
        "ok": counts["ok"],
        "skipped": counts["skipped"],
        "failed": counts["failed"],
        "transient": counts["transient"],
        "error_types": dict(sorted(Counter(r["error_type"] for r in rows).items())),
        "error_rows": len(rows),
        "messages": ranked(Counter((r["error_type"], general_message(r)) for r in rows if r["status"] == "failed")),
    }, extra


MESSAGES_KEPT = 20  # distinct failure messages a marker (and a merged summary) keeps, most frequent first


def general_message(row: dict) -> str:
    """An error message with its item (source, id) taken out, so that one cause of many items counts once."""
    message = row.get("message") or ""
    for name in sorted({row.get("source") or "", row.get("unit_id") or ""}, key=len, reverse=True):
        if len(name) > 2:
            message = message.replace(name, "<item>")
    return printable(" ".join(message.split())[:500])


def ranked(counts: Counter) -> list[list]:
    """[[rows, error type, message]] of the most frequent failure messages."""
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:MESSAGES_KEPT]
    return [[n, kind, message] for (kind, message), n in top]


def merge(counts: list[dict]) -> dict:
    """Sum the counts of several units of one stage."""
    total = Counter()
    types = Counter()
    messages = Counter()
    for c in counts:
        for key, value in c.items():
            if key == "error_types":
                types.update(value)
            elif key == "messages":
                messages.update({(kind, message): n for n, kind, message in value})
            elif isinstance(value, (int, float)):
                total[key] += value
    merged = {k: total[k] for k in sorted(total)}
    for key in ("seen", "ok", "skipped", "failed", "transient"):
        merged.setdefault(key, 0)
    merged["error_types"] = dict(sorted(types.items()))
    merged["messages"] = ranked(messages)
    return merged


def balanced(counts: dict) -> bool:
    return counts["seen"] == counts["ok"] + counts["skipped"] + counts["failed"]
