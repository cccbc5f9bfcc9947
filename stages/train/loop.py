"""The one training loop: runs under Ray Train's TorchTrainer, under `torchrun`, or as a single process.

    python -m stages.train.loop --config jobs/train-vae.yaml            # one process
    torchrun --nproc-per-node 2 -m stages.train.loop --config jobs/train-vae.yaml
    dymesh train jobs/train-vae.yaml                                     # Ray Train (TorchTrainer)

Per step: next batch (timed: data wait), forward under bf16 autocast on GPU, backward, gradient clipping, AdamW,
warm-up + cosine learning rate. Every `checkpoint_every` steps (and at the end) a checkpoint holds model,
optimiser, scheduler, step, and per rank the data position and RNG states; a restarted run resumes from the last
one and repeats exactly the steps an uninterrupted run would have taken. Metrics go to CSV and TensorBoard.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from stages.train import checkpoint as ckpt
from stages.train.configs import RunConfig, run_config_from_dict


@dataclass
class Launch:
    """Where this process runs: launcher ("ray" | "torchrun" | "local"), rank, world size, device."""

    launcher: str
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def detect_launch(launcher: str, use_gpu: bool) -> Launch:
    if launcher == "ray":
        import ray.train
        import ray.train.torch

        context = ray.train.get_context()
        device = ray.train.torch.get_device()
        return Launch("ray", context.get_world_rank(), context.get_world_size(), context.get_local_rank(), device)
    rank = int(os.environ.get("RANK", 0))
    world = int(os.environ.get("WORLD_SIZE", 1))
    local = int(os.environ.get("LOCAL_RANK", 0))
    cuda = use_gpu and torch.cuda.is_available()
    if use_gpu and not cuda:
        print("dymesh train: use_gpu is set but CUDA is not available; training on CPU", file=sys.stderr)
    device = torch.device(f"cuda:{local}") if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return Launch("torchrun" if world > 1 else "local", rank, world, local, device)


def all_reduce_sum(launch: Launch, tensor: torch.Tensor) -> torch.Tensor:
    """Sum over ranks (a no-op on one process); returns a CPU tensor of the input dtype."""
    if not launch.distributed:
        return tensor
    dtype = tensor.dtype
    work = tensor.to(launch.device, dtype=torch.float64 if dtype == torch.float64 else torch.float32)
    dist.all_reduce(work)
    return work.cpu().to(dtype)


def wrap_ddp(module: torch.nn.Module, launch: Launch) -> torch.nn.Module:
    if launch.launcher == "ray":
        import ray.train.torch

        return ray.train.torch.prepare_model(module)
    if launch.distributed:
        device_ids = [launch.local_rank] if launch.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(module, device_ids=device_ids)
    return module


def learning_rate_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up to 1, then cosine decay to 0.1 at `total`."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))


def open_dataset(run: RunConfig, frames: int, rank: int, world_size: int, split: str | None = None):
    """The run's `ShardDataset` (shards folder or .tar URLs), or synthetic clips for `synthetic:<count>`."""
    source = run.shards
    split = split or run.split
    if source.startswith("synthetic:"):
        from stages.train.synthetic_motion import SyntheticMotionClips

        count = int(source.split(":", 1)[1])
        first = {"train": 0, "val": 10**6}.get(split, 2 * 10**6)  # each split draws other clip indices
        return SyntheticMotionClips(count, run.seed, frames, rank, world_size, first=first)
    if not source:
        raise ValueError("set shards: the shard folder (local or s3://) written by the shard stage")
    from stages.train.loader import ShardDataset

    return ShardDataset(source, split=split, rank=rank, world_size=world_size, seed=run.seed, max_frames=frames)


class BatchStream:
    """Endless padded batches over epochs with a resumable position.

    Datasets with `state_dict` / `record` (ShardDataset) resume without reading what was consumed; others
    are resumed by re-drawing and dropping the batches already taken in the epoch.
    """

    def __init__(self, dataset, batch_size: int, workers: int, position: dict | None = None):
        self.dataset = dataset
        self.batch_size, self.workers = batch_size, workers
        position = position or {"epoch": 0, "taken": 0}
        self.epoch, self.taken = int(position["epoch"]), 0
        resumable = hasattr(dataset, "state_dict") and hasattr(dataset, "record")
        if resumable and "dataset" in position:
            dataset.load_state_dict(position["dataset"])
        self.iterator = self.start_epoch()
        if resumable:
            self.taken = int(position["taken"])
        else:
            for _ in range(int(position["taken"])):
                self.next()

    def start_epoch(self):
        from stages.train.loader import collate_padded

        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(self.epoch)
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=self.batch_size, collate_fn=collate_padded, num_workers=self.workers,
            persistent_workers=False, drop_last=False,
            generator=torch.Generator().manual_seed(self.epoch),  # keeps the global RNG untouched
        )
        return iter(loader)

    def next(self) -> dict:
        try:
            batch = next(self.iterator)
        except StopIteration:
            if self.taken == 0:
                raise ValueError(f"the dataset yields no clips in epoch {self.epoch} for this rank") from None
            self.epoch, self.taken = self.epoch + 1, 0
            self.iterator = self.start_epoch()
            batch = next(self.iterator)
        self.taken += 1
        if hasattr(self.dataset, "record"):
            self.dataset.record(batch)
        return batch

    def position(self) -> dict:
        position = {"epoch": self.epoch, "taken": self.taken}
        if hasattr(self.dataset, "state_dict"):
            position["dataset"] = self.dataset.state_dict()
        return position


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
    return ckpt.join(run.storage_path if "://" in run.storage_path else str(Path(run.storage_path).resolve()), run.name)


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


