"""jobs/mixed-sources.yaml as shipped, on the inputs `dymesh generate-sources` writes: glTF, DT4D, AMASS (synthetic
body model) and FBX (Blender) assets run end to end; every input is accounted for; clips of every source kind
reach the shards with their provenance and licence. Needs Blender for the FBX inputs (make test provides it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paths import REPO
from pipeline.accounting import balanced
from pipeline.config import load_job
from pipeline.runner import Runner
from stages.formats.blender import blender_python

pytestmark = [pytest.mark.ray, pytest.mark.skipif(blender_python() is None, reason="the FBX inputs need Blender "
                                                  "(bpy): pip install -e '.[blender]' or set DYMESH_BLENDER_PYTHON")]
# local glTF files state their licence in asset.extras (the generated inputs say CC0-1.0); the others come from the
# job's sources
KINDS = {"local": "CC0-1.0", "dt4d": "LicenseRef-DeformingThings4D", "amass": "LicenseRef-synthetic-AMASS-layout",
         "blender": "CC0-1.0"}


@pytest.fixture(scope="module")
def mixed_run(ray_session, tmp_path_factory):
    from pipeline.cli import main

    folder = tmp_path_factory.mktemp("mixed")
    patch = pytest.MonkeyPatch()
    patch.chdir(folder)  # the job's paths are tried next to the job file, then here
    try:
        assert main(["generate-sources", "--out", "mixed-inputs"]) == 0
        summary = Runner(load_job(REPO / "jobs" / "mixed-sources.yaml"), folder / "out", show_progress=False).run()
    finally:
        patch.undo()
    return folder / "out", summary


def test_every_input_is_accounted_for(mixed_run):
    _, summary = mixed_run
    stages = summary["stages"]
    assert all(balanced(counts) for counts in stages.values())
    assert stages["harvest"]["seen"] == stages["harvest"]["ok"] == 9  # 3 glTF + 2 .anime + 2 motions + 2 FBX
    assert stages["evaluate"]["seen"] == stages["evaluate"]["ok"] == 9
    assert stages["shard"]["ok"] == stages["caption"]["seen"] > 0


def test_clips_of_every_source_kind_reach_the_shards_with_provenance_and_licence(mixed_run):
    import webdataset as wds

    out, summary = mixed_run
    shards = sorted((out / summary["paths"]["webdataset"]).rglob("*.tar"))
    samples = [json.loads(s["json"]) for s in wds.WebDataset([str(p) for p in shards], shardshuffle=False)]
    kinds = {}
    for sample in samples:
        [source] = sample["sources"]
        kinds.setdefault(source["kind"], []).append(sample)
        assert sample["license"] == source["license"] == KINDS[source["kind"]]
        assert source["uri"].startswith("mixed-inputs/") and sample["attribution"] == source["attribution"]
        assert sample["attribution"] or source["kind"] == "local"
    assert set(kinds) == set(KINDS)
    assert {s["sources"][0]["uri"].rsplit(".", 1)[1] for s in kinds["blender"]} == {"fbx"}


def test_assets_and_clips_break_down_by_source_kind(mixed_run):
    import duckdb

    from pipeline.stats import connect

    out, _ = mixed_run
    con = connect(str(out))
    rows = dict(con.execute("""
        SELECT a.source_kind, count(c.clip_id) FROM assets a LEFT JOIN clips c USING (asset_id)
        GROUP BY 1""").fetchall())
    assert set(rows) == set(KINDS) and all(n > 0 for n in rows.values())
    formats = dict(con.execute("SELECT source_kind, any_value(file_format) FROM assets GROUP BY 1").fetchall())
    assert formats == {"local": "glb", "dt4d": "dt4d", "amass": "amass", "blender": "fbx"}
    assert isinstance(con, duckdb.DuckDBPyConnection)
