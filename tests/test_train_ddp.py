"""DDP on 2 gloo processes (torch.multiprocessing, the real loop and launcher): VAE and flow train, the ranks'
parameters stay bit-equal, and the ranks draw disjoint clips."""

from __future__ import annotations

import math

import pytest
import torch
import torch.multiprocessing as mp

from pipeline.launch import train_here as train
from train_runs import SMALL, ddp_worker, free_port, small_run

CLIPS, BATCH = 16, 4  # 2 ranks x batch 4: one epoch is 2 steps


def run_ddp(tmp_path, **changes) -> list[dict]:
    spec = dict(model="vae", preset="tiny", name="ddp", storage_path=str(tmp_path), shards=f"synthetic:{CLIPS}",
                steps=2, batch_size=BATCH, checkpoint_every=2, log_every=1, loader_workers=0,
                overrides={**SMALL, "flow": {**SMALL["flow"], "layers": 2}})
    spec.update(changes)
    mp.spawn(ddp_worker, args=(2, free_port(), spec, str(tmp_path)), nprocs=2, join=True)
    return [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]


def check_ranks(ranks: list[dict]) -> None:
    for rank in ranks:
        assert rank["metrics"]["step"] == 2 and math.isfinite(rank["metrics"]["loss"])
    assert ranks[0]["model"].keys() == ranks[1]["model"].keys()
    for key, value in ranks[0]["model"].items():
        assert torch.equal(value, ranks[1]["model"][key]), f"{key} differs between ranks"
    keys = [set(rank["keys"]) for rank in ranks]
    assert all(len(k) == BATCH * 2 for k in keys)
    assert not keys[0] & keys[1], "ranks drew the same clips"
    assert len(keys[0] | keys[1]) == CLIPS  # one epoch: every clip once


@pytest.mark.timeout(300)
def test_vae_trains_on_two_ddp_processes(tmp_path):
    ranks = run_ddp(tmp_path)
    check_ranks(ranks)
    torch.manual_seed(0)
    from stages.train.objectives import VAEObjective

    fresh = VAEObjective(small_run(tmp_path, "x").preset_config(), torch.device("cpu")).module.state_dict()
    assert any(not torch.equal(fresh[k], v) for k, v in ranks[0]["model"].items())  # it did train


@pytest.mark.timeout(300)
def test_flow_trains_on_two_ddp_processes(tmp_path):
    train(small_run(tmp_path, "vae", steps=1))
    ranks = run_ddp(tmp_path, model="flow", name="flow-ddp", vae_checkpoint=str(tmp_path / "vae"))
    check_ranks(ranks)
    # the last block's text stream is attention context only: every trainable parameter shaped the loss
    assert any(k.startswith("flow.blocks.1.ada_text") for k in ranks[0]["model"])
