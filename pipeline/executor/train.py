"""The training loop on Ray Train: a TorchTrainer whose workers each fill a Launch from their Ray Train context.

Ray Train owns checkpoint storage here: each rank's files go into a temp folder handed to `ray.train.report`
(rank 0 adds COMPLETE), stored as <storage_path>/<name>/checkpoint_<step>/; a restarted run resumes from Ray's
latest checkpoint, else from the newest complete one in the run folder.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path


def progress_line(line: str) -> bool:
    """Rank 0's own lines (its start line and its step lines): what `dymesh train` shows of the workers' output."""
    return line.startswith(("dymesh train:", "step "))


def ray_launch(run):
    """The Launch of one Ray Train worker."""
    import ray.train
    import ray.train.torch

    from pipeline.launch import latest_checkpoint_files
    from stages.train import checkpoint as ckpt
    from stages.train.loop import Launch

    context = ray.train.get_context()
    rank = context.get_world_rank()

    def report(metrics: dict | None, files: dict[str, bytes] | None, name: str) -> None:
        if files is None:
            ray.train.report(metrics)
            return
        with tempfile.TemporaryDirectory() as tmp:
            if rank == 0:
                files = {**files, ckpt.COMPLETE: b""}
            for file_name, data in files.items():
                Path(tmp, file_name).write_bytes(data)
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp), checkpoint_dir_name=name)

    def resume() -> dict[str, bytes] | None:
        reported = ray.train.get_checkpoint()
        if reported is not None:
            with reported.as_directory() as folder:
                return ckpt.read_files(folder)
        return latest_checkpoint_files(run)

    return Launch(rank, context.get_world_size(), ray.train.torch.get_device(), ray.train.torch.prepare_model,
                  report, resume)


def ray_worker(config: dict) -> None:
    """`train_loop_per_worker` for Ray Train's TorchTrainer."""
    from pipeline.config import run_config_from_dict
    from stages.train.loop import train

    run = run_config_from_dict(config)
    train(run, ray_launch(run))


def train_with_ray(run):
    """Run `run` on Ray Train (a Ray session must be up): TorchTrainer with num_workers / use_gpu, storage at
    storage_path/name; returns Ray Train's Result."""
    import ray.train
    from ray.train.torch import TorchTrainer

    from stages.train.loop import log_folder

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
