"""Honest failures: each error row says whether it is transient (schemas.failures); a rerun retries transient
failures item by item (finished work is read back, not redone) until the outputs equal a clean run's;
--retry-failed retries every failure; a job exits non-zero naming the cause when a whole source fails or nothing
becomes a clip; a full disk or a read-only output is one line with a truthful exit code; one bad row is one error
row."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from paths import BROKEN, REPO
from pipeline.accounting import account, by_unit
from pipeline.commit import UnitOutcome, commit
from pipeline.config import parse_job
from pipeline.lock import LOCK_NAME
from pipeline.manifest import Manifest, checked_table
from pipeline.retry import RetryPolicy, carry_attempts
from pipeline.runner import Runner
from pipeline.supersede import SUPERSEDED
from procs import cluster_workers_running
from schemas.tables import CAPTIONS, error_row

RESAMPLE = {"vertices": 64, "frames": [4], "max_clips_per_animation": 1, "quality_samples": 64}


# ---- the table, the rows, the accounting --------------------------------------------------------------------------
def test_each_failure_is_classified_in_one_table():
    transient = {kind: error_row("evaluate", "a", kind, "m")["transient"]
                 for kind in ("timeout", "out-of-memory", "worker-crashed", "network", "disk-full", "MemoryError")}
    assert all(transient.values()), transient
    permanent = {kind: error_row("evaluate", "a", kind, "m")["transient"]
                 for kind in ("malformed", "unsupported", "limit", "unsafe", "bad-data", "outside-root", "KeyError")}
    assert not any(permanent.values()), permanent
    assert error_row("harvest", "p", "not-found", "m")["transient"]  # a missing source folder may come back
    assert error_row("harvest", "objaverse", "objaverse-metadata", "offline")["transient"]
    assert not error_row("evaluate", "p", "not-found", "m")["transient"]
    assert error_row("harvest", "u", "http", "503", transient=True)["transient"]  # the stage says so
    assert not error_row("harvest", "u", "http", "404")["transient"]
    assert not error_row("caption", "c", "timeout", "m", status="skipped")["transient"]  # a skip never is


def test_harvest_marks_what_it_gave_up_on_after_retries_as_transient():
    from stages.harvest.item import TransientError, with_retries

    def flaky():
        raise TransientError("http", "u: HTTP 503")

    with pytest.raises(TransientError) as gave_up:
        with_retries(flaky, retries=1, backoff_s=0)
    assert gave_up.value.attempts == 2 and gave_up.value.kind == "http"


def test_markers_count_transient_failures_and_a_policy_reopens_them():
    rows = [error_row("evaluate", "a", "timeout", "m"), error_row("evaluate", "b", "malformed", "m")]
    counts, _ = account("evaluate", ["a", "b", "c"], {"c"}, by_unit(rows))
    assert (counts["failed"], counts["transient"]) == (2, 1)
    assert RetryPolicy().reopens(counts) and RetryPolicy(True).reopens({**counts, "transient": 0})
    assert not RetryPolicy().reopens({**counts, "transient": 0})
    kept, retried = RetryPolicy().split(rows)
    assert set(kept) == {"b"} and retried == {"a": 1}
    again = carry_attempts([error_row("evaluate", "a", "timeout", "m", attempt=1)], retried)
    assert again[0]["attempt"] == 2


def test_odd_text_and_bad_rows_are_stored_not_fatal(tmp_path):
    manifest = Manifest(tmp_path)
    name = os.fsdecode(b"bad\xffname\x1b[2J.glb")  # not UTF-8, and a terminal escape
    row = error_row("harvest", name, "malformed", f"{name}: \udc80 broken", source=name)
    commit(manifest, "harvest", "h", "source", UnitOutcome(seen=[name], ok=set(), errors=[row]))
    [stored] = pq.read_table(manifest.errors("harvest", "h", "source")).to_pylist()
    assert stored["unit_id"] == "bad\\xffname\\x1b[2J.glb" and stored["message"].endswith(": \\x80 broken")
    marker = manifest.read_marker("harvest", "h", "source")  # the summary's most frequent messages: escaped too
    assert marker["messages"] == [[1, "malformed", "<item>: \\x80 broken"]]
    good = {"clip_id": "c1", "content_hash": "h", "caption_index": 0, "text": "t", "backend": "motion",
            "model": "m", "revision": "1", "prompt_hash": "p", "cpu_stand_in": True, "seconds": 0.0}
    table, bad = checked_table([good, {**good, "clip_id": "c2", "caption_index": "zero"}], CAPTIONS, "caption",
                               "clip_id")
    assert table.column("clip_id").to_pylist() == ["c1"]
    assert [(r["unit_id"], r["error_type"], r["status"]) for r in bad] == [("c2", "bad-row", "failed")]


def test_one_unreadable_clip_row_is_that_clips_error_row():
    """clips + clip_arrays read back (captions, shards): a clip whose arrays row is missing or does not fit its
    shape is one bad-row error row; the unit's other clips are read."""
    from pipeline.tasks import clip_tables, readable_clips
    from synthetic_clips import rotating_box, waving_arm

    clips, arrays = clip_tables([rotating_box(), waving_arm()])
    rows = arrays.to_pylist()
    rows[0]["vertices_shape"] = [3, 3, 3]  # the bytes do not fill this shape
    read, bad = readable_clips(clips, pa.Table.from_pylist(rows, schema=arrays.schema), "shard")
    assert [c.clip_id for c in read] == [rows[1]["clip_id"]]
    assert [(r["stage"], r["unit_id"], r["error_type"], r["source"]) for r in bad] == [
        ("shard", rows[0]["clip_id"], "bad-row", "rotating-box")]
    read, bad = readable_clips(clips, arrays.slice(1), "caption")  # no arrays row for the first clip
    assert len(read) == 1 and "no clip_arrays row" in bad[0]["message"]


