"""Training ranks die with their launcher: SIGKILL a real `torchrun` launcher of a 2-rank DDP run, or a `dymesh train`
driver on Ray Train, and no rank survives it, and the run folder's lock is free for the next run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from paths import REPO
from procs import alive, children, process_table, processes_naming
from pipeline.lock import LOCK_NAME, FolderLock, LockedError
from train_runs import SMALL


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkill_of_the_torchrun_launcher_leaves_no_rank_and_frees_the_lock(tmp_path):
    spec = dict(model="vae", preset="tiny", name="orphans", storage_path=str(tmp_path), shards="synthetic:16",
                steps=100000, batch_size=4, checkpoint_every=50, log_every=10, loader_workers=0, overrides=SMALL)
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(spec))
    run_folder = tmp_path / "orphans"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    launcher = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                                 "-m", "pipeline.launch", "--config", str(tmp_path / "job.yaml")],
                                env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ranks: list[int] = []
    try:
        deadline = time.monotonic() + 240
        while not (run_folder / "logs" / "metrics.csv").is_file():  # both ranks are in the training loop
            assert launcher.poll() is None, launcher.stderr.read()
            assert time.monotonic() < deadline, "the ranks did not start training in time"
            time.sleep(0.2)
        ranks = children(launcher.pid)
        assert len(ranks) == 2, ranks
        assert (run_folder / LOCK_NAME).stat().st_size > 0  # rank 0 holds the run folder
        launcher.send_signal(signal.SIGKILL)
        launcher.wait()
        deadline = time.monotonic() + 15
        while any(alive(rank) for rank in ranks) and time.monotonic() < deadline:
            time.sleep(0.1)
        survivors = [rank for rank in ranks if alive(rank)]
        assert not survivors, f"ranks outlived their launcher: {survivors}"
        # a killed rank's group leader shows as a zombie while its other threads still exit; the lock's file is
        # closed with the last of them, within moments
        while True:
            try:
                with FolderLock(run_folder, "dymesh train") as lock:
                    assert lock.taken_over.get("command") == "python -m pipeline.launch"
                break
            except LockedError:
                assert time.monotonic() < deadline, "the dead ranks' lock was not released"
                time.sleep(0.1)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
        for rank in ranks:
            if alive(rank):
                os.kill(rank, signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkill_of_dymesh_train_on_ray_leaves_no_worker_and_frees_the_lock(tmp_path):
    """Ray Train's workers (and the local Ray `dymesh train` started) end with the driver."""
    spec = dict(model="vae", preset="tiny", name="orphans", storage_path=str(tmp_path), shards="synthetic:8",
                steps=100000, batch_size=4, checkpoint_every=50, log_every=5, loader_workers=0, num_workers=1,
                overrides=SMALL)
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(spec))
    run_folder = tmp_path / "orphans"
    ray_tmp = Path(tempfile.mkdtemp(prefix="dml", dir="/tmp"))  # this run's Ray (short: socket paths)
    env = dict(os.environ, PYTHONPATH=str(REPO), RAY_TMPDIR=str(ray_tmp), RAY_USAGE_STATS_ENABLED="0")
    env.pop("RAY_ADDRESS", None)
    driver = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "train", str(tmp_path / "job.yaml")], env=env,
                              cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not (run_folder / "logs" / "metrics.csv").is_file():
            assert driver.poll() is None, "the training ended early"
            assert time.monotonic() < deadline, "the worker did not start training in time"
            time.sleep(0.2)
        table = process_table()
        workers = [p for p in processes_naming(str(ray_tmp)) if "RayTrainWorker" in table.get(p, (0, ""))[1]]
        assert workers, "no Ray Train worker found"
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        deadline = time.monotonic() + 30
        while processes_naming(str(ray_tmp)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not processes_naming(str(ray_tmp)), "Ray processes outlived the dymesh train driver"
        with FolderLock(run_folder, "dymesh train") as lock:
            assert lock.taken_over.get("command") == "dymesh train"
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        for pid in processes_naming(str(ray_tmp)):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(ray_tmp, ignore_errors=True)
