"""DuckDB views over a job's Parquet tables, and the `dymesh stats` report built from them.

    from pipeline.stats import connect
    con = connect("out/demo")        # one view per table of schemas.tables (docs/tables.md)
    con.sql("SELECT split, count(*) FROM clips GROUP BY 1").show()

A table's files are its current partitions: when `OUT/job.json` (written by the runner) names the stage hashes,
only `<table>/<that stage's hash>/` and `errors/<stage>/<that stage's hash>/` are read (a run sets the folders of
other hashes aside, see pipeline.supersede, so this only matters between a kill and the next run). Without job.json
every `OUT/<table>/**/*.parquet` is read. Hidden or `_`-prefixed paths (temporary files) are always left out. A
table with no files is an empty view with its schema from schemas.tables. Local folders are read by DuckDB alone
(no pyarrow.dataset); object stores through pyarrow.fs.
"""

from __future__ import annotations

import os

from pipeline.errors import UserError
from schemas.job_record import JOB_FILE
from schemas.tables import TABLE_STAGES, TABLES

HISTOGRAMS = {
    # title: (table, expression) -- scalar columns only, never clip_arrays
    "vertices per clip": ("clips", "num_vertices"),
    "frames per clip": ("clips", "frames"),
    "motion magnitude (max displacement / bbox diagonal)": ("clips", "max_displacement"),
    "resampling error (surface distance / bbox diagonal)": ("clips", "resample_error"),
    "caption length (characters)": ("captions", "length(text)"),
}

COUNTS = {
    "totals": """
        SELECT (SELECT count(*) FROM assets) AS assets, (SELECT count(*) FROM clips) AS clips,
               (SELECT count(*) FROM captions) AS captions, (SELECT count(*) FROM errors) AS errors,
               (SELECT count(*) FROM shards) AS shard_samples, (SELECT count(DISTINCT shard) FROM shards) AS shards""",
    # assets -> evaluated -> animations -> windows -> clips -> shard samples, per source kind and in all
    "yield funnel by source kind": """
        WITH sampled AS (SELECT c.asset_id, count(*) AS n FROM shards s JOIN clips c USING (clip_id) GROUP BY 1)
        SELECT coalesce(a.source_kind, '(all)') AS source_kind, count(*) AS assets,
               count(*) FILTER (WHERE a.animation_count >= 0) AS evaluated,
               coalesce(sum(greatest(a.animation_count, 0)), 0) AS animations,
               coalesce(sum(greatest(f.windows_cut, 0)), 0) AS windows, coalesce(sum(f.clips_kept), 0) AS clips,
               coalesce(sum(s.n), 0) AS shard_samples
        FROM assets a LEFT JOIN funnel f USING (asset_id) LEFT JOIN sampled s USING (asset_id)
        GROUP BY ROLLUP (a.source_kind) ORDER BY a.source_kind NULLS LAST""",
    # why the funnel narrows: assets that failed evaluation, windows not kept, clips not sharded
    "rejections by source kind": """
        WITH rejected AS (
            SELECT a.source_kind, 'evaluate' AS stage, 'assets' AS counted, e.error_type AS reason, count(*) AS n
            FROM errors e JOIN assets a ON e.unit_id = a.asset_id WHERE e.stage = 'evaluate' GROUP BY ALL
            UNION ALL
            SELECT a.source_kind, 'resample', 'windows', r.reason, sum(r.count)
            FROM (SELECT asset_id, unnest(rejections) AS r FROM funnel) JOIN assets a USING (asset_id) GROUP BY ALL
            UNION ALL
            SELECT a.source_kind, 'shard', 'clips', e.error_type, count(*)
            FROM errors e JOIN clips c ON e.unit_id = c.clip_id JOIN assets a USING (asset_id)
            WHERE e.stage = 'shard' GROUP BY ALL)
        SELECT source_kind, stage, counted, reason, n AS count FROM rejected
        ORDER BY source_kind, list_position(['evaluate', 'resample', 'shard'], stage), n DESC, reason""",
    "clips by licence": """
        WITH per_asset AS (SELECT asset_id, count(*) AS n FROM clips GROUP BY asset_id)
        SELECT coalesce(a.license, '(no asset row)') AS license, count(*) AS assets, sum(p.n) AS clips
        FROM per_asset p LEFT JOIN (SELECT asset_id, any_value(license) AS license FROM assets GROUP BY asset_id) a
        USING (asset_id) GROUP BY 1 ORDER BY 3 DESC, 1""",
    "clips by split": """
        WITH sharded AS (SELECT split, count(*) AS samples, count(DISTINCT shard) AS shards,
                                round(sum(size) / 1e6, 1) AS megabytes FROM shards GROUP BY 1)
        SELECT split, count(*) AS clips, count(DISTINCT c.asset_id) AS assets, any_value(s.samples) AS shard_samples,
               any_value(s.shards) AS shards, any_value(s.megabytes) AS megabytes
        FROM clips c LEFT JOIN sharded s USING (split) GROUP BY 1 ORDER BY 1""",
    "top error types per stage": """
        WITH counted AS (SELECT stage, status, error_type, count(*) AS n FROM errors GROUP BY stage, status, error_type)
        SELECT stage, status, error_type, n AS count FROM (
            SELECT *, row_number() OVER (PARTITION BY stage ORDER BY n DESC, status, error_type) AS place FROM counted)
        WHERE place <= 5 ORDER BY stage, n DESC, status, error_type""",
}


