"""AnimateAnyMesh .bin import (restricted unpickler) and export (what their loaders read)."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from pipeline.cli import main
from shard_clips import synthetic_dataset
from stages.shard import ShardConfig, read_sample, write_shards
from stages.shard.aam import UnsafePickleError, aam_bytes, read_aam, safe_loads


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo owned > /dev/null",))


@pytest.mark.parametrize(
    "payload",
    [
        pickle.dumps({"vertices": Exploit()}),
        pickle.dumps({"vertices": Exploit()}, protocol=2),
        b"cos\nsystem\n(S'echo owned'\ntR.",
        b"c__builtin__\neval\n(S'1+1'\ntR.",
        pickle.dumps(np.array([1, "a"], dtype=object)),
        pickle.dumps({"x": np.array([None])}, protocol=5),
    ],
)
def test_malicious_or_object_pickles_are_refused(payload):
    with pytest.raises(UnsafePickleError):
        safe_loads(payload)


def test_plain_pickles_of_every_protocol_load():
    content = {"vertices": np.arange(18, dtype=np.float32).reshape(2, 3, 3), "faces": np.zeros((1, 3), np.int64),
               "caption": "flying", "extra": [1, 2.5, (3,), {"k": np.float32(1)}]}
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        loaded = safe_loads(pickle.dumps(content, protocol=protocol))
        np.testing.assert_array_equal(loaded["vertices"], content["vertices"])
        assert loaded["caption"] == "flying" and loaded["extra"][3]["k"] == 1


def test_size_cap(tmp_path):
    path = tmp_path / "big_offset0_0000-0015.bin"
    path.write_bytes(aam_bytes(np.zeros((16, 100, 3)), np.zeros((10, 3)), "x"))
    with pytest.raises(UnsafePickleError, match="cap"):
        read_aam(path, max_bytes=1000)


def test_export_is_what_their_loader_reads_and_import_round_trips(tmp_path, capsys):
    clips, captions, assets = synthetic_dataset(assets=4, clips_per_asset=2)
    write_shards(clips, captions, assets, str(tmp_path / "shards"), ShardConfig())
    assert main(["aam", "export", str(tmp_path / "shards"), str(tmp_path / "bins")]) == 0
    files = sorted((tmp_path / "bins").glob("*.bin"))
    assert len(files) == len(clips)
    with open(files[0], "rb") as f:  # exactly as their DyMeshDataset does
        mesh_file = pickle.load(f)
    clip = next(c for c in clips if c.clip_id == files[0].stem)
    np.testing.assert_array_equal(mesh_file["vertices"], clip.vertices)
    np.testing.assert_array_equal(mesh_file["faces"], clip.faces)
    assert mesh_file.get("caption", " ") == read_sample(str(tmp_path / "shards"), clip.clip_id)["txt"]
    assert aam_bytes(mesh_file["vertices"], mesh_file["faces"], "a") == aam_bytes(clip.vertices, clip.faces, "a")

    (tmp_path / "bins" / "evil_offset0_0000-0015.bin").write_bytes(pickle.dumps({"vertices": Exploit()}))
    assert main(["aam", "import", str(tmp_path / "bins"), str(tmp_path / "imported")]) == 0
    report = capsys.readouterr().out
    assert f"seen {len(clips) + 1} = ok {len(clips)} + skipped 0 + failed 1" in report and "system; only NumPy arrays" in report
    back = read_sample(str(tmp_path / "imported"), clip.clip_id)
    np.testing.assert_array_equal(back["vertices"], clip.vertices)
    assert back["txt"] == mesh_file["caption"] and back["json"]["captions"][0]["backend"] == "imported"
