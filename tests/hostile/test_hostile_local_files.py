"""Local harvest reads only regular files inside its roots: symlinks out (to /etc/passwd, devices, outside assets,
through chains), FIFOs, sockets, hard links, `up -> ..` loops under `**`, lying sizes, swaps between check and
open, side files of .gltf: each is one error row with a clear kind, nothing outside the folder is ever read."""

from __future__ import annotations

import os
import resource
import stat
from pathlib import Path

import pyarrow as pa
import pytest

from glb import pack_glb
from hostile_files import SECRET, gltf_with_side, good_asset, hostile_folder, outside_files  # noqa: F401
from pipeline.config import HarvestConfig
from pipeline.sources import LocalSource, ObjectStoreSource
from schemas.tables import ERRORS
from stages import untrusted_files
from schemas.tables import PROVENANCE
from stages.harvest import BlobStore, harvest_source
from stages.untrusted_files import UntrustedFileError, read_regular

pytestmark = pytest.mark.timeout(60)  # a FIFO or a symlink loop that hangs fails here instead of hanging the suite

CAP = HarvestConfig(max_asset_bytes=10_000_000, timeout_s=5.0, retries=0)
EVALUATOR_KINDS = {"limit", "malformed", "unsafe"}  # harvested as bytes; the evaluator refuses them later


def harvest(source, tmp_path: Path, config=CAP):
    rows, errors = harvest_source(source, config, str(tmp_path), BlobStore(tmp_path / "out"))
    pa.Table.from_pylist(rows, schema=PROVENANCE)  # odd names must not break the tables
    pa.Table.from_pylist(errors, schema=ERRORS)
    return rows, errors


def relative(uri: str, folder: Path) -> str:
    return os.path.relpath(uri, folder) if os.path.isabs(uri) else uri


def assert_nothing_from_outside(tmp_path: Path, rows, errors) -> None:
    for blob in (tmp_path / "out").rglob("*.*"):
        assert SECRET not in blob.read_bytes() and b"root:" not in blob.read_bytes(), blob
    for error in errors:
        assert SECRET.decode() not in error["message"] and "root:x" not in error["message"], error


@pytest.mark.parametrize("pattern", ["{folder}", "{folder}/**", "{folder}/**/*.gl*", "{folder}/*"])
def test_every_hostile_file_is_one_error_row_with_its_kind(tmp_path, good_asset, pattern):
    folder, expected = hostile_folder(tmp_path, good_asset)
    rows, errors = harvest(LocalSource(paths=[pattern.format(folder=folder)]), tmp_path)
    depth_one = pattern.endswith("/*")
    folder_links = ("up", "nested/deeper/top")  # folders: reported where a pattern walks below them
    by_name = {relative(e["unit_id"], folder): e for e in errors}
    ok = {relative(r["uri"], folder) for r in rows}
    for name, kind in expected.items():
        if depth_one and ("/" in name or name in folder_links):
            continue
        if kind in EVALUATOR_KINDS:
            assert name in ok, name
        else:
            assert by_name[name]["error_type"] == kind, (name, by_name[name])
    assert "good.glb" in ok
    assert ok <= {n for n, k in expected.items() if k in EVALUATOR_KINDS} | {"good.glb"}
    assert all(e["status"] == "failed" and e["message"].startswith(e["unit_id"]) for e in errors)
    assert_nothing_from_outside(tmp_path, rows, errors)


def test_follow_symlinks_opts_in_but_still_never_opens_devices_fifos_or_sockets(tmp_path, good_asset):
    folder, expected = hostile_folder(tmp_path, good_asset)
    rows, errors = harvest(LocalSource(paths=[f"{folder}/**"], follow_symlinks=True), tmp_path)
    kinds = {relative(e["unit_id"], folder): e["error_type"] for e in errors}
    ok = {relative(r["uri"], folder) for r in rows}
    for name in ("zero.glb", "urandom.gltf", "null.glb", "fifo.glb", "socket.glb", "side-fifo.gltf"):
        assert kinds[name] == "not-a-regular-file", name
    assert {"outside.glb", "relative-escape.glb", "chain1.glb", "hardlink.glb"} <= ok  # the opt-in reads links
    assert kinds["loop-a.glb"] == "symlink-loop"
    assert "environ.glb" in ok or kinds["environ.glb"] == "limit"  # /proc: regular, stat says 0: read up to the cap