def histogram_sql(table: str, expression: str, bins: int = 10) -> str:
    """Equal-width histogram between min and max: rows (bin, low, high, count), every bin present."""
    return f"""
        WITH v AS (SELECT CAST({expression} AS DOUBLE) AS x FROM {table}
                   WHERE {expression} IS NOT NULL AND isfinite(CAST({expression} AS DOUBLE))),
             r AS (SELECT min(x) AS lo, max(x) AS hi FROM v),
             b AS (SELECT CASE WHEN hi > lo THEN least(CAST(floor((x - lo) / (hi - lo) * {bins}) AS INTEGER), {bins - 1}) ELSE 0 END AS bin,
                          count(*) AS n FROM v, r GROUP BY 1)
        SELECT g.bin, r.lo + g.bin * (r.hi - r.lo) / {bins} AS low, r.lo + (g.bin + 1) * (r.hi - r.lo) / {bins} AS high,
               coalesce(b.n, 0) AS count
        FROM range({bins}) AS g(bin) CROSS JOIN r LEFT JOIN b USING (bin)
        WHERE r.lo IS NOT NULL AND (r.hi > r.lo OR g.bin = 0) ORDER BY g.bin"""


def report_queries(bins: int = 10) -> dict[str, str]:
    """Every built-in query of the report, by section title."""
    queries = dict(COUNTS)
    for title, (table, expression) in HISTOGRAMS.items():
        queries[f"histogram: {title}"] = histogram_sql(table, expression, bins)
    return queries


