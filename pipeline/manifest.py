"""The job output folder: atomic Parquet partitions, per-unit completion markers, stage config hashes in paths.

Layout (OUT/; the tables and their columns: docs/tables.md):
  job.json                                   the resolved job spec and every stage hash
  blobs/<sha[:2]>/<sha>.glb                  harvested asset bytes (content-addressed)
  provenance/<harvest hash>/part-source.parquet   provenance rows of one source
  assets/<hash>/part-<unit>.parquet          one row per unique asset (provenances, counts)
  clips/<hash>/part-<unit>.parquet           clip metadata of one unit of work (sorted by clip_id)
  clip_arrays/<hash>/part-<unit>.parquet     their arrays, row for row
  funnel/<hash>/part-<unit>.parquet          per asset: windows cut, clips kept, rejections
  captions/<hash>/part-<unit>.parquet
  errors/<stage>/<hash>/part-<unit>.parquet  every rejected or failed item
  shards/<hash>/part-all.parquet             the shard manifest (stages.shard.layout)
  webdataset/<hash>/<split>/NNNNNN.tar       the WebDataset tars
  markers/<stage>/<hash>/<unit>.json         completion marker with the unit's counts (written last)
  superseded/...                             folders of stage hashes the last run does not name (pipeline.supersede)
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from schemas.job_record import JOB_FILE
from stages.storage import TEMP_PREFIX, write_bytes_atomically


def write_if_changed(path: Path, data: bytes) -> None:
    """Write `data` atomically and durably; an identical file already there is left untouched."""
    if not (path.is_file() and path.read_bytes() == data):
        write_bytes_atomically(path, data, durable=True)


def atomic_write_json(path: Path, value) -> None:
    """Write JSON (sorted keys) atomically and durably; an identical file already there is left untouched."""
    write_if_changed(path, (json.dumps(value, sort_keys=True, indent=1) + "\n").encode())


def read_table(path: Path, schema=None, columns: list[str] | None = None):
    import pyarrow.parquet as pq

    return pq.read_table(path, schema=schema, columns=columns)


def escaped(text: str) -> str:
    """`text` as storable UTF-8: undecodable bytes of a file name (surrogate escapes) and lone surrogates are
    written as backslash escapes (\\xff) instead of failing the table write."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        try:
            return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:
            return text.encode("utf-8", "backslashreplace").decode("utf-8")


CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` escaped for a table and a terminal: invalid UTF-8 and control characters as backslash escapes."""
    return CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", escaped(text))


def storable(value):
    """A row value with every string in it escaped (lists and mappings walked)."""
    if isinstance(value, str):
        return escaped(value)
    if isinstance(value, dict):
        return {k: storable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [storable(v) for v in value]
    return value


def table_from_rows(rows: list[dict], schema):
    """A table of `schema` from row mappings; strings that are not valid UTF-8 are stored escaped."""
    import pyarrow as pa

    return pa.Table.from_pylist([storable(row) for row in rows], schema=schema)


def checked_table(rows: list[dict], schema, stage: str, key: str):
    """(table of the rows that fit `schema`, one failed error row per row that does not): one bad row of a stage's
    output (a wrong type, say) is that item's failure, not the unit's."""
    import pyarrow as pa

    from schemas.tables import error_row

    try:
        return table_from_rows(rows, schema), []
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        pass
    good, bad = [], []
    for row in rows:
        try:
            table_from_rows([row], schema)
            good.append(row)
        except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
            item = str(row.get(key, "?"))
            detail = " ".join(str(exc).split())[:300]
            bad.append(error_row(stage, item, "bad-row", f"{item}: a {stage} row that cannot be stored: {detail}"))
    return table_from_rows(good, schema), bad


class Manifest:
    """Paths and completion markers of one job output folder."""

    def __init__(self, out: str | Path):
        self.out = Path(out)

    def partition(self, table: str, stage_hash: str, unit: str) -> Path:
        return self.out / table / stage_hash / f"part-{unit}.parquet"

    def errors(self, stage: str, stage_hash: str, unit: str) -> Path:
        return self.out / "errors" / stage / stage_hash / f"part-{unit}.parquet"

    def marker(self, stage: str, stage_hash: str, unit: str) -> Path:
        return self.out / "markers" / stage / stage_hash / f"{unit}.json"

    def is_done(self, stage: str, stage_hash: str, unit: str) -> bool:
        return self.marker(stage, stage_hash, unit).is_file()

    def read_marker(self, stage: str, stage_hash: str, unit: str) -> dict | None:
        path = self.marker(stage, stage_hash, unit)
        return json.loads(path.read_text()) if path.is_file() else None

    def commit(self, stage: str, stage_hash: str, unit: str, counts: dict) -> None:
        """Mark a unit done; called after every partition of the unit has been renamed into place."""
        atomic_write_json(self.marker(stage, stage_hash, unit), counts)

    def markers(self, stage: str, stage_hash: str) -> dict[str, dict]:
        folder = self.out / "markers" / stage / stage_hash
        if not folder.is_dir():
            return {}
        return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}

    def shard_layout(self, stage_hash: str):
        """The shard set of a shard-stage hash: OUT/webdataset/<hash>/ (tars) and OUT/shards/<hash>/ (manifest)."""
        from stages.shard.layout import layout_of

        return layout_of(str(self.out), stage_hash)

    def job_file(self) -> Path:
        return self.out / JOB_FILE

    def clean_temp(self) -> int:
        """Remove temp files a killed run left behind; returns how many."""
        removed = 0
        if not self.out.is_dir():
            return 0
        for path in sorted(self.out.rglob(f"{TEMP_PREFIX}*")):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed += 1
        return removed
