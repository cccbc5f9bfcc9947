"""AnimateAnyMesh files: the restricted unpickler charges every allocation to a budget before making it (a
32-byte bytearray bomb, V4096 arrays, huge array states, container floods, big ints, deep nesting), import reads
only regular files inside its folder (no /dev/zero symlink, no FIFO), and export keeps every file inside its
output folder whatever the sample keys say (`../`, absolute, NUL, very long)."""

from __future__ import annotations

import io
import os
import pickle
import resource
import tarfile

import numpy as np
import pytest
from numpy._core.multiarray import _reconstruct

from pipeline.cli import main
from stages.shard.aam import aam_bytes, export_aam, export_name, import_aam
from stages.shard.safe_pickle import UnsafePickleError, safe_loads
from stages.shard.sample import npy_parts

pytestmark = pytest.mark.timeout(60)


class Call:
    """Pickles as `function(*args)`: how a hostile file asks the unpickler to build something."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def array_state_bomb() -> bytes:
    """_reconstruct a 0-size array, then BUILD it with a state claiming 2**30 float64s."""
    head = pickle.dumps(Call(_reconstruct, np.ndarray, (0,), b"b"), protocol=2)[:-1]
    state = pickle.dumps((1, (1 << 30,), np.dtype("f8"), False, b"x"), protocol=2)[2:-1]
    return head + state + b"b."


def colliding_keys(bits: int = 14) -> bytes:
    """A dict of 2**bits tuple keys of -1/-2 (equal hashes): quadratic to build (2.6 MB at 15 bits takes
    pickle.loads 17 s), written opcode by opcode so that making the probe costs nothing."""
    minus = {0: b"J\xff\xff\xff\xff", 1: b"J\xfe\xff\xff\xff"}
    pairs = (b"(" + b"".join(minus[(i >> b) & 1] for b in range(bits)) + b"tK\x01" for i in range(1 << bits))
    return b"\x80\x04}(" + b"".join(pairs) + b"u."


BOMBS = {
    "colliding-tuple-keys": colliding_keys(),
    "bytearray-3GB": pickle.dumps(Call(bytearray, 3_000_000_000), protocol=4),
    "bytearray-3GB-protocol-2": pickle.dumps(Call(bytearray, 3_000_000_000), protocol=2),
    "bytes-3GB": pickle.dumps(Call(bytes, 3_000_000_000), protocol=2),
    "V4096-reconstruct": pickle.dumps(Call(_reconstruct, np.ndarray, (1 << 20,), b"V4096"), protocol=2),
    "f8-2GB-reconstruct": pickle.dumps(Call(_reconstruct, np.ndarray, (1 << 28,), b"f8"), protocol=2),
    "array-state-2**30": array_state_bomb(),
    "object-dtype": pickle.dumps(np.array([None, 1], dtype=object)),
    "zero-stride-view": pickle.dumps(Call(np.ndarray, (1 << 27, 3), "<f4", b"\0" * 12, 0, (0, 4))),
    "view-past-buffer": pickle.dumps(Call(np.ndarray, (1 << 20,), "<f8", b"\0" * 8)),
    "list-flood": b"\x80\x04]" + b"]a" * 1_500_000 + b".",
    "big-int": b"\x80\x04\x8a\x40" + b"\x7f" * 64 + b".",
    "deep-nesting": b"\x80\x04" + b"]" * 50_000 + b"a" * 49_999 + b".",
    "self-reference": b"\x80\x04]\x94(h\x00h\x00h\x00e.",  # [L, L, L] containing itself: visited once
    "os.system": pickle.dumps(Call(os.system, "true")),
    "getattr": b"\x80\x04cbuiltins\ngetattr\n.",
    "newobj": b"\x80\x04cbuiltins\nset\n)\x81.",
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_bombs_are_refused_before_they_allocate(name):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if name == "self-reference":
        assert len(safe_loads(BOMBS[name])) == 3
    else:
        with pytest.raises(UnsafePickleError):
            safe_loads(BOMBS[name])
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KiB


def test_plain_arrays_of_every_protocol_still_load():
    content = {"vertices": np.arange(36, dtype=np.float32).reshape(2, 6, 3), "faces": np.zeros((0, 3), np.int64),
               "caption": "a \ud800 odd caption", "scalars": [np.float64(2.5), np.int32(3), np.bool_(True)]}
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        loaded = safe_loads(pickle.dumps(content, protocol=protocol))
        np.testing.assert_array_equal(loaded["vertices"], content["vertices"])
        assert loaded["faces"].shape == (0, 3) and loaded["scalars"][0] == 2.5
    loaded = safe_loads(aam_bytes(content["vertices"], content["faces"], "x"))  # our own export form
    np.testing.assert_array_equal(loaded["vertices"], content["vertices"])


def test_import_reads_only_regular_files_inside_its_folder(tmp_path, capsys):
    folder = tmp_path / "bins"
    (folder / "sub").mkdir(parents=True)
    good = aam_bytes(np.random.default_rng(0).normal(size=(4, 10, 3)), np.array([[0, 1, 2]]), "walks")
    (folder / "good_offset0_0000-0003.bin").write_bytes(good)
    (tmp_path / "outside.bin").write_bytes(good)
    os.symlink("/dev/zero", folder / "zero.bin")
    os.symlink(tmp_path / "outside.bin", folder / "outside.bin")
    os.mkfifo(folder / "fifo.bin")
    os.symlink("..", folder / "sub" / "up")
    (folder / "bomb.bin").write_bytes(BOMBS["bytearray-3GB"])
    (folder / os.fsdecode(b"name-\xff.bin")).write_bytes(BOMBS["V4096-reconstruct"])
    rows, errors, seen = import_aam(folder, str(tmp_path / "shards"))
    kinds = {e["unit_id"]: e["error_type"] for e in errors}
    assert kinds == {"zero": "outside-root", "outside": "outside-root", "fifo": "not-a-regular-file",
                     "bomb": "UnsafePickleError", "name-\\xff": "UnsafePickleError"}
    assert seen == 6 and len(rows) == 1
    assert main(["aam", "import", str(folder), str(tmp_path / "shards2")]) == 0
    assert "seen 6 = ok 1 + skipped 0 + failed 5" in capsys.readouterr().out


def hostile_shard(path, keys: list[str]) -> None:
    """A WebDataset tar whose sample keys are hostile member-name prefixes."""
    vertices = np.zeros((2, 3, 3), np.float32)
    faces = np.array([[0, 1, 2]], np.int32)
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        for key in keys:
            for suffix, data in ((".vertices.npy", b"".join(bytes(p) for p in npy_parts(vertices))),
                                 (".faces.npy", b"".join(bytes(p) for p in npy_parts(faces))),
                                 (".txt", b"hostile")):
                info = tarfile.TarInfo(key + suffix)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def test_export_keeps_every_file_inside_the_output_folder(tmp_path):
    keys = ["../../escaped", "/tmp/absolute-escape", "a/b/../../../up", "x" * 300, "ok_key"]
    shard = tmp_path / "hostile.tar"
    hostile_shard(shard, keys)
    out = tmp_path / "deep" / "out"
    assert export_aam(str(shard), out) == len(keys)
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == len(keys) and all(p.parent == out for p in out.iterdir())
    assert "ok_key.bin" in written and all(len(name.encode()) <= 220 for name in written)
    assert not (tmp_path / "escaped.bin").exists() and not os.path.exists("/tmp/absolute-escape.bin")
    assert [p.name for p in tmp_path.iterdir()] and not list(tmp_path.glob("*.bin"))
    for key in keys + ["nul\x00byte", "..", ".", ".hidden", "", "a" * 5000, "\udcff-odd"]:
        name = export_name(key)
        assert "/" not in name and "\x00" not in name and not name.startswith(".") and name
    assert len({export_name(k) for k in ("a/b", "a_b", "a\\b", "a b")}) == 4  # sanitised keys never collide


def test_export_does_not_follow_a_planted_symlink(tmp_path):
    shard = tmp_path / "s.tar"
    hostile_shard(shard, ["victim"])
    out = tmp_path / "out"
    out.mkdir()
    target = tmp_path / "target.txt"
    target.write_text("keep me")
    os.symlink(target, out / "victim.bin")
    os.symlink(target, out / f".victim.bin.{os.getpid()}.partial")
    with pytest.raises(FileExistsError):
        export_aam(str(shard), out)
    os.unlink(out / f".victim.bin.{os.getpid()}.partial")
    export_aam(str(shard), out)
    assert target.read_text() == "keep me" and not (out / "victim.bin").is_symlink()
