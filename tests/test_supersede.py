"""Superseded partitions set aside and restored by renames, safe under a kill between any two renames, and
`dymesh gc` (no Ray: folders laid out as the runner lays them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import pipeline.supersede as supersede
from pipeline.cli import main
from pipeline.gc import collect, find_garbage
from pipeline.lock import LOCK_NAME
from pipeline.supersede import SUPERSEDED, hash_folders, restore, set_aside, settle
from schemas.tables import TABLE_STAGES

OLD = {"harvest": ["h0"], "evaluate": ["e0"], "resample": ["r0"], "caption": ["c0"], "shard": ["s0"]}
NEW = {"harvest": ["h0"], "evaluate": ["e0"], "resample": ["r1"], "caption": ["c1"], "shard": ["s1"]}


def lay_out(out: Path, hashes: dict[str, list[str]], units=("00000", "00001")) -> None:
    """Tables, error partitions and markers of one run, as the runner writes them."""
    for table, stage in TABLE_STAGES.items():
        for h in hashes[stage]:
            for unit in units:
                path = out / table / h / f"part-{unit}.parquet"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"{table} {h} {unit}")
    for stage, values in hashes.items():
        for h in values:
            for unit in units:
                for kind, name in (("errors", f"part-{unit}.parquet"), ("markers", f"{unit}.json")):
                    path = out / kind / stage / h / name
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(f"{kind} {stage} {h} {unit}")


def snapshot(root: Path) -> dict[str, str]:
    """Every file's bytes but the job lock's (pipeline.lock: gc takes it)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != LOCK_NAME}


def consistent(out: Path) -> bool:
    """Every marker in place has its stage hash's table and error files in place."""
    for folder in hash_folders(out):
        if folder.is_marker:
            stage, h = folder.stage, folder.hash
            data = [f"errors/{stage}/{h}", *(f"{t}/{h}" for t, s in TABLE_STAGES.items() if s == stage)]
            if not all((out / d).is_dir() for d in data):
                return False
    return True


def test_a_new_config_sets_the_old_partitions_aside_and_switching_back_restores_them(tmp_path):
    lay_out(tmp_path, OLD)
    first = snapshot(tmp_path)
    restored, aside = settle(tmp_path, NEW)
    assert restored == []
    assert sorted(aside) == sorted(["clips/r0", "clip_arrays/r0", "funnel/r0", "captions/c0", "shards/s0",
                                    "errors/resample/r0", "errors/caption/c0", "errors/shard/s0",
                                    "markers/resample/r0", "markers/caption/c0", "markers/shard/s0"])
    assert snapshot(tmp_path / SUPERSEDED) == {p: v for p, v in first.items() if p.split("/")[-2] in ("r0", "c0", "s0")}
    assert {f.hash for f in hash_folders(tmp_path)} == {"h0", "e0"}  # only the unchanged stages' partitions stay
    lay_out(tmp_path, NEW)  # the new run writes its partitions
    second = snapshot(tmp_path)
    restored, aside = settle(tmp_path, OLD)  # the first config again: nothing to redo
    assert len(restored) == 11 and len(aside) == 11
    assert {p: v for p, v in snapshot(tmp_path).items() if not p.startswith(SUPERSEDED)} == first
    settle(tmp_path, NEW)
    assert {p: v for p, v in snapshot(tmp_path).items() if not p.startswith(SUPERSEDED)} == {
        p: v for p, v in second.items() if not p.startswith(SUPERSEDED)}


@pytest.mark.parametrize("direction", ["aside", "restore"])
def test_a_kill_between_any_two_renames_keeps_markers_with_their_files(tmp_path, monkeypatch, direction):
    """Kill (an exception) after k renames, for every k: markers never point at files set aside, and the next run
    (settling again, with either config) ends in the same state as an uninterrupted one."""
    lay_out(tmp_path / "ref", OLD)
    lay_out(tmp_path / "ref", NEW)
    settle(tmp_path / "ref", NEW if direction == "aside" else OLD)
    if direction == "restore":
        settle(tmp_path / "ref", NEW)
    expected = snapshot(tmp_path / "ref")
    real_move, k = supersede.move, 0
    while True:
        out = tmp_path / f"run{k}"
        lay_out(out, OLD)
        lay_out(out, NEW)
        if direction == "restore":
            settle(out, OLD)  # NEW's partitions aside: the kill comes while restoring them
        calls = []

        def killed_after_k(source, target, calls=calls, k=k):
            if len(calls) == k:
                raise KeyboardInterrupt("killed")
            calls.append(source)
            real_move(source, target)

        monkeypatch.setattr(supersede, "move", killed_after_k)
        try:
            settle(out, NEW)
            finished = True
        except KeyboardInterrupt:
            finished = False
        monkeypatch.setattr(supersede, "move", real_move)
        assert consistent(out), f"kill after {k} renames left a marker without its files"
        settle(out, NEW)  # the next run
        assert snapshot(out) == expected, k
        if finished:
            break
        k += 1
    assert k >= 11


