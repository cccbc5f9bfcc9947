"""Runner mechanics without Ray: accounting, atomic partitions and markers, provenance grouping, progress, the
worker function on real and broken assets, and `dymesh status` on a job folder."""

from __future__ import annotations

import io

import pyarrow as pa
import pytest

from paths import ASSETS, BROKEN
from pipeline.accounting import account, balanced, by_unit, merge
from pipeline.errors import UserError
from pipeline.manifest import Manifest, atomic_write_json
from pipeline.progress import Progress
from pipeline.plan import asset_row, group_assets
from pipeline.tasks import AssetStats, clips_for_asset
from schemas.tables import ASSETS as ASSETS_SCHEMA
from schemas.tables import PROVENANCE
from schemas.tables import error_row
from stages.splits import assign_split
from stages.storage import write_table_atomically


def test_account_gives_every_item_exactly_one_outcome():
    rows = [error_row("resample", "b", "static", "m", status="skipped"),
            error_row("resample", "c", "static", "m", status="skipped"),
            error_row("resample", "c", "nan", "m"),  # a failed row wins over a skipped one
            error_row("resample", "x", "other", "m")]  # names an item not seen: not counted
    counts, extra = account("resample", ["a", "b", "c", "d"], {"a"}, by_unit(rows))
    assert (counts["seen"], counts["ok"], counts["skipped"], counts["failed"]) == (4, 1, 1, 2)
    assert [(r["unit_id"], r["error_type"]) for r in extra] == [("d", "no-output")]  # nothing disappears
    assert counts["error_types"] == {"nan": 1, "no-output": 1, "static": 2}
    assert balanced(counts)
    total = merge([counts, counts])
    assert (total["seen"], total["failed"], total["error_types"]["static"]) == (8, 4, 4) and balanced(total)


def test_partitions_are_atomic_and_deterministic(tmp_path):
    table = pa.table({"x": [3, 1, 2]})
    write_table_atomically(tmp_path / "a" / "part-00000.parquet", table, durable=True)
    write_table_atomically(tmp_path / "b" / "part-00000.parquet", table, durable=True)
    assert (tmp_path / "a" / "part-00000.parquet").read_bytes() == (tmp_path / "b" / "part-00000.parquet").read_bytes()
    assert not list(tmp_path.rglob(".tmp-*"))
    (tmp_path / "a" / ".tmp-part-00001.parquet.123").write_bytes(b"half written")  # what a kill leaves
    manifest = Manifest(tmp_path)
    assert manifest.clean_temp() == 1 and not list(tmp_path.rglob(".tmp-*"))


def test_markers_commit_units(tmp_path):
    manifest = Manifest(tmp_path)
    assert not manifest.is_done("clips", "h1", "00000")
    manifest.commit("clips", "h1", "00000", {"seen": 2, "ok": 2})
    manifest.commit("clips", "h1", "00001", {"seen": 1, "ok": 0})
    assert manifest.is_done("clips", "h1", "00000") and not manifest.is_done("clips", "h2", "00000")
    assert manifest.markers("clips", "h1") == {"00000": {"seen": 2, "ok": 2}, "00001": {"seen": 1, "ok": 0}}
    path = tmp_path / "same.json"
    atomic_write_json(path, {"a": 1})
    stamp = path.stat().st_mtime_ns
    atomic_write_json(path, {"a": 1})  # identical content: not rewritten
    assert path.stat().st_mtime_ns == stamp


def provenance(asset_id, uri, licence="", name=""):
    return {"asset_id": asset_id, "source_kind": "local", "uri": uri, "name": name, "license": licence,
            "attribution": "", "tags": [], "file_bytes": 10, "file_format": "glb", "blob_path": f"blobs/{asset_id}.glb"}


