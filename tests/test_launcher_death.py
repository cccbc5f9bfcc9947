"""Training ranks die with their launcher: SIGKILL a real `torchrun` launcher of a 2-rank DDP run and no rank
survives it, and the run folder's lock is free for the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from paths import REPO
from pipeline.lock import LOCK_NAME, FolderLock
from train_runs import SMALL


def children(pid: int) -> list[int]:
    """Pids of the live (not zombie) processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[1] == str(pid) and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


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
        with FolderLock(run_folder, "dymesh train") as lock:  # free at once: no LockedError
            assert lock.taken_over.get("command") == "python -m pipeline.launch"
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
        for rank in ranks:
            if alive(rank):
                os.kill(rank, signal.SIGKILL)
