"""Flow evaluation (`python benchmarks/train.py --eval-flow`): does the tiny flow model make data-like motion that
follows its prompt? On the held-out (val + test) clips of the --compare-pca data, each clip's caption is the prompt
and its rest mesh the shape; scored against the held-out clips themselves:

  FD motion     Fréchet distance of per-clip motion features (stages/train/flow_metrics.py) to the held-out data
  jerk ratio    mean jerk / the held-out data's mean jerk (1 = as smooth as the data)
  label agree   share of the motion captioner's attributes (kind, pattern, speed, direction, axis) that the
                generated clip shares with the prompt's clip (the captions are phrasings of these attributes)
  R@1 (1+9)     top-1 retrieval of the prompt's label among 9 other held-out prompts' labels (chance ~0.1)

Methods: the flow model (CFG 3, 16 midpoint steps), a random latent (N(0, I) in the scaled latent space, decoded on
the same shape), and nearest-caption retrieval (the training clip whose caption shares the most words with the
prompt, its own motion). Reference row: training clips (a seeded sample of real data, as many as held out).
"""

from __future__ import annotations

import re
import time

import numpy as np
import torch

FPS = 10.0
DISTRACTORS = 9


def words(caption: str) -> set[str]:
    return set(re.findall(r"[a-z]+", caption.lower()))


def nearest_caption(prompt: str, captions: list[str]) -> int:
    """Index of the caption with the highest word Jaccard similarity to `prompt` (first on ties)."""
    target = words(prompt)
    scores = [len(target & words(c)) / max(len(target | words(c)), 1) for c in captions]
    return int(np.argmax(scores))


def clips_of(batches: list[dict]) -> list[dict]:
    """Per clip: normalised frames [T, n, 3], faces over them, caption (padding removed)."""
    from stages.train.vae import normalise_frames

    clips = []
    for batch in batches:
        normalised, _, _ = normalise_frames(batch["vertices"], batch["valid_mask"])
        for i in range(len(batch["key"])):
            n, f = int(batch["num_vertices"][i]), int(batch["num_faces"][i])
            clips.append({"frames": normalised[i, :, :n].numpy(), "faces": batch["faces"][i, :f].numpy(),
                          "caption": batch["caption"][i], "key": batch["key"][i]})
    return clips


@torch.no_grad()
def generate(model, batches: list[dict], method: str, seed: int) -> list[np.ndarray]:
    """Frames [T, n, 3] per held-out clip from the flow model ("flow") or a random latent ("random")."""
    from stages.train.vae import normalise_frames, shape_and_motion

    generator = torch.Generator().manual_seed(seed)
    out = []
    for batch in batches:
        valid = batch["valid_mask"]
        normalised, _, _ = normalise_frames(batch["vertices"], valid)
        v0, motion = shape_and_motion(normalised)
        latent = model.vae.encode(v0, torch.zeros_like(motion), valid, batch["faces"], tokens=model.vae.config.tokens)
        shape_channels = model.scaling.shape_channels
        scaled_shape = model.scaling.scale(latent.z)[..., :shape_channels]
        if method == "flow":
            empty = [""] * len(batch["caption"])
            trajectory = model.flow.sample(scaled_shape, latent.token_valid, model.text(batch["caption"]),
                                           model.text(empty), generator=generator)
        else:
            trajectory = torch.randn(scaled_shape.shape[:2] + (model.flow.trajectory_channels,), generator=generator)
        z = model.scaling.unscale(torch.cat([scaled_shape, trajectory], -1))
        offsets = model.vae.decode(z, latent.token_valid, v0, latent.token_index)
        frames = torch.cat([v0[:, None], v0[:, None] + offsets], 1)
        for i in range(len(batch["key"])):
            out.append(frames[i, :, : int(batch["num_vertices"][i])].numpy())
    return out


