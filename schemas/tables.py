"""Arrow schemas of every DyMesh table. Each column carries its one-line meaning as Arrow field metadata ("doc"),
each table its own meaning, a version (bump it when a column changes meaning: the version feeds the stage hash, so
old partitions are superseded rather than mixed in) and the stage whose config hash names its partitions.

Every table is a folder of Parquet files, one per committed unit of work: OUT/<table>/<stage hash>/part-<unit>.parquet
(errors: OUT/errors/<stage>/<stage hash>/...). `docs/tables.md` is generated from this module (`python -m
schemas.docs`) and tests/test_tables.py checks that it is up to date and that every column is documented.
"""

from __future__ import annotations

import pyarrow as pa

from schemas.failures import error_row  # noqa: F401 - rows are made there, without pyarrow (stages import it)

PROVENANCE_VERSION = 2
ASSETS_VERSION = 2
CLIPS_VERSION = 2
CLIP_ARRAYS_VERSION = 1
FUNNEL_VERSION = 1
CAPTIONS_VERSION = 1
ERRORS_VERSION = 2  # 2: the transient column (schemas.failures)
SHARDS_VERSION = 3  # 3: sample_sha256 / sample_xxh3_128; tars in OUT/webdataset/<hash>/<split>/

DOC = b"doc"


def column(name: str, type_: pa.DataType, doc: str) -> pa.Field:
    """A table column with its one-line meaning."""
    return pa.field(name, type_, metadata={DOC: doc.encode()})


def table_schema(name: str, version: int, doc: str, columns: list[pa.Field]) -> pa.Schema:
    return pa.schema(columns, metadata={"dymesh.table": name, "dymesh.version": str(version), "dymesh.doc": doc})


def column_doc(field: pa.Field) -> str:
    """The one-line meaning of a column ("" when it has none)."""
    return (field.metadata or {}).get(DOC, b"").decode()


SOURCE_KINDS_TEXT = "local | url | objectstore | objaverse | objaverse-xl | generated | dt4d | amass | blender"
SOURCE = pa.struct([
    column("kind", pa.string(), f"source kind: {SOURCE_KINDS_TEXT}"),
    column("uri", pa.string(), "where the bytes came from (path, URL, s3://..., objaverse:<uid>, generated:...)"),
    column("name", pa.string(), "the asset's name at that source (or in the file), if any"),
    column("license", pa.string(), "licence as the source (else the file) states it, SPDX id where known"),
    column("attribution", pa.string(), "author / credit line"),
])

PROVENANCE = table_schema("provenance", PROVENANCE_VERSION, "one row per harvested input file (the same asset may "
                          "appear under several uris); grouped by asset_id into `assets`", [
    column("asset_id", pa.string(), "sha256 hex of the asset bytes (a .gltf with side files is packed to .glb first)"),
    column("source_kind", pa.string(), f"kind of the source that listed it: {SOURCE_KINDS_TEXT}"),
    column("uri", pa.string(), "where the bytes came from (path, URL, s3://..., objaverse:<uid>, generated:...)"),
    column("name", pa.string(), "human name: the source's, else the file's own (asset.extras / XMP), else ''"),
    column("license", pa.string(), "licence: the source's, else the one the file declares, SPDX id where known"),
    column("attribution", pa.string(), "author / credit line, from the source or the file"),
    column("tags", pa.list_(pa.string()), "descriptive tags from the source or the file (they feed the captioner)"),
    column("file_bytes", pa.int64(), "size of the stored asset file in bytes"),
    column("file_format", pa.string(), "format of the stored file: glb | gltf | dt4d | amass | a Blender format (fbx, blend, ...)"),
    column("blob_path", pa.string(), "path of the stored file relative to the job folder (blobs/<sha[:2]>/<sha>.<fmt>)"),
])