def test_dev_zero_with_a_10mb_cap_reads_nothing_and_stat_is_not_trusted(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    os.symlink("/dev/zero", folder / "zero.glb")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for follow in (False, True):
        rows, errors = harvest(LocalSource(paths=[str(folder)], follow_symlinks=follow), tmp_path)
        assert rows == [] and [e["error_type"] for e in errors] == ["not-a-regular-file" if follow else "outside-root"]
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50 * 1024  # KiB: nothing was read
    # a regular file whose stat size lies (procfs says 0 bytes): the cap holds on what is read
    with pytest.raises(UntrustedFileError) as refused:
        read_regular("/proc/self/environ" if os.path.getsize("/proc/self/maps") == 0 else "/proc/self/maps", 8,
                     follow_links=True)
    assert refused.value.kind == "limit"


def test_fifo_and_socket_named_directly_do_not_hang(tmp_path):
    os.mkfifo(tmp_path / "p.glb")
    rows, errors = harvest(LocalSource(paths=["p.glb"], follow_symlinks=True), tmp_path)
    assert rows == [] and [e["error_type"] for e in errors] == ["not-a-regular-file"]
    assert "FIFO" in errors[0]["message"]


def test_devices_inside_the_folder_are_never_opened(tmp_path):
    try:
        os.mknod(tmp_path / "char.glb", stat.S_IFCHR | 0o600, os.makedev(1, 5))  # a /dev/zero twin
        os.mknod(tmp_path / "block.glb", stat.S_IFBLK | 0o600, os.makedev(7, 0))
    except PermissionError:
        pytest.skip("creating device nodes needs CAP_MKNOD")
    rows, errors = harvest(LocalSource(paths=["*.glb"]), tmp_path)
    assert rows == [] and {e["unit_id"]: e["error_type"] for e in errors} == {
        "block.glb": "not-a-regular-file", "char.glb": "not-a-regular-file"}
    assert "block device" in errors[0]["message"] and "character device" in errors[1]["message"]


def test_symlink_loops_under_double_star_finish_and_the_listing_is_bounded(tmp_path):
    folder = tmp_path / "loops"
    (folder / "a" / "b").mkdir(parents=True)
    os.symlink("..", folder / "a" / "up")
    os.symlink("../..", folder / "a" / "b" / "upup")
    os.symlink("b", folder / "a" / "b" / "self")
    (folder / "a" / "b" / "x.glb").write_bytes(pack_glb({"asset": {"version": "2.0"}}))
    for follow in (False, True):
        rows, errors = harvest(LocalSource(paths=[f"{folder}/**/*.glb", f"{folder}/**"], follow_symlinks=follow),
                               tmp_path)
        assert [relative(r["uri"], folder) for r in rows] == ["a/b/x.glb"]
    crowd = tmp_path / "crowd"
    crowd.mkdir()
    for i in range(300):
        (crowd / f"{i:03d}.glb").write_bytes(b"glTF")
    rows, errors = harvest(LocalSource(paths=["crowd"]), tmp_path, HarvestConfig(max_listed_entries=100))
    assert len(rows) + len(errors) <= 101 and [e["error_type"] for e in errors if e["unit_id"] == "crowd"] == ["limit"]


def test_hard_links_inside_the_folder_are_fine_outside_they_are_refused(tmp_path):
    outside = outside_files(tmp_path)
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.glb").write_bytes(pack_glb({"asset": {"version": "2.0"}}))
    os.link(folder / "a.glb", folder / "b.glb")  # both names listed: allowed
    os.link(outside["glb"], folder / "c.glb")  # the other name is outside: refused
    rows, errors = harvest(LocalSource(paths=["in"]), tmp_path)
    assert [r["uri"] for r in rows] == ["in/a.glb", "in/b.glb"]
    assert [(e["unit_id"], e["error_type"]) for e in errors] == [("in/c.glb", "hard-link")]


def test_a_swap_between_the_check_and_the_open_is_caught_on_the_descriptor(tmp_path, monkeypatch):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    target = folder / "sub" / "a.glb"
    real_open = untrusted_files._open_beneath

    def swap_to_fifo(root, rel):
        target.unlink()
        os.mkfifo(target)
        return real_open(root, rel)

    target.write_bytes(b"glTF")
    monkeypatch.setattr(untrusted_files, "_open_beneath", swap_to_fifo)
    with pytest.raises(UntrustedFileError) as refused:
        read_regular(str(target), 100, root=str(folder))
    assert refused.value.kind == "not-a-regular-file"

    def swap_folder_for_link(root, rel):
        os.rename(folder / "sub", folder / "moved")
        os.symlink(tmp_path / "elsewhere", folder / "sub")
        return real_open(root, rel)

    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "a.glb").write_bytes(SECRET)
    target.unlink()
    target.write_bytes(b"glTF")
    monkeypatch.setattr(untrusted_files, "_open_beneath", swap_folder_for_link)
    with pytest.raises(UntrustedFileError) as refused:
        read_regular(str(target), 100, root=str(folder))
    assert refused.value.kind in ("symlink-loop", "changed")


