"""A real two-node Ray cluster on this host (`ray start --head` plus a second `ray start --address`, each with one
CPU), with token authentication on as Ray 2.60 sets it up where a token exists: `dymesh run --address auto` works
and writes the same bytes as a local run; a machine without the token, an `auto` with no `ray start` cluster, and a
cluster that goes away mid-run are each one dymesh line with exit 69; Ray's own output stays off the terminal.

The cluster lives in its own temp folder with its own HOME (token) and RAY_TMPDIR (address file), and only its own
processes are stopped (found by that folder; never `ray stop`, which stops every Ray on the machine).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import yaml

from paths import REPO
from checkout import copy_checkout, fenced_blocks
from procs import process_table, processes_naming

pytestmark = [pytest.mark.slow, pytest.mark.ray]

PYTHON = sys.executable
RAY = str(Path(sys.executable).with_name("ray"))
JOB = {
    "name": "cluster",
    "sources": [{"kind": "generated", "count": 8, "seed": 11}],
    "resample": {"vertices": 96, "frames": [8], "max_clips_per_animation": 2, "quality_samples": 128},
    "caption": {"backend": "motion"},
    "split": {"fractions": [0.5, 0.25, 0.25]},
    "shard": {"max_shard_samples": 4},
    "run": {"unit_size": 2, "caption_num_cpus": 0},
}
RAY_NOISE = ("core_worker", "INFO worker.py", "Connecting to existing Ray cluster", "Token authentication",
             "Started a local Ray instance")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    """A head and a second node started with `ray start`, everything under one short temp folder."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="dmc", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
        self.home = self.root / "home"
        self.home.mkdir()
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.raylets: list[int] = []

    def env(self, **extra) -> dict:
        """Everything a process of this cluster (or a driver joining it) sees: its HOME (token) and Ray temp folder."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        env.update(PYTHONPATH=str(REPO), HOME=str(self.home), RAY_TMPDIR=str(self.root),
                   RAY_USAGE_STATS_ENABLED="0", PYTHONHASHSEED="0")
        env.update(extra)
        return env

    def ray(self, *args: str, **env) -> None:
        done = subprocess.run([RAY, *args], env=self.env(**env), cwd=self.root, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr

    def start(self) -> Cluster:
        self.ray("get-auth-token", "--generate")  # as after any local ray.init: `ray start` then enables tokens
        common = ("--num-cpus", "1", "--object-store-memory", str(256 * 1024 * 1024), "--disable-usage-stats")
        self.ray("start", "--head", "--port", str(self.port), "--include-dashboard=false",
                 "--dashboard-agent-listen-port", str(free_port()), *common)
        # a node joining a token cluster needs RAY_AUTH_MODE=token: `ray start --address` does not find out itself
        self.ray("start", "--address", self.address, "--dashboard-agent-listen-port", str(free_port()), *common,
                 RAY_AUTH_MODE="token")
        self.raylets = [p for p in self.processes() if Path(f"/proc/{p}/comm").read_text().strip() == "raylet"]
        assert len(self.raylets) == 2, "expected a head and a second node"
        return self

    def processes(self) -> list[int]:
        """Pids of this cluster's processes: those whose command line names its folder, and their children."""
        return sorted(processes_naming(str(self.root)) - {os.getpid()})

    def workers_of(self, raylet: int) -> int:
        """How many Ray worker processes the raylet `raylet` has now."""
        return sum("default_worker" in cmdline for parent, cmdline in process_table().values() if parent == raylet)

    def kill(self) -> None:
        """SIGKILL every process of this cluster (what a crashed head machine looks like to a driver)."""
        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    started = Cluster()
    try:
        yield started.start()
    finally:
        started.stop()


