"""Where a shard set lives: its tars and its manifest in two folders, so that each generic reader reads its folder.

    OUT/webdataset/<shard hash>/{train,val,test}/NNNNNN.tar   WebDataset tars (Ray read_webdataset, webdataset, HF)
    OUT/shards/<shard hash>/part-all.parquet                   the manifest table (pyarrow, pandas, DuckDB, Ray)

A standalone shard root (write_shards into a plain folder, `dymesh aam import`) is the same without the hash level:
ROOT/webdataset/<split>/NNNNNN.tar and ROOT/shards/part-all.parquet. `find_layout` turns whatever a user passes
(a job output folder, a standalone root, or either folder of a set) into the pair; `resolve_shards` is the
training side of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from stages.storage import filesystem, join

TARS = "webdataset"  # folder of the tars (not a table: pipeline.supersede sets it aside with the shard stage's hash)
INDEX = "shards"  # folder of the manifest: the `shards` table (schemas.tables.SHARDS)
INDEX_FILE = "part-all.parquet"


@dataclass(frozen=True)
class ShardLayout:
    """One shard set: `tars` (manifest shard names are relative to it) and `index` (holds INDEX_FILE)."""

    tars: str
    index: str

    @property
    def manifest(self) -> str:
        return join(self.index, INDEX_FILE)

    def shard(self, name: str) -> str:
        """URL of a shard named as in the manifest ("train/000000.tar")."""
        return join(self.tars, name)


def layout_of(root: str, stage_hash: str = "") -> ShardLayout:
    """The shard set of a job folder's shard-stage hash, or of a standalone shard root (no hash)."""
    root = str(root).rstrip("/") or "/"
    parts = (stage_hash,) if stage_hash else ()
    return ShardLayout(join(root, TARS, *parts), join(root, INDEX, *parts))


def _exists(path: str) -> bool:
    from pyarrow import fs as pafs

    fs, local = filesystem(path)
    return fs.get_file_info(local).type != pafs.FileType.NotFound


def find_layout(path: str) -> ShardLayout:
    """The shard set `path` names: a job output folder (its current shards, from job.json), a standalone shard
    root, or `.../webdataset/<hash>` / `.../shards/<hash>` (either half of a set); raises FileNotFoundError."""
    from schemas.job_record import JOB_FILE, JobRecordError, parse_job_record

    path = str(path).rstrip("/") or "/"
    fs, local = filesystem(path)
    try:
        with fs.open_input_stream(join(local, JOB_FILE)) as stream:
            record = parse_job_record(stream.read(), join(path, JOB_FILE))
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        record = None
    except JobRecordError as exc:
        raise FileNotFoundError(str(exc)) from None
    if record is not None:
        layout = layout_of(path, record.hashes.shard)
        if not _exists(layout.manifest):
            raise FileNotFoundError(f"{path}: its current shards ({layout.tars}) are not written yet; "
                                    "run the job to the end (dymesh run)")
        return layout
    if _exists(layout_of(path).manifest):
        return layout_of(path)
    parent, _, name = path.rpartition("/")
    grand, _, folder = parent.rpartition("/")
    if folder in (TARS, INDEX) and name:
        return layout_of(grand or "/", name)
    if name in (TARS, INDEX):
        return layout_of(parent or "/")
    raise FileNotFoundError(f"no shards at {path}: give a job output folder (out/demo), a shard folder "
                            f"(OUT/{TARS}/<hash>) or .tar URLs")


def resolve_shards(value: str) -> str:
    """The tar folder a training job's `shards:` names (a job output folder means its current shards);
    `synthetic:<clips>` and .tar URLs are returned as they are. Raises FileNotFoundError saying what to do."""
    if value.startswith("synthetic:") or value.endswith(".tar"):
        return value
    layout = find_layout(value)
    if not _exists(layout.manifest):
        raise FileNotFoundError(f"no shard manifest at {layout.manifest}; write the shards first (dymesh run)")
    return layout.tars
