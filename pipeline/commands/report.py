"""`dymesh report OUT [--out DIR]`: a static web page about a job output (counts, yield funnel per source,
licences, distributions, a gallery of clip previews), built from the committed units only."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

MARKERS = "markers"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write a static web page about a job output: counts, yield funnel, licences, plots, clip gallery",
        description="Write OUT/report/index.html (or DIR/index.html), a page that opens from the file system with no "
        "server or network: totals and the yield funnel per source, licences, splits, error types, histograms "
        "(all over every committed row, by DuckDB) and a gallery of animated previews of a seeded sample of clips "
        "per split and source kind, with search, filters and sorting. Only units with a completion marker are "
        "read, so it works on a job that is still running. Previews are rendered in parallel and cached by clip "
        "content: re-running renders only new clips.",
    )
    parser.add_argument("out", help="job output folder (the --out of `dymesh run`; local path or s3://bucket/prefix)")
    parser.add_argument("--out", dest="site", type=Path, default=None, metavar="DIR",
                        help="folder of the report (default: OUT/report; required when OUT is an object store)")
    parser.add_argument("--sample", type=int, default=48, metavar="N",
                        help="gallery: at most N clips per (split, source kind), seeded (default 48)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the gallery sample (default 0)")
    parser.add_argument("--size", type=int, default=256, help="preview side in pixels, a 2x2 grid of views (default 256)")
    parser.add_argument("--renderer", default="numpy", choices=("numpy", "auto", "egl"),
                        help="preview renderer: numpy (same bytes on every machine, default), auto or egl (faster)")
    parser.add_argument("--workers", type=int, default=None,
                        help="preview render processes (default: CPU count, at most 8)")
    parser.add_argument("--bins", type=int, default=30, help="histogram bins (default 30)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.errors import UserError
    from pipeline.progress import Progress
    from pipeline.stats import current_hashes, report
    from stages.report import PreviewSettings, ReportPage, Table, build_funnel, merge_counts, render_previews, write_page
    from stages.report import queries

    remote = "://" in args.out
    if not remote and not Path(args.out).is_dir():
        raise UserError(f"{args.out} is not a folder; pass a job output folder (the --out of `dymesh run`)")
    if remote and args.site is None:
        raise UserError("OUT is an object store: pass --out DIR, a local folder for the report")
    if args.sample < 1 or not 8 <= args.size <= 2048 or args.bins < 1:
        raise UserError("--sample and --bins must be at least 1 and --size between 8 and 2048")
    start = time.perf_counter()
    site = (args.site or Path(args.out) / "report").resolve()
    hashes = current_hashes(args.out)
    markers = committed_markers(args.out)
    con, left_out = committed_connection(args.out, hashes, markers)

    sections = report(con, bins=args.bins)
    plots = histogram_plots(sections, site / "plots")
    queries.prepare(con)
    harvest = harvest_counts(args.out, hashes, markers)
    funnel = build_funnel(merge_counts(harvest, queries.funnel_counts(con)),
                          recorded=queries.funnel_steps(con) | ({"files seen", "files harvested"} if harvest else set()))
    cards = queries.sample_cards(con, args.sample, args.seed)

    progress = None

    def on_progress(done: int, total: int) -> None:
        nonlocal progress
        progress = progress or Progress("report previews", total, "clips")
        progress.update(done - progress.done)

    settings = PreviewSettings(size=args.size, renderer=args.renderer)
    workers = args.workers or min(8, os.cpu_count() or 1)
    previews = render_previews(cards, site / "previews", lambda ids: queries.clip_arrays(con, ids), settings,
                               workers, on_progress)
    if progress:
        progress.close()

    columns, rows = sections["totals"]
    totals = dict(zip(columns, rows[0])) if rows else {}
    all_clips = int(totals.get("clips", 0))
    job = job_record(args.out)
    page = ReportPage(
        title=str(job.get("name") or Path(str(args.out).rstrip("/")).name),
        facts=[("output", str(args.out)), *stage_facts(hashes, markers, job.get("units"))],
        totals=[(name.replace("_", " "), int(n)) for name, n in totals.items()],
        funnel=funnel,
        tables=[
            Table("clips by licence", *sections["clips by licence"],
                  note="licence of each asset's first provenance that states one"),
            Table("clips by split and source kind", *_columns_rows(queries.split_source_table(con)),
                  note="motion: max vertex displacement / bbox diagonal"),
            Table("rejected or failed items", *_columns_rows(queries.losses(con)),
                  note="every row is in the errors table: dymesh stats OUT --sql \"SELECT * FROM errors\""),
        ],
        plots=[(title.removeprefix("histogram: "), f"plots/{path.name}") for title, path in
               zip([t for t, (_, rows) in sections.items() if t.startswith("histogram: ") and rows], plots)],
        cards=cards,
        previews=previews,
        settings=settings,
        sample_note=f"{len(cards):,} of {all_clips:,} clips: up to {args.sample} per split and source kind, drawn with "
                    f"seed {args.seed} (--sample, --seed). Every number and plot above is over all {all_clips:,} clips.",
        warnings=[f"{n} {table} partition(s) without a completion marker were left out (a unit still being "
                  "written, or one a killed run left behind)" for table, n in sorted(left_out.items())]
        + [f"{len(previews.failed)} preview(s) could not be rendered; their cards say why"] * bool(previews.failed),
    )
    index = write_page(site, page)
    print(f"report: {len(cards)} cards ({previews.rendered} previews rendered, {previews.cached} cached), "
          f"{time.perf_counter() - start:.1f}s", file=sys.stderr)
    print(index)
    return 0


def histogram_plots(sections: dict, folder: Path) -> list[Path]:
    """pipeline.stats' PNG histograms in `folder`, drawn again only when their data changed (matplotlib is most of a
    warm report's time); PNGs no histogram uses are removed."""
    import hashlib
    import inspect

    from pipeline.stats import plot_histograms
    from stages.storage import write_bytes_atomically

    histograms = {t: rows for t, (_, rows) in sections.items() if t.startswith("histogram: ")}
    drawing = inspect.getsource(plot_histograms)  # a new look of the plots draws them again
    key = hashlib.sha256(json.dumps([histograms, drawing], sort_keys=True, default=str).encode()).hexdigest()
    record = folder / ".histograms.json"
    try:
        known = json.loads(record.read_text())
        if known["key"] == key and all((folder / name).is_file() for name in known["files"]):
            return [folder / name for name in known["files"]]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    plots = [Path(p) for p in plot_histograms(sections, str(folder))]
    for stale in folder.glob("*.png"):
        if stale not in plots:
            stale.unlink()
    write_bytes_atomically(record, json.dumps({"key": key, "files": [p.name for p in plots]}).encode(), durable=False)
    return plots


