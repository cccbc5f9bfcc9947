"""Runs a job: plan (harvest, units, hashes) -> evaluate+resample (Ray tasks) beside caption (Ray Data) -> shard.

Units of work are batches of sorted asset ids; each stage commits a unit through pipeline.commit (tables written
atomically, then a completion marker with the unit's counts), so a killed run resumes where it stopped and a
finished one does nothing. What runs where: pipeline.plan (driver), pipeline.executor.assets (one Ray task per asset,
item time limit, retries), pipeline.executor.captions (a Ray Data actor pool started with the first committed clip
unit, at once on a resume with committed clips waiting), shards on the driver. Evaluate tasks never wait on the
caption actors, and the default worker count leaves the actors' CPUs free.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from pipeline.commit import UnitOutcome, commit
from pipeline.config import JobSpec
from pipeline.manifest import Manifest, read_table, table_from_rows
from pipeline.plan import Plan, asset_row, plan_run
from pipeline.progress import Progress
from pipeline.summary import job_summary
from pipeline.tasks import AssetResult, CaptionResult


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
    def commit_clips(self, plan: Plan, unit: str, results: dict[str, AssetResult]):
        """Commit one unit's evaluate (assets + errors) and resample (clips, clip_arrays, funnel + errors); returns
        the clips table."""
        from pipeline.tasks import unit_clip_tables
        from schemas.tables import ASSETS

        h, m = plan.hashes, self.manifest
        ids = plan.units[unit]
        sources = {a: plan.assets[a].source_text() for a in ids}
        if not m.is_done("evaluate", h.evaluate, unit):
            assets = table_from_rows([asset_row(a, plan.assets[a], results[a].stats) for a in ids], ASSETS)
            commit(m, "evaluate", h.evaluate, unit, UnitOutcome(
                seen=ids, ok={a for a in ids if results[a].evaluated},
                errors=[r for a in ids for r in results[a].evaluate_errors],
                errors_by_item={a: results[a].evaluate_errors for a in ids}, sources=sources,
                outputs={m.partition("assets", h.evaluate, unit): assets}))
        evaluated = [a for a in ids if results[a].evaluated]
        tables = unit_clip_tables([results[a] for a in evaluated])
        commit(m, "resample", h.resample, unit, UnitOutcome(
            seen=evaluated, ok={a for a in evaluated if results[a].clip_count},
            errors=[r for a in evaluated for r in results[a].resample_errors],
            errors_by_item={a: results[a].resample_errors for a in evaluated}, sources=sources,
            outputs={m.partition(t, h.resample, unit): table for t, table in tables.items()},
            counts={"clips": tables["clips"].num_rows}))
        return tables["clips"]

    def commit_captions(self, plan: Plan, unit: str, result: CaptionResult) -> int:
        """Commit one unit's captions (rows sorted, so the bytes do not depend on arrival order); returns how many."""
        from schemas.tables import CAPTIONS

        h, m = plan.hashes, self.manifest
        self.stage_seconds["caption"] += result.stage_seconds
        clip_ids = read_table(m.partition("clips", h.resample, unit), columns=["clip_id"]).column("clip_id").to_pylist()
        rows = sorted(result.rows, key=lambda r: (r["clip_id"], r["caption_index"], r["backend"]))
        if not self.job.run.record_timings:
            rows = [dict(r, seconds=0.0) for r in rows]
        commit(m, "caption", h.caption, unit, UnitOutcome(
            seen=clip_ids, ok={r["clip_id"] for r in rows}, errors=sorted(result.errors, key=lambda r: r["unit_id"]),
            outputs={m.partition("captions", h.caption, unit): table_from_rows(rows, CAPTIONS)},
            counts={"captions": len(rows)}))
        return len(rows)

    def write_shards(self, plan: Plan) -> None:
        """All clips, sorted by clip id (units are ranges of sorted asset ids), into deterministic shards."""
        from pipeline.tasks import clips_of_tables
        from stages.shard import write_shards
        from stages.shard.sample import sample_key

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
                pair = (read_table(m.partition(t, h.resample, unit)) for t in ("clips", "clip_arrays"))
                for clip in clips_of_tables(*pair):
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
        commit(m, "shard", h.shard, "all", UnitOutcome(
            seen=clip_ids, ok={by_key[r["key"]] for r in rows if r["key"] in by_key}, errors=errors,
            counts={"shards": len({r["shard"] for r in rows}), "samples": len(rows)}))

    # ---- the run ---------------------------------------------------------------------------------------------
    def run(self) -> dict:
        self.manifest.clean_temp()
        start = time.perf_counter()
        plan = plan_run(self.job, self.manifest, self.stream, self.show_progress)
        self.phase_seconds["harvest"] = time.perf_counter() - start
        todo = self.pending(plan)
        if not any(todo.values()):
            print("nothing to do: every unit of this job is already committed in " f"{self.out}", file=self.stream)
            return self.summary(plan)
        if todo["clips"] or todo["caption"]:
            from pipeline.executor.session import ray_session

            run = self.job.run
            with ray_session(self.address, run.num_cpus, run.object_store_mb) as ray:
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
        from pipeline.executor.captions import CaptionStream

        captions = None
        if todo["caption"]:
            captions = CaptionStream(self.job, plan, self.manifest, todo["caption"], bool(todo["clips"]),
                                     lambda unit, result: self.commit_captions(plan, unit, result), self.lock,
                                     self.stream, self.show_progress)
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

    def run_clip_units(self, ray, plan: Plan, clip_units: list[str], captions=None) -> None:
        """Evaluate+resample every asset of `clip_units`, committing each unit when its last asset is in."""
        from pipeline.executor.assets import AssetScheduler

        run = self.job.run
        # by default leave the caption actors' CPUs free: a submitted task then starts at once (its item timeout
        # counts from submission) and the actors are never starved of CPUs by evaluate tasks
        reserved = run.caption_actors * run.caption_num_cpus if captions else 0.0
        scheduler = AssetScheduler(ray, self.job, plan, self.out, reserved)
        units = ClipUnits(self, plan, clip_units, captions)
        try:
            scheduler.run(clip_units, units.add, units.check)
        finally:
            units.progress.close()

    def summary(self, plan: Plan) -> dict:
        return job_summary(self.manifest, plan.hashes, plan.harvest_counts)


class ClipUnits:
    """Gathers the asset results of units being evaluated; commits a unit when its last asset is in, and starts the
    caption stream with the first committed unit."""

    def __init__(self, runner: Runner, plan: Plan, units: list[str], captions=None):
        self.runner, self.plan, self.captions = runner, plan, captions
        self.results: dict[str, dict[str, AssetResult]] = {u: {} for u in units}
        self.progress = Progress("evaluate+resample", sum(len(plan.units[u]) for u in units), "assets",
                                 runner.stream, enabled=runner.show_progress)
        self.clips = 0

    def add(self, unit: str, asset_id: str, result: AssetResult) -> None:
        with self.runner.lock:
            self.runner.stage_seconds["evaluate+resample"] += result.stage_seconds
            self.results[unit][asset_id] = result
            if len(self.results[unit]) == len(self.plan.units[unit]):
                self.clips += self.runner.commit_clips(self.plan, unit, self.results.pop(unit)).num_rows
            self.progress.update(1, f"clips {self.clips}")
        if self.captions and not self.captions.thread and unit not in self.results:
            self.captions.start()

    def check(self) -> None:
        """Raise the caption stream's error (committed units are kept; the caller stops the caption thread)."""
        if self.captions and self.captions.error:
            raise self.captions.error
