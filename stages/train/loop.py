"""The one training loop. It knows nothing of its launcher: `pipeline/` fills a `Launch` (rank, world size, device,
how to wrap the model, how to report metrics and checkpoints, where to resume from) for Ray Train's TorchTrainer,
`torchrun` or a single process:

    dymesh train jobs/train-vae.yaml                                     # Ray Train (pipeline/executor/train.py)
    dymesh train jobs/train-vae.yaml --no-ray                            # one process (pipeline/launch.py)
    torchrun --nproc-per-node 2 -m pipeline.launch --config jobs/train-vae.yaml

Per step: next batch (timed: data wait), forward under bf16 autocast on GPU, backward, gradient clipping, AdamW,
warm-up + cosine learning rate. Every `checkpoint_every` steps (and at the end) a checkpoint holds model,
optimiser, scheduler, step, and per rank the data position and RNG states; a restarted run resumes from the last
one and repeats exactly the steps an uninterrupted run would have taken. Metrics go to CSV and TensorBoard.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from stages.storage import join
from stages.train import checkpoint as ckpt
from stages.train.configs import RunConfig
from stages.train.loader import ShardLoader


@dataclass
class Launch:
    """Where and how this training process runs, filled by its launcher.

    wrap(module) -> the module to train (DDP or as is); report(metrics, files, name) hands rank 0's metrics and
    (every `checkpoint_every` steps) this rank's checkpoint files, to be stored as checkpoint `name`; resume() ->
    the files of the checkpoint to continue from, or None.
    """

    rank: int
    world_size: int
    device: torch.device
    wrap: Callable[[torch.nn.Module], torch.nn.Module]
    report: Callable[[dict | None, dict[str, bytes] | None, str], None]
    resume: Callable[[], dict[str, bytes] | None]

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def all_reduce_sum(launch: Launch, tensor: torch.Tensor) -> torch.Tensor:
    """Sum over ranks (a no-op on one process); returns a CPU tensor of the input dtype."""
    if not launch.distributed:
        return tensor
    dtype = tensor.dtype
    work = tensor.to(launch.device, dtype=torch.float64 if dtype == torch.float64 else torch.float32)
    dist.all_reduce(work)
    return work.cpu().to(dtype)


def learning_rate_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up to 1, then cosine decay to 0.1 at `total`."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))


def open_dataset(run: RunConfig, frames: int, rank: int, world_size: int, split: str | None = None):
    """The run's `ShardDataset` (a job output folder means its current shards: stages.shard.layout.resolve_shards;
    or a shard folder, or .tar URLs), or synthetic clips for `synthetic:<count>`."""
    source = run.shards
    split = split or run.split
    if source.startswith("synthetic:"):
        from stages.train.synthetic_motion import SyntheticMotionClips

        count = int(source.split(":", 1)[1])
        first = {"train": 0, "val": 10**6}.get(split, 2 * 10**6)  # each split draws other clip indices
        return SyntheticMotionClips(count, run.seed, frames, rank, world_size, first=first)
    if not source:
        raise ValueError("set shards: a job output folder (out/demo) or a shard folder (local or s3://)")
    from stages.shard.layout import resolve_shards
    from stages.shard.reader import ShardDataset

    return ShardDataset(resolve_shards(source), split=split, rank=rank, world_size=world_size, seed=run.seed,
                        max_frames=frames)


def rng_state() -> dict:
    keys, pos, has_gauss, gauss = np.random.get_state()[1:]
    version, internal, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
                  "gauss": float(gauss)},
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def run_folder(run: RunConfig) -> str:
    return join(run.storage_path if "://" in run.storage_path else str(Path(run.storage_path).resolve()), run.name)


def log_folder(run: RunConfig) -> Path:
    if run.log_dir:
        return Path(run.log_dir)
    if "://" in run.storage_path:
        return Path("out/train-logs") / run.name
    return Path(run.storage_path) / run.name / "logs"


class MetricsLog:
    """Rank 0's metrics: `metrics.csv` (rows past the resumed step dropped) and TensorBoard scalars."""

    def __init__(self, folder: Path, columns: list[str], start_step: int):
        from torch.utils.tensorboard import SummaryWriter

        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "metrics.csv"
        self.columns = columns
        rows = []
        if self.path.exists() and start_step > 0:
            with self.path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= start_step]
        with self.path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
        self.writer = SummaryWriter(str(folder / "tensorboard"), purge_step=start_step + 1)

    def write(self, row: dict) -> None:
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.columns).writerow({k: row.get(k, "") for k in self.columns})
        for key, value in row.items():
            if key != "step":
                self.writer.add_scalar(f"train/{key}", value, row["step"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def make_objective(run: RunConfig, device: torch.device):
    from stages.train.objectives import FlowObjective, VAEObjective

    preset = run.preset_config()
    if run.model == "vae":
        return VAEObjective(preset, device)
    meta, state = ckpt.load_checkpoint(run.vae_checkpoint)
    if meta.get("kind") != "vae":
        raise ValueError(f"vae_checkpoint {run.vae_checkpoint} holds a {meta.get('kind')!r} model, not a VAE")
    return FlowObjective(preset, device, {"config": meta["vae_config"], "model": state["model"]})


def checkpoint_name(step: int) -> str:
    return f"checkpoint_{step:08d}"


def checkpoint_files(run, launch, step, module, optimizer, scheduler, objective, stream) -> dict[str, bytes]:
    """This rank's files of the checkpoint after `step` (rank 0 adds model, optimiser and meta)."""
    files = {f"rank_{launch.rank}.pt": ckpt.tensor_bytes({"data": stream.state_dict(), "rng": rng_state()})}
    if launch.rank == 0:
        state = {
            "model": module.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "step": step,
            "world_size": launch.world_size,
            **objective.extra_state(),
        }
        meta = {"step": step, "run": run.to_dict(), **objective.meta()}
        files["state.pt"] = ckpt.tensor_bytes(state)
        files["meta.json"] = json.dumps(meta, indent=1, sort_keys=True).encode()
    return files


def train(run: RunConfig, launch: Launch) -> dict:
    """Train `run.steps` steps (resuming if the launch has a checkpoint); returns rank 0's last logged metrics."""
    preset = run.preset_config()
    torch.manual_seed(run.seed)  # identical initial weights on every rank
    objective = make_objective(run, launch.device)
    module = objective.module
    optimizer = torch.optim.AdamW(
        [p for p in module.parameters() if p.requires_grad], lr=preset.optim.lr, betas=preset.optim.betas,
        weight_decay=preset.optim.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: learning_rate_factor(s, preset.optim.warmup_steps, run.steps)
    )
    frames = objective.preset.vae.frames if run.model == "vae" else objective.vae.config.frames
    dataset = open_dataset(run, frames, launch.rank, launch.world_size)

    resume = launch.resume()
    step, position = 0, {"epoch": 0, "taken": 0}
    torch.manual_seed(run.seed * 1009 + launch.rank + 1)
    np.random.seed((run.seed * 1009 + launch.rank + 1) % 2**32)
    random.seed(run.seed * 1009 + launch.rank + 1)
    if resume is not None:
        state = ckpt.tensor_object(resume["state.pt"])
        if state["world_size"] != launch.world_size:
            raise ValueError(f"checkpoint was written by {state['world_size']} processes, this run has "
                             f"{launch.world_size}: resume with the same number of workers")
        module.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        objective.load_extra_state(state)
        step = int(state["step"])
        rank_state = ckpt.tensor_object(resume[f"rank_{launch.rank}.pt"])
        position = rank_state["data"]
        set_rng_state(rank_state["rng"])
    elif run.model == "flow":
        stats_stream = ShardLoader(open_dataset(run, frames, launch.rank, launch.world_size), preset.batch_size, 0)
        batches = (stats_stream.next() for _ in range(preset.flow.stats_batches))
        objective.measure_scaling(batches, lambda t: all_reduce_sum(launch, t))

    stream = ShardLoader(dataset, preset.batch_size, run.loader_workers, position=position)
    model = launch.wrap(module)
    model.train()
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if launch.device.type == "cuda"
                else contextlib.nullcontext())
    extra_columns = ["recon", "kl"] if run.model == "vae" else []
    columns = ["step", "loss", *extra_columns, "lr", "grad_norm", "samples_per_s", "data_wait", "epoch"]
    log = MetricsLog(log_folder(run), columns, step) if launch.rank == 0 else None
    if launch.rank == 0:
        print(f"dymesh train: {run.model} preset={run.preset} world_size={launch.world_size} "
              f"device={launch.device} params={sum(p.numel() for p in module.parameters()):,} "
              f"start_step={step}/{run.steps}", flush=True)

    last: dict = {"step": step}
    sums = torch.zeros(4 + len(extra_columns), dtype=torch.float64)  # loss, extras, samples, wait, busy
    window_start = time.perf_counter()
    started = time.perf_counter()
    start_step = step
    window_steps = 0
    try:
        while step < run.steps:
            tick = time.perf_counter()
            batch = stream.next()
            waited = time.perf_counter() - tick
            with autocast:
                loss, extras = objective.forward(model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(module.parameters(), preset.optim.grad_clip)
            optimizer.step()
            scheduler.step()
            step += 1
            window_steps += 1
            values = [float(loss.detach())] + [float(extras[k]) for k in extra_columns]
            sums += torch.tensor(values + [len(batch["key"]), waited, time.perf_counter() - tick],
                                 dtype=torch.float64)
            metrics = None
            if step % run.log_every == 0 or step == run.steps or step % run.checkpoint_every == 0:
                total = all_reduce_sum(launch, sums)
                elapsed = time.perf_counter() - window_start
                steps_in_window = max(1, window_steps)
                metrics = {"step": step, "loss": total[0].item() / (steps_in_window * launch.world_size)}
                for i, key in enumerate(extra_columns):
                    metrics[key] = total[1 + i].item() / (steps_in_window * launch.world_size)
                metrics.update(
                    lr=scheduler.get_last_lr()[0], grad_norm=float(grad_norm),
                    samples_per_s=total[-3].item() / max(elapsed, 1e-9),
                    data_wait=total[-2].item() / max(total[-1].item(), 1e-9), epoch=stream.epoch,
                )
                last = metrics
                sums.zero_()
                window_steps = 0
                window_start = time.perf_counter()
                if log is not None:
                    log.write(metrics)
                    rate = (step - start_step) / max(time.perf_counter() - started, 1e-9)
                    eta = (run.steps - step) / max(rate, 1e-9)
                    print(f"step {step}/{run.steps} loss {metrics['loss']:.5f} "
                          f"{metrics['samples_per_s']:.1f} samples/s data-wait {metrics['data_wait']:.1%} "
                          f"ETA {eta:.0f}s", flush=True)
            if step % run.checkpoint_every == 0 or step == run.steps:
                files = checkpoint_files(run, launch, step, module, optimizer, scheduler, objective, stream)
                launch.report(metrics, files, checkpoint_name(step))
            elif metrics is not None:
                launch.report(metrics, None, checkpoint_name(step))
            if step == run.fail_at_step:
                raise RuntimeError(f"simulated kill after step {step} (fail_at_step)")
    finally:
        if log is not None:
            log.close()
    return last
