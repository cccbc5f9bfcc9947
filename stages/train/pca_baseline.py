"""Honest evaluation of the VAE: held-out reconstruction error next to PCA baselines of the same latent size.

Error = mean per-vertex L2 distance over valid vertices and frames 1..T-1 after frame-0 normalisation (frame 0
is given to every method). Latent budget = tokens x 32 trajectory floats per clip (the VAE's KL channels; the
shape channels are not counted, as every method is also given V0). Baselines, both fitted on the train split:
  clip PCA    per-clip flattened relative trajectories [N x 3(T-1)] (needs one N for all clips), k = budget
              (capped by the number of training clips)
  vertex PCA  each vertex's relative trajectory [3(T-1)] on a basis shared by all vertices, k = budget / N
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class HeldOutClips:
    """Normalised relative trajectories of a split: motion [C, N, T-1, 3] and valid [C, N]."""

    motion: np.ndarray
    valid: np.ndarray


def collect(batches) -> HeldOutClips:
    """Stack normalised relative trajectories of padded batches (padding zero, valid mask kept)."""
    from stages.train.vae import normalise_frames

    motions, valids, width = [], [], 0
    for batch in batches:
        normalised, _, _ = normalise_frames(batch["vertices"], batch["valid_mask"])
        rel = (normalised[:, 1:] - normalised[:, :1]).permute(0, 2, 1, 3)  # [B, N, T-1, 3]
        motions.append(rel.numpy())
        valids.append(batch["valid_mask"].numpy())
        width = max(width, rel.shape[1])
    motion = np.concatenate([np.pad(m, ((0, 0), (0, width - m.shape[1]), (0, 0), (0, 0))) for m in motions])
    valid = np.concatenate([np.pad(v, ((0, 0), (0, width - v.shape[1]))) for v in valids])
    return HeldOutClips(motion.astype(np.float64), valid)


def mean_vertex_error(prediction: np.ndarray, target: np.ndarray, valid: np.ndarray) -> float:
    """prediction/target [C, N, T-1, 3]; mean L2 over valid vertices and frames."""
    distance = np.linalg.norm(prediction - target, axis=-1)  # [C, N, T-1]
    weights = np.broadcast_to(valid[..., None], distance.shape)
    return float((distance * weights).sum() / max(weights.sum(), 1))


def clip_pca_error(train: HeldOutClips, test: HeldOutClips, budget: int) -> tuple[float, int]:
    """Per-clip flattened PCA (k components); returns (error, k)."""
    if train.motion.shape[1] != test.motion.shape[1] or not (train.valid.all() and test.valid.all()):
        raise ValueError("clip PCA needs one vertex count for every clip (resample to a fixed N)")
    x = train.motion.reshape(len(train.motion), -1)
    mean = x.mean(0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    k = min(budget, vt.shape[0])
    basis = vt[:k]
    y = test.motion.reshape(len(test.motion), -1) - mean
    recon = (y @ basis.T) @ basis + mean
    return mean_vertex_error(recon.reshape(test.motion.shape), test.motion, test.valid), k


def vertex_pca_error(train: HeldOutClips, test: HeldOutClips, budget: int) -> tuple[float, int]:
    """Per-vertex trajectory PCA with budget / N components per vertex; returns (error, k)."""
    x = train.motion[train.valid].reshape(int(train.valid.sum()), -1)
    mean = x.mean(0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    n = int(test.valid.sum(1).max())
    k = max(0, min(budget // max(n, 1), vt.shape[0]))
    basis = vt[:k]
    shape = test.motion.shape
    y = test.motion.reshape(shape[0], shape[1], -1) - mean
    recon = (y @ basis.T) @ basis + mean
    return mean_vertex_error(recon.reshape(shape), test.motion, test.valid), k


@torch.no_grad()
def vae_error(model, batches, tokens: int) -> float:
    """The VAE's mean per-vertex error (posterior means, `tokens` tokens) over padded batches."""
    from stages.train.vae import normalise_frames, shape_and_motion, vertex_error

    model.eval()
    total, weight = 0.0, 0.0
    for batch in batches:
        valid = batch["valid_mask"]
        normalised, _, _ = normalise_frames(batch["vertices"], valid)
        v0, motion = shape_and_motion(normalised)
        latent = model.encode(v0, motion, valid, batch["faces"], tokens=tokens)
        prediction = v0[:, None] + model.decode(latent.z, latent.token_valid, v0, latent.token_index)
        count = float(valid.sum()) * prediction.shape[1]
        total += float(vertex_error(prediction, normalised[:, 1:], valid)) * count
        weight += count
    return total / max(weight, 1.0)