def test_side_files_follow_the_same_rules_and_are_bounded_together(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "big.bin").write_bytes(b"\1" * 400_000)
    many = {"asset": {"version": "2.0"}, "buffers": [{"uri": "big.bin", "byteLength": 400_000}] * 40}
    (folder / "many.gltf").write_text(__import__("json").dumps(many))  # 40 x 400 kB = 16 MB from one 400 kB file
    (folder / "huge.gltf").write_bytes(gltf_with_side("big.bin", 400_000))
    rows, errors = harvest(LocalSource(paths=["in/*.gltf"]), tmp_path,
                           HarvestConfig(max_asset_bytes=10_000_000, max_side_file_bytes=300_000))
    assert rows == [] and {e["unit_id"]: e["error_type"] for e in errors} == {"in/huge.gltf": "limit",
                                                                               "in/many.gltf": "limit"}
    rows, errors = harvest(LocalSource(paths=["in/many.gltf"]), tmp_path, HarvestConfig(max_asset_bytes=10_000_000))
    assert rows == [] and errors[0]["error_type"] == "limit" and "side file" in errors[0]["message"]


def test_object_store_source_over_a_local_folder_gets_the_same_protection(tmp_path, good_asset):
    folder, expected = hostile_folder(tmp_path, good_asset)
    rows, errors = harvest(ObjectStoreSource(uri=str(folder)), tmp_path)
    kinds = {relative(e["unit_id"], folder): e["error_type"] for e in errors}
    for name in ("passwd.glb", "zero.glb", "outside.glb", "chain1.glb"):
        assert kinds[name] == "outside-root", name
    for name in ("fifo.glb", "socket.glb", "side-fifo.gltf"):
        assert kinds[name] == "not-a-regular-file", name
    assert "good.glb" in {relative(r["uri"], folder) for r in rows}
    assert_nothing_from_outside(tmp_path, rows, errors)


def test_every_local_read_has_a_deadline(tmp_path):
    (tmp_path / "a.glb").write_bytes(b"glTF" * 10)
    fd = os.open(tmp_path / "a.glb", os.O_RDONLY)
    try:
        with pytest.raises(UntrustedFileError) as late:
            untrusted_files.read_fd(fd, 1000, deadline=0.0)  # a deadline already passed: nothing is read
        assert late.value.kind == "timeout"
    finally:
        os.close(fd)
