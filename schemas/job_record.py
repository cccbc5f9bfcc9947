"""`OUT/job.json`: the resolved job spec and every stage hash of the last run into a job folder.

Written by the runner when it plans a run; read by `dymesh status` and `dymesh stats` (which reads only the
partitions of the hashes named here). The stage hashes become folder names, so parsing refuses anything else.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass

JOB_FILE = "job.json"
PATH_NAME = re.compile(r"[A-Za-z0-9_-]+")


class JobRecordError(ValueError):
    """job.json is not valid JSON or names hashes that are not plain folder names."""


@dataclass(frozen=True)
class StageHashes:
    """Config hash of each stage (each includes its upstream's): names the stage's partition folders."""

    harvest: tuple[str, ...]  # one per source
    evaluate: str
    resample: str
    caption: str
    shard: str

    def of(self, stage: str) -> str:
        return getattr(self, stage)

    def all(self) -> dict[str, list[str]]:
        """{stage: [hashes]} (harvest has one per source)."""
        return {stage: list(value) if isinstance(value, tuple) else [value] for stage, value in asdict(self).items()}


@dataclass(frozen=True)
class JobRecord:
    name: str
    sources: list  # each source as a plain mapping
    config: dict  # stage -> its config as a plain mapping
    run: dict
    hashes: StageHashes
    units: int
    assets: int


def job_record_bytes(record: JobRecord) -> bytes:
    """The bytes of job.json (sorted keys: the same record gives the same bytes)."""
    value = asdict(record)
    value["hashes"] = {**value["hashes"], "harvest": list(record.hashes.harvest)}
    return (json.dumps(value, sort_keys=True, indent=1) + "\n").encode()


def parse_job_record(data: bytes, where: str = JOB_FILE) -> JobRecord:
    """A JobRecord from job.json bytes; raises JobRecordError saying what to do."""
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise JobRecordError(f"{where} is not valid JSON ({exc}); re-run the job or remove the file") from None
    hashes = value.get("hashes") if isinstance(value, dict) else None
    fields = ("harvest", "evaluate", "resample", "caption", "shard")
    if not isinstance(hashes, dict) or set(hashes) != set(fields) or not isinstance(hashes["harvest"], list):
        raise JobRecordError(f"{where} has no stage hashes ({', '.join(fields)}); re-run the job")
    names = [*hashes["harvest"], *(hashes[f] for f in fields[1:])]
    if not all(isinstance(name, str) and PATH_NAME.fullmatch(name) for name in names):
        raise JobRecordError(f"{where} names stage hashes that are not plain folder names; re-run the job")
    hashes = StageHashes(tuple(hashes["harvest"]), *(hashes[f] for f in fields[1:]))
    return JobRecord(name=str(value.get("name", "")), sources=list(value.get("sources") or []),
                     config=dict(value.get("config") or {}), run=dict(value.get("run") or {}), hashes=hashes,
                     units=int(value.get("units") or 0), assets=int(value.get("assets") or 0))
