"""Planning a run: harvest every source (committed per source), group provenances into assets, cut the sorted asset
ids into units of work, and chain the stage config hashes (each including its upstream's) that name the partitions.

The upstream of `evaluate` is a digest of the provenance and the unit size, so new inputs or another unit size make
new partitions while an unchanged harvest re-uses every committed one. Each stage's hash also covers the versions of
the tables it writes (a schema change makes new partitions) and resample's covers the `split:` section (clips carry
their split). Partitions of hashes the plan does not name are set aside (pipeline.supersede).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from pipeline.commit import UnitOutcome, commit
from pipeline.config import JobSpec, as_plain, config_hash
from pipeline.manifest import Manifest, checked_table, read_table, write_if_changed
from pipeline.progress import Progress
from pipeline.retry import RetryPolicy, carry_attempts, previous_harvest
from pipeline.supersede import restore, settle
from schemas.job_record import JobRecord, StageHashes, job_record_bytes
from schemas.sample import SAMPLE_FORMAT_VERSION
from schemas.tables import PROVENANCE, stage_tables


@dataclass(frozen=True)
class Asset:
    """One unique asset (its bytes' sha256) with every provenance, sorted by uri."""

    sources: list[dict]  # schemas.tables.SOURCE mappings
    bytes: int
    format: str
    blob: str  # path of the stored bytes relative to the job output
    kind: str = ""  # source kind of the first source
    name: str = ""
    tags: list[str] = field(default_factory=list)
    license: str = ""
    attribution: str = ""

    def source_text(self) -> str:
        """Where it came from, for messages: the first uri (+ how many more)."""
        uris = [s["uri"] for s in self.sources]
        return uris[0] + (f" (+{len(uris) - 1} more)" if len(uris) > 1 else "")


@dataclass
class Plan:
    """The harvested assets and how they are cut into units."""

    assets: dict[str, Asset]
    units: dict[str, list[str]]  # unit id -> sorted asset ids
    hashes: StageHashes
    harvest_counts: list[dict] = field(default_factory=list)


def group_assets(provenance: list[dict]) -> dict[str, Asset]:
    """One Asset per asset id with every provenance, sorted by uri (licence/name/tags from the first that has one)."""
    grouped: dict[str, list[dict]] = {}
    for row in sorted(provenance, key=lambda r: (r["asset_id"], r["uri"])):
        grouped.setdefault(row["asset_id"], []).append(row)
    assets = {}
    for asset_id, rows in grouped.items():
        first = rows[0]
        pick = {key: next((r[key] for r in rows if r[key]), "") for key in ("name", "license", "attribution")}
        tags = next((list(r["tags"]) for r in rows if r["tags"]), [])
        sources = [{"kind": r["source_kind"], **{k: r[k] for k in ("uri", "name", "license", "attribution")}}
                   for r in rows]
        assets[asset_id] = Asset(sources, first["file_bytes"], first["file_format"], first["blob_path"],
                                 kind=first["source_kind"], tags=tags, **pick)
    return assets


def asset_row(asset_id: str, asset: Asset, stats) -> dict:
    """A schemas.tables.ASSETS row from an asset and its evaluation counts (pipeline.tasks.AssetStats)."""
    return {"asset_id": asset_id, "source_kind": asset.kind, "name": asset.name, "tags": list(asset.tags),
            "license": asset.license, "attribution": asset.attribution, "sources": asset.sources,
            "file_bytes": asset.bytes, "file_format": asset.format, "blob_path": asset.blob,
            "animation_count": stats.animations, "evaluated_vertices": stats.vertices, "evaluated_faces": stats.faces}


def digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def upstream_digest(provenance: list[dict], unit_size: int) -> str:
    """What evaluate's outputs depend on besides its config: every provenance and how assets are cut into units."""
    return digest({"provenance": [[r["asset_id"], r["uri"], r["name"], r["license"], r["attribution"]]
                                  for r in sorted(provenance, key=lambda r: (r["asset_id"], r["uri"]))],
                   "unit_size": unit_size})


def stage_config(job: JobSpec, stage: str) -> dict:
    """What a stage's hash covers besides its upstream: its config, the versions of the tables it writes, and for
    resample the split settings (every clip row carries its split), for shard the sample format, for evaluate the
    version of the Blender conversion."""
    config = {"config": getattr(job, stage), "tables": stage_tables(stage)}
    if stage == "evaluate":
        from stages.formats.blender import CONVERSION_VERSION

        config["blender_conversion"] = CONVERSION_VERSION
    if stage == "resample":
        config["split"] = job.split
    if stage == "shard":
        config["sample_format"] = SAMPLE_FORMAT_VERSION
    return config


def harvest_hash(job: JobSpec, source) -> str:
    return config_hash("harvest", {"source": source, "harvest": job.harvest, "tables": stage_tables("harvest")})


def chain_hashes(job: JobSpec, evaluate_upstream: str) -> dict[str, str]:
    """The config hashes of evaluate, resample, caption and shard, each covering its upstream's."""
    hashes, upstream = {}, evaluate_upstream
    for stage in ("evaluate", "resample", "caption", "shard"):
        upstream = hashes[stage] = config_hash(stage, stage_config(job, stage), upstream)
    return hashes


def harvest(job: JobSpec, manifest: Manifest, stream, show_progress: bool,
            policy: RetryPolicy = RetryPolicy()) -> tuple[list[dict], list[str], list]:
    """Harvest every source not yet committed (one unit per source), and again the inputs of a committed one that
    `policy` retries; returns (provenance rows, harvest hashes, per-source markers). A source harvested before and
    set aside since is restored first, not fetched again."""
    from stages.harvest import BlobStore, harvest_source

    store = BlobStore(manifest.out)
    provenance: list[dict] = []
    hashes = [harvest_hash(job, source) for source in job.sources]
    restore(manifest.out, {"harvest": hashes})
    markers = []
    for index, (source, h) in enumerate(zip(job.sources, hashes)):
        path = manifest.partition("provenance", h, "source")
        marker = manifest.read_marker("harvest", h, "source")
        if marker is None or policy.reopens(marker):
            previous, earlier = previous_harvest(manifest, path, h, policy) if marker else ({}, {})
            progress = Progress(f"harvest {source.kind}", 0, "files", stream, enabled=show_progress)
            rows, errors = harvest_source(source, job.harvest, job.base_dir, store, progress, previous)
            errors = carry_attempts(errors, earlier)
            progress.close()
            table, bad = checked_table(sorted(rows, key=lambda r: r["uri"]), PROVENANCE, "harvest", key="uri")
            errors += bad  # a row that cannot be stored is that input's failure
            ok = {r["uri"] for r in rows} - {e["unit_id"] for e in bad}
            commit(manifest, "harvest", h, "source", UnitOutcome(
                seen=sorted(ok | {e["unit_id"] for e in errors}), ok=ok, errors=errors, outputs={path: table},
                counts={"source": index, "kind": source.kind}))
        provenance.extend(read_table(path).to_pylist())
        markers.append(manifest.read_marker("harvest", h, "source"))
    return provenance, hashes, markers


def plan_run(job: JobSpec, manifest: Manifest, stream, show_progress: bool = True,
             policy: RetryPolicy = RetryPolicy()) -> Plan:
    """Harvest, then the units and stage hashes of this run; records them in OUT/job.json."""
    provenance, harvest_hashes, markers = harvest(job, manifest, stream, show_progress, policy)
    assets = group_assets(provenance)
    ids = sorted(assets)
    size = job.run.unit_size
    units = {f"{i // size:05d}": ids[i : i + size] for i in range(0, len(ids), size)}
    hashes = StageHashes(tuple(harvest_hashes), **chain_hashes(job, upstream_digest(provenance, size)))
    configs = {**{k: as_plain(v) for k, v in job.stage_configs().items()}, "split": as_plain(job.split)}
    record = JobRecord(name=job.name, sources=as_plain(job.sources), config=configs, run=as_plain(job.run),
                       hashes=hashes, units=len(units), assets=len(assets))
    write_if_changed(manifest.job_file(), job_record_bytes(record))
    settle(manifest.out, hashes.all())  # after job.json: `dymesh stats` reads the hashes it names
    return Plan(assets, units, hashes, markers)