def find_resume_files(run: RunConfig, launch: Launch) -> dict[str, bytes] | None:
    """The files of the checkpoint to resume from: Ray's latest, else the newest complete one in the run folder."""
    if launch.launcher == "ray":
        import ray.train

        reported = ray.train.get_checkpoint()
        if reported is not None:
            with reported.as_directory() as folder:
                return ckpt.read_files(folder)
    found = ckpt.completed_checkpoints(run_folder(run))
    return ckpt.read_files(found[-1][1]) if found else None


def save_checkpoint(run, launch, step, module, optimizer, scheduler, objective, stream, metrics) -> None:
    files = {f"rank_{launch.rank}.pt": ckpt.tensor_bytes({"data": stream.position(), "rng": rng_state()})}
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
    name = f"checkpoint_{step:08d}"
    if launch.launcher == "ray":
        import ray.train

        with tempfile.TemporaryDirectory() as tmp:
            if launch.rank == 0:
                files[ckpt.COMPLETE] = b""
            for file_name, data in files.items():
                Path(tmp, file_name).write_bytes(data)
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp), checkpoint_dir_name=name)
        return
    uri = ckpt.join(run_folder(run), name)
    ckpt.write_files(uri, files)
    if launch.distributed:
        dist.barrier()
    if launch.rank == 0:
        ckpt.write_files(uri, {ckpt.COMPLETE: b""})
        ckpt.remove_old(run_folder(run), run.keep_checkpoints)


def train(run: RunConfig, launcher: str = "local") -> dict:
    """Train `run.steps` steps (resuming if a checkpoint exists); returns rank 0's last logged metrics."""
    launch = detect_launch(launcher, run.use_gpu)
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

    resume = find_resume_files(run, launch)
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
        stats_stream = BatchStream(open_dataset(run, frames, launch.rank, launch.world_size), preset.batch_size, 0)
        batches = (stats_stream.next() for _ in range(preset.flow.stats_batches))
        objective.measure_scaling(batches, lambda t: all_reduce_sum(launch, t))

    stream = BatchStream(dataset, preset.batch_size, run.loader_workers, position)
    model = wrap_ddp(module, launch)
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
                save_checkpoint(run, launch, step, module, optimizer, scheduler, objective, stream, metrics)
            elif launch.launcher == "ray" and metrics is not None:
                import ray.train

                ray.train.report(metrics)
            if step == run.fail_at_step:
                raise RuntimeError(f"simulated kill after step {step} (fail_at_step)")
    finally:
        if log is not None:
            log.close()
    return last


def ray_worker(config: dict) -> None:
    """`train_loop_per_worker` for Ray Train's TorchTrainer."""
    train(run_config_from_dict(config), launcher="ray")


def train_with_ray(run: RunConfig):
    """Run `run` on Ray Train: TorchTrainer with num_workers / use_gpu, storage at storage_path/name."""
    import ray.train
    from ray.train.torch import TorchTrainer

    run = run.with_absolute_paths()
    run = replace(run, log_dir=str(log_folder(run).resolve()))  # rank 0's CSV + TensorBoard, on its node
    trainer = TorchTrainer(
        ray_worker,
        train_loop_config=run.to_dict(),
        scaling_config=ray.train.ScalingConfig(num_workers=run.num_workers, use_gpu=run.use_gpu),
        run_config=ray.train.RunConfig(
            name=run.name,
            storage_path=run.storage_path,
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=run.keep_checkpoints or None),
            failure_config=ray.train.FailureConfig(max_failures=0),
        ),
    )
    return trainer.fit()


def main(argv: list[str] | None = None) -> int:
    """`python -m stages.train.loop --config JOB.yaml` (under torchrun or alone)."""
    from stages.train.configs import load_job

    parser = argparse.ArgumentParser(prog="python -m stages.train.loop", description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="training job spec (jobs/train-vae.yaml, ...)")
    parser.add_argument("--steps", type=int, help="override the number of steps")
    args = parser.parse_args(argv)
    run = load_job(args.config, steps=args.steps)
    try:
        train(run, launcher="torchrun" if int(os.environ.get("WORLD_SIZE", 1)) > 1 else "local")
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