def data_fingerprint(named_batches: dict[str, list[dict]]) -> str:
    """sha256 over every clip's key, vertices (float32) and faces, per named set in order: equal fingerprints mean
    the comparison ran on the same data, whatever machine or shard layout it came from."""
    import hashlib

    digest = hashlib.sha256()
    for name, batches in named_batches.items():
        digest.update(name.encode())
        for batch in batches:
            for i, key in enumerate(batch["key"]):
                n, f = int(batch["num_vertices"][i]), int(batch["num_faces"][i])
                digest.update(key.encode())
                digest.update(batch["vertices"][i, :, :n].float().numpy().tobytes())
                digest.update(batch["faces"][i, :f].numpy().astype(np.int64).tobytes())
    return digest.hexdigest()


def compare_on(model, train: HeldOutClips, batches: list[dict], tokens: int, budget: int) -> dict:
    """VAE, PCA baselines (fitted on `train`) and no motion on one held-out set of padded batches."""
    test = collect(batches)
    result = {
        "clips": len(test.motion), "vertices": int(test.valid.sum(1).max()),
        "vae": vae_error(model, batches, tokens),
        "zero_motion": mean_vertex_error(np.zeros_like(test.motion), test.motion, test.valid),
    }
    result["vertex_pca"], result["vertex_pca_k"] = vertex_pca_error(train, test, budget)
    try:
        result["clip_pca"], result["clip_pca_k"] = clip_pca_error(train, test, budget)
    except ValueError as exc:
        result["clip_pca"], result["clip_pca_k"] = float("nan"), str(exc)
    return result


def compare_with_pca(run, held_out: tuple[str, ...] = ("val", "test"), batch_size: int = 16,
                     extra: dict[str, list[dict]] | None = None) -> dict:
    """VAE (the run's latest checkpoint) vs PCA baselines: fitted on the run's train split, scored on its held-out
    splits ("generated") and on each `extra` set of padded batches (e.g. "real": clips of real assets)."""
    from stages.train.checkpoint import load_checkpoint
    from stages.train.loop import run_folder
    from stages.train.vae import vae_from_state

    meta, state = load_checkpoint(run_folder(run))
    model = vae_from_state({"config": meta["vae_config"], "model": state["model"]})
    frames, tokens = model.config.frames, model.config.tokens

    train_batches = split_batches(run, "train", frames, batch_size)
    test_batches = [b for split in held_out for b in split_batches(run, split, frames, batch_size)]
    if not train_batches or not test_batches:
        raise ValueError(f"need clips in the train split and in {held_out}; write more shards")
    sets = {"generated": test_batches, **(extra or {})}
    train = collect(train_batches)
    budget = tokens * model.config.trajectory_channels
    return {
        "train_clips": len(train.motion), "latent_floats": budget, "frames": frames, "step": meta["step"],
        "fingerprint": data_fingerprint({"train": train_batches, **sets}),
        "sets": {name: compare_on(model, train, batches, tokens, budget) for name, batches in sets.items()},
    }


def split_batches(run, split: str, frames: int, batch_size: int) -> list[dict]:
    """One unshuffled pass over a split of the run's data as padded batches (empty list when it has none)."""
    from stages.train.loader import collate_padded
    from stages.train.loop import open_dataset

    dataset = open_dataset(run, frames, 0, 1, split=split)
    dataset.shuffle = False
    return list(torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collate_padded))


def print_comparison(result: dict) -> None:
    """The comparison as a table, one column per held-out set (errors in normalised units: frame 0 fits [-1, 1]^3)."""
    sets = result["sets"]
    print(f"held-out reconstruction: PCA fitted on {result['train_clips']} train clips, T={result['frames']}, "
          f"latent = {result['latent_floats']} floats/clip, VAE step {result['step']}")
    print(f"data fingerprint {result['fingerprint']}")
    names = list(sets)
    rows = [
        ("DyMeshVAE (tiny)", "vae", lambda r: f"{result['latent_floats']} floats"),
        ("PCA per clip (flattened)", "clip_pca", lambda r: f"k={r['clip_pca_k']}"),
        ("PCA per vertex trajectory", "vertex_pca", lambda r: f"k={r['vertex_pca_k']}/vertex"),
        ("no motion (frame 0 held)", "zero_motion", lambda r: "0"),
    ]
    header = " | ".join(f"{n} ({sets[n]['clips']} clips, N={sets[n]['vertices']}) mean L2" for n in names)
    print(f"| method | {header} | latent |")
    print("|---|" + "---|" * len(names) + "---|")
    for label, key, latent in rows:
        cells = []
        for n in names:
            error, vae = sets[n][key], sets[n]["vae"]
            cells.append(f"{error:.4f}" if key == "vae" else f"{error:.4f} ({error / vae:.2f}x VAE)")
        print(f"| {label} | " + " | ".join(cells) + f" | {latent(sets[names[0]])} |")
    for n in names:
        best = min(v for v in (sets[n]["vertex_pca"], sets[n]["clip_pca"]) if v == v)
        print(f"{n}: VAE error is {1 - sets[n]['vae'] / best:.1%} below the best PCA ({best:.4f})")
