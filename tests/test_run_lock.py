"""One run per output folder: a second `dymesh run` on a folder in use exits at once with one line naming the holder
(no traceback), the lock of a SIGKILLed run is taken over, `dymesh train` locks its run folder, and a training rank
dies with its launcher."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from paths import REPO
from pipeline.lock import LOCK_NAME, FolderLock, LockedError, lock_path

PYTHON = sys.executable
HOLD = "import sys, time; from pipeline.lock import FolderLock; FolderLock(sys.argv[1], 'holder').acquire(); " \
       "print('held', flush=True); time.sleep(600)"


def env(**extra) -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO), RAY_USAGE_STATS_ENABLED="0", **extra)


def hold_in_subprocess(folder: Path) -> subprocess.Popen:
    holder = subprocess.Popen([PYTHON, "-c", HOLD, str(folder)], env=env(), stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_holder_is_refused_naming_the_first(tmp_path):
    first = FolderLock(tmp_path / "out", "dymesh run").acquire()
    try:
        with pytest.raises(LockedError) as refused:
            FolderLock(tmp_path / "out", "dymesh run").acquire()  # another open file: refused, even in one process
        text = str(refused.value)
        assert f"pid {os.getpid()} on host {socket.gethostname()} since 20" in text and "(dymesh run)" in text
    finally:
        first.release()
    assert (tmp_path / "out" / LOCK_NAME).read_bytes() == b""  # a clean exit leaves no holder behind
    with FolderLock(tmp_path / "out", "dymesh run") as again:
        assert again.taken_over == {}


def test_the_lock_of_a_killed_holder_is_taken_over_saying_so(tmp_path, capsys):
    holder = hold_in_subprocess(tmp_path)
    with pytest.raises(LockedError, match=f"pid {holder.pid} "):
        FolderLock(tmp_path, "dymesh run").acquire()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with FolderLock(tmp_path, "dymesh run", stream=sys.stdout) as lock:
        assert lock.taken_over["pid"] == holder.pid
        record = json.loads((tmp_path / LOCK_NAME).read_text())
        assert record["pid"] == os.getpid() and record["command"] == "dymesh run"
    assert f"took over the lock of {tmp_path} left by pid {holder.pid}" in capsys.readouterr().out


def test_object_store_folders_lock_a_local_file_named_after_them(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = lock_path("s3://bucket/runs/vae")
    assert path.parent == tmp_path / "dymesh" / "locks" and path == lock_path("s3://bucket/runs/vae/")
    with FolderLock("s3://bucket/runs/vae", "dymesh train"):
        with pytest.raises(LockedError, match="s3://bucket/runs/vae is in use"):
            FolderLock("s3://bucket/runs/vae", "dymesh train").acquire()


def write_job(folder: Path, count: int = 6) -> Path:
    spec = {"name": "locked", "sources": [{"kind": "generated", "count": count, "seed": 5}],
            "resample": {"vertices": 64, "frames": [4], "max_clips_per_animation": 1, "quality_samples": 64},
            "caption": {"backend": "motion"}, "run": {"unit_size": 1, "caption_num_cpus": 0, "workers": 1}}
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def wait_for(condition, seconds: float, what: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if process is not None and process.poll() is not None:
            pytest.fail(f"{what}: the run ended first: {process.stderr.read()}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.ray
def test_two_concurrent_runs_on_one_out_then_a_killed_run_is_taken_over(ray_session, tmp_path):
    job, out = write_job(tmp_path), tmp_path / "out"
    command = [PYTHON, "-m", "pipeline.cli", "run", str(job), "--out", str(out), "--quiet"]
    run_env = env(RAY_ADDRESS=ray_session.get_runtime_context().gcs_address)
    first = subprocess.Popen(command, env=run_env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
    try:
        lock = out / LOCK_NAME
        wait_for(lambda: lock.is_file() and lock.stat().st_size > 0, 120, "the first run's lock", first)
        started = time.monotonic()
        second = subprocess.run(command, env=run_env, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert second.returncode == 3, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in second.stderr, second.stderr
        assert f"is in use by pid {first.pid} on host {socket.gethostname()} since " in lines[0]
        assert time.monotonic() - started < 60  # at once: no harvest, no Ray (python start-up only)
        wait_for(lambda: any((out / "markers" / "resample").rglob("*.json")), 180, "a committed unit", first)
        assert first.poll() is None, "the first run finished before it could be killed"
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    third = subprocess.run(command, env=run_env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stderr
    assert f"took over the lock of {out} left by pid {first.pid}" in third.stderr
    assert "Traceback" not in third.stderr and lock.read_bytes() == b""
    assert "core_worker" not in third.stderr  # Ray's own lines go to its session logs (shown with --verbose)


def test_dymesh_train_refuses_a_run_folder_in_use(tmp_path):
    spec = tmp_path / "train.yaml"
    spec.write_text(yaml.safe_dump({"model": "vae", "name": "busy", "storage_path": str(tmp_path),
                                    "shards": "synthetic:4", "steps": 1}))
    holder = hold_in_subprocess(tmp_path / "busy")
    try:
        for command in (["-m", "pipeline.cli", "train", str(spec), "--no-ray"],
                        ["-m", "pipeline.launch", "--config", str(spec)]):
            refused = subprocess.run([PYTHON, *command], env=env(), cwd=REPO, capture_output=True, text=True,
                                     timeout=120)
            assert refused.returncode == 3, refused.stderr
            assert f"{tmp_path / 'busy'} is in use by pid {holder.pid}" in refused.stderr
            assert "Traceback" not in refused.stderr
        assert not list((tmp_path / "busy").glob("checkpoint_*"))
    finally:
        holder.kill()
        holder.wait()


LAUNCHER = """
import subprocess, sys, time
rank = subprocess.Popen([sys.executable, "-c", "import os, time; from pipeline.fate import die_with; "
                         "die_with(os.getppid(), 'launcher'); print(os.getpid(), flush=True); time.sleep(600)"],
                        stdout=subprocess.PIPE, text=True)
print(rank.stdout.readline().strip(), flush=True)
time.sleep(600)
"""


def test_a_rank_dies_with_its_launcher(tmp_path):
    launcher = subprocess.Popen([PYTHON, "-c", LAUNCHER], env=env(), stdout=subprocess.PIPE, text=True)
    rank = int(launcher.stdout.readline())
    assert Path(f"/proc/{rank}").exists() if sys.platform.startswith("linux") else True
    launcher.send_signal(signal.SIGKILL)
    launcher.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(rank, 0)
        except ProcessLookupError:
            return
        if Path(f"/proc/{rank}/stat").is_file() and Path(f"/proc/{rank}/stat").read_text().split()[2] == "Z":
            return  # exited, not yet reaped by init
        time.sleep(0.1)
    os.kill(rank, signal.SIGKILL)
    pytest.fail("the rank outlived its launcher")