def test_error_partitions_of_the_old_version_are_set_aside_not_mixed_with_new_ones(tmp_path, monkeypatch):
    """ERRORS_VERSION is part of every stage hash: a job folder written before the `transient` column (version 1)
    gets new hashes on its next plan, which sets the old error partitions aside; the `errors` view and a user's own
    glob over OUT/errors/ then read only rows that have the column."""
    import duckdb

    import schemas.tables
    from pipeline.plan import plan_run
    from pipeline.stats import connect

    job = parse_job({"name": "old", "sources": [{"kind": "local", "paths": ["missing"]}]}, base_dir=tmp_path)
    manifest = Manifest(tmp_path / "out")
    monkeypatch.setattr(schemas.tables, "ERRORS_VERSION", 1)
    old = plan_run(job, manifest, None, show_progress=False)
    [old_part] = (tmp_path / "out" / "errors" / "harvest").glob("*/*.parquet")
    pq.write_table(pq.read_table(old_part).drop_columns(["transient"]), old_part)  # as version 1 wrote it
    monkeypatch.undo()
    new = plan_run(job, manifest, None, show_progress=False)
    assert new.hashes.harvest != old.hashes.harvest and new.hashes.evaluate != old.hashes.evaluate
    assert not old_part.exists() and (tmp_path / "out" / SUPERSEDED / old_part.relative_to(tmp_path / "out")).is_file()
    [row] = connect(str(tmp_path / "out")).execute("SELECT * FROM errors").fetch_df().to_dict("records")
    assert (row["unit_id"], row["error_type"], row["transient"]) == ("missing", "not-found", True)
    glob = str(tmp_path / "out" / "errors" / "**" / "*.parquet")  # no union_by_name needed: one schema
    assert duckdb.connect().execute(f"SELECT count(*), bool_and(transient) FROM read_parquet('{glob}')").fetchone() == (
        1, True)


# ---- journeys -------------------------------------------------------------------------------------------------------
def spec(name: str, sources: list, **run) -> dict:
    return {"name": name, "sources": sources, "resample": RESAMPLE, "caption": {"backend": "motion"},
            "run": {"unit_size": 2, "caption_num_cpus": 0, **run}}


def run_job(folder: Path, job: dict, out: Path, **options) -> Runner:
    runner = Runner(parse_job(job, base_dir=folder), out, show_progress=False, **options)
    runner.result = runner.run()
    return runner


def current_files(out: Path) -> dict[str, str]:
    """sha256 of the job's current outputs: every file but the lock and what the last plan set aside (superseded/)."""
    return {name: digest for name, digest in all_files(out).items() if not name.startswith(f"{SUPERSEDED}/")}


def all_files(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != LOCK_NAME}


