"""The allowed range of every numeric option of every job spec (dataset and training): the job parser checks each
value against it and names the key of one out of range.

One table for all the config dataclasses a job spec reaches (`pipeline.config.build` looks a field up by class and
name); `tests/test_job_ranges.py` walks every numeric field of them and fails for one without a range here, so a
new option gets its range when it is added. Bounds are inclusive unless `low_open`; a list or tuple option's range
applies to each item; `None` stays allowed where the type allows it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

KiB, MiB, GiB, TiB = 1024, 1024**2, 1024**3, 1024**4
DAY = 86400.0
SEED = (0, 2**32 - 1)


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    low_open: bool = False  # low itself is not allowed (a time limit or a rate must be > 0)

    def holds(self, value) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False
        return (value > self.low if self.low_open else value >= self.low) and value <= self.high

    def text(self) -> str:
        shown = lambda x: str(int(x)) if float(x).is_integer() else f"{x:g}"  # noqa: E731
        return f"{'>' if self.low_open else '>='} {shown(self.low)} and <= {shown(self.high)}"


def at_least(low, high) -> Range:
    return Range(low, high)


def above(low, high) -> Range:
    return Range(low, high, low_open=True)


def count(high=10**9) -> Range:
    """A positive count (at least 1)."""
    return Range(1, high)


def _table() -> dict[str, dict[str, Range]]:
    """{config class name: {field: Range}} (by name, so a class may move between modules)."""
    fraction = at_least(0, 1)
    return {
        "ObjaverseSource": {
            "min_animations": at_least(0, 10**6), "limit": count(), "download_processes": count(256),
            "batch": count(10**6)},
        "GeneratedSource": {"count": at_least(0, 10**6), "seed": at_least(*SEED)},
        "ObjaverseXLSource": {"min_animations": at_least(0, 10**6), "limit": count(), "download_processes": count(256)},
        "Dt4dSource": {"fps": above(0, 1000)},
        "HarvestConfig": {
            "max_asset_bytes": count(TiB), "max_side_file_bytes": count(TiB), "timeout_s": above(0, DAY),
            "retries": at_least(0, 100), "backoff_s": at_least(0, 3600), "fetch_threads": count(1024),
            "max_listed_entries": count(), "max_redirects": at_least(0, 100), "transfer_timeout_s": above(0, 7 * DAY)},
        "ExecutionConfig": {
            "unit_size": count(10**6), "workers": count(10**6), "num_cpus": count(10**6),
            "object_store_mb": at_least(64, 2**30), "item_timeout_s": above(0, 30 * DAY),
            "stall_timeout_s": above(0, 30 * DAY), "max_retries": at_least(0, 100),
            "memory_base_mb": count(2**30), "memory_per_byte": at_least(0, 10**6), "memory_max_mb": count(2**30),
            "caption_actors": count(10**5), "caption_num_cpus": at_least(0, 1024),
            "caption_num_gpus": at_least(0, 1024)},
        "Limits": {
            "max_file_bytes": count(TiB), "max_json_bytes": count(TiB), "max_buffer_bytes": count(TiB),
            "max_accessor_count": count(10**12), "max_accessor_values": count(10**12), "max_vertices": count(10**12),
            "max_nodes": count(10**9), "max_meshes_instances": count(10**9), "max_morph_targets": count(10**6),
            "max_joints": count(10**6), "max_animations": count(10**6), "max_channels": count(10**9),
            "max_frames": count(10**9), "max_output_bytes": count(TiB),
            "convert_timeout_s": above(0, DAY), "convert_memory_mb": count(2**30)},
        "ResampleConfig": {
            "vertices": at_least(3, 10**8), "frames": count(10**6), "fps": above(0, 1000), "stride": count(10**9),
            "max_clips_per_animation": count(10**9), "max_native_vertices": at_least(3, 10**8),
            "weld_tolerance": at_least(0, 1), "join_tolerance": at_least(0, 1), "loop_tolerance": at_least(0, 1),
            "min_displacement": at_least(0, 10**6), "max_displacement": at_least(0, 10**9),
            "max_vertex_error": at_least(0, 10**6), "max_face_error": at_least(0, 10**6),
            "max_coverage_error": at_least(0, 10**6), "min_source_vertices": count(10**12),
            "max_source_vertices": count(10**12), "content_quantum": above(0, 1), "quality_samples": count(10**9),
            "seed": at_least(*SEED), "max_evaluate_bytes": count(TiB)},
        "CaptionConfig": {
            "max_new_tokens": count(10**6), "captions_per_clip": count(1000), "temperature": at_least(0, 100),
            "top_p": above(0, 1), "seed": at_least(*SEED), "image_size": at_least(8, 16384), "views": count(4),
            "frames": count(10**4), "tensor_parallel_size": count(1024), "num_gpus": at_least(0, 1024),
            "batch_size": count(10**6), "max_model_len": count(10**8), "gpu_memory_utilization": above(0, 1)},
        "CaptionFilters": {
            "min_chars": at_least(0, 10**6), "max_chars": count(10**8), "ngram": count(100),
            "max_repeated_ngram_ratio": fraction},
        "ShardConfig": {
            "max_shard_bytes": count(TiB), "max_shard_samples": count(10**9)},
        "SplitConfig": {"fractions": fraction},
        "RunConfig": {
            "steps": count(10**10), "batch_size": at_least(0, 10**6), "loader_workers": at_least(0, 1024),
            "checkpoint_every": count(10**10), "log_every": count(10**10), "keep_checkpoints": at_least(0, 10**6),
            "seed": at_least(*SEED), "num_workers": count(10**5), "fail_at_step": at_least(-1, 10**10)},
        "VAEConfig": {
            "frames": at_least(2, 10**5), "width": count(2**20), "heads": count(4096), "encoder_blocks": count(1024),
            "decoder_blocks": count(1024), "tokens": count(10**7), "shape_channels": count(2**20),
            "trajectory_channels": count(2**20), "fourier_frequencies": at_least(0, 64),
            "max_neighbours": count(4096), "kl_weight": at_least(0, 10**6), "decoder_head_width": count(2**16)},
        "TextConfig": {"max_length": count(10**6)},
        "FlowConfig": {
            "width": count(2**20), "layers": count(4096), "heads": count(4096), "mlp_ratio": above(0, 1024),
            "text_dropout": fraction, "sample_steps": count(10**6), "guidance": at_least(0, 1000),
            "stats_batches": count(10**7)},
        "OptimConfig": {
            "lr": above(0, 100), "weight_decay": at_least(0, 100), "betas": at_least(0, 0.99999),
            "warmup_steps": at_least(0, 10**10),
            "grad_clip": above(0, 10**9)},
    }


RANGES: dict[str, dict[str, Range]] = _table()


def range_of(cls: type, name: str) -> Range | None:
    return RANGES.get(cls.__qualname__, {}).get(name)


def check_range(cls: type, name: str, value, where: str):
    """Raise ValueError naming `where` when a numeric value (or an item of a list of them) is out of its range."""
    allowed = range_of(cls, name)
    if allowed is None or value is None:
        return
    for item in value if isinstance(value, (list, tuple)) else [value]:
        if isinstance(item, (int, float)) and not isinstance(item, bool) and not allowed.holds(item):
            raise ValueError(f"{where}: {item!r} is out of range; it must be {allowed.text()}")
