"""A job folder read as given with the tools users have -- plain DuckDB, pyarrow.dataset, pandas, Ray Data, HF
`datasets` -- with the right counts, joins that read naturally, and the recipes of docs/tables.md run as written.
(The tars in OUT/webdataset/ are read with WebDataset tools in tests/test_shard_readers.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from checkout import fenced_blocks
from paths import REPO
from demo_job import JOB, demo_output

pytestmark = pytest.mark.ray
PARQUET_TABLES = ("provenance", "assets", "clips", "clip_arrays", "funnel", "captions", "errors", "shards")


@pytest.fixture(scope="module")
def job(ray_session, tmp_path_factory):
    out, summary = demo_output(tmp_path_factory)
    stages = summary["stages"]
    expected = {"provenance": 6, "assets": 6, "clips": stages["resample"]["clips"],
                "clip_arrays": stages["resample"]["clips"], "funnel": stages["resample"]["seen"],
                "captions": stages["caption"]["captions"], "errors": sum(c["error_rows"] for c in stages.values()),
                "shards": stages["shard"]["samples"]}
    assert expected["clips"] >= 6 and expected["errors"] > 0 and expected["captions"] == expected["clips"]
    return out, expected


def files(out: Path, table: str) -> list[str]:
    return sorted(str(p) for p in (out / table).rglob("*.parquet"))


def test_plain_duckdb_globs_read_exactly_the_current_rows(job):
    out, expected = job
    for table, rows in expected.items():
        query = f"SELECT count(*) FROM read_parquet('{out}/{table}/**/*.parquet')"
        assert duckdb.connect().execute(query).fetchone()[0] == rows, table


def test_pyarrow_dataset_and_pandas_read_each_table_folder_as_given(job):
    import pandas
    import pyarrow.dataset as ds

    out, expected = job
    for table in PARQUET_TABLES:
        assert ds.dataset(out / table, format="parquet").count_rows() == expected[table], table
        assert len(pandas.read_parquet(out / table)) == expected[table], table


def test_ray_data_reads_a_table_folder_and_a_list_of_part_files(job):
    import ray.data

    out, expected = job
    for table in ("clips", "clip_arrays", "assets"):
        assert ray.data.read_parquet(str(out / table)).count() == expected[table]
        assert ray.data.read_parquet(files(out, table)).count() == expected[table]  # needs aiohttp (HTTPFileSystem)


def test_hugging_face_datasets_loads_the_tables(job, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    from datasets import load_dataset

    out, expected = job
    for table in ("clips", "assets", "funnel", "clip_arrays"):
        data = load_dataset("parquet", data_files=files(out, table), split="train", cache_dir=str(tmp_path / "hf"))
        assert data.num_rows == expected[table], table
    assert set(data.column_names) == {"clip_id", "vertices", "vertices_shape", "faces", "faces_shape"}


def test_tables_join_naturally_and_carry_split_licence_kind_name_tags(job):
    from stages.splits import SplitConfig, assign_split

    out, expected = job
    con = duckdb.connect()
    for table in ("clips", "assets", "shards", "funnel"):
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{out}/{table}/**/*.parquet')")
    clip_columns = [d[0] for d in con.execute("SELECT * FROM clips").description]
    assert "vertices" not in clip_columns and "faces" not in clip_columns  # metadata only
    joined = con.execute("SELECT * FROM clips JOIN assets USING (asset_id)")
    names = [d[0] for d in joined.description]
    assert len(names) == len(set(names)) and len(joined.fetchall()) == expected["clips"]  # no clashing names
    split = SplitConfig(fractions=tuple(JOB["split"]["fractions"]))
    for asset_id, clip_split in con.execute("SELECT asset_id, split FROM clips").fetchall():
        assert clip_split == assign_split(asset_id, split)  # every clip row carries its asset's split
    mismatched = "SELECT count(*) FROM shards s JOIN clips c USING (clip_id) WHERE s.split <> c.split"
    assert con.execute(mismatched).fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM shards JOIN clips USING (clip_id)").fetchone()[0] == expected["shards"]
    for kind, license, name, tags in con.execute("SELECT source_kind, license, name, tags FROM assets").fetchall():
        assert (kind, license) == ("generated", "CC0-1.0") and name and "generated" in tags
    grouped = con.execute("SELECT source_kind, count(*) FROM assets GROUP BY ALL").fetchall()
    assert grouped == [("generated", 6)]
    funnel = con.execute("SELECT sum(clips_kept), min(windows_cut - clips_kept - "
                         "list_sum([r.count for r in rejections])) FROM funnel").fetchone()
    assert funnel == (expected["clips"], 0)  # windows cut = clips kept + rejected windows, per asset


def test_clip_arrays_decode_to_the_shard_samples(job):
    import numpy as np
    import pandas

    from stages.shard import read_sample

    out, _ = job
    arrays = pandas.read_parquet(out / "clip_arrays")
    for row in arrays.head(3).itertuples():
        sample = read_sample(str(out), row.clip_id)  # the job folder: its current shards
        np.testing.assert_array_equal(np.frombuffer(row.vertices, "<f4").reshape(row.vertices_shape), sample["vertices"])
        np.testing.assert_array_equal(np.frombuffer(row.faces, "<i4").reshape(row.faces_shape), sample["faces"])


def test_stats_funnel_of_a_real_job(job):
    from pipeline.stats import connect, report

    out, expected = job
    sections = report(connect(str(out)))
    columns, rows = sections["yield funnel by source kind"]
    funnel = dict(zip(columns, rows[-1]))
    assert rows[-1][0] == "(all)" and rows[0][1:] == rows[-1][1:]  # one source kind
    assert (funnel["assets"], funnel["evaluated"], funnel["clips"], funnel["shard_samples"]) == (
        6, expected["funnel"], expected["clips"], expected["shards"])
    rejected = sum(r[4] for r in sections["rejections by source kind"][1] if r[1] == "resample")
    assert funnel["windows"] == funnel["clips"] + rejected and funnel["animations"] >= 6


def test_the_recipes_in_docs_tables_md_run_as_written(job, monkeypatch):
    out, _ = job
    blocks = [b.body for b in fenced_blocks("docs/tables.md") if b.language == "python"]
    assert len(blocks) == 2
    monkeypatch.chdir(out.parent)
    assert out.name == "out"
    scope: dict = {}
    for block in blocks:
        exec(block.replace("out/demo", "out"), scope)  # noqa: S102 - the documentation's own examples
    assert scope["vertices"].ndim == 3 and scope["faces"].shape[1] == 3


def test_status_imports_no_pyarrow_duckdb_ray_or_torch(job):
    out, _ = job
    code = ("import sys; from pipeline.cli import main; code = main(['status', sys.argv[1]]); "
            "print('HEAVY', sorted(m for m in ('pyarrow', 'duckdb', 'ray', 'torch') if m in sys.modules)); "
            "sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout
