"""`dymesh gc OUT`: delete what a job folder no longer uses -- every superseded stage-hash folder
(OUT/superseded/, see pipeline.supersede) and the harvested blobs that no current provenance row names.

Deletion order keeps a kill harmless: a superseded group's markers go before its data (a restored marker always
has its files), and blobs only after every superseded provenance partition is gone. Blobs are kept whenever the
current run's provenance partitions are not all there (an unfinished harvest, an older job folder layout).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.supersede import SUPERSEDED, hash_folders

BLOBS = "blobs"


@dataclass
class Garbage:
    """What `dymesh gc` would delete: (path relative to OUT, bytes) of folders and blobs, and why blobs are kept."""

    folders: list[tuple[str, int]] = field(default_factory=list)
    blobs: list[tuple[str, int]] = field(default_factory=list)
    note: str = ""

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self.folders + self.blobs)


def folder_bytes(path: Path) -> int:
    total = 0
    for folder, _, files in os.walk(path):
        total += sum(os.lstat(os.path.join(folder, name)).st_size for name in files)
    return total


def referenced_blobs(out: Path) -> set[str] | None:
    """blob_path of every current provenance row (harvest hashes of OUT/job.json); None when any is missing."""
    from pipeline.manifest import Manifest, read_table
    from schemas.job_record import JobRecordError, parse_job_record

    manifest = Manifest(out)
    try:
        record = parse_job_record(manifest.job_file().read_bytes())
    except (OSError, JobRecordError):
        return None
    paths = [manifest.partition("provenance", h, "source") for h in record.hashes.harvest]
    if not all(p.is_file() for p in paths):
        return None
    return {b for p in paths for b in read_table(p, columns=["blob_path"]).column("blob_path").to_pylist()}


def find_garbage(out: str | Path) -> Garbage:
    """Everything `dymesh gc` deletes, with sizes (nothing is touched)."""
    out = Path(out)
    aside = out / SUPERSEDED
    garbage = Garbage()
    garbage.folders = [(f"{SUPERSEDED}/{f.relative}", folder_bytes(aside / f.relative)) for f in hash_folders(aside)]
    referenced = referenced_blobs(out)
    if referenced is None:
        garbage.note = "blobs kept: OUT/job.json does not name a finished harvest (re-run the job, then gc)"
        return garbage
    for folder, _, files in sorted(os.walk(out / BLOBS)):
        for name in sorted(files):
            relative = Path(folder, name).relative_to(out).as_posix()
            if relative not in referenced and not name.startswith("."):
                garbage.blobs.append((relative, os.lstat(out / relative).st_size))
    return garbage


def collect(out: str | Path, garbage: Garbage) -> None:
    """Delete `garbage` (from find_garbage): superseded markers first, then their data, then blobs."""
    out = Path(out)
    folders = sorted(garbage.folders, key=lambda f: (not f[0].startswith(f"{SUPERSEDED}/markers/"), f[0]))
    for relative, _ in folders:
        shutil.rmtree(out / relative, ignore_errors=True)
    for relative, _ in garbage.blobs:
        (out / relative).unlink(missing_ok=True)
    for folder, _, _ in sorted(os.walk(out / SUPERSEDED), reverse=True):  # empty folders left behind
        if not os.listdir(folder):
            os.rmdir(folder)
