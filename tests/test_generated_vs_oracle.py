"""Generated assets, evaluated by `stages.evaluate`, match the three.js oracle (tests/data/oracle/).

The committed trajectories were made by `benchmarks/refresh_generated_oracle.py` from fixed
generator plans stored in each meta.json. If the generator's output changes, the staleness test fails:
rerun that script (it needs node and the oracle's `npm install`) and commit the new data.

The generator is byte-deterministic on one machine (same plan, same bytes: tested), but its float data can differ
in the last bits between CPU types (numpy picks SIMD kernels by CPU), so the committed sha256 is compared only as a
shortcut: a regenerated asset that differs from it must still give the oracle's trajectories to float32 precision.
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


FLOAT32_PRECISION = 1e-6  # of the diagonal: what last-bit differences of float32 data can move a vertex


@pytest.mark.parametrize("name", CASES)
def test_generated_asset_is_still_the_oracle_asset(name):
    """Same bytes as when the oracle ran, or (on another CPU type) the same asset to float32 precision."""
    from stages.evaluate import load_asset_bytes

    data, meta = regenerate(name), meta_of(name)
    assert data == regenerate(name), f"{name}: the same plan gave different bytes twice"
    if hashlib.sha256(data).hexdigest() == meta["asset_sha256"]:
        return
    scene = load_asset_bytes(data, name=f"{name}.glb")
    stale = f"{name}: the generated asset changed; the committed oracle data is stale: run `{REFRESH}` and commit " \
            f"tests/data/oracle/"
    assert (scene.num_vertices, len(scene.faces)) == (meta["vertices"], meta["faces"]), stale
    for clip in meta["clips"]:
        reference = np.load(ORACLE_DATA / name / f"clip{clip['index']}.npz")
        expected = reference["vertices"]
        vertices = scene.evaluate(clip["index"], reference["times"])
        diagonal = float(np.linalg.norm(expected[0].max(axis=0) - expected[0].min(axis=0)))
        assert float(np.linalg.norm(vertices - expected, axis=2).max()) / diagonal <= FLOAT32_PRECISION, stale


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