def _columns_rows(records: list[dict]) -> tuple[list[str], list[tuple]]:
    columns = list(records[0]) if records else []
    return [c.replace("_", " ") for c in columns], [tuple(r.values()) for r in records]


def committed_markers(out: str) -> set[str]:
    """Paths of every completion marker under OUT/markers/, relative to it ("<stage>/<hash>/<unit>.json")."""
    from pyarrow import fs as pafs

    from stages.storage import filesystem, join

    fs, root = filesystem(out)
    base = join(root, MARKERS)
    infos = fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
    return {i.path[len(base) + 1 :] for i in infos if i.type == pafs.FileType.File and i.path.endswith(".json")}


def marker_of(table: str, relative: str) -> str | None:
    """The marker ("<stage>/<hash>/<unit>.json") that commits OUT/<table>/<relative>; None outside the layout."""
    from pipeline.stats import TABLE_STAGES

    parts = relative.split("/")
    if table == "errors" and len(parts) == 3:
        stage, stage_hash, name = parts
    elif table in TABLE_STAGES and len(parts) == 2:
        stage, (stage_hash, name) = TABLE_STAGES[table], parts
    else:
        return None
    unit = name[len("part-") : -len(".parquet")] if name.startswith("part-") and name.endswith(".parquet") else None
    return f"{stage}/{stage_hash}/{unit}.json" if unit else None


def committed_connection(out: str, hashes: dict | None, markers: set[str]):
    """pipeline.stats.connect's views, each narrowed to the files of committed units; (connection, {table: files
    left out})."""
    from pipeline.stats import connect, table_files
    from schemas.tables import TABLES
    from stages.storage import filesystem, is_remote, join

    con = connect(out)
    fs, root = filesystem(out)
    left_out = {}
    for table, schema in TABLES.items():
        files = table_files(out, table, hashes)
        base = join(root, table)
        committed = [f for f in files if marker_of(table, f[len(base) + 1 :]) in markers]
        if len(committed) == len(files):
            continue
        left_out[table] = len(files) - len(committed)
        if not committed:
            con.register(f"_committed_{table}", schema.empty_table())
        elif is_remote(out):
            import pyarrow.dataset as ds

            con.register(f"_committed_{table}", ds.dataset(committed, schema=schema, format="parquet", filesystem=fs))
        else:
            listed = ", ".join("'" + f.replace("'", "''") + "'" for f in committed)
            con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM read_parquet([{listed}], union_by_name = true)")
            continue
        con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM _committed_{table}")
    return con, left_out


def harvest_counts(out: str, hashes: dict | None, markers: set[str]) -> dict[str, dict[str, int]]:
    """{source kind: {"files seen", "files harvested"}} from the harvest markers of the current run."""
    from stages.storage import filesystem, join

    fs, root = filesystem(out)
    wanted = set(hashes.get("harvest") or []) if hashes else None
    counts: dict[str, dict[str, int]] = {}
    for relative in sorted(markers):
        stage, stage_hash, _ = relative.split("/", 2) if relative.count("/") == 2 else ("", "", "")
        if stage != "harvest" or (wanted is not None and stage_hash not in wanted):
            continue
        with fs.open_input_stream(join(root, MARKERS, relative)) as stream:
            marker = json.loads(stream.read())
        kind = counts.setdefault(str(marker.get("kind", "(unknown)")), {"files seen": 0, "files harvested": 0})
        kind["files seen"] += int(marker.get("seen", 0))
        kind["files harvested"] += int(marker.get("ok", 0))
    return counts


def job_record(out: str) -> dict:
    """OUT/job.json (written by the runner), or {} when there is none or it is unreadable."""
    from stages.storage import filesystem, join

    fs, root = filesystem(out)
    try:
        with fs.open_input_stream(join(root, "job.json")) as stream:
            record = json.loads(stream.read())
    except (FileNotFoundError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def stage_facts(hashes: dict | None, markers: set[str], units) -> list[tuple[str, str]]:
    """(stage, "hash, N of M units committed") for the run job.json names."""
    if not hashes:
        return [("stages", "no job.json: every partition with a completion marker is read")]
    facts = []
    for stage in ("evaluate", "resample", "caption", "shard"):
        if stage in hashes:
            done = sum(1 for m in markers if m.startswith(f"{stage}/{hashes[stage]}/"))
            of = 1 if stage == "shard" else units
            facts.append((stage, f"{hashes[stage]}: {done}" + (f" of {of}" if isinstance(of, int) else "") + " unit(s) committed"))
    return facts
