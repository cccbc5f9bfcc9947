"""A 2-process DDP run (gloo on CPU) through Ray Train's TorchTrainer finishes, checkpoints and learns."""

from __future__ import annotations

import csv

import pytest

from pipeline.config import run_config_from_dict
from pipeline.executor.train import train_with_ray
from stages.train import checkpoint as ckpt
from train_runs import SMALL, small_run


@pytest.mark.ray
def test_two_worker_ddp_run_on_ray_train(ray_session, tmp_path):
    run = run_config_from_dict(dict(
        model="vae", preset="tiny", name="ddp", storage_path=str(tmp_path), shards="synthetic:16", steps=12,
        batch_size=4, checkpoint_every=6, log_every=3, loader_workers=0, num_workers=2,
        overrides={**SMALL, "optim": {"lr": 3e-3, "warmup_steps": 2}},
    ))
    result = train_with_ray(run)
    assert result.error is None
    assert [step for step, _ in ckpt.completed_checkpoints(str(tmp_path / "ddp"))] == [6, 12]
    files = ckpt.read_files(ckpt.resolve_checkpoint(str(tmp_path / "ddp")))
    assert {"rank_0.pt", "rank_1.pt", "state.pt", "meta.json"} <= set(files)
    with open(tmp_path / "ddp" / "logs" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    losses = [float(r["loss"]) for r in rows]
    assert [int(r["step"]) for r in rows] == [3, 6, 9, 12]
    assert losses[-1] < losses[0], losses


@pytest.mark.ray
def test_two_worker_flow_run_on_ray_train(ray_session, tmp_path):
    from pipeline.launch import train_here

    train_here(small_run(tmp_path, "vae", steps=1))
    run = run_config_from_dict(dict(
        model="flow", preset="tiny", name="flow-ddp", storage_path=str(tmp_path), shards="synthetic:16", steps=4,
        batch_size=4, checkpoint_every=4, log_every=2, loader_workers=0, num_workers=2,
        vae_checkpoint=str(tmp_path / "vae"), overrides={**SMALL, "flow": {**SMALL["flow"], "layers": 2}},
    ))
    result = train_with_ray(run)  # step 2 used to fail: "parameters that were not used in producing loss"
    assert result.error is None
    assert [step for step, _ in ckpt.completed_checkpoints(str(tmp_path / "flow-ddp"))] == [4]
