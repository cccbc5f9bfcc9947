"""Everything the report asks of a job's tables, as SQL over the DuckDB views assets, clips, captions, errors and
shards (pipeline.stats.connect): the one module that names their columns, so a renamed column is one edit here.

Every number comes from a query over all committed rows; only the gallery is a seeded sample of clips.
"""

from __future__ import annotations

from dataclasses import dataclass

# The per-asset yield counts of `asset_counts` (assets joined with the funnel table), in funnel order: (funnel step,
# column). A step whose column the view lacks is reported as not recorded.
ASSET_COUNT_STEPS = (("animations", "animation_count"), ("windows", "windows_cut"))
# An asset was evaluated when this column is >= 0 (the runner writes -1 for an asset whose evaluation failed).
EVALUATED = "animation_count >= 0"
# Each asset's counts: its assets row and (when resampled) its funnel row.
ASSET_COUNTS = """
    CREATE OR REPLACE TEMP VIEW asset_counts AS
    SELECT a.*, f.windows_cut, f.clips_kept FROM assets a LEFT JOIN funnel f USING (asset_id)"""

# One row per asset (its first provenance names the source), one row per clip with its split and source.
PREPARE = """
    CREATE OR REPLACE TEMP VIEW report_assets AS
    SELECT asset_id, min(source_kind) AS source_kind, min(sources[1].uri) AS source_uri,
           min(sources[1].name) AS source_name, min(license) AS license, min(attribution) AS attribution,
           bool_and({evaluated}) AS evaluated {asset_count_columns}
    FROM asset_counts GROUP BY asset_id;

    CREATE OR REPLACE TEMP VIEW report_clips AS
    SELECT c.clip_id, c.asset_id, c.animation, c.animation_name, c.fps, c.frames, c.num_vertices, c.num_faces,
           c.looped, c.resample_error, c.max_displacement, c.mean_displacement, c.content_hash,
           coalesce(nullif(c.split, ''), s.split, '(unassigned)') AS split,
           coalesce(a.source_kind, '(unknown source)') AS source_kind, coalesce(a.source_uri, '') AS source_uri,
           coalesce(a.source_name, '') AS source_name, coalesce(nullif(a.license, ''), '(none stated)') AS license,
           coalesce(a.attribution, '') AS attribution
    FROM clips c
    LEFT JOIN report_assets a USING (asset_id)
    LEFT JOIN (SELECT clip_id, min(split) AS split FROM shards GROUP BY clip_id) s USING (clip_id);
"""

FUNNEL_ASSETS = """
    SELECT coalesce(source_kind, '(unknown source)') AS source_kind, count(*) AS assets,
           count(*) FILTER (WHERE evaluated) AS evaluated {asset_count_sums}
    FROM report_assets GROUP BY 1"""

FUNNEL_CLIPS = """
    SELECT c.source_kind, count(*) AS clips,
           count(*) FILTER (WHERE c.clip_id IN (SELECT clip_id FROM captions)) AS captioned,
           count(*) FILTER (WHERE c.clip_id IN (SELECT clip_id FROM shards)) AS sharded
    FROM report_clips c GROUP BY 1"""

LOSSES = """
    SELECT stage, status, error_type, count(*) AS rows FROM errors GROUP BY ALL ORDER BY rows DESC, stage, status, error_type"""

CLIPS_BY_SPLIT_AND_SOURCE = """
    SELECT split, source_kind, count(*) AS clips, count(DISTINCT asset_id) AS assets,
           median(resample_error) AS median_resample_error, median(max_displacement) AS median_motion
    FROM report_clips GROUP BY ALL ORDER BY split, source_kind"""

SAMPLE = """
    CREATE OR REPLACE TEMP TABLE report_sample AS
    SELECT clip_id FROM (
        SELECT clip_id, row_number() OVER (PARTITION BY split, source_kind ORDER BY md5($seed || clip_id), clip_id) AS place
        FROM report_clips)
    WHERE place <= $per_group"""

CARDS = """
    SELECT c.* FROM report_clips c SEMI JOIN report_sample USING (clip_id) ORDER BY split, source_kind, clip_id"""

CARD_CAPTIONS = """
    SELECT clip_id, text, backend, model, cpu_stand_in FROM captions SEMI JOIN report_sample USING (clip_id)
    ORDER BY clip_id, caption_index, backend, model, text"""