def write_job(folder: Path, **run) -> Path:
    spec = {k: dict(v) if isinstance(v, dict) else v for k, v in JOB.items()}
    spec["run"].update(run)
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def dymesh(cluster: Cluster, *args: str, timeout: float = 300, **env) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "pipeline.cli", *args], env=cluster.env(**env), cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def file_hashes(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


def test_a_two_node_cluster_run_matches_a_local_run_byte_for_byte(cluster, tmp_path):
    job = write_job(tmp_path)
    local = dymesh(cluster, "run", str(job), "--out", str(tmp_path / "local"), "--quiet")
    assert local.returncode == 0, local.stderr
    assert not [n for n in RAY_NOISE if n in local.stderr], local.stderr  # Ray's lines went to its log file
    log = next(cluster.root.glob(f"ray/session_*/logs/dymesh-driver-*.err"))
    assert "Token authentication is enabled" in log.read_text()  # ... this one, with Ray's own log files

    used = {raylet: 0 for raylet in cluster.raylets}
    running = True

    def count_workers() -> None:  # which nodes start workers for the run (evaluate tasks: 1 CPU each)
        while running:
            for raylet in used:
                used[raylet] = max(used[raylet], cluster.workers_of(raylet))
            time.sleep(0.1)

    watcher = threading.Thread(target=count_workers, daemon=True)
    watcher.start()
    try:
        # no RAY_AUTH_MODE here: dymesh finds that the cluster wants a token and uses this machine's
        remote = dymesh(cluster, "run", str(job), "--out", str(tmp_path / "cluster"), "--address", "auto",
                        "--verbose")
    finally:
        running = False
        watcher.join()
    assert remote.returncode == 0, remote.stderr
    assert "Connected to Ray cluster" in remote.stderr  # --verbose: Ray's own lines on the terminal
    assert "InvalidAuthToken" not in remote.stderr
    assert all(used.values()), f"both nodes must run tasks: workers per raylet {used}"
    assert file_hashes(tmp_path / "cluster") == file_hashes(tmp_path / "local")


def test_a_machine_without_the_token_is_told_what_to_do_at_once(cluster, tmp_path):
    started = time.monotonic()
    refused = dymesh(cluster, "run", str(write_job(tmp_path)), "--out", str(tmp_path / "out"), "--address",
                     cluster.address, HOME=str(tmp_path))
    assert refused.returncode == 69, refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "uses token authentication and no token is set here" in lines[0], refused.stderr
    assert "RAY_AUTH_TOKEN" in lines[0]
    assert time.monotonic() - started < 30  # not Ray's half minute of InvalidAuthToken retries
    assert not (tmp_path / "out").exists()  # checked before any work


def test_auto_never_joins_a_ray_that_ray_start_did_not_record(cluster, tmp_path):
    """With no `ray start` cluster recorded, Ray's own `auto` joins any Ray it finds (here: the test cluster's
    processes); dymesh refuses and says what to do."""
    refused = dymesh(cluster, "run", str(write_job(tmp_path)), "--out", str(tmp_path / "out"), "--address", "auto",
                     RAY_TMPDIR=str(tmp_path))
    assert refused.returncode == 69, refused.stderr
    assert refused.stderr.startswith("dymesh run: --address auto: no Ray cluster was started on this machine with "
                                     "`ray start --head`"), refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


def test_nothing_listening_is_one_line(cluster, tmp_path):
    refused = dymesh(cluster, "run", str(write_job(tmp_path)), "--address", f"127.0.0.1:{free_port()}",
                     "--out", str(tmp_path / "out"))
    assert refused.returncode == 69, refused.stderr
    assert "no Ray cluster answers at 127.0.0.1:" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


def test_a_cluster_that_goes_away_mid_run_is_one_line(cluster, tmp_path):
    """Runs last in this module: it kills the cluster."""
    job, out = write_job(tmp_path, unit_size=1), tmp_path / "out"
    job_spec = yaml.safe_load(job.read_text())
    job_spec["sources"][0]["count"] = 40
    job.write_text(yaml.safe_dump(job_spec))
    run = subprocess.Popen([PYTHON, "-m", "pipeline.cli", "run", str(job), "--out", str(out), "--address",
                            cluster.address], env=cluster.env(), cwd=REPO, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not any((out / "markers" / "resample").rglob("*.json")) and run.poll() is None:
            assert time.monotonic() < deadline, "no unit committed in time"
            time.sleep(0.05)
        assert run.poll() is None, "the run finished before the cluster could be stopped: " + run.stderr.read()
        cluster.kill()
        _, stderr = run.communicate(timeout=120)  # returns when the watcher, which holds stderr too, is done
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode != 0
    progress = re.compile(r"^[\w+ ]+: \d+/\d+ ")
    lines = [line for line in stderr.splitlines() if line.strip() and not progress.match(line)]
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"dymesh run: the Ray cluster at {cluster.address} went away during the run")
    assert "re-run the same command to resume" in lines[0]
    assert "Traceback" not in stderr and "core_worker" not in stderr


def test_the_cluster_guide_runs_as_written(tmp_path):
    """Every ```bash block of docs/cluster.md, literally, in a scratch copy of the repository (its own HOME, so
    the token is its own)."""
    blocks = [b.body for b in fenced_blocks("docs/cluster.md") if b.language == "bash"]
    assert blocks, "docs/cluster.md shows no command"
    scratch = tmp_path / "repo"
    copy_checkout(scratch)
    (tmp_path / "home").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}", PYTHONPATH=str(scratch),
               HOME=str(tmp_path / "home"), RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="1")  # no 30 s drain at the end
    for block in blocks:
        done = subprocess.run(["bash", "-c", "set -euo pipefail\n" + block], cwd=scratch, env=env,
                              capture_output=True, text=True, timeout=400)
        assert done.returncode == 0, f"{block}\n{done.stdout}\n{done.stderr}"
    assert "43 samples in 3 shards" in done.stdout  # the demo, on the two-node cluster of the guide