def score(frames: list[np.ndarray], faces: list[np.ndarray], data_features: np.ndarray, data_jerk: float,
          prompt_labels: list[dict]) -> dict:
    from stages.train.flow_metrics import (
        frechet_distance, label_agreement, mean_jerk, motion_features, motion_label, retrieval_accuracy,
    )

    features = np.stack([motion_features(f) for f in frames])
    labels = [motion_label(f, fa, FPS) for f, fa in zip(frames, faces)]
    return {
        "fd": frechet_distance(features, data_features),
        "jerk": float(np.mean([mean_jerk(f) for f in frames])) / max(data_jerk, 1e-12),
        "agree": float(np.mean([label_agreement(a, b) for a, b in zip(labels, prompt_labels)])),
        "r1": retrieval_accuracy(labels, prompt_labels, DISTRACTORS),
    }


def evaluate_flow(vae_run, flow_steps: int, out_runs: str, seed: int = 0) -> dict:
    """Train the tiny flow on the VAE run's latents (or reuse the finished run), then score it and the baselines."""
    from pipeline.config import run_config_from_dict
    from pipeline.launch import train_here as train
    from stages.train.animate import load_animation_model
    from stages.train.flow_metrics import mean_jerk, motion_features, motion_label
    from stages.train.loop import run_folder
    from stages.train.pca_baseline import split_batches

    flow_run = run_config_from_dict(dict(
        model="flow", preset="tiny", name=f"flow-eval-{flow_steps}", storage_path=out_runs, shards=vae_run.shards,
        steps=flow_steps, checkpoint_every=max(1, flow_steps // 2), log_every=50, loader_workers=0,
        vae_checkpoint=run_folder(vae_run), seed=seed,
    ))
    started = time.perf_counter()
    train(flow_run)
    print(f"flow trained in {time.perf_counter() - started:.0f}s")
    model = load_animation_model(run_folder(flow_run))
    frames_count = model.frames
    held_batches = [b for split in ("val", "test") for b in split_batches(flow_run, split, frames_count, 16)]
    train_clips = clips_of(split_batches(flow_run, "train", frames_count, 16))
    held = clips_of(held_batches)
    data_features = np.stack([motion_features(c["frames"]) for c in held])
    data_jerk = float(np.mean([mean_jerk(c["frames"]) for c in held]))
    prompt_labels = [motion_label(c["frames"], c["faces"], FPS) for c in held]
    faces = [c["faces"] for c in held]
    rng = np.random.default_rng(seed)
    reference = [train_clips[i] for i in rng.choice(len(train_clips), size=len(held), replace=False)]
    retrieved = [train_clips[nearest_caption(c["caption"], [t["caption"] for t in train_clips])] for c in held]
    rows = {
        "training clips (data, reference)": score([c["frames"] for c in reference], [c["faces"] for c in reference],
                                                  data_features, data_jerk, prompt_labels),
        "flow (tiny), CFG 3": score(generate(model, held_batches, "flow", seed), faces, data_features, data_jerk,
                                    prompt_labels),
        "random latent": score(generate(model, held_batches, "random", seed), faces, data_features, data_jerk,
                               prompt_labels),
        "nearest-caption training clip": score([c["frames"] for c in retrieved], [c["faces"] for c in retrieved],
                                               data_features, data_jerk, prompt_labels),
    }
    return {"held_out": len(held), "train": len(train_clips), "flow_steps": flow_steps, "rows": rows}


def print_flow_table(result: dict) -> None:
    print(f"flow evaluation: {result['held_out']} held-out clips (prompts = their captions), "
          f"{result['train']} training clips, tiny flow {result['flow_steps']} steps")
    print("| method | FD motion (lower better) | jerk / data | label agree | R@1 among 1+9 |")
    print("|---|---|---|---|---|")
    for name, row in result["rows"].items():
        print(f"| {name} | {row['fd']:.4f} | {row['jerk']:.2f} | {row['agree']:.3f} | {row['r1']:.3f} |")
