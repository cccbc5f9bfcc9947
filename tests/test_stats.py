"""DuckDB views over the job tables and the `dymesh stats` report."""

from __future__ import annotations

import json

import pytest

from pipeline.cli import main
from pipeline.errors import UserError
from pipeline.stats import connect, report, report_queries
from schemas.tables import error_row
from shard_clips import synthetic_dataset, write_job_tables
from stages.shard import ShardConfig, layout_of, write_shards


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    out = tmp_path_factory.mktemp("job")
    clips, captions, assets = synthetic_dataset(assets=10, clips_per_asset=3)
    errors = [
        error_row("evaluate", "a", "malformed", "bad accessor"),
        error_row("resample", "b", "static", "no motion", status="skipped"),
        error_row("resample", "c", "static", "no motion", status="skipped"),
        error_row("resample", "d", "too-large", "over limit", status="skipped"),
    ]
    write_job_tables(out, clips, captions, assets, errors)
    write_shards(clips, captions, assets, layout_of(str(out), "5a5a5a"), ShardConfig(max_shard_samples=8))
    (out / "clips" / "c0ffee" / ".part-9.parquet.tmp").write_bytes(b"half written")  # ignored: hidden temp file
    return out, clips, captions, assets


def test_views_over_partitioned_tables(job):
    out, clips, captions, assets = job
    con = connect(str(out))
    assert con.execute("SELECT count(*) FROM clips").fetchone()[0] == len(clips)
    assert con.execute("SELECT count(*) FROM captions").fetchone()[0] == sum(len(v) for v in captions.values())
    assert con.execute("SELECT count(*) FROM assets").fetchone()[0] == len(assets)
    assert con.execute("SELECT count(DISTINCT stage) FROM errors").fetchone()[0] == 2
    assert con.execute("SELECT count(*) FROM shards").fetchone()[0] == len(clips)
    joined = con.execute("SELECT count(*) FROM clips c JOIN shards s ON s.key = c.clip_id").fetchone()[0]
    assert joined == len(clips)


def test_only_current_config_hashes_when_job_json_names_them(tmp_path):
    """Partitions of an older config left in OUT are not counted again once job.json names the current hashes."""
    import shutil

    clips, captions, assets = synthetic_dataset(assets=4, clips_per_asset=2)
    errors = [error_row("resample", "x", "static", "no motion", status="skipped")]
    write_job_tables(tmp_path, clips, captions, assets, errors)
    write_shards(clips, captions, assets, layout_of(str(tmp_path), "5a5a5a"), ShardConfig())
    for table, old, new in [("clips", "c0ffee", "d00d00"), ("captions", "beef00", "beef01"), ("assets", "abc123", "abc124"),
                            ("errors", "resample/0a0a0a", "resample/d00d00"), ("shards", "5a5a5a", "5b5b5b")]:
        shutil.copytree(tmp_path / table / old, tmp_path / table / new)  # a second run after a config change
    counts = "SELECT (SELECT count(*) FROM clips), (SELECT count(*) FROM captions), (SELECT count(*) FROM assets), (SELECT count(*) FROM errors), (SELECT count(*) FROM shards)"
    every = (len(clips), sum(len(v) for v in captions.values()), len(assets), len(errors), len(clips))
    assert connect(str(tmp_path)).execute(counts).fetchone() == tuple(2 * n for n in every)  # no job.json: every file
    hashes = {"harvest": ["f00"], "evaluate": "abc124", "resample": "d00d00", "caption": "beef01", "shard": "5b5b5b"}
    (tmp_path / "job.json").write_text(json.dumps({"name": "t", "hashes": hashes}))
    assert connect(str(tmp_path)).execute(counts).fetchone() == every
    (tmp_path / "clips" / "d00d00" / "part-0.parquet").unlink()  # the current run is half done: its files only
    assert connect(str(tmp_path)).execute("SELECT count(*) FROM clips").fetchone()[0] == len(clips) - len(clips) // 2
    for bad in ("{not json", json.dumps({"hashes": dict(hashes, resample="../../elsewhere")})):
        (tmp_path / "job.json").write_text(bad)
        with pytest.raises(UserError, match="job.json"):
            connect(str(tmp_path))


def test_missing_tables_are_empty_views(tmp_path):
    con = connect(str(tmp_path))
    for table in ("assets", "clips", "captions", "errors", "shards"):
        assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
    assert "num_vertices" in [d[0] for d in con.execute("SELECT * FROM clips").description]
    assert "vertices" not in [d[0] for d in con.execute("SELECT * FROM clips").description]  # arrays: clip_arrays
    sections = report(con)
    assert sections["totals"][1] == [(0, 0, 0, 0, 0, 0)]


def test_report_sections(job):
    out, clips, _, assets = job
    sections = report(connect(str(out)))
    columns, rows = sections["clips by licence"]
    assert sum(r[2] for r in rows) == len(clips) and {r[0] for r in rows} <= {a["license"] for a in assets.values()}
    columns, rows = sections["yield funnel by source kind"]
    assert columns == ["source_kind", "assets", "evaluated", "animations", "windows", "clips", "shard_samples"]
    n = len(assets)
    expected = (n, n, 2 * n, len(clips) + n, len(clips), len(clips))  # one static window per asset (write_job_tables)
    assert rows == [("generated", *expected), ("(all)", *expected)]
    assert sections["rejections by source kind"][1] == [("generated", "resample", "windows", "static", n)]
    columns, rows = sections["clips by split"]
    assert sum(r[1] for r in rows) == sum(r[3] for r in rows) == len(clips)
    assert {r[0]: r[1] for r in rows} == {s: sum(c.split == s for c in clips) for s in {c.split for c in clips}}
    errors = sections["top error types per stage"][1]
    assert errors[0][:4] == ("evaluate", "failed", "malformed", 1) and errors[1][2:] == ("static", 2)
    histogram = sections["histogram: vertices per clip"][1]
    assert len(histogram) == 10 and sum(r[3] for r in histogram) == len(clips)
    assert histogram[0][1] == min(c.num_vertices for c in clips) and histogram[-1][2] == max(c.num_vertices for c in clips)
    assert len(sections["histogram: frames per clip"][1]) == 1  # constant column: one bin
    assert all("vertices," not in sql and "faces," not in sql for sql in report_queries().values())


def test_cli_formats_sql_and_plots(job, tmp_path, capsys):
    out = job[0]
    assert main(["stats", str(out), "--plot", str(tmp_path / "plots")]) == 0
    text = capsys.readouterr().out
    assert "== clips by licence ==" in text and "#" in text
    assert len(list((tmp_path / "plots").glob("*.png"))) == 5
    assert main(["stats", str(out), "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["totals"][0]["clips"] == len(job[1])
    assert main(["stats", str(out), "--sql", "SELECT split, count(*) AS n FROM shards GROUP BY 1 ORDER BY 1", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "split,n" and sum(int(line.split(",")[1]) for line in lines[1:]) == len(job[1])
    assert main(["stats", str(out), "--sql", "SELECT nope FROM clips"]) == 2
    assert "query failed" in capsys.readouterr().err
    assert main(["stats", str(tmp_path / "missing")]) == 2
