"""One small demo-like job (6 generated assets through every stage), run once per test session and shared by the
tests that read its output folder as users would."""

from __future__ import annotations

from pathlib import Path

import yaml

JOB = {
    "name": "readers",
    "sources": [{"kind": "generated", "count": 6, "seed": 5}],
    "resample": {"vertices": 96, "frames": [8], "max_clips_per_animation": 3, "quality_samples": 128},
    "caption": {"backend": "motion"},
    "split": {"fractions": [0.5, 0.25, 0.25]},
    "shard": {"max_shard_samples": 4},
    "run": {"unit_size": 2, "caption_num_cpus": 0},
}
_RUNS: dict[str, tuple[Path, dict]] = {}


def demo_output(tmp_path_factory) -> tuple[Path, dict]:
    """(job folder, run summary) of JOB; needs the session's Ray (the `ray_session` fixture)."""
    if "demo" not in _RUNS:
        from pipeline.config import load_job
        from pipeline.runner import Runner

        folder = tmp_path_factory.mktemp("demo-job")
        (folder / "job.yaml").write_text(yaml.safe_dump(JOB))
        summary = Runner(load_job(folder / "job.yaml"), folder / "out", show_progress=False).run()
        _RUNS["demo"] = (folder / "out", summary)
    return _RUNS["demo"]
