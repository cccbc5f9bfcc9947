"""Synthetic clips for the shard, loader, stats and AnimateAnyMesh tests (seeded NumPy, no other stage needed)."""

from __future__ import annotations

import hashlib

import numpy as np

from clip_builder import build_clip
from schemas.sample import Clip
from stages.splits import SplitConfig, assign_split


def synthetic_clip(asset: int, animation: int = 0, seed: int = 0, frames: int = 16, vertices: int | None = None,
                   split: SplitConfig | None = None) -> Clip:
    """One clip of a random (seeded) trajectory, its split drawn by `split`; N varies with the seed unless given."""
    rng = np.random.default_rng([asset, animation, seed])
    n = int(vertices or rng.integers(50, 400))
    base = rng.normal(size=(n, 3)).astype(np.float32)
    motion = np.cumsum(rng.normal(scale=0.02, size=(frames, n, 3)), axis=0).astype(np.float32)
    trajectory = (base[None] + motion).astype(np.float32)
    faces = rng.integers(0, n, size=(max(1, n * 2 - 4), 3)).astype(np.int32)
    asset_id = hashlib.sha256(f"asset-{asset}".encode()).hexdigest()
    return build_clip(asset_id, trajectory, faces, animation=animation, animation_name=f"anim{animation}",
                      first_frame=seed, resample_error=float(rng.uniform(0, 0.01)), split=assign_split(asset_id, split))


def synthetic_dataset(assets: int = 12, clips_per_asset: int = 3, frames: int = 16):
    """(clips sorted by id, captions by clip id, asset rows by asset id)."""
    clips = sorted(
        (synthetic_clip(a, animation=c % 2, seed=c * frames, frames=frames) for a in range(assets) for c in range(clips_per_asset)),
        key=lambda c: c.clip_id,
    )
    captions = {
        clip.clip_id: [
            dict(clip_id=clip.clip_id, content_hash=clip.content_hash, caption_index=0, text=f"motion caption of {clip.clip_id[:6]}",
                 backend="motion", model="motion-heuristic", revision="1", prompt_hash="p0", cpu_stand_in=True, seconds=0.0),
            dict(clip_id=clip.clip_id, content_hash=clip.content_hash, caption_index=0, text=f"the object {i} sways",
                 backend="transformers", model="tiny-vlm", revision="r1", prompt_hash="p1", cpu_stand_in=True, seconds=0.1),
        ]
        for i, clip in enumerate(clips)
    }
    licenses = ["CC-BY-4.0", "CC0-1.0", "CC-BY-NC-4.0"]
    assets_rows = {
        clip.asset_id: dict(
            asset_id=clip.asset_id, source_kind="generated", name="thing", tags=["synthetic"],
            sources=[dict(kind="generated", uri=f"gen://{clip.asset_id[:8]}", name="thing", license=licenses[int(clip.asset_id[:2], 16) % 3], attribution="dymesh")],
            license=licenses[int(clip.asset_id[:2], 16) % 3],
            attribution="dymesh",
            file_bytes=1000, file_format="glb", blob_path="", animation_count=2, evaluated_vertices=clip.num_vertices,
            evaluated_faces=clip.num_faces,
        )
        for clip in clips
    }
    return clips, captions, assets_rows


def write_job_tables(out, clips, captions, assets, errors=()) -> None:
    """Write the tables as the pipeline lays them out: OUT/<table>/<config-hash>/part-*.parquet."""
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.parquet as pq

    from schemas.sample import clip_rows
    from schemas.tables import TABLES

    def write(table, rows, relative):
        path = Path(out) / table / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(list(rows), schema=TABLES[table]), path)

    half = len(clips) // 2
    for part, some in enumerate((clips[:half], clips[half:])):
        rows = [clip_rows(c) for c in some]
        write("clips", [r for r, _ in rows], f"c0ffee/part-{part}.parquet")
        write("clip_arrays", [a for _, a in rows], f"c0ffee/part-{part}.parquet")
    clips_of = {}
    for clip in clips:
        clips_of[clip.asset_id] = clips_of.get(clip.asset_id, 0) + 1
    funnel = [{"asset_id": a, "windows_cut": n + 1, "clips_kept": n, "rejections": [{"reason": "static", "count": 1}]}
              for a, n in sorted(clips_of.items())]  # one static window per asset
    write("funnel", funnel, "c0ffee/part-0.parquet")
    write("captions", [r for rows in captions.values() for r in rows], "beef00/part-0.parquet")
    write("assets", list(assets.values()), "abc123/part-0.parquet")
    by_stage = {}
    for row in errors:
        by_stage.setdefault(row["stage"], []).append(row)
    for stage, rows in by_stage.items():
        write("errors", rows, f"{stage}/0a0a0a/part-0.parquet")