def error_rows(out: Path, stage: str = "*") -> list[dict]:
    import duckdb

    files = list(out.glob(f"errors/{stage}/*/*.parquet"))
    return duckdb.connect().execute(f"select * from read_parquet({[str(f) for f in files]}, union_by_name=true) "
                                    "order by stage, unit_id").fetch_df().to_dict("records") if files else []


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> Path:
    from stages.generate import generate_asset

    folder = tmp_path_factory.mktemp("assets")
    for index, kind in enumerate(("creature", "blob", "machine", "blob")):
        generate_asset(kind, index, folder / "good" / f"{kind}{index}.glb")
    generate_asset("machine", 9, folder / "later" / "machine9.glb")
    return folder


def good_job(assets: Path) -> dict:
    """The four good assets, one task at a time, no retry of a lost worker within the run."""
    return spec("good", [{"kind": "local", "paths": [str(assets / "good")]}], workers=1, max_retries=0)


@pytest.fixture(scope="module")
def clean_good(ray_session, assets, tmp_path_factory) -> Runner:
    """A clean run of good_job: what a resumed or retried run must give, byte for byte."""
    folder = tmp_path_factory.mktemp("clean")
    runner = run_job(folder, good_job(assets), folder / "out")
    runner.out_folder = folder / "out"
    return runner


@pytest.mark.ray
def test_a_missing_source_folder_is_retried_and_finished_work_is_read_back(ray_session, assets, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(assets / "good", work / "good")
    job = spec("partial", [{"kind": "local", "paths": ["good", "later"]}])
    first = run_job(work, job, tmp_path / "out")
    harvest = first.result["stages"]["harvest"]
    assert (harvest["seen"], harvest["ok"], harvest["failed"], harvest["transient"]) == (5, 4, 1, 1)
    [row] = [r for r in error_rows(tmp_path / "out", "harvest")]
    assert (row["unit_id"], row["error_type"], row["transient"], row["attempt"]) == ("later", "not-found", True, 1)
    shutil.copytree(assets / "later", work / "later")  # the cause is gone
    second = run_job(work, job, tmp_path / "out")
    assert second.asset_tasks == 1  # only the new asset: the 4 evaluated ones are read back from the first run
    assert second.result["stages"]["harvest"]["transient"] == 0 and not error_rows(tmp_path / "out", "harvest")
    clean = run_job(work, job, tmp_path / "clean")
    assert clean.asset_tasks == 5
    assert current_files(tmp_path / "out") == current_files(tmp_path / "clean")
    assert (tmp_path / "out" / SUPERSEDED / "markers" / "evaluate").is_dir()  # the first run's units, set aside


@pytest.mark.ray
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds Ray's workers through /proc")
def test_a_lost_worker_is_transient_and_the_rerun_redoes_that_asset_only(ray_session, assets, clean_good, tmp_path):
    job, clean = good_job(assets), clean_good
    killed: list[int] = []

    def kill_one_asset_task():
        deadline = time.monotonic() + 120
        while not killed and time.monotonic() < deadline:
            for pid in cluster_workers_running(ray_session, "clips_for_asset"):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                break
            time.sleep(0.01)

    killer = threading.Thread(target=kill_one_asset_task)
    killer.start()
    crashed = run_job(tmp_path, job, tmp_path / "out")
    killer.join()
    assert killed, "no asset task was seen running"
    evaluate = crashed.result["stages"]["evaluate"]
    assert (evaluate["failed"], evaluate["transient"], evaluate["error_types"]) == (1, 1, {"worker-crashed": 1})
    [row] = error_rows(tmp_path / "out", "evaluate")
    assert row["transient"] and row["attempt"] == 1 and "worker died" in row["message"]
    again = run_job(tmp_path, job, tmp_path / "out")
    assert again.asset_tasks == 1 and again.result == clean.result
    assert all_files(tmp_path / "out") == all_files(clean.out_folder)  # the same bytes as a clean run
    assert run_job(tmp_path, job, tmp_path / "out").asset_tasks == 0  # and then nothing left to do


@pytest.mark.ray
def test_retry_failed_retries_permanent_failures_counting_attempts(ray_session, assets, tmp_path):
    job = spec("broken", [{"kind": "local", "paths": [str(BROKEN / "node_cycle.glb"), str(assets / "good" / "blob1.glb")]}])
    first = run_job(tmp_path, job, tmp_path / "out")
    assert first.result["stages"]["evaluate"]["failed"] == 1 and first.result["stages"]["evaluate"]["transient"] == 0
    assert run_job(tmp_path, job, tmp_path / "out").asset_tasks == 0  # permanent: a plain rerun leaves it
    again = run_job(tmp_path, job, tmp_path / "out", retry_failed=True)
    assert again.asset_tasks == 1
    [row] = error_rows(tmp_path / "out", "evaluate")
    assert (row["attempt"], row["transient"], row["status"]) == (2, False, "failed")


# ---- the command line -----------------------------------------------------------------------------------------------
def cli(args: list[str], ray_session=None, timeout: float = 300, preamble: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), RAY_USAGE_STATS_ENABLED="0")
    if ray_session is not None:
        env["RAY_ADDRESS"] = ray_session.get_runtime_context().gcs_address
    code = f"{preamble}\nimport sys\nfrom pipeline.cli import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def one_line(result: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("dymesh run:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def write(folder: Path, job: dict) -> Path:
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    return path


