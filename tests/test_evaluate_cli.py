"""`dymesh inspect` and `dymesh evaluate`: outputs in the reference layout, one error line and exit 2 when bad."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipeline.cli import main
from tests.conftest import ASSETS, BROKEN, REFERENCE


def test_evaluate_writes_reference_layout(tmp_path: Path, capsys):
    assert main(["evaluate", str(ASSETS / "MorphStressTest.glb"), "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip0.npz", "clip1.npz", "clip2.npz"]
    for k in range(3):
        got, ref = np.load(tmp_path / f"clip{k}.npz"), np.load(REFERENCE / "MorphStressTest" / f"clip{k}.npz")
        assert got["vertices"].dtype == np.float32 and got["times"].dtype == np.float64
        assert got["faces"].dtype == np.int32 and got["faces"].shape[1] == 3
        np.testing.assert_allclose(got["times"], ref["times"], atol=1e-6)
        np.testing.assert_allclose(got["vertices"], ref["vertices"], atol=1e-4)
    assert "3 clip(s)" in capsys.readouterr().out


def test_static_asset_gives_one_rest_frame(tmp_path: Path):
    assert main(["evaluate", str(ASSETS / "Box.glb"), "--out", str(tmp_path)]) == 0
    clip = np.load(tmp_path / "clip0.npz")
    assert clip["times"].tolist() == [0.0] and clip["vertices"].shape == (1, 24, 3)


def test_bad_asset_prints_one_line_and_exits_2(tmp_path: Path, capsys):
    assert main(["evaluate", str(BROKEN / "node_cycle.glb"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith(f"dymesh evaluate: error: {BROKEN / 'node_cycle.glb'}: malformed: ")
    assert not (tmp_path / "o").exists()


def test_inspect_json_and_text(capsys):
    assert main(["inspect", str(ASSETS / "Fox.glb"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["vertices"] == 1728 and summary["skins"] == [{"index": 0, "joints": 24}]
    assert [a["name"] for a in summary["animations"]] == ["Survey", "Walk", "Run"]
    assert main(["inspect", str(ASSETS / "MeshPrimitiveModes" / "MeshPrimitiveModes.gltf")]) == 0
    text = capsys.readouterr().out
    assert "mode POINTS skipped" in text and "TRIANGLE_FAN" in text