# The arrays behind a preview: vertices float32 [T, N, 3] and faces int32 [F, 3] as little-endian bytes. A list
# argument (not a join) so DuckDB pushes the ids into the Parquet scan and skips row groups by clip_id statistics.
ARRAYS = """
    SELECT c.clip_id, a.vertices, a.faces, c.frames, c.num_vertices, c.num_faces
    FROM clips c JOIN clip_arrays a USING (clip_id) WHERE list_contains($ids, c.clip_id)"""


@dataclass(frozen=True)
class ClipArrays:
    clip_id: str
    vertices: bytes
    faces: bytes
    shape: tuple[int, int]  # frames T, vertices N
    faces_count: int


def columns_of(con, view: str) -> set[str]:
    return {row[0] for row in con.execute(f"DESCRIBE {view}").fetchall()}


def recorded_asset_steps(con) -> list[tuple[str, str]]:
    """The ASSET_COUNT_STEPS whose column the asset_counts view has."""
    con.execute(ASSET_COUNTS)
    present = columns_of(con, "asset_counts")
    return [(step, column) for step, column in ASSET_COUNT_STEPS if column in present]


def prepare(con) -> None:
    """Create the report's helper views (report_assets, report_clips) on a connection with the job's views."""
    counts = "".join(f", min({column}) AS {column}" for _, column in recorded_asset_steps(con))
    con.execute(PREPARE.format(evaluated=EVALUATED, asset_count_columns=counts))


def records(con, sql: str, parameters: dict | None = None) -> list[dict]:
    """Rows of a query as dicts."""
    result = con.execute(sql, parameters or {})
    names = [d[0] for d in result.description]
    return [dict(zip(names, row)) for row in result.fetchall()]


def funnel_steps(con) -> set[str]:
    """The funnel steps these tables record (even when they count nothing yet)."""
    return {"assets", "evaluated", *(step for step, _ in recorded_asset_steps(con)), "clips", "captioned", "sharded"}


def funnel_counts(con) -> dict[str, dict[str, int | None]]:
    """{source kind: {step: count}} for the steps the tables can tell: assets, evaluated, the recorded per-asset
    counts (animations, windows, ...; summed over evaluated assets), clips, captioned, sharded."""
    steps = recorded_asset_steps(con)
    sums = "".join(f', sum({column}) FILTER (WHERE evaluated AND {column} > 0) AS "{step}"' for step, column in steps)
    counts: dict[str, dict[str, int | None]] = {}
    for row in records(con, FUNNEL_ASSETS.format(asset_count_sums=sums)) + records(con, FUNNEL_CLIPS):
        kind = row.pop("source_kind")
        counts.setdefault(kind, {}).update({k: int(v or 0) for k, v in row.items()})
    return counts


def losses(con) -> list[dict]:
    """Error rows by stage, status and type (every rejected or failed item of the committed units)."""
    return records(con, LOSSES)


def split_source_table(con) -> list[dict]:
    return records(con, CLIPS_BY_SPLIT_AND_SOURCE)


def sample_cards(con, per_group: int, seed: int) -> list[dict]:
    """Up to `per_group` clips of every (split, source kind), drawn by a seeded hash of the clip id, with their
    captions (list of {text, backend, model, cpu_stand_in}) under "captions"."""
    con.execute(SAMPLE, {"seed": f"{int(seed)}:", "per_group": int(per_group)})
    cards = records(con, CARDS)
    captions: dict[str, list[dict]] = {}
    for row in records(con, CARD_CAPTIONS):
        captions.setdefault(row.pop("clip_id"), []).append(row)
    for card in cards:
        card["captions"] = captions.get(card["clip_id"], [])
    return cards


def clip_arrays(con, clip_ids: list[str], batch: int = 256):
    """ClipArrays of the given clips (read only for clips whose preview is not cached yet), `batch` ids a query."""
    for start in range(0, len(clip_ids), batch):
        result = con.execute(ARRAYS, {"ids": list(clip_ids[start : start + batch])})
        while rows := result.fetchmany(16):
            for clip_id, vertices, faces, frames, num_vertices, num_faces in rows:
                yield ClipArrays(clip_id, bytes(vertices), bytes(faces), (int(frames), int(num_vertices)), int(num_faces))
