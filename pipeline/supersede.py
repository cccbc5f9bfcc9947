"""Superseded partitions: a user's own glob over OUT/<table>/ reads exactly the current run's rows.

A run's plan names one config hash per stage. Every stage-hash folder in the job folder that the plan does not
name -- its table partitions `<table>/<hash>/`, the tars `webdataset/<hash>/`, `errors/<stage>/<hash>/` and
`markers/<stage>/<hash>/` -- is renamed
to the same path under OUT/superseded/, and a superseded folder whose hash is current again is renamed back (so
switching a config back costs nothing). `dymesh gc OUT` deletes what is superseded (pipeline.gc). Both move or
delete only while holding the job folder's lock (pipeline.lock): the runner's plan runs under it, gc takes it.

Only renames, in an order that keeps "a marker in place means its unit's files are in place" true after a kill
between any two of them: setting a group aside moves its markers first, then its data; restoring moves its data
first, then its markers. A rename into a folder that already exists (the two halves of a group split by a kill)
merges file by file; files of one stage hash are the same bytes wherever they were written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import STAGES
from schemas.tables import TABLE_STAGES
from stages.shard.layout import TARS

SUPERSEDED = "superseded"
# table folders of earlier layouts, set aside like any other superseded partition (the provenance table was
# OUT/harvest/<hash>/ before schema version 2)
LEGACY_TABLE_STAGES = {"harvest": "harvest"}
LEGACY = tuple(f"{table}/" for table in LEGACY_TABLE_STAGES)  # never restored: always set aside
# stage-hash folders that are not tables: the shard stage's tars (OUT/webdataset/<hash>/, beside its manifest table)
DATA_FOLDERS = {TARS: "shard"}


@dataclass(frozen=True)
class HashFolder:
    """One folder that holds one stage hash's files: `<table>/<hash>`, `errors/<stage>/<hash>` or
    `markers/<stage>/<hash>` (relative to the job folder or to OUT/superseded)."""

    relative: str
    stage: str
    hash: str

    @property
    def is_marker(self) -> bool:
        return self.relative.startswith("markers/")


def hash_folders(root: Path) -> list[HashFolder]:
    """Every stage-hash folder under `root` (a job folder or its superseded/ folder); temp folders left out."""
    parents = [(table, stage) for table, stage in {**TABLE_STAGES, **LEGACY_TABLE_STAGES, **DATA_FOLDERS}.items()]
    parents += [(f"{kind}/{stage}", stage) for kind in ("errors", "markers") for stage in STAGES]
    found = []
    for parent, stage in parents:
        folder = root / parent
        if not folder.is_dir():
            continue
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if entry.is_dir(follow_symlinks=False) and not entry.name.startswith((".", "_")):
                found.append(HashFolder(f"{parent}/{entry.name}", stage, entry.name))
    return found


def move(source: Path, target: Path) -> None:
    """Rename folder `source` to `target`; into an existing `target`, file by file (then `source` is removed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(source, target)
        return
    except OSError:
        if not target.is_dir():
            raise
    for entry in sorted(os.scandir(source), key=lambda e: e.name):
        destination = target / entry.name
        if entry.is_dir(follow_symlinks=False) and destination.is_dir():
            move(Path(entry.path), destination)
        else:
            os.replace(entry.path, destination)
    os.rmdir(source)


def _ordered(folders: list[HashFolder], markers_first: bool) -> list[HashFolder]:
    return sorted(folders, key=lambda f: (f.is_marker != markers_first, f.relative))


def restore(out: Path, current: dict[str, list[str]]) -> list[str]:
    """Move back every superseded folder of a current stage hash ({stage: [hashes]}); returns their paths."""
    aside = Path(out) / SUPERSEDED
    wanted = [f for f in hash_folders(aside) if f.hash in current.get(f.stage, ()) and not f.relative.startswith(LEGACY)]
    for folder in _ordered(wanted, markers_first=False):  # data first, markers last
        move(aside / folder.relative, Path(out) / folder.relative)
    return [f.relative for f in wanted]


def set_aside(out: Path, current: dict[str, list[str]]) -> list[str]:
    """Move every stage-hash folder that `current` does not name under OUT/superseded/; returns their paths."""
    out = Path(out)
    stale = [f for f in hash_folders(out) if f.hash not in current.get(f.stage, ()) or f.relative.startswith(LEGACY)]
    for folder in _ordered(stale, markers_first=True):  # markers first, data after
        move(out / folder.relative, out / SUPERSEDED / folder.relative)
    for table in LEGACY_TABLE_STAGES:  # an emptied folder of an earlier layout goes too
        if (out / table).is_dir() and not any((out / table).iterdir()):
            (out / table).rmdir()
    return [f.relative for f in stale]


def settle(out: Path, current: dict[str, list[str]]) -> tuple[list[str], list[str]]:
    """Restore the current stage hashes' superseded folders, then set every other one aside."""
    return restore(out, current), set_aside(out, current)
