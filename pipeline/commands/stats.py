"""`dymesh stats OUT`: a report over a job's tables, or any SQL query with the tables as views."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "stats",
        help="report on a job output (DuckDB over its Parquet tables)",
        description="The yield funnel and rejections by source kind, counts by licence and split, histograms and "
        "top errors of a job output; or any SQL query over one view per table (provenance, assets, clips, "
        "clip_arrays, funnel, captions, errors, shards: docs/tables.md). Only the partitions of the stage hashes "
        "named in OUT/job.json are read (every partition when there is no job.json).",
    )
    parser.add_argument("out", help="job output folder (local path or s3://bucket/prefix)")
    parser.add_argument("--sql", help="run this query instead of the report, "
                        'e.g. "SELECT split, count(*) FROM clips GROUP BY 1"')
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format (default: table)")
    parser.add_argument("--plot", metavar="DIR", help="also write PNG histograms into DIR")
    parser.add_argument("--bins", type=int, default=10, help="histogram bins (default: 10)")
    parser.set_defaults(func=run)


def format_table(columns: list[str], rows: list[tuple]) -> str:
    """Aligned text for a terminal: control characters in values (file names can hold escape sequences) escaped."""
    from pipeline.manifest import printable

    columns = [printable(c) for c in columns]
    cells = [[printable(_cell(v)) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.rjust(w) if _numeric(v) else v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def format_csv(columns: list[str], rows: list[tuple]) -> str:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([[_cell(v) for v in row] for row in rows])
    return buffer.getvalue().rstrip("\n")


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _numeric(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _records(columns: list[str], rows: list[tuple]) -> list[dict]:
    from stages.shard.sample import plain

    return [plain({c: (v if isinstance(v, (int, float, str, bool, type(None), list, dict)) else str(v)) for c, v in zip(columns, row)}) for row in rows]


def run(args: argparse.Namespace) -> int:
    import json
    import sys
    from pathlib import Path

    import duckdb

    from pipeline.errors import UserError
    from pipeline.stats import connect, plot_histograms, report, run_query, text_bars

    if "://" not in args.out and not Path(args.out).is_dir():
        raise UserError(f"{args.out} is not a folder; pass a job output folder (the --out of `dymesh run`)")
    con = connect(args.out)
    if args.sql:
        try:
            columns, rows = run_query(con, args.sql)
        except duckdb.Error as exc:
            from schemas.tables import TABLES

            raise UserError(f"query failed: {exc}; the views are {', '.join(TABLES)} (docs/tables.md)") from None
        if args.format == "json":
            print(json.dumps(_records(columns, rows), indent=1))
        else:
            print(format_csv(columns, rows) if args.format == "csv" else format_table(columns, rows))
        return 0
    sections = report(con, bins=args.bins)
    if args.format == "json":
        print(json.dumps({title: _records(*section) for title, section in sections.items()}, indent=1))
    else:
        for title, (columns, rows) in sections.items():
            print(f"# {title}" if args.format == "csv" else f"== {title} ==")
            if args.format == "csv":
                print(format_csv(columns, rows))
            elif title.startswith("histogram: "):
                print("\n".join(text_bars(rows)) if rows else "(no data)")
            else:
                print(format_table(columns, rows) if rows else "(no rows)")
            print()
    if args.plot:
        for path in plot_histograms(sections, args.plot):
            print(f"wrote {path}", file=sys.stderr)
    return 0
