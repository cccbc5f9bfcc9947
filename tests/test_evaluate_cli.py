"""`dymesh inspect` and `dymesh evaluate`: outputs in the reference layout, one error line and exit 2 when bad."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli import main
from paths import ASSETS, BROKEN, REFERENCE, REPO


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


@pytest.mark.parametrize("command, code", [(["inspect", str(ASSETS / "Fox.glb"), "--json"], 141),
                                           (["inspect", str(ASSETS / "Fox.glb")], 141),
                                           (["--help"], 0)])  # argparse's help ignores a failed write itself
def test_a_reader_that_closes_the_pipe_early_gets_no_traceback(command: list[str], code: int):
    """`dymesh ... | head -1`: the reader is gone before dymesh writes; it stops quietly, 141 as for SIGPIPE."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", "pipeline.cli", *command], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env)
    process.stdout.close()  # before the child has written anything: its first write gets EPIPE
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == code, stderr
    assert stderr == "", stderr


def test_npz_files_are_stored_unless_compress_is_asked(tmp_path: Path):
    import zipfile

    asset = str(ASSETS / "Fox.glb")
    assert main(["evaluate", asset, "--out", str(tmp_path / "plain")]) == 0
    assert main(["evaluate", asset, "--out", str(tmp_path / "zip"), "--compress"]) == 0
    for k in range(3):
        plain, packed = tmp_path / "plain" / f"clip{k}.npz", tmp_path / "zip" / f"clip{k}.npz"
        with zipfile.ZipFile(plain) as a, zipfile.ZipFile(packed) as b:
            assert {i.compress_type for i in a.infolist()} == {zipfile.ZIP_STORED}
            assert {i.compress_type for i in b.infolist()} == {zipfile.ZIP_DEFLATED}
        assert packed.stat().st_size < plain.stat().st_size
        for name in ("times", "vertices", "faces"):
            assert np.array_equal(np.load(plain)[name], np.load(packed)[name])


@pytest.mark.parametrize("command", [["--help"], ["evaluate", str(ASSETS / "Fox.glb"), "--out", "{out}"]])
def test_help_and_evaluate_import_no_heavy_package(command: list[str], tmp_path: Path):
    """Start-up is most of a one-asset command: `--help` imports no numpy, `evaluate` nothing beyond numpy."""
    heavy = {"numpy", "scipy", "pyarrow", "torch", "ray", "duckdb", "pandas"}
    allowed = set() if command == ["--help"] else {"numpy"}
    script = ("import sys\nfrom pipeline.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
              "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)")
    argv = [a.format(out=tmp_path / "out") for a in command]
    result = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    imported = set(result.stderr.strip().splitlines()[-1].split())
    assert imported & heavy == allowed
