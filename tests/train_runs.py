"""Small training runs (a few steps of tiny models) for the training, Ray Train and animate tests."""

from __future__ import annotations

from pipeline.config import run_config_from_dict

SMALL = {
    "vae": {"frames": 8, "width": 32, "heads": 4, "encoder_blocks": 1, "decoder_blocks": 1, "tokens": 8,
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
