"""Runs a job: harvest (driver) -> evaluate+resample (one Ray task per asset) -> caption (Ray Data) -> shard.

Units of work are batches of sorted asset ids; each stage commits a unit atomically (Parquet written to a temp
name, renamed, then a completion marker with the unit's counts), so a killed run resumes where it stopped and a
finished one does nothing. Stage config hashes (each including its upstream hash) name the output partitions.

Why Ray tasks and not `Dataset.map_batches` for evaluate+resample: Ray Data has no per-item time limit, and a
pathological asset must be killed (`ray.cancel(force=True)`) and recorded without losing its batch (see
https://github.com/ray-project/ray/issues/45661). Each task asks for a `memory` resource that grows with the
asset's size, so big assets get fewer concurrent slots.

Captions run on Ray Data alongside evaluation: with the first committed clip unit (at once on a resume with
committed clips waiting) a dataset of every pending caption unit (in unit order) starts in a background thread,
`map_batches` with an actor pool of `CaptionUnits` (the model loads once per actor); each call waits until its unit's
clips are committed (polling the driver-side `PartitionReader`), then captions them. The thread streams results back with `iter_rows` and commits each unit as its row arrives (caption
rows sorted, so the bytes do not depend on arrival order), while the main thread keeps dispatching evaluate tasks.
A failure on either side stops the other: an evaluation error sets the reader's stop flag (waiting actors return at
once, nothing is committed for them); a caption error is raised in the main thread, which stops dispatching.
Evaluate tasks never wait on the caption actors, and the default worker count leaves the actors' CPUs free.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.accounting import account, by_unit, merge
from pipeline.config import JobSpec, as_plain, config_hash
from pipeline.manifest import Manifest, atomic_write_json, atomic_write_table, read_table, table_from_rows
from pipeline.progress import Progress
from schemas.tables import error_row

MiB = 1024 * 1024


class StalledError(RuntimeError):
    """Nothing finished for run.stall_timeout_s."""


class CaptionWorkerError(RuntimeError):
    """The caption actors keep dying: a setup problem (backend, model, GPU), not a problem of the clips."""


@dataclass
class Hashes:
    harvest: dict[int, str]
    evaluate: str
    resample: str
    caption: str
    shard: str

    def of(self, stage: str) -> str:
        return getattr(self, stage)


@dataclass
class Plan:
    """The harvested assets and how they are cut into units."""

    assets: dict[str, dict]  # asset_id -> {"sources": [...], "bytes", "format", "blob", "name", "tags", ...}
    units: dict[str, list[str]]  # unit id -> sorted asset ids
    hashes: Hashes
    harvest_counts: list[dict] = field(default_factory=list)


def group_assets(provenance: list[dict]) -> dict[str, dict]:
    """One entry per asset id with every provenance, sorted by uri (licence/name from the first that has one)."""
    assets: dict[str, dict] = {}
    for row in sorted(provenance, key=lambda r: (r["asset_id"], r["uri"])):
        asset = assets.setdefault(row["asset_id"], {"sources": [], "bytes": row["bytes"], "format": row["format"],
                                                    "blob": row["blob"], "name": "", "tags": [], "license": "",
                                                    "attribution": ""})
        asset["sources"].append({k: row[k] for k in ("kind", "uri", "name", "license", "attribution")})
        for key in ("name", "license", "attribution"):
            asset[key] = asset[key] or row[key]
        asset["tags"] = asset["tags"] or list(row["tags"] or [])
    return assets


def source_text(asset: dict) -> str:
    uris = [s["uri"] for s in asset["sources"]]
    return uris[0] + (f" (+{len(uris) - 1} more)" if len(uris) > 1 else "")


def asset_row(asset_id: str, asset: dict, stats: dict) -> dict:
    """A schemas.tables.ASSETS row."""
    return {"asset_id": asset_id, "sources": asset["sources"], "license": asset["license"],
            "attribution": asset["attribution"], "bytes": asset["bytes"], "format": asset["format"],
            "blob": asset["blob"], "animations": stats["animations"], "vertices": stats["vertices"],
            "faces": stats["faces"]}


def digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


class Runner:
    """One job run into one output folder."""

    def __init__(self, job: JobSpec, out: str | Path, address: str | None = None, stream=None,
                 show_progress: bool = True):
        self.job = job
        self.manifest = Manifest(out)
        self.out = self.manifest.out
        self.address = address or os.environ.get("RAY_ADDRESS") or job.run.address
        self.stream = stream or sys.stderr
        self.show_progress = show_progress
        # seconds inside the stage functions (summed over workers) and wall seconds of each driver phase,
        # for benchmarks/pipeline.py's overhead measurement
        self.stage_seconds: Counter = Counter()
        self.phase_seconds: Counter = Counter()
        self.lock = threading.Lock()  # commits, counters and progress lines of the evaluate and caption threads

    # ---- harvest ------------------------------------------------------------------------------------------
    def harvest(self) -> Plan:
        from schemas.tables import ERRORS
        from stages.harvest import PROVENANCE, BlobStore, harvest_source

        store = BlobStore(self.out)
        provenance: list[dict] = []
        hashes: dict[int, str] = {}
        counts = []
        for index, source in enumerate(self.job.sources):
            h = config_hash("harvest", {"source": source, "harvest": self.job.harvest})
            hashes[index] = h
            path = self.manifest.partition("harvest", h, "source")
            if not self.manifest.is_done("harvest", h, "source"):
                progress = Progress(f"harvest {source.kind}", 0, "files", self.stream, enabled=self.show_progress)
                rows, errors = harvest_source(source, self.job.harvest, self.job.base_dir, store, progress)
                progress.close()
                ok_uris = {r["uri"] for r in rows}
                seen = sorted(ok_uris | {e["unit_id"] for e in errors})
                stage_counts, extra = account("harvest", seen, ok_uris, by_unit(errors))
                atomic_write_table(path, table_from_rows(sorted(rows, key=lambda r: r["uri"]), PROVENANCE))
                atomic_write_table(self.manifest.errors("harvest", h, "source"), table_from_rows(errors + extra, ERRORS))
                self.manifest.commit("harvest", h, "source", dict(stage_counts, source=index, kind=source.kind))
            provenance.extend(read_table(path).to_pylist())
            counts.append(self.manifest.read_marker("harvest", h, "source"))
        assets = group_assets(provenance)
        ids = sorted(assets)
        size = self.job.run.unit_size
        units = {f"{i // size:05d}": ids[i : i + size] for i in range(0, len(ids), size)}
        upstream = digest({"provenance": [[r["asset_id"], r["uri"], r["name"], r["license"], r["attribution"]]
                                          for r in sorted(provenance, key=lambda r: (r["asset_id"], r["uri"]))],
                           "unit_size": size})
        evaluate = config_hash("evaluate", self.job.evaluate, upstream)
        resample = config_hash("resample", self.job.resample, evaluate)
        caption = config_hash("caption", self.job.caption, resample)
        shard = config_hash("shard", self.job.shard, caption)
        plan = Plan(assets, units, Hashes(hashes, evaluate, resample, caption, shard), counts)
        atomic_write_json(self.manifest.job_file(), {
            "name": self.job.name, "sources": as_plain(self.job.sources),
            "config": {k: as_plain(v) for k, v in self.job.stage_configs().items()},
            "run": as_plain(self.job.run),
            "hashes": {"harvest": [hashes[i] for i in sorted(hashes)], "evaluate": evaluate, "resample": resample,
                       "caption": caption, "shard": shard},
            "units": len(units), "assets": len(assets),
        })
        return plan

    # ---- what is left ---------------------------------------------------------------------------------------
    def pending(self, plan: Plan) -> dict[str, list[str]]:
        h = plan.hashes
        done = {s: set(self.manifest.markers(s, h.of(s))) for s in ("evaluate", "resample", "caption")}
        return {
            "clips": [u for u in plan.units if u not in done["resample"] or u not in done["evaluate"]],
            "caption": [u for u in plan.units if u not in done["caption"]],
            "shard": [] if self.manifest.is_done("shard", h.shard, "all") else ["all"],
        }

    # ---- commits ---------------------------------------------------------------------------------------------
    def commit_clips(self, plan: Plan, unit: str, results: dict[str, dict]):
        """Write one unit's assets, clips and errors, then its evaluate and resample markers; returns the clips."""
        import pyarrow as pa

        from schemas.tables import ASSETS, CLIPS, ERRORS

        h, m = plan.hashes, self.manifest
        ids = plan.units[unit]
        sources = {a: source_text(plan.assets[a]) for a in ids}
        evaluate_errors = {a: results[a]["evaluate_errors"] for a in ids}
        evaluated = [a for a in ids if not evaluate_errors[a]]
        counts, extra = account("evaluate", ids, set(evaluated), evaluate_errors, sources)
        if not m.is_done("evaluate", h.evaluate, unit):
            assets = [asset_row(a, plan.assets[a], results[a]["stats"]) for a in ids]
            atomic_write_table(m.partition("assets", h.evaluate, unit), table_from_rows(assets, ASSETS))
            rows = [r for a in ids for r in evaluate_errors[a]] + extra
            atomic_write_table(m.errors("evaluate", h.evaluate, unit), table_from_rows(rows, ERRORS))
            m.commit("evaluate", h.evaluate, unit, counts)
        tables = [results[a]["clips"] for a in evaluated if results[a]["clips"] is not None]
        clips = pa.concat_tables(tables).combine_chunks() if tables else CLIPS.empty_table()
        clips = clips.sort_by("clip_id")
        with_clips = {a for a in evaluated if results[a]["clips"] is not None and results[a]["clips"].num_rows}
        resample_errors = {a: results[a]["resample_errors"] for a in evaluated}
        counts, extra = account("resample", evaluated, with_clips, resample_errors, sources)
        counts["clips"] = clips.num_rows
        atomic_write_table(m.partition("clips", h.resample, unit), clips)
        rows = [r for a in evaluated for r in resample_errors[a]] + extra
        atomic_write_table(m.errors("resample", h.resample, unit), table_from_rows(rows, ERRORS))
        m.commit("resample", h.resample, unit, counts)
        return clips

    def commit_captions(self, plan: Plan, unit: str, clip_ids: list[str], result: dict) -> None:
        from schemas.tables import CAPTIONS, ERRORS

        h, m = plan.hashes, self.manifest
        rows = sorted(result["rows"], key=lambda r: (r["clip_id"], r["caption_index"], r["backend"]))
        if not self.job.run.record_timings:
            rows = [dict(r, seconds=0.0) for r in rows]
        counts, extra = account("caption", clip_ids, {r["clip_id"] for r in rows}, by_unit(result["errors"]))
        counts["captions"] = len(rows)
        atomic_write_table(m.partition("captions", h.caption, unit), table_from_rows(rows, CAPTIONS))
        errors = sorted(result["errors"], key=lambda r: r["unit_id"]) + extra
        atomic_write_table(m.errors("caption", h.caption, unit), table_from_rows(errors, ERRORS))
        m.commit("caption", h.caption, unit, counts)

    def write_shards(self, plan: Plan) -> None:
        """All clips, sorted by clip id (units are ranges of sorted asset ids), into deterministic shards."""
        from schemas.tables import ERRORS
        from stages.shard import write_shards
        from stages.shard.sample import sample_key

        from pipeline.tasks import clips_of_table

        h, m = plan.hashes, self.manifest
        units = sorted(plan.units)
        captions: dict[str, list[dict]] = {}
        for unit in units:
            for row in read_table(m.partition("captions", h.caption, unit)).to_pylist():
                captions.setdefault(row["clip_id"], []).append(row)
        assets = {r["asset_id"]: r for u in units for r in read_table(m.partition("assets", h.evaluate, u)).to_pylist()}
        clip_ids: list[str] = []

        def clips():
            for unit in units:
                table = read_table(m.partition("clips", h.resample, unit))
                for clip in clips_of_table(table):
                    clip_ids.append(clip.clip_id)
                    yield clip

        final = m.shards_dir(h.shard)
        tmp = final.with_name(f".tmp-{final.name}")
        for folder in (final, tmp):
            shutil.rmtree(folder, ignore_errors=True)
        start = time.perf_counter()
        rows, errors = write_shards(clips(), captions, assets, str(tmp), self.job.shard)
        self.stage_seconds["shard"] += time.perf_counter() - start
        os.replace(tmp, final)
        by_key = {sample_key(c): c for c in clip_ids}
        ok = {by_key[r["key"]] for r in rows if r["key"] in by_key}
        counts, extra = account("shard", clip_ids, ok, by_unit(errors))
        counts["shards"] = len({r["shard"] for r in rows})
        counts["samples"] = len(rows)
        atomic_write_table(m.errors("shard", h.shard, "all"), table_from_rows(errors + extra, ERRORS))
        m.commit("shard", h.shard, "all", counts)

    # ---- the run ---------------------------------------------------------------------------------------------
    def run(self) -> dict:
        self.manifest.clean_temp()
        start = time.perf_counter()
        plan = self.harvest()
        self.phase_seconds["harvest"] = time.perf_counter() - start
        todo = self.pending(plan)
        if not any(todo.values()):
            print("nothing to do: every unit of this job is already committed in " f"{self.out}", file=self.stream)
            return self.summary(plan)
        if todo["clips"] or todo["caption"]:
            with ray_session(self.job, self.address) as ray:
                start = time.perf_counter()
                self.run_units(ray, plan, todo)
                self.phase_seconds["units"] = time.perf_counter() - start
        if self.pending(plan)["shard"]:
            if self.show_progress:
                print("shard: writing shards ...", file=self.stream)
            start = time.perf_counter()
            self.write_shards(plan)
            self.phase_seconds["shard"] = time.perf_counter() - start
        return self.summary(plan)

    def run_units(self, ray, plan: Plan, todo: dict[str, list[str]]) -> None:
        """Caption the pending caption units (Ray Data, background thread) while evaluate+resample tasks run."""
        captions = CaptionStream(self, plan, todo["caption"], bool(todo["clips"])) if todo["caption"] else None
        failed = True
        try:
            # captions start with the first committed clip unit (run_clip_units), so the actors' start-up does not
            # compete with the first evaluate tasks' (whose item timeout is running); at once if there is work now
            if captions and (not todo["clips"] or set(todo["caption"]) - set(todo["clips"])):
                captions.start()
            if todo["clips"]:
                self.run_clip_units(ray, plan, todo["clips"], captions)
            failed = False
        finally:
            if captions:
                captions.finish(stop=failed)
        if captions and captions.error:
            raise captions.error

    def run_clip_units(self, ray, plan: Plan, clip_units: list[str], captions: CaptionStream | None = None) -> None:
        from pipeline.tasks import clips_for_asset

        job = self.job
        resources = ray.cluster_resources()
        # by default leave the caption actors' CPUs free: a submitted task then starts at once (its item timeout
        # counts from submission) and the actors are never starved of CPUs by evaluate tasks
        reserved = job.run.caption_actors * job.run.caption_num_cpus if captions else 0.0
        cpus = int(resources.get("CPU", 1) - reserved + 1e-9)
        workers = job.run.workers or max(1, cpus)
        # a task must fit on one node: cap memory requests by the largest node's memory resource
        node_memory = max((n["Resources"].get("memory", 0) for n in ray.nodes() if n.get("Alive")), default=0)
        node_memory = node_memory or 64 * 1024 * MiB
        limits_ref, resample_ref = ray.put(job.evaluate), ray.put(job.resample)
        asset_task = ray.remote(clips_for_asset)

        queue = [(u, a) for u in clip_units for a in plan.units[u]]
        results: dict[str, dict[str, dict]] = {u: {} for u in clip_units}
        running: dict = {}  # ref -> (unit, asset_id, started, attempt)
        progress = Progress("evaluate+resample", len(queue), "assets", self.stream, enabled=self.show_progress)
        clips_made = 0
        last_progress = time.monotonic()

        def memory_for(asset_id: str) -> int:
            wanted = job.run.memory_base_mb * MiB + job.run.memory_per_byte * plan.assets[asset_id]["bytes"]
            return int(min(wanted, job.run.memory_max_mb * MiB, node_memory))

        def submit(unit: str, asset_id: str, attempt: int = 1) -> None:
            asset = plan.assets[asset_id]
            data = (self.out / asset["blob"]).read_bytes()
            ref = asset_task.options(num_cpus=1, memory=memory_for(asset_id), max_retries=0).remote(
                asset_id, data, asset["format"], source_text(asset), limits_ref, resample_ref)
            running[ref] = (unit, asset_id, time.monotonic(), attempt)  # in flight <= workers: it starts now

        def failed(unit: str, asset_id: str, kind: str, message: str, attempt: int) -> dict:
            row = error_row("evaluate", asset_id, kind, message, source=source_text(plan.assets[asset_id]),
                            attempt=attempt)
            return {"asset_id": asset_id, "stats": {"animations": -1, "vertices": -1, "faces": -1},
                    "evaluate_errors": [row], "resample_errors": [], "clips": None, "stage_seconds": 0.0}

        def finish(unit: str, asset_id: str, result: dict) -> None:
            nonlocal clips_made
            with self.lock:
                self.stage_seconds["evaluate+resample"] += result["stage_seconds"]
                results[unit][asset_id] = result
                if len(results[unit]) == len(plan.units[unit]):
                    clips_made += self.commit_clips(plan, unit, results.pop(unit)).num_rows
                progress.update(1, f"clips {clips_made}")
            if captions and not captions.thread and unit not in results:
                captions.start()

        try:
            while queue or running:
                if captions and captions.error:
                    raise captions.error  # committed units are kept; the caller stops the caption thread
                while queue and len(running) < workers:
                    submit(*queue.pop(0))
                refs = list(running)
                ready, _ = ray.wait(refs, num_returns=1, timeout=1.0)
                ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0) if ready else (ready, None)
                now = time.monotonic()
                for ref in ready:
                    last_progress = now
                    unit, asset_id, _, attempt = running.pop(ref)
                    try:
                        result = ray.get(ref)
                    except (ray.exceptions.WorkerCrashedError, ray.exceptions.ObjectLostError,
                            ray.exceptions.NodeDiedError) as exc:
                        if attempt <= job.run.max_retries:
                            submit(unit, asset_id, attempt + 1)
                            continue
                        result = failed(unit, asset_id, "worker-crashed", f"{source_text(plan.assets[asset_id])}: "
                                        f"worker died {attempt} times ({type(exc).__name__})", attempt)
                    except ray.exceptions.OutOfMemoryError:
                        result = failed(unit, asset_id, "out-of-memory", f"{source_text(plan.assets[asset_id])}: "
                                        "killed by Ray's memory monitor; raise run.memory_per_byte", attempt)
                    except ray.exceptions.RayError as exc:
                        result = failed(unit, asset_id, "worker-error", " ".join(str(exc).split())[:500], attempt)
                    finish(unit, asset_id, result)
                for ref, (unit, asset_id, started, attempt) in list(running.items()):
                    if now - started > job.run.item_timeout_s:
                        ray.cancel(ref, force=True)
                        del running[ref]
                        finish(unit, asset_id, failed(unit, asset_id, "timeout", f"{source_text(plan.assets[asset_id])}: "
                               f"evaluate+resample ran over run.item_timeout_s={job.run.item_timeout_s:g}s and was "
                               "killed", attempt))
                        last_progress = now
                if now - last_progress > job.run.stall_timeout_s:
                    raise StalledError(f"nothing finished for {job.run.stall_timeout_s:g}s (run.stall_timeout_s); "
                                       "committed units are kept: re-run the same command to resume")
        finally:
            progress.close()

    # ---- summary ---------------------------------------------------------------------------------------------
    def summary(self, plan: Plan) -> dict:
        return job_summary(self.manifest, plan.hashes, plan.harvest_counts)