def test_a_group_split_by_a_kill_is_merged_back(tmp_path):
    lay_out(tmp_path, OLD)
    (tmp_path / SUPERSEDED / "clips" / "r0").mkdir(parents=True)
    (tmp_path / SUPERSEDED / "clips" / "r0" / "part-00000.parquet").write_text("clips r0 00000")  # the same bytes
    restore(tmp_path, OLD)
    assert not (tmp_path / SUPERSEDED / "clips" / "r0").exists()
    set_aside(tmp_path, NEW)
    (tmp_path / "clips" / "r0").mkdir()
    (tmp_path / "clips" / "r0" / "part-00002.parquet").write_text("clips r0 00002")  # written since
    set_aside(tmp_path, NEW)
    assert sorted(p.name for p in (tmp_path / SUPERSEDED / "clips" / "r0").iterdir()) == [
        "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]


def test_the_old_provenance_folder_layout_is_set_aside_and_never_restored(tmp_path):
    (tmp_path / "harvest" / "h0").mkdir(parents=True)
    (tmp_path / "harvest" / "h0" / "part-source.parquet").write_text("old layout")
    settle(tmp_path, OLD)
    assert not (tmp_path / "harvest").exists()
    assert (tmp_path / SUPERSEDED / "harvest" / "h0" / "part-source.parquet").is_file()
    settle(tmp_path, OLD)
    assert not (tmp_path / "harvest" / "h0").exists()


def job_folder(tmp_path: Path) -> Path:
    """A job folder whose current harvest names one of two blobs; OLD's later stages set aside."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "out"
    lay_out(out, OLD)
    lay_out(out, NEW)
    settle(out, NEW)
    (out / "provenance" / "h0" / "part-00000.parquet").unlink()
    (out / "provenance" / "h0" / "part-00001.parquet").unlink()
    pq.write_table(pa.table({"blob_path": ["blobs/aa/aa11.glb"]}), out / "provenance" / "h0" / "part-source.parquet")
    for name, size in (("aa/aa11.glb", 100), ("bb/bb22.glb", 2500)):
        (out / "blobs" / name).parent.mkdir(parents=True, exist_ok=True)
        (out / "blobs" / name).write_bytes(b"x" * size)
    hashes = {"harvest": ["h0"], "evaluate": "e0", "resample": "r1", "caption": "c1", "shard": "s1"}
    (out / "job.json").write_text(json.dumps({"name": "t", "hashes": hashes}))
    return out


def test_gc_dry_run_lists_sizes_then_deletes_superseded_folders_and_unused_blobs(tmp_path, capsys):
    out = job_folder(tmp_path)
    current = {p: v for p, v in snapshot(out).items() if not p.startswith(SUPERSEDED)}
    garbage = find_garbage(out)
    assert len(garbage.folders) == 11 and garbage.blobs == [("blobs/bb/bb22.glb", 2500)]
    assert main(["gc", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "superseded/clips/r0/" in text and "1 unused blob(s)" in text and "would free" in text
    assert (out / SUPERSEDED).is_dir() and (out / "blobs" / "bb" / "bb22.glb").is_file()  # nothing deleted
    assert main(["gc", str(out)]) == 0
    assert "freed" in capsys.readouterr().out
    assert not (out / SUPERSEDED).exists() and not (out / "blobs" / "bb" / "bb22.glb").exists()
    assert snapshot(out) == {p: v for p, v in current.items() if p != "blobs/bb/bb22.glb"}
    assert find_garbage(out).total_bytes == 0


def test_gc_deletes_markers_first_and_keeps_blobs_without_a_finished_harvest(tmp_path, monkeypatch):
    out = job_folder(tmp_path)
    garbage = find_garbage(out)
    deleted = []
    monkeypatch.setattr("shutil.rmtree", lambda path, ignore_errors=False: deleted.append(Path(path)))
    collect(out, garbage)
    first_data = next(i for i, p in enumerate(deleted) if "/markers/" not in p.as_posix())
    assert all("/markers/" in p.as_posix() for p in deleted[:first_data])
    assert not any("/markers/" in p.as_posix() for p in deleted[first_data:])
    (out / "provenance" / "h0" / "part-source.parquet").unlink()  # the current harvest is not finished
    assert find_garbage(out).blobs == [] and "blobs kept" in find_garbage(out).note
    assert main(["gc", str(tmp_path / "not-a-job")]) == 2


def test_gc_takes_the_job_lock_so_it_never_deletes_under_a_run(tmp_path, capsys):
    """A run restores superseded folders at plan time while holding the job's lock; gc deletes only holding it."""
    from pipeline.errors import EXIT_LOCKED
    from pipeline.lock import FolderLock

    out = job_folder(tmp_path)
    before = snapshot(out)
    with FolderLock(out, "dymesh run"):
        assert main(["gc", str(out)]) == EXIT_LOCKED
        assert "in use by" in capsys.readouterr().err
        assert main(["gc", str(out), "--dry-run"]) == 0  # listing deletes nothing: no lock needed
        assert snapshot(out) == before
    assert main(["gc", str(out)]) == 0
    assert not (out / SUPERSEDED).exists()