ASSETS = table_schema("assets", ASSETS_VERSION, "one row per unique asset (its bytes' sha256), with every "
                      "provenance and what evaluation counted in it", [
    column("asset_id", pa.string(), "sha256 hex of the asset bytes (a .gltf with side files is packed to .glb first)"),
    column("source_kind", pa.string(), f"kind of its first source (sources sorted by uri): {SOURCE_KINDS_TEXT}"),
    column("name", pa.string(), "human name: the first source's that has one, else the file's own, else ''"),
    column("tags", pa.list_(pa.string()), "descriptive tags of the first source that has any"),
    column("license", pa.string(), "licence of the first source that states one, else the file's own; '' if none"),
    column("attribution", pa.string(), "author / credit line of the first source that has one"),
    column("sources", pa.list_(SOURCE), "every provenance of these bytes, sorted by uri"),
    column("file_bytes", pa.int64(), "size of the stored asset file in bytes"),
    column("file_format", pa.string(), "format of the stored file: glb | gltf | dt4d | amass | a Blender format (fbx, blend, ...)"),
    column("blob_path", pa.string(), "path of the stored file relative to the job folder"),
    column("animation_count", pa.int32(), "glTF animations in the asset; -1 when it could not be evaluated"),
    column("evaluated_vertices", pa.int64(), "vertices of the evaluated scene (all meshes, unwelded); -1 if unknown"),
    column("evaluated_faces", pa.int64(), "triangles of the evaluated scene; -1 if unknown"),
])

CLIPS = table_schema("clips", CLIPS_VERSION, "one row per clip (a fixed-topology window of one animation at N "
                     "vertices and T frames); metadata only, the arrays are in `clip_arrays`", [
    column("clip_id", pa.string(), "<asset_id>_a<animation>_<first_frame>-<last_frame> (4+ digit frames)"),
    column("asset_id", pa.string(), "the asset the clip was cut from (assets.asset_id)"),
    column("split", pa.string(), "train | val | test, drawn per asset by a salted hash (job spec `split:`)"),
    column("animation", pa.int32(), "index of the animation in the glTF animations array"),
    column("animation_name", pa.string(), "name of that animation in the file ('' if unnamed)"),
    column("fps", pa.float64(), "frame rate the frames were evaluated at"),
    column("first_frame", pa.int32(), "first frame index of the window at `fps` (inclusive)"),
    column("last_frame", pa.int32(), "last frame index of the window at `fps` (inclusive)"),
    column("frames", pa.int32(), "T: frames in the clip"),
    column("num_vertices", pa.int32(), "N: vertices per frame"),
    column("num_faces", pa.int32(), "F: triangles"),
    column("center", pa.list_(pa.float32(), 3), "frame-0 bounding-box centre (stored, not applied to the arrays)"),
    column("scale", pa.float32(), "max |coordinate| of frame 0 after centring (stored, not applied)"),
    column("source_vertices", pa.int64(), "vertex count of the welded source mesh before resampling to N"),
    column("source_faces", pa.int64(), "triangle count of the welded source mesh"),
    column("looped", pa.bool_(), "the window wraps around the end of a looping animation"),
    column("short_policy", pa.string(), "none | loop | retime | hold: how an animation shorter than T was filled "
           "(retime: `fps` is the effective rate)"),
    column("resample_error", pa.float32(), "worst surface gate over measured frames / bbox diagonal: vertices off "
           "the evaluated surface (max), faces (p99), surface not covered (p99)"),
    column("max_displacement", pa.float32(), "max vertex displacement from frame 0 / bbox diagonal"),
    column("mean_displacement", pa.float32(), "mean vertex displacement from frame 0 / bbox diagonal"),
    column("content_hash", pa.string(), "sha256 of the quantised normalised trajectories (the dedup key)"),
])

CLIP_ARRAYS = table_schema("clip_arrays", CLIP_ARRAYS_VERSION, "the arrays of each clip, one row per clips row "
                           "(join on clip_id); raw little-endian C-order bytes, shapes beside them", [
    column("clip_id", pa.string(), "the clip (clips.clip_id)"),
    column("vertices", pa.large_binary(), "float32 little-endian positions, C order, shape vertices_shape = [T, N, 3]"),
    column("vertices_shape", pa.list_(pa.int32()), "[T, N, 3]: reshape `vertices` with it"),
    column("faces", pa.large_binary(), "int32 little-endian vertex indices, C order, shape faces_shape = [F, 3]"),
    column("faces_shape", pa.list_(pa.int32()), "[F, 3]: reshape `faces` with it"),
])

REJECTION = pa.struct([
    column("reason", pa.string(), "why: the error_type of the resample error rows (static, duplicate, ...)"),
    column("count", pa.int32(), "how many windows (or, for whole-asset reasons such as no-animation, 1)"),
])

FUNNEL = table_schema("funnel", FUNNEL_VERSION, "one row per evaluated asset: how its animations became clips "
                      "(assets.animation_count -> windows_cut -> clips_kept, with the rejections between)", [
    column("asset_id", pa.string(), "the asset (assets.asset_id)"),
    column("windows_cut", pa.int32(), "windows cut from its animations at the job's T and fps; -1 if resampling "
           "failed before counting them"),
    column("clips_kept", pa.int32(), "windows that became clips"),
    column("rejections", pa.list_(REJECTION), "windows not kept, counted by reason (one error row each in errors)"),
])

