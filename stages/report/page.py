"""The report's index.html: one self-contained page (inline style and script) over local preview and plot files."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from stages.storage import write_bytes_atomically
from stages.render.camera import grid_shape
from stages.report.funnel import Funnel, step_ratio
from stages.report.previews import PreviewRun, PreviewSettings
from stages.report.static import SCRIPT, STYLE

SORTS = (("", "split, source, clip id"), ("error:asc", "resample error, low first"), ("error:desc", "resample error, high first"),
         ("motion:desc", "motion, most first"), ("motion:asc", "motion, least first"))


@dataclass(frozen=True)
class Table:
    title: str
    columns: list[str]
    rows: list[tuple]
    note: str = ""


@dataclass(frozen=True)
class ReportPage:
    title: str
    facts: list[tuple[str, str]]  # (label, text) lines under the title
    totals: list[tuple[str, int]]
    funnel: Funnel
    tables: list[Table]
    plots: list[tuple[str, str]]  # (title, path relative to the page)
    cards: list[dict]  # queries.sample_cards rows
    previews: PreviewRun
    settings: PreviewSettings
    sample_note: str
    warnings: list[str] = field(default_factory=list)


def number(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def cell(value) -> str:
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return f'<td class="num">{escape(number(value))}</td>' if numeric else f"<td>{escape(number(value))}</td>"


def table_html(table: Table) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in table.rows)
    if not table.rows:
        body = f'<tr><td colspan="{len(table.columns)}" class="none">no rows</td></tr>'
    note = f'<p class="note">{escape(table.note)}</p>' if table.note else ""
    return f"<div><table><caption>{escape(table.title)}</caption><tr>{head}</tr>{body}</table>{note}</div>"


def funnel_html(funnel: Funnel) -> str:
    head = "<th>source</th>" + "".join(f"<th>{escape(s)}</th>" for s in funnel.steps)
    rows = []
    for row in (*funnel.rows, funnel.total):
        peak = max((n for n in row.counts if n is not None), default=0) or 1
        cells = []
        for index, n in enumerate(row.counts):
            if n is None:
                cells.append('<td class="none" title="not recorded in this output">n/r</td>')
                continue
            ratio = step_ratio(row.counts, index)
            shown = "" if ratio is None else (f"{ratio:.0%} of previous" if ratio <= 1 else f"×{ratio:.2f} previous")
            cells.append(f'<td class="num">{n:,}<span class="ratio">{shown}</span>'
                         f'<span class="bar" style="width:{100 * n / peak:.1f}%"></span></td>')
        css = ' class="total-row"' if row is funnel.total else ""
        rows.append(f"<tr{css}><td>{escape(row.source_kind)}</td>{''.join(cells)}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def search_text(card: dict) -> str:
    parts = [card["clip_id"], card["asset_id"], card["source_kind"], card["source_uri"], card["source_name"],
             card["license"], card["animation_name"] or "", card["split"], *(c["text"] or "" for c in card["captions"])]
    return " ".join(" ".join(parts).lower().split())


def card_html(card: dict, page: ReportPage) -> str:
    clip_id = card["clip_id"]
    failed = page.previews.failed.get(clip_id)
    if failed:
        preview = f'<div class="no-preview">no preview: {escape(failed)}</div>'
    else:
        rows, columns = grid_shape(page.settings.views)
        tile = page.settings.size // columns
        name = page.previews.names[clip_id]
        preview = (f'<a href="previews/{escape(name)}" target="_blank" rel="noopener" title="open the preview alone">'
                   f'<img class="preview" src="previews/{escape(name)}" width="{columns * tile}" height="{rows * tile}" '
                   f'loading="lazy" decoding="async" alt="animated preview of {escape(clip_id)}"></a>')
    captions = "".join(
        f'<li class="caption"><span class="text">{escape(c["text"] or "")}</span>'
        f'<span class="badge">{escape(c["backend"] or "?")} · {escape(c["model"] or "?")}</span>'
        f'<span class="badge{" stand-in" if c["cpu_stand_in"] else ""}">cpu_stand_in: {"yes" if c["cpu_stand_in"] else "no"}</span></li>'
        for c in card["captions"]
    ) or '<li class="caption missing">no caption (not captioned yet, or captioning failed: see the errors table)</li>'
    facts = [
        ("split", f'<span class="badge split-{escape(card["split"])}">{escape(card["split"])}</span>'),
        ("resample error", escape(number(card["resample_error"]))),
        ("motion max / mean", f'{escape(number(card["max_displacement"]))} / {escape(number(card["mean_displacement"]))}'),
        ("T × N × F", f'{number(card["frames"])} × {number(card["num_vertices"])} × {number(card["num_faces"])}'),
        ("fps, looped", f'{escape(number(card["fps"]))}, {number(card["looped"])}'),
        ("source", f'{escape(card["source_kind"])}: {escape(card["source_uri"])}'),
        ("licence", escape(card["license"]) + (f' ({escape(card["attribution"])})' if card["attribution"] else "")),
    ]
    title = f'{card["source_name"] or card["asset_id"][:12]} · {card["animation_name"] or "animation " + str(card["animation"])}'
    data = (f'data-clip-id="{escape(clip_id)}" data-split="{escape(card["split"])}" data-kind="{escape(card["source_kind"])}" '
            f'data-error="{_data_number(card["resample_error"])}" data-motion="{_data_number(card["max_displacement"])}" '
            f'data-search="{escape(search_text(card))}"')
    return (f'<article class="card" {data}>{preview}<div class="body"><h3>{escape(title)}</h3>'
            f'<ul class="captions">{captions}</ul>'
            f'<dl class="facts">{"".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)}</dl>'
            f'<code class="clip-id">{escape(clip_id)}</code></div></article>')


def _data_number(value) -> str:
    return repr(float(value)) if isinstance(value, (int, float)) and math.isfinite(value) else ""


def options(values: list[str], everything: str) -> str:
    return f'<option value="">{escape(everything)}</option>' + "".join(
        f'<option value="{escape(v)}">{escape(v)}</option>' for v in values)


def render_page(page: ReportPage) -> str:
    facts = "".join(f"<p>{escape(k)}: <code>{escape(v)}</code></p>" for k, v in page.facts)
    warnings = "".join(f'<p class="note warning">{escape(w)}</p>' for w in page.warnings)
    totals = "".join(f'<div class="total"><b>{n:,}</b><span>{escape(k)}</span></div>' for k, n in page.totals)
    tables = "".join(table_html(t) for t in page.tables)
    plots = "".join(f'<figure><img src="{escape(path)}" alt="{escape(title)}"></figure>'
                    for title, path in page.plots) or '<p class="note">no data to plot yet</p>'
    splits = sorted({c["split"] for c in page.cards})
    kinds = sorted({c["source_kind"] for c in page.cards})
    sorts = "".join(f'<option value="{v}">sort: {escape(label)}</option>' for v, label in SORTS)
    cards = "".join(card_html(card, page) for card in page.cards)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>DyMesh report: {escape(page.title)}</title><link rel="icon" href="data:,"><style>{STYLE}</style></head>
<body>
<header><h1>DyMesh report: {escape(page.title)}</h1>{facts}</header>
<nav><a href="#overview">overview</a><a href="#funnel">yield funnel</a><a href="#tables">licences, splits, losses</a>
<a href="#plots">distributions</a><a href="#gallery-section">gallery</a></nav>
<main>
<section id="overview"><h2>Overview</h2>{warnings}<div class="totals">{totals}</div></section>
<section id="funnel"><h2>Yield funnel per source</h2>
<p class="note">How many items each step keeps, per source kind (the asset's first provenance). n/r: this output does
not record the step. Items lost on the way are rows of the errors table, by type below.</p>{funnel_html(page.funnel)}</section>
<section id="tables"><h2>Licences, splits and losses</h2><div class="tables">{tables}</div></section>
<section id="plots"><h2>Distributions (all committed rows)</h2><div class="plots">{plots}</div></section>
<section id="gallery-section"><h2>Gallery</h2><p class="note">{escape(page.sample_note)}</p>
<div class="controls"><input type="search" id="search" placeholder="Search captions, clip ids, sources, licences" autocomplete="off" aria-label="search cards">
<select id="split-filter" aria-label="split">{options(splits, "all splits")}</select>
<select id="kind-filter" aria-label="source kind">{options(kinds, "all source kinds")}</select>
<select id="sort" aria-label="sort">{sorts}</select><span id="shown">{len(page.cards)} cards</span></div>
<div id="gallery" class="gallery">{cards}</div></section>
</main>
<script>{SCRIPT}</script>
</body></html>
"""


def write_page(folder: Path, page: ReportPage) -> Path:
    """Write folder/index.html atomically; returns its path."""
    path = Path(folder) / "index.html"
    write_bytes_atomically(path, render_page(page).encode("utf-8"), durable=False)
    return path
