"""Arrow schemas of every DyMesh table, each with a version (bump it when a field changes meaning).

Tables (Parquet, written in partitions per committed unit of work):
  assets    one row per unique asset (sha256 of its bytes), all provenances kept
  clips     one row per clip: arrays as raw little-endian bytes plus shape columns
  captions  one row per (clip, backend, model, prompt)
  errors    one row per rejected or failed item, from every stage
  shards    one row per sample in a WebDataset shard (the shard manifest)
"""

from __future__ import annotations

import pyarrow as pa

ASSETS_VERSION = 1
CLIPS_VERSION = 1
CAPTIONS_VERSION = 1
ERRORS_VERSION = 1
SHARDS_VERSION = 1

SOURCE = pa.struct(
    [
        ("kind", pa.string()),  # local | url | objectstore | objaverse | objaverse-xl | generated
        ("uri", pa.string()),  # where the bytes came from (path, URL, s3://..., objaverse uid)
        ("name", pa.string()),  # human name of the asset at that source, if any
        ("license", pa.string()),  # licence as the source states it (SPDX where known)
        ("attribution", pa.string()),  # author / credit line
    ]
)

ASSETS = pa.schema(
    [
        ("asset_id", pa.string()),  # sha256 hex of the asset bytes (a .gltf is packed first)
        ("sources", pa.list_(SOURCE)),  # every provenance of these bytes, sorted by uri
        ("license", pa.string()),  # licence of the first source that states one
        ("attribution", pa.string()),
        ("bytes", pa.int64()),
        ("format", pa.string()),  # glb | gltf
        ("blob", pa.string()),  # path of the stored bytes relative to the job output
        ("animations", pa.int32()),
        ("vertices", pa.int64()),  # evaluated (unwelded) vertex count, -1 if unknown
        ("faces", pa.int64()),
    ],
    metadata={"dymesh.table": "assets", "dymesh.version": str(ASSETS_VERSION)},
)

CLIPS = pa.schema(
    [
        ("clip_id", pa.string()),  # <asset_id>_a<animation>_<first>-<last>
        ("asset_id", pa.string()),
        ("animation", pa.int32()),  # index into the glTF animations array
        ("animation_name", pa.string()),
        ("fps", pa.float64()),
        ("first_frame", pa.int32()),  # frame indices at `fps`, inclusive
        ("last_frame", pa.int32()),
        ("frames", pa.int32()),  # T
        ("num_vertices", pa.int32()),  # N
        ("num_faces", pa.int32()),  # F
        ("vertices", pa.large_binary()),  # float32 little-endian, C order, [T, N, 3]
        ("faces", pa.large_binary()),  # int32 little-endian, C order, [F, 3]
        ("center", pa.list_(pa.float32(), 3)),  # frame-0 bbox centre (stored, not applied)
        ("scale", pa.float32()),  # max |coord| of frame 0 after centring
        ("source_vertices", pa.int64()),  # welded vertex count of the source
        ("source_faces", pa.int64()),
        ("looped", pa.bool_()),  # window wrapped around a looping animation
        ("short_policy", pa.string()),  # none | loop | retime | hold: how an animation shorter than T was filled
        ("resample_error", pa.float32()),  # worst surface gate (vertex max, face p99, coverage p99) / bbox diagonal
        ("max_displacement", pa.float32()),  # max vertex displacement from frame 0 / bbox diagonal
        ("mean_displacement", pa.float32()),
        ("content_hash", pa.string()),  # sha256 of quantised normalised trajectories (dedup key)
        ("split", pa.string()),  # train | val | test, assigned by asset
    ],
    metadata={"dymesh.table": "clips", "dymesh.version": str(CLIPS_VERSION)},
)

CAPTIONS = pa.schema(
    [
        ("clip_id", pa.string()),
        ("content_hash", pa.string()),  # the clip's content hash (cache key part)
        ("caption_index", pa.int32()),  # several captions per clip: 0, 1, ...
        ("text", pa.string()),
        ("backend", pa.string()),  # vllm | transformers | motion
        ("model", pa.string()),  # model id ("motion-heuristic" for the model-free captioner)
        ("revision", pa.string()),
        ("prompt_hash", pa.string()),
        ("cpu_stand_in", pa.bool_()),  # true when a CPU stand-in produced the caption
        ("seconds", pa.float32()),  # wall time spent on this caption (informational)
    ],
    metadata={"dymesh.table": "captions", "dymesh.version": str(CAPTIONS_VERSION)},
)

ERRORS = pa.schema(
    [
        ("stage", pa.string()),  # harvest | evaluate | resample | caption | shard | ...
        ("unit_id", pa.string()),  # asset id, clip id or source uri - whatever the stage saw
        ("source", pa.string()),  # where the input came from (path, URL, uid)
        ("attempt", pa.int32()),
        ("status", pa.string()),  # failed (an error) | skipped (filtered, with a reason)
        ("error_type", pa.string()),  # exception class or filter name
        ("message", pa.string()),
    ],
    metadata={"dymesh.table": "errors", "dymesh.version": str(ERRORS_VERSION)},
)

SHARDS = pa.schema(
    [
        ("shard", pa.string()),  # shard file name relative to the shards folder
        ("key", pa.string()),  # sample key (= clip id)
        ("split", pa.string()),
        ("offset", pa.int64()),  # byte offset of the sample's first tar header in the shard
        ("size", pa.int64()),  # bytes of the sample's members, headers included
        ("shard_sha256", pa.string()),
        ("shard_bytes", pa.int64()),
    ],
    metadata={"dymesh.table": "shards", "dymesh.version": str(SHARDS_VERSION)},
)

TABLES: dict[str, pa.Schema] = {
    "assets": ASSETS,
    "clips": CLIPS,
    "captions": CAPTIONS,
    "errors": ERRORS,
    "shards": SHARDS,
}


def error_row(
    stage: str,
    unit_id: str,
    error_type: str,
    message: str,
    *,
    source: str = "",
    status: str = "failed",
    attempt: int = 1,
) -> dict:
    """One `errors` row. status is "failed" for errors, "skipped" for filter rejections."""
    if status not in ("failed", "skipped"):
        raise ValueError(f"error_row status must be 'failed' or 'skipped', not {status!r}")
    return {
        "stage": stage,
        "unit_id": unit_id,
        "source": source,
        "attempt": int(attempt),
        "status": status,
        "error_type": error_type,
        "message": message,
    }
