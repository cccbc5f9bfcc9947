"""Generated assets, evaluated by `stages.evaluate`, match the three.js oracle (tests/data/oracle/).

The committed trajectories were made by `benchmarks/refresh_generated_oracle.py` from fixed
generator plans stored in each meta.json. If the generator's output changes, the hash test fails:
rerun that script (it needs node and the oracle's `npm install`) and commit the new data.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from stages.generate import AssetPlan, asset_bytes

ORACLE_DATA = Path(__file__).parent / "data" / "oracle"
CASES = sorted(p.name for p in ORACLE_DATA.iterdir() if (p / "meta.json").is_file())
TOLERANCE = 1e-4  # max vertex error / frame-0 bounding-box diagonal, as for ../shared/reference
REFRESH = "python benchmarks/refresh_generated_oracle.py"


def meta_of(name: str) -> dict:
    return json.loads((ORACLE_DATA / name / "meta.json").read_text())


def regenerate(name: str) -> bytes:
    return asset_bytes(AssetPlan(**meta_of(name)["plan"]))


def test_oracle_set_covers_kinds_and_interpolations():
    assert {meta_of(n)["plan"]["kind"] for n in CASES} == {"creature", "blob", "machine"}
    modes = set()
    for name in CASES:
        plan = AssetPlan(**meta_of(name)["plan"])
        modes |= {plan.interpolation_of(k) for k in range(plan.animations)}
    assert modes == {"STEP", "LINEAR", "CUBICSPLINE"}


@pytest.mark.parametrize("name", CASES)
def test_generated_bytes_match_oracle_asset(name):
    digest = hashlib.sha256(regenerate(name)).hexdigest()
    assert digest == meta_of(name)["asset_sha256"], (
        f"{name}: generated asset bytes changed (sha256 {digest[:12]}...); the committed oracle data is stale: "
        f"run `{REFRESH}` and commit tests/data/oracle/")


@pytest.mark.parametrize("name", CASES)
def test_evaluator_matches_oracle_on_generated_asset(name):
    from stages.evaluate import load_asset_bytes

    meta = meta_of(name)
    scene = load_asset_bytes(regenerate(name), name=f"{name}.glb")
    assert scene.num_vertices == meta["vertices"], f"{name}: vertex count {scene.num_vertices} != oracle"
    assert len(scene.faces) == meta["faces"], f"{name}: face count {len(scene.faces)} != oracle {meta['faces']}"
    assert [a.name for a in scene.animations] == [c["name"] for c in meta["clips"]]
    for clip in meta["clips"]:
        reference = np.load(ORACLE_DATA / name / f"clip{clip['index']}.npz")
        vertices = scene.evaluate(clip["index"], reference["times"])
        expected = reference["vertices"]
        assert vertices.shape == expected.shape, f"{name} clip{clip['index']}: shape {vertices.shape}"
        diagonal = float(np.linalg.norm(expected[0].max(axis=0) - expected[0].min(axis=0)))
        error = float(np.linalg.norm(vertices - expected, axis=2).max()) / diagonal
        assert error <= TOLERANCE, f"{name} clip{clip['index']} ({clip['name']}): error/diag {error:.2e} > {TOLERANCE}"
