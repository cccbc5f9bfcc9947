"""`dymesh train JOB.yaml`: train the DyMeshVAE or the rectified-flow model on Ray Train (or in this process)."""

from __future__ import annotations

import os

from pipeline.errors import UserError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train the VAE or the flow model from a job spec (Ray Train TorchTrainer)",
        description="Train from a job spec (jobs/train-vae.yaml, jobs/train-flow.yaml). Resumes from the last "
        "checkpoint of <storage_path>/<name> if there is one.",
    )
    parser.add_argument("job", help="training job spec (YAML)")
    parser.add_argument("--steps", type=int, help="override the spec's steps")
    parser.add_argument("--name", help="override the run name (checkpoint and log folder)")
    parser.add_argument("--storage-path", help="override storage_path (local folder or s3://bucket/prefix)")
    parser.add_argument("--shards", help="override shards: a job output folder (its current shards), a shard folder "
                        "or synthetic:<clips>")
    parser.add_argument("--num-workers", type=int, help="override the number of Ray Train workers")
    parser.add_argument("--no-ray", action="store_true", help="train in this process, without Ray")
    parser.add_argument("--ray-address", default=os.environ.get("RAY_ADDRESS"),
                        help="Ray cluster to join (default: $RAY_ADDRESS, else a local Ray with this machine's CPUs)")
    parser.add_argument("--verbose", action="store_true",
                        help="show Ray's own messages too (else they go to a log file in the Ray session's log folder)")
    parser.add_argument("--eval", action="store_true",
                        help="after a VAE run, compare its held-out reconstruction error with a PCA baseline")
    parser.set_defaults(func=run)


def run(args) -> int:
    import sys

    from pipeline.config import check_training_shards, load_training_job
    from pipeline.lock import FolderLock
    from stages.train.loop import run_folder

    config = load_training_job(args.job, steps=args.steps, name=args.name, storage_path=args.storage_path,
                               shards=args.shards, num_workers=args.num_workers)
    check_training_shards(config)  # before Ray starts: a missing demo output is one line, at once
    with FolderLock(run_folder(config), "dymesh train", stream=sys.stderr):  # one training per run folder
        return train(args, config)


def train(args, config) -> int:
    if args.no_ray:
        from pipeline.launch import train_here

        train_here(config)
    else:
        from pipeline.executor.session import ray_session
        from pipeline.executor.train import progress_line, train_with_ray

        with ray_session(args.ray_address, log_to_driver=True, quiet=not args.verbose, command="dymesh train",
                         worker_lines=progress_line):
            result = train_with_ray(config)
        if result.error is not None:
            print(f"dymesh train: failed: {result.error}")
            return 1
        print(f"dymesh train: done; checkpoint {result.checkpoint.path if result.checkpoint else '-'}")
    if args.eval:
        if config.model != "vae":
            raise UserError("--eval compares a VAE with PCA; use it with a VAE job spec")
        from stages.train.pca_baseline import compare_with_pca, print_comparison

        print_comparison(compare_with_pca(config))
    return 0