class CaptionStream:
    """The caption stage on Ray Data in a background thread: one dataset over every pending caption unit, each
    actor call waiting for its unit's clips; the thread commits each unit as its row arrives."""

    def __init__(self, runner: Runner, plan: Plan, units: list[str], clips_pending: bool):
        self.runner, self.plan, self.units = runner, plan, units
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None
        self.reader = None
        self.before: dict = {}
        self.clips_pending = clips_pending  # evaluate+resample runs beside the dataset
        self.last_commit = time.monotonic()

    def start(self) -> None:
        """Build the dataset and start consuming it in a thread."""
        import logging

        import ray
        import ray.data
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        runner, plan = self.runner, self.plan
        job, h, m = runner.job, plan.hashes, runner.manifest
        self.logger = logging.getLogger("ray.data")
        self.level = self.logger.level
        self.logger.setLevel(logging.ERROR)  # no per-dataset info lines; failures still raise below
        self.context = ray.data.DataContext.get_current()
        settings = {
            "enable_progress_bars": False,  # our own progress line below
            "print_on_execution_start": False,
            # -> ExecutionTimeoutError; off while actors may wait for clips (finish() watches for stalls then)
            "execution_no_progress_timeout_s": -1 if self.clips_pending else job.run.stall_timeout_s,
            "wait_for_min_actors_s": int(max(1, job.run.stall_timeout_s)),  # actors that never get resources
            "max_consecutive_actor_init_deaths": job.run.max_retries,  # a model that cannot load is fatal
        }
        self.before = {key: getattr(self.context, key) for key in settings}
        for key, value in settings.items():
            setattr(self.context, key, value)
        items = [{"unit": u, "clips": str(m.partition("clips", h.resample, u).resolve()),
                  "marker": str(m.marker("resample", h.resample, u).resolve()),
                  "assets": json.dumps({a: {"name": plan.assets[a]["name"], "tags": plan.assets[a]["tags"]}
                                        for a in plan.units[u]}, sort_keys=True)} for u in self.units]
        pool = max(1, min(job.run.caption_actors, len(self.units)))
        # only the driver's machine needs --out: the actors fetch each unit's clips through this reader
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        self.reader = ray.remote(PartitionReader).options(num_cpus=0, scheduling_strategy=here).remote()
        dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            CaptionUnits, fn_constructor_args=(job.caption, self.reader), batch_size=1, batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=pool), num_cpus=job.run.caption_num_cpus,
            num_gpus=job.run.caption_num_gpus)  # Ray Data restarts an actor that dies mid-task (max_restarts=-1)
        self.thread = threading.Thread(target=self.consume, args=(dataset,), name="dymesh-captions", daemon=True)
        self.thread.start()

    def consume(self, dataset) -> None:
        """Thread body: commit each caption unit as its row arrives; keep the first error for the main thread."""
        from ray.data.exceptions import ExecutionTimeoutError
        from ray.exceptions import GetTimeoutError, RayError

        runner, plan = self.runner, self.plan
        job, h, m = runner.job, plan.hashes, runner.manifest
        progress = Progress("caption", len(self.units), "units", runner.stream, enabled=runner.show_progress)
        captions = 0
        try:
            for row in dataset.iter_rows():
                if row["result"] == STOPPED:
                    continue  # the run is stopping: this unit's clips never came; nothing to commit
                result = json.loads(row["result"])
                unit = row["unit"]
                clip_ids = read_table(m.partition("clips", h.resample, unit), columns=["clip_id"])
                with runner.lock:
                    runner.stage_seconds["caption"] += result["stage_seconds"]
                    runner.commit_captions(plan, unit, clip_ids.column("clip_id").to_pylist(), result)
                    captions += len(result["rows"])
                    progress.update(1, f"captions {captions}")
                    self.last_commit = time.monotonic()
        except (RayError, ExecutionTimeoutError) as exc:
            if isinstance(exc, GetTimeoutError):  # from wait_for_min_actors_s
                self.error = StalledError(
                    f"the caption actors were not ready within {job.run.stall_timeout_s:g}s (run.stall_timeout_s): "
                    f"too few free CPUs/GPUs for run.caption_actors x (num_cpus={job.run.caption_num_cpus:g}, "
                    f"num_gpus={job.run.caption_num_gpus:g}), or a model load slower than that; committed units are"
                    " kept: re-run to resume")
            elif isinstance(exc, ExecutionTimeoutError):
                self.error = StalledError(f"no caption finished for {job.run.stall_timeout_s:g}s "
                                          "(run.stall_timeout_s); committed units are kept: re-run the same command "
                                          "to resume")
            else:
                detail = re.sub(r"\x1b\[[0-9;]*m", "", " ".join(str(exc).split()))  # no terminal colours
                self.error = CaptionWorkerError(  # the root cause comes last in Ray's message
                    f"the caption actors failed (backend {job.caption.backend}): ...{detail[-400:]}; "
                    "fix the caption backend (or use backend: motion) and re-run to resume")
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which raises it
            self.error = exc
        finally:
            with runner.lock:
                progress.close()

    def finish(self, stop: bool) -> None:
        """Join the thread (`stop`: the run is failing, so waiting actors return at once) and clean up."""
        import ray

        stall_s, clips_done = self.runner.job.run.stall_timeout_s, time.monotonic()
        try:
            if self.thread and stop:
                ray.get(self.reader.stop.remote())
            while self.thread and self.thread.is_alive():
                self.thread.join(timeout=1.0)
                idle = time.monotonic() - max(self.last_commit, clips_done)
                if not stop and self.clips_pending and self.thread.is_alive() and idle > stall_s:
                    self.error = StalledError(f"no caption finished for {stall_s:g}s (run.stall_timeout_s); "
                                              "committed units are kept: re-run the same command to resume")
                    ray.get(self.reader.stop.remote())
                    break  # a daemon thread; ending the Ray session ends its dataset
        finally:
            if self.before:
                self.logger.setLevel(self.level)
                for key, value in self.before.items():
                    setattr(self.context, key, value)
            if self.reader is not None:
                ray.kill(self.reader)


