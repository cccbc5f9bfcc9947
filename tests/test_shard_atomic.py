"""A writer killed mid-shard leaves no visible partial shard (temp name + rename)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from shard_clips import synthetic_dataset
from stages.shard import ShardConfig, write_shards

REPO = Path(__file__).resolve().parents[1]

WRITER = """
import sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
from shard_clips import synthetic_dataset
from stages.shard import ShardConfig, write_shards

clips, captions, assets = synthetic_dataset(assets=12, clips_per_asset=3)

def stalling():
    for i, clip in enumerate(clips):
        if i == 25:
            Path({marker!r}).write_text("mid-way")
            time.sleep(60)
        yield clip

write_shards(stalling(), captions, assets, {out!r}, ShardConfig(max_shard_samples=4))
"""


def test_killed_writer_leaves_only_complete_shards(tmp_path):
    out, marker = tmp_path / "killed", tmp_path / "marker"
    script = WRITER.format(tests=str(REPO / "tests"), marker=str(marker), out=str(out))
    process = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert process.poll() is None, "writer exited early"
            assert time.monotonic() < deadline, "writer never reached the middle"
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=30)
    tars = out / "webdataset"
    files = [p.relative_to(tars) for p in tars.rglob("*") if p.is_file()]
    visible = sorted(str(p) for p in files if not p.name.startswith("."))
    hidden = [p.name for p in files if p.name.startswith(".")]
    assert hidden and all(name.endswith(".partial") for name in hidden)  # it was killed inside a shard
    assert visible and all(name.endswith(".tar") for name in visible)
    assert not [p for p in (out / "shards").rglob("*") if p.is_file()]  # no manifest: the set is not published

    clips, captions, assets = synthetic_dataset(assets=12, clips_per_asset=3)
    full = tmp_path / "full"
    write_shards(clips, captions, assets, str(full), ShardConfig(max_shard_samples=4))
    for name in visible:  # each visible shard is complete: byte-identical to the uninterrupted run's
        ours, theirs = (root / "webdataset" / name for root in (out, full))
        assert hashlib.sha256(ours.read_bytes()).digest() == hashlib.sha256(theirs.read_bytes()).digest()