def test_group_assets_keeps_every_provenance_sorted():
    assets = group_assets([provenance("b", "z.glb"), provenance("a", "y.glb", "CC0-1.0", "Y"),
                           provenance("a", "x.glb", "", "X")])
    assert sorted(assets) == ["a", "b"]
    assert [s["uri"] for s in assets["a"].sources] == ["x.glb", "y.glb"]
    assert assets["a"].license == "CC0-1.0" and assets["a"].name == "X"
    assert assets["a"].source_text() == "x.glb (+1 more)"
    assert [s["kind"] for s in assets["a"].sources] == ["local", "local"]
    rows = [provenance("b", "z.glb")]
    assert pa.Table.from_pylist(rows, schema=PROVENANCE).to_pylist() == rows  # the test rows are PROVENANCE rows
    row = asset_row("a", assets["a"], AssetStats(animations=1, vertices=8, faces=12))
    assert (row["source_kind"], row["name"], row["animation_count"], row["evaluated_vertices"]) == ("local", "X", 1, 8)
    assert set(row) == set(ASSETS_SCHEMA.names)  # from_pylist would drop a misspelt column and null a missing one
    assert pa.Table.from_pylist([row], schema=ASSETS_SCHEMA).to_pylist() == [row]


def test_progress_in_a_pipe_prints_rate_and_eta_lines():
    stream = io.StringIO()
    progress = Progress("clips", 4, "assets", stream, interval_s=0.0)
    progress.update(1)
    progress.update(1, "clips 3")
    progress.close()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("clips: 1/4 assets [") and "assets/s, ETA" in lines[0]
    assert lines[-1].startswith("clips: 2/4 assets") and lines[-1].endswith("clips 3")


def test_worker_function_on_a_good_and_a_broken_asset():
    from stages.evaluate import Limits
    from stages.resample import ResampleConfig

    config = ResampleConfig(vertices=64, frames=[8], max_clips_per_animation=1, quality_samples=128)
    good = clips_for_asset("a" * 64, (ASSETS / "BoxAnimated.glb").read_bytes(), "glb", "BoxAnimated.glb",
                           Limits(), config)
    assert good.evaluate_errors == [] and good.stats.animations == 1
    assert good.clip_count > 0 and good.stage_seconds > 0
    assert good.clips.column("clip_id").to_pylist() == good.arrays.column("clip_id").to_pylist()
    assert set(good.clips.column("split").to_pylist()) == {assign_split("a" * 64)}  # every clip carries its split
    funnel = good.funnel
    rejected = sum(r["count"] for r in funnel["rejections"])
    assert funnel["clips_kept"] == good.clip_count and funnel["windows_cut"] == good.clip_count + rejected
    assert rejected == len(good.resample_errors)
    broken = clips_for_asset("b" * 64, (BROKEN / "node_cycle.glb").read_bytes(), "glb", "node_cycle.glb",
                             Limits(), config)
    assert broken.clips is None and broken.funnel is None and broken.stats.animations == -1 and not broken.evaluated
    [row] = broken.evaluate_errors
    assert (row["stage"], row["unit_id"], row["source"], row["status"]) == ("evaluate", "b" * 64, "node_cycle.glb",
                                                                            "failed")


def test_status_of_a_folder_that_is_not_a_job(tmp_path):
    from pipeline.cli import main

    assert main(["status", str(tmp_path)]) == 2  # UserError: printed as one line, exit 2
    with pytest.raises(UserError, match="not a dymesh job folder"):
        from pipeline.commands.status import load_summary

        load_summary(tmp_path)


def test_an_asset_from_a_local_folder_takes_the_licence_its_file_declares(tmp_path):
    """A local folder gives no licence; the demo's generated files declare CC0-1.0 (asset.extras, asset.copyright)."""
    from pipeline.config import HarvestConfig
    from pipeline.sources import LocalSource
    from stages.generate import generate_asset
    from stages.harvest import BlobStore, harvest_source

    generate_asset("creature", 1, tmp_path / "in" / "thing.glb")
    rows, errors = harvest_source(LocalSource(paths=[str(tmp_path / "in")]), HarvestConfig(), str(tmp_path),
                                  BlobStore(tmp_path / "out"))
    assert not errors
    [asset] = group_assets(rows).values()
    row = asset_row(rows[0]["asset_id"], asset, AssetStats())
    assert (row["source_kind"], row["license"]) == ("local", "CC0-1.0") and row["name"] and row["tags"]
