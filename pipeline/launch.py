"""Launching the training loop in this process: alone, or as one of `torchrun`'s processes (Ray Train: executor/).

    dymesh train jobs/train-vae.yaml --no-ray
    torchrun --nproc-per-node 2 -m pipeline.launch --config jobs/train-vae.yaml --shards out/demo

Checkpoints go to <storage_path>/<name>/checkpoint_<step>/ (every rank writes its files, rank 0 marks the folder
COMPLETE after a barrier and drops old ones); a restarted run resumes from the newest complete one.
"""

from __future__ import annotations

import argparse
import os
import sys

from pipeline.config import load_training_job


def latest_checkpoint_files(run) -> dict[str, bytes] | None:
    """The files of the newest complete checkpoint in the run folder, or None."""
    from stages.train import checkpoint as ckpt
    from stages.train.loop import run_folder

    found = ckpt.completed_checkpoints(run_folder(run))
    return ckpt.read_files(found[-1][1]) if found else None


def process_launch(run):
    """The Launch of this process: rank and world size from torchrun's environment (else one process), CUDA when
    asked for and present, DDP when there are several processes."""
    import torch
    import torch.distributed as dist

    from stages.storage import join
    from stages.train import checkpoint as ckpt
    from stages.train.loop import Launch, run_folder

    rank = int(os.environ.get("RANK", 0))
    world = int(os.environ.get("WORLD_SIZE", 1))
    local = int(os.environ.get("LOCAL_RANK", 0))
    cuda = run.use_gpu and torch.cuda.is_available()
    if run.use_gpu and not cuda:
        print("dymesh train: use_gpu is set but CUDA is not available; training on CPU", file=sys.stderr)
    device = torch.device(f"cuda:{local}") if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")

    def wrap(module):
        if world == 1:
            return module
        return torch.nn.parallel.DistributedDataParallel(module, device_ids=[local] if cuda else None)

    def report(metrics: dict | None, files: dict[str, bytes] | None, name: str) -> None:
        if files is None:
            return  # metrics are in rank 0's metrics.csv already
        uri = join(run_folder(run), name)
        ckpt.write_files(uri, files)
        if world > 1:
            dist.barrier()
        if rank == 0:
            ckpt.write_files(uri, {ckpt.COMPLETE: b""})
            ckpt.remove_old(run_folder(run), run.keep_checkpoints)

    return Launch(rank, world, device, wrap, report, lambda: latest_checkpoint_files(run))


def train_here(run) -> dict:
    """Train in this process (one of torchrun's, or alone); returns rank 0's last logged metrics."""
    import torch.distributed as dist

    from stages.train.loop import train

    try:
        return train(run, process_launch(run))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def main(argv: list[str] | None = None) -> int:
    """`python -m pipeline.launch --config JOB.yaml` (under torchrun or alone)."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.launch", description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="training job spec (jobs/train-vae.yaml, ...)")
    parser.add_argument("--steps", type=int, help="override the number of steps")
    parser.add_argument("--shards", help="override shards: a job output folder (its current shards), a shard folder "
                        "or synthetic:<clips>")
    parser.add_argument("--name", help="override the run name (checkpoint and log folder)")
    parser.add_argument("--storage-path", help="override storage_path (local folder or s3://bucket/prefix)")
    args = parser.parse_args(argv)
    from pipeline.config import check_training_shards
    from pipeline.errors import EXIT_LOCKED, UserError
    from pipeline.fate import die_with
    from pipeline.lock import FolderLock, LockedError
    from stages.train.loop import run_folder

    if "TORCHELASTIC_RUN_ID" in os.environ:  # under torchrun: stop when the torchrun agent stops
        die_with(os.getppid(), "torchrun agent")
    try:
        run = load_training_job(args.config, steps=args.steps, shards=args.shards, name=args.name,
                                storage_path=args.storage_path)
        check_training_shards(run)
        if int(os.environ.get("RANK", 0)) != 0:
            train_here(run)
            return 0
        with FolderLock(run_folder(run), "python -m pipeline.launch", stream=sys.stderr):  # rank 0 holds the run
            train_here(run)
    except UserError as exc:
        print(f"python -m pipeline.launch: {exc}", file=sys.stderr)
        return EXIT_LOCKED if isinstance(exc, LockedError) else 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