CAPTIONS = table_schema("captions", CAPTIONS_VERSION, "one row per (clip, backend, model, prompt, caption index)", [
    column("clip_id", pa.string(), "the clip (clips.clip_id)"),
    column("content_hash", pa.string(), "the clip's content hash (clips.content_hash; part of the caption cache key)"),
    column("caption_index", pa.int32(), "0, 1, ... when several captions are drawn per clip"),
    column("text", pa.string(), "the caption"),
    column("backend", pa.string(), "vllm | transformers | motion"),
    column("model", pa.string(), "model id ('motion-heuristic' for the model-free captioner)"),
    column("revision", pa.string(), "model revision"),
    column("prompt_hash", pa.string(), "hash of the prompt the caption was asked with"),
    column("cpu_stand_in", pa.bool_(), "true when a CPU stand-in, not the GPU model, produced the caption"),
    column("seconds", pa.float32(), "wall time of this caption (0.0 unless run.record_timings)"),
])

ERRORS = table_schema("errors", ERRORS_VERSION, "one row per rejected or failed item, from every stage "
                      "(OUT/errors/<stage>/<stage hash>/)", [
    column("stage", pa.string(), "harvest | evaluate | resample | caption | shard"),
    column("unit_id", pa.string(), "the item: source uri (harvest), asset id (evaluate), window or clip id (later)"),
    column("source", pa.string(), "where the item came from (path, URL, uid)"),
    column("attempt", pa.int32(), "tries of this item so far (1 = first try); a rerun that retries a failed item "
           "counts the earlier runs' tries in the failed rows it writes"),
    column("status", pa.string(), "failed (an error) | skipped (filtered, with a reason)"),
    column("error_type", pa.string(), "exception class, error kind or filter name"),
    column("message", pa.string(), "what happened and what to do, in one line"),
    column("transient", pa.bool_(), "a failure a rerun retries (network, timeout, memory, lost worker, ...: "
           "schemas.failures); false for skipped rows"),
])

SHARDS = table_schema("shards", SHARDS_VERSION, "one row per sample in the WebDataset shards (the shard manifest, "
                      "OUT/shards/<hash>/; the tars are in OUT/webdataset/<hash>/)", [
    column("shard", pa.string(), "tar file relative to the tar folder OUT/webdataset/<hash>/, e.g. train/000000.tar"),
    column("key", pa.string(), "WebDataset sample key (the clip id with '.' replaced by '_')"),
    column("clip_id", pa.string(), "the clip (clips.clip_id)"),
    column("split", pa.string(), "train | val | test (clips.split)"),
    column("offset", pa.int64(), "byte offset of the sample's first tar header in the shard"),
    column("size", pa.int64(), "bytes of the sample's members, tar headers and padding included"),
    column("sample_sha256", pa.string(), "sha256 (hex) of the sample's bytes [offset, offset + size): `dymesh verify` checks it"),
    column("sample_xxh3_128", pa.string(), "xxh3-128 (hex) of the same bytes: every reader checks it before handing the sample out"),
    column("shard_bytes", pa.int64(), "size of the whole shard file (the bytes outside samples are zeros)"),
])

# every table by name, in the order documented
TABLES: dict[str, pa.Schema] = {
    "provenance": PROVENANCE,
    "assets": ASSETS,
    "clips": CLIPS,
    "clip_arrays": CLIP_ARRAYS,
    "funnel": FUNNEL,
    "captions": CAPTIONS,
    "errors": ERRORS,
    "shards": SHARDS,
}

# the stage whose config hash names each table's partition folder OUT/<table>/<hash>/ (errors: every stage's,
# under OUT/errors/<stage>/<hash>/)
TABLE_STAGES: dict[str, str] = {
    "provenance": "harvest",
    "assets": "evaluate",
    "clips": "resample",
    "clip_arrays": "resample",
    "funnel": "resample",
    "captions": "caption",
    "shards": "shard",
}


def stage_tables(stage: str) -> dict[str, int]:
    """{table: version} of the tables a stage writes (its error rows included): part of the stage's hash."""
    written = {t: int(TABLES[t].metadata[b"dymesh.version"]) for t, s in TABLE_STAGES.items() if s == stage}
    return {**written, "errors": ERRORS_VERSION}
