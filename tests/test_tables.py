"""The table schemas as users read them: every column documented (docs/tables.md generated and up to date), rows
built by the code match the schemas exactly, and a column name means one thing in every table."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa

from schemas.docs import tables_markdown
from schemas.sample import ASSET_KEYS, CAPTION_KEYS, SAMPLE_KEYS, clip_rows
from schemas.tables import CAPTIONS, CLIP_ARRAYS, CLIPS, TABLE_STAGES, TABLES, column_doc
from shard_clips import synthetic_clip

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "tables.md"

# names that appear in several tables, each with one meaning everywhere (a new shared name must be added here, on
# purpose: two tables with a same-name column of different meaning make joins lie)
SHARED_COLUMNS = {"asset_id", "clip_id", "split", "content_hash", "source_kind", "uri", "name", "license",
                  "attribution", "tags", "file_bytes", "file_format", "blob_path", "source"}


def documented_columns(fields, prefix: str = "") -> list[tuple[str, str]]:
    """(dotted name, doc) of every column and of every field of struct columns."""
    found = []
    for field in fields:
        found.append((prefix + field.name, column_doc(field)))
        inner = field.type.value_type if pa.types.is_list(field.type) else field.type
        if pa.types.is_struct(inner):
            found += documented_columns([inner.field(i) for i in range(inner.num_fields)],
                                        f"{prefix}{field.name}{'[].' if pa.types.is_list(field.type) else '.'}")
    return found


def test_every_column_has_a_meaning_and_every_table_a_version():
    for name, schema in TABLES.items():
        assert schema.metadata[b"dymesh.table"].decode() == name
        assert int(schema.metadata[b"dymesh.version"]) >= 1 and schema.metadata[b"dymesh.doc"]
        undocumented = [column for column, doc in documented_columns(schema) if len(doc) < 8]
        assert not undocumented, f"{name}: columns without a one-line meaning: {undocumented}"
    assert set(TABLE_STAGES) == set(TABLES) - {"errors"}


def test_docs_tables_md_is_generated_and_up_to_date():
    assert DOC.read_text() == tables_markdown(), "docs/tables.md is stale: python -m schemas.docs > docs/tables.md"
    # and read back: each table's section lists exactly its columns, in order
    sections = re.split(r"^## ", DOC.read_text(), flags=re.M)[1:]
    listed = {s.split("`")[1]: re.findall(r"^\| `([^`]+)` \|", s, flags=re.M) for s in sections if s.startswith("`")}
    assert set(listed) == set(TABLES)
    for name, schema in TABLES.items():
        assert listed[name] == [column for column, _ in documented_columns(schema)], name
    samples = next(s for s in sections if s.startswith("WebDataset"))
    assert re.findall(r"^\| `([^`]+)` \|", samples, flags=re.M) == list(SAMPLE_KEYS)


def test_shared_column_names_are_the_join_keys_only():
    tables_of: dict[str, list[str]] = {}
    for name, schema in TABLES.items():
        for column in schema.names:
            tables_of.setdefault(column, []).append(name)
    shared = {column for column, tables in tables_of.items() if len(tables) > 1}
    assert shared <= SHARED_COLUMNS, f"same name in several tables, not declared as one meaning: {shared - SHARED_COLUMNS}"
    assert {"vertices", "faces", "bytes", "format", "blob", "animations"}.isdisjoint(
        set(TABLES["assets"].names) | set(TABLES["clips"].names))  # the names that meant two things before


def test_clip_rows_are_exactly_the_schemas_and_round_trip():
    clip = synthetic_clip(3, animation=1, seed=2, frames=5, vertices=11)
    row, arrays = clip_rows(clip)
    assert set(row) == set(CLIPS.names) and set(arrays) == set(CLIP_ARRAYS.names)
    clips, clip_arrays = pa.Table.from_pylist([row], schema=CLIPS), pa.Table.from_pylist([arrays], schema=CLIP_ARRAYS)
    assert clip_arrays.column("vertices_shape").to_pylist() == [[5, 11, 3]]
    from pipeline.tasks import clips_of_tables

    [back] = clips_of_tables(clips, clip_arrays)
    assert back.clip_id == clip.clip_id and back.split == clip.split in ("train", "val", "test")
    assert (back.vertices == clip.vertices).all() and (back.faces == clip.faces).all()


def test_sample_json_keys_are_table_columns():
    from stages.shard.sample import sample_metadata

    clip = synthetic_clip(1)
    caption = {**dict.fromkeys(CAPTIONS.names, "x"), "caption_index": 0, "cpu_stand_in": True}
    asset = {"license": "CC0-1.0", "attribution": "a", "sources": []}
    meta = sample_metadata(clip, [caption], asset, "float32", "x")
    assert set(meta) == set(CLIPS.names) | set(SAMPLE_KEYS)
    assert set(meta["captions"][0]) == set(CAPTION_KEYS) <= set(CAPTIONS.names)
    assert set(ASSET_KEYS) <= set(TABLES["assets"].names) and set(ASSET_KEYS) <= set(SAMPLE_KEYS)
    assert meta["split"] == clip.split
