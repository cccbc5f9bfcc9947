"""Small training runs (a few steps of tiny models) for the training, Ray Train and animate tests."""

from __future__ import annotations

from pipeline.config import run_config_from_dict

SMALL = {
    "vae": {"frames": 8, "width": 32, "heads": 4, "decoder_head_width": 8, "encoder_blocks": 1,
            "decoder_blocks": 1, "tokens": 8,
            "fourier_frequencies": 4, "max_neighbours": 8},
    "flow": {"width": 32, "layers": 1, "heads": 4, "stats_batches": 2, "sample_steps": 2},
    "text": {"max_length": 16},
    "optim": {"warmup_steps": 2},
}


def small_run(tmp_path, name: str, **changes):
    spec = dict(model="vae", preset="tiny", name=name, storage_path=str(tmp_path), shards="synthetic:12", steps=8,
                batch_size=4, checkpoint_every=3, log_every=2, loader_workers=0, overrides=SMALL)
    spec.update(changes)
    return run_config_from_dict(spec)


def free_port() -> int:
    """A TCP port free on this host right now (for a process group's rendezvous)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ddp_worker(rank: int, world_size: int, port: int, spec: dict, out: str) -> None:
    """One rank of a gloo DDP run of the real training loop (torch.multiprocessing.spawn target): saves this rank's
    final parameters, the clip keys its training stream drew, and its last metrics to `out`/rank<r>.pt."""
    import os

    import torch

    import stages.train.loop as loop
    from pipeline.launch import process_launch

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    streams = []

    class RecordingLoader(loop.ShardLoader):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.keys: list[str] = []
            streams.append(self)

        def next(self) -> dict:
            batch = super().next()
            self.keys += list(batch["key"])
            return batch

    loop.ShardLoader = RecordingLoader
    run = run_config_from_dict(spec)
    launch = process_launch(run)
    modules = []
    wrap = launch.wrap
    launch.wrap = lambda module: (modules.append(module), wrap(module))[1]
    try:
        metrics = loop.train(run, launch)
    finally:
        torch.distributed.destroy_process_group()
    torch.save({"model": modules[0].state_dict(), "keys": streams[-1].keys, "metrics": metrics},
               f"{out}/rank{rank}.pt")