STOPPED = "stopped"  # CaptionUnits' result for a unit it gave up waiting for because the run is stopping


class PartitionReader:
    """Ray actor on the driver's node: reads the job folder's Parquet partitions for workers on other nodes and
    tells them whether a unit is committed yet (or the run is stopping)."""

    def __init__(self):
        self.stopped = False

    def read(self, path: str):
        return read_table(Path(path))

    def state(self, marker: str) -> str:
        """STOPPED, "ready" (the unit's resample marker exists) or "waiting"."""
        return STOPPED if self.stopped else "ready" if Path(marker).is_file() else "waiting"

    def stop(self) -> None:
        self.stopped = True


class CaptionUnits:
    """Ray Data callable class around stages.caption's captioner (the model is loaded once, in __init__): one batch
    is one unit (`unit`, path of its `clips` partition, its assets' names and tags as JSON) -> (`unit`, `result`
    JSON of caption rows, error rows and seconds, or STOPPED); it first waits until the unit's clips are committed."""

    def __init__(self, config, reader):
        from stages.caption import make_captioner

        self.captioner = make_captioner(config)
        self.reader = reader

    def __call__(self, batch):
        import pyarrow as pa
        import ray

        from pipeline.tasks import captions_for_unit

        units, results = [], []
        columns = (batch.column(c).to_pylist() for c in ("unit", "clips", "marker", "assets"))
        for unit, clips, marker, assets in zip(*columns):
            units.append(unit)
            while (state := ray.get(self.reader.state.remote(marker))) == "waiting":
                time.sleep(POLL_S)  # the unit's clips are still being evaluated
            if state == STOPPED:
                results.append(STOPPED)
                continue
            table = ray.get(self.reader.read.remote(clips))
            result = captions_for_unit(self.captioner, table, json.loads(assets))
            results.append(json.dumps(result, sort_keys=True))
        return pa.table({"unit": units, "result": results})


