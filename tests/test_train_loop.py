"""The training loop without Ray: kill-and-resume is exact, a flow run trains on a VAE checkpoint."""

from __future__ import annotations

import csv

import pytest
import torch

from pipeline.config import run_config_from_dict
from pipeline.errors import UserError
from pipeline.launch import train_here as train
from stages.train import checkpoint as ckpt
from train_runs import small_run


def final_state(tmp_path, name):
    return ckpt.load_checkpoint(str(tmp_path / name))


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Real shards (the shard stage's writer) of 24 small synthetic clips."""
    from stages.shard import ShardConfig, write_shards
    from shard_clips import synthetic_clip, synthetic_dataset
    from stages.splits import SplitConfig

    out = tmp_path_factory.mktemp("shards")
    _, captions, assets = synthetic_dataset(assets=8, clips_per_asset=3)
    everything_train = SplitConfig(fractions=(1.0, 0.0, 0.0))
    clips = sorted((synthetic_clip(a, c % 2, seed=c * 16, vertices=40, split=everything_train) for a in range(8)
                    for c in range(3)),
                   key=lambda c: c.clip_id)
    captions = {c.clip_id: [{**captions[c.clip_id][0], "content_hash": c.content_hash}] for c in clips}
    rows, errors = write_shards(clips, captions, assets, str(out),
                                ShardConfig(max_shard_samples=5))
    assert len(rows) == 24 and not errors
    return str(out)


def test_kill_and_resume_matches_an_uninterrupted_run(tmp_path, shards):
    # 24 clips / batch 4 = 6 batches an epoch: the kill at step 5 and the resume from 3 are mid-epoch
    train(small_run(tmp_path, "straight", shards=shards))
    with pytest.raises(RuntimeError, match="simulated kill"):
        train(small_run(tmp_path, "killed", shards=shards, fail_at_step=5))
    assert [step for step, _ in ckpt.completed_checkpoints(str(tmp_path / "killed"))] == [3]
    train(small_run(tmp_path, "killed", shards=shards))  # resumes from step 3, runs to 8

    meta_a, state_a = final_state(tmp_path, "straight")
    meta_b, state_b = final_state(tmp_path, "killed")
    assert state_a["step"] == state_b["step"] == 8 and meta_b["kind"] == "vae"
    for key, value in state_a["model"].items():
        torch.testing.assert_close(state_b["model"][key], value, rtol=0, atol=0, msg=key)
    with open(tmp_path / "killed" / "logs" / "metrics.csv") as f:
        steps = [int(row["step"]) for row in csv.DictReader(f)]
    assert steps == [2, 3, 4, 6, 8]  # rows after the checkpoint were dropped and redone, none twice
    assert (tmp_path / "killed" / "logs" / "tensorboard").is_dir()


def test_flow_trains_on_a_vae_checkpoint_and_stores_scaling(tmp_path):
    train(small_run(tmp_path, "vae", steps=3))
    metrics = train(small_run(tmp_path, "flow", model="flow", steps=3, vae_checkpoint=str(tmp_path / "vae")))
    assert metrics["step"] == 3 and metrics["loss"] == metrics["loss"]  # not NaN
    meta, state = final_state(tmp_path, "flow")
    assert meta["kind"] == "flow" and meta["text_config"]["model"] == "tiny-random"
    stats = state["model"]["scaling.stats"]
    assert stats[1] > 0 and stats[3] > 0 and not torch.equal(stats, torch.tensor([0.0, 1.0, 0.0, 1.0]))
    assert set(state["vae"]) == set(final_state(tmp_path, "vae")[1]["model"])


def test_flow_refuses_a_non_vae_checkpoint(tmp_path):
    with pytest.raises(UserError, match="vae_checkpoint"):
        run_config_from_dict(dict(model="flow", shards="synthetic:4"))


@pytest.mark.parametrize("spec, message", [
    (dict(steps="10"), "steps: expected int"),
    (dict(stepz=10), "unknown key 'stepz'"),
    (dict(overrides={"vae": {"width": "wide"}}), "overrides.vae.width: expected int"),
    (dict(overrides={"vea": {}}), "overrides: unknown part 'vea'"),
    (dict(model="gan"), "model must be 'vae' or 'flow'"),
])
def test_training_specs_go_through_the_one_job_parser(spec, message):
    with pytest.raises(UserError, match=message):
        run_config_from_dict(spec)