@pytest.mark.ray
def test_a_wholly_failed_source_and_a_job_without_clips_exit_non_zero_naming_the_cause(ray_session, tmp_path):
    missing = write(tmp_path, spec("missing", [{"kind": "local", "paths": ["nowhere"]}]))
    result = cli(["run", str(missing), "--out", str(tmp_path / "a"), "--quiet"], ray_session)
    assert result.returncode == 1
    line = one_line(result)
    assert "source 0 (local nowhere) failed" in line and "nowhere: no such file" not in line  # the item is <item>
    assert "no such file" in line and "transient: re-run to retry" in line
    broken = write(tmp_path, spec("noclips", [{"kind": "local", "paths": [str(BROKEN / "node_cycle.glb")]}]))
    result = cli(["run", str(broken), "--out", str(tmp_path / "b"), "--quiet"], ray_session)
    assert result.returncode == 1 and "the job produced no clips (0 of 1 assets evaluated" in one_line(result)
    assert "most frequent failures" in result.stdout and "evaluate/" in result.stdout


FULL_DISK = """
import builtins, errno
import stages.storage as storage

class Full:
    def __init__(self, handle):
        self.handle = handle
    def write(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")
    def __getattr__(self, name):
        return getattr(self.handle, name)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        self.handle.close()
        return False

def open_on_a_full_disk(path, mode="r", *args, **kwargs):
    handle = builtins.open(path, mode, *args, **kwargs)
    return Full(handle) if "w" in mode and "/clips/" in str(path) else handle

storage.open = open_on_a_full_disk  # the disk fills up when the first clips partition is written
"""


@pytest.mark.ray
def test_a_full_disk_is_one_line_and_the_rerun_resumes(ray_session, assets, clean_good, tmp_path):
    job = write(tmp_path, good_job(assets))
    args = ["run", str(job), "--quiet", "--out"]
    full = cli([*args, str(tmp_path / "out")], ray_session, preamble=FULL_DISK)
    assert full.returncode == 74
    line = one_line(full)
    assert "no space left on the device" in line and "/clips/" in line and "re-running the same command resumes" in line
    assert not list((tmp_path / "out" / "markers").glob("resample/*/*.json"))  # nothing committed half
    assert list((tmp_path / "out" / "markers").glob("harvest/*/*.json"))  # what was committed is kept
    assert cli([*args, str(tmp_path / "out")], ray_session).returncode == 0
    assert all_files(tmp_path / "out") == all_files(clean_good.out_folder)


def test_a_read_only_output_folder_is_one_line(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    mounted = False
    if os.geteuid() == 0:  # root writes through permissions: a read-only mount instead
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
                                 capture_output=True).returncode == 0
        if not mounted:
            pytest.skip("running as root without the right to mount: no way to make a folder read-only")
    else:
        folder.chmod(0o555)
    try:
        job = write(tmp_path, spec("ro", [{"kind": "generated", "count": 1}]))
        result = cli(["run", str(job), "--out", str(folder / "out"), "--quiet"])
        assert result.returncode == 73
        line = one_line(result)
        assert ("read-only file system" in line or "permission denied" in line) and str(folder) in line
        assert "make it writable" in line
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=True)
        else:
            folder.chmod(0o755)