POLL_S = 0.05  # how often a waiting caption actor asks whether its unit's clips are committed


def job_summary(manifest: Manifest, hashes: Hashes, harvest_counts: list[dict]) -> dict:
    """Per-stage counts (merged markers) and where each output lives."""
    stages = {"harvest": merge([c for c in harvest_counts if c])}
    for stage in ("evaluate", "resample", "caption", "shard"):
        stages[stage] = merge(list(manifest.markers(stage, hashes.of(stage)).values()))
    return {
        "stages": stages,
        "paths": {
            "assets": f"assets/{hashes.evaluate}", "clips": f"clips/{hashes.resample}",
            "captions": f"captions/{hashes.caption}", "shards": f"shards/{hashes.shard}", "errors": "errors",
        },
    }


class ray_session:
    """Connect to RAY_ADDRESS / --address, or start a local Ray sized by the job spec; shut down what we started."""

    def __init__(self, job: JobSpec, address: str | None):
        self.job, self.address, self.owned = job, address, False

    def __enter__(self):
        import ray

        if ray.is_initialized():
            return ray
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if self.address:
            ray.init(address=self.address, log_to_driver=False, configure_logging=False)
        else:
            cpus = self.job.run.num_cpus or os.cpu_count() or 1
            store = self.job.run.object_store_mb or (512 if cpus <= 4 else None)
            ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False,
                     configure_logging=False, object_store_memory=store * MiB if store else None)
        self.owned = True
        return ray

    def __exit__(self, *exc):
        import ray

        if self.owned:
            ray.shutdown()
        return False