def read_job_file(out_dir: str) -> bytes | None:
    """OUT/job.json's bytes (local path or object store); None without it."""
    from stages.storage import is_remote

    if not is_remote(out_dir):
        try:
            with open(os.path.join(str(out_dir).removeprefix("file://"), JOB_FILE), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None
    from stages.storage import filesystem, join

    fs, root = filesystem(out_dir)
    try:
        with fs.open_input_stream(join(root, JOB_FILE)) as stream:
            return stream.read()
    except FileNotFoundError:
        return None


def current_hashes(out_dir: str) -> dict[str, list[str]] | None:
    """Stage config hashes of the last run ({stage: [hashes]}) from OUT/job.json; None without it."""
    from schemas.job_record import JobRecordError, parse_job_record

    data = read_job_file(out_dir)
    if data is None:
        return None
    try:
        return parse_job_record(data, where=f"{out_dir}/{JOB_FILE}").hashes.all()
    except JobRecordError as exc:
        raise UserError(str(exc)) from None


def table_folders(table: str, hashes: dict | None) -> list[str]:
    """Folders under OUT/<table>/ that hold the current partitions ([""] = the whole table)."""
    if hashes is None:
        return [""]
    if table == "errors":
        return [f"{stage}/{h}" for stage, values in sorted(hashes.items()) for h in sorted(values)]
    stage = TABLE_STAGES.get(table)
    return sorted(hashes[stage]) if stage in hashes else [""]


def _visible(relative: str) -> bool:
    return not any(part.startswith((".", "_")) for part in relative.split("/"))


def table_files(out_dir: str, table: str, hashes: dict | None = None) -> list[str]:
    """Sorted Parquet files of one table under OUT/<table>/ (recursive; only current hashes if given), local or s3://."""
    from stages.storage import is_remote, join

    files = []
    if not is_remote(out_dir):
        base = os.path.join(os.path.abspath(str(out_dir).removeprefix("file://")), table)
        for folder in table_folders(table, hashes):
            for parent, folders, names in os.walk(join(base, folder) if folder else base):
                folders[:] = [f for f in folders if _visible(f)]
                files += [os.path.join(parent, n) for n in names if n.endswith(".parquet") and _visible(n)]
        return sorted(files)
    from pyarrow import fs as pafs

    from stages.storage import filesystem

    fs, root = filesystem(out_dir)
    base = join(root, table)
    for folder in table_folders(table, hashes):
        top = join(base, folder) if folder else base
        for info in fs.get_file_info(pafs.FileSelector(top, recursive=True, allow_not_found=True)):
            relative = info.path[len(base) + 1 :]
            if info.type == pafs.FileType.File and info.path.endswith(".parquet") and _visible(relative):
                files.append(info.path)
    return sorted(files)


def connect(out_dir: str, threads: int | None = None):
    """A DuckDB connection with one view per table of schemas.tables over OUT's current Parquet files."""
    import duckdb

    from stages.storage import is_remote

    con = duckdb.connect(":memory:")
    con.execute("SET parquet_metadata_cache = true")  # the report's queries read each footer once
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    remote = is_remote(str(out_dir))
    hashes = current_hashes(out_dir)
    for table, schema in TABLES.items():
        files = table_files(out_dir, table, hashes)
        if not files:
            con.register(f"_empty_{table}", schema.empty_table())
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM _empty_{table}")
        elif remote:
            import pyarrow.dataset as ds

            from stages.storage import filesystem

            fs, _ = filesystem(out_dir)
            con.register(f"_dataset_{table}", ds.dataset(files, schema=schema, format="parquet", filesystem=fs))
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM _dataset_{table}")
        else:
            listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            # one config hash = one writer = one schema; mixed hashes (no job.json) may differ, so match by name
            union = "" if hashes is not None and table_folders(table, hashes) != [""] else ", union_by_name = true"
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet([{listed}]{union})")
    return con


def run_query(con, sql: str) -> tuple[list[str], list[tuple]]:
    """(column names, rows) of one query."""
    result = con.execute(sql)
    return [d[0] for d in result.description], result.fetchall()


def report(con, bins: int = 10) -> dict[str, tuple[list[str], list[tuple]]]:
    """Every section of the report: title -> (columns, rows)."""
    return {title: run_query(con, sql) for title, sql in report_queries(bins).items()}


def text_bars(rows: list[tuple], width: int = 40) -> list[str]:
    """Histogram rows (bin, low, high, count) as text bars."""
    peak = max((r[3] for r in rows), default=0) or 1
    return [f"{low:>12.4g} .. {high:<12.4g} {'#' * round(width * n / peak):<{width}} {n}" for _, low, high, n in rows]


def plot_histograms(sections: dict[str, tuple[list[str], list[tuple]]], folder: str) -> list[str]:
    """One PNG bar chart per histogram section; returns the files written."""
    import re
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Path(folder).mkdir(parents=True, exist_ok=True)
    written = []
    for title, (_, rows) in sections.items():
        if not title.startswith("histogram: ") or not rows:
            continue
        name = title.removeprefix("histogram: ")
        figure, axes = plt.subplots(figsize=(6, 3.5), dpi=100)
        axes.bar([r[1] for r in rows], [r[3] for r in rows], width=[r[2] - r[1] or 1 for r in rows], align="edge")
        axes.set_title(name)
        axes.set_ylabel("count")
        figure.tight_layout()
        path = Path(folder) / (re.sub(r"[^a-z0-9]+", "_", name.lower()).split("_(")[0].strip("_") + ".png")
        figure.savefig(path, metadata={"Software": None})
        plt.close(figure)
        written.append(str(path))
    return written
