"""Runs a job: plan (harvest, units, hashes) -> evaluate+resample (Ray tasks) beside caption (Ray Data) -> shard.

Units of work are batches of sorted asset ids; each stage commits a unit through pipeline.commit (tables written
atomically, then a completion marker with the unit's counts), so a killed run resumes where it stopped and a
finished one does nothing. What runs where: pipeline.plan (driver), pipeline.executor.assets (one Ray task per asset,
item time limit, retries), pipeline.executor.captions (a Ray Data actor pool started with the first committed clip
unit, at once on a resume with committed clips waiting), shards on the driver. Evaluate tasks never wait on the
caption actors, and the default worker count leaves the actors' CPUs free.

A run holds the lock of its output folder for its whole life (pipeline.lock). A committed unit with failures to try
again (transient ones; every one with --retry-failed) is redone for those items only (pipeline.retry).
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
from pipeline.config import JobSpec, config_hash
from pipeline.lock import FolderLock
from pipeline.manifest import Manifest, checked_table, read_table, table_from_rows
from pipeline.plan import Plan, asset_row, plan_run, stage_config
from pipeline.progress import Progress
from pipeline.retry import (KeptAssets, KeptCaptions, RetryPolicy, asset_of, carry_attempts, consistent, digest,
                            keep_assets, keep_captions)
from pipeline.summary import job_summary
from pipeline.tasks import AssetResult, CaptionResult
from stages.storage import TEMP_PREFIX


class Runner:
    """One job run into one output folder."""

    def __init__(self, job: JobSpec, out: str | Path, address: str | None = None, stream=None,
                 show_progress: bool = True, retry_failed: bool = False, verbose: bool = False):
        self.job = job
        self.manifest = Manifest(out)
        self.out = self.manifest.out
        self.address = address or os.environ.get("RAY_ADDRESS") or job.run.address
        self.given_stream = stream
        self.show_progress = show_progress
        self.policy = RetryPolicy(retry_failed)
        self.verbose = verbose  # Ray's own messages on the terminal too (else only in Ray's session logs)
        self.kept_captions: dict[str, KeptCaptions] = {}
        # seconds inside the stage functions (summed over workers) and wall seconds of each driver phase,
        # for benchmarks/pipeline.py's overhead measurement
        self.stage_seconds: Counter = Counter()
        self.phase_seconds: Counter = Counter()
        self.lock = threading.Lock()  # commits, counters and progress lines of the evaluate and caption threads
        self.asset_tasks = 0  # evaluate+resample tasks this run started (assets read back from a commit: none)

    @property
    def stream(self):
        """Where progress goes: the given stream, else sys.stderr as it is now (the Ray session swaps it)."""
        return self.given_stream or sys.stderr

    # ---- what is left ---------------------------------------------------------------------------------------
    def pending(self, plan: Plan) -> dict[str, list[str]]:
        """Units not committed, committed from other inputs than their upstream's now, or with items to retry."""
        h, reopens = plan.hashes, self.policy.reopens
        marks = {s: self.manifest.markers(s, h.of(s)) for s in ("evaluate", "resample", "caption")}
        evaluate, resample, caption = marks["evaluate"], marks["resample"], marks["caption"]
        clips = [u for u in plan.units if not consistent(resample.get(u), evaluate.get(u))
                 or reopens(evaluate.get(u)) or reopens(resample.get(u))]
        captions = [u for u in plan.units if u in set(clips) or not consistent(caption.get(u), resample.get(u))
                    or reopens(caption.get(u))]
        done = not clips and not captions and self.shard_done(plan, marks, trust_old=True)
        return {"clips": clips, "caption": captions, "shard": [] if done else ["all"]}

    def shard_done(self, plan: Plan, marks: dict | None = None, trust_old: bool = False) -> bool:
        """The shards are committed, from what the units hold now (`trust_old`: also when the marker predates
        the "inputs" record), with nothing to retry."""
        marker = self.manifest.read_marker("shard", plan.hashes.shard, "all")
        if marker is None or self.policy.reopens(marker):
            return False
        return (trust_old and "inputs" not in marker) or marker.get("inputs") == self.shard_inputs(plan, marks)

    def shard_inputs(self, plan: Plan, marks: dict | None = None) -> str:
        """Digest of what the shard stage reads: every unit's evaluate, resample and caption outputs."""
        h = plan.hashes
        marks = marks or {s: self.manifest.markers(s, h.of(s)) for s in ("evaluate", "resample", "caption")}
        return digest([[u] + [marks[s].get(u, {}).get("outputs") for s in ("evaluate", "resample", "caption")]
                       for u in sorted(plan.units)])

    def config_key(self) -> str:
        """What evaluate+resample outputs depend on besides the asset (reuse across evaluate hashes): both stages'
        configs, table versions and the split settings."""
        return config_hash("evaluate+resample", {s: stage_config(self.job, s) for s in ("evaluate", "resample")})

    # ---- commits ---------------------------------------------------------------------------------------------
    def commit_clips(self, plan: Plan, unit: str, results: dict[str, AssetResult]):
        """Commit one unit's evaluate (assets + errors) and resample (clips, clip_arrays, funnel + errors); returns
        the clips table."""
        from pipeline.tasks import unit_clip_tables
        from schemas.tables import ASSETS

        h, m = plan.hashes, self.manifest
        ids = plan.units[unit]
        sources = {a: plan.assets[a].source_text() for a in ids}
        evaluated = [a for a in ids if results[a].evaluated]
        assets = table_from_rows([asset_row(a, plan.assets[a], results[a].stats) for a in ids], ASSETS)
        commit(m, "evaluate", h.evaluate, unit, UnitOutcome(
            seen=ids, ok=set(evaluated), errors=[r for a in ids for r in results[a].evaluate_errors],
            errors_by_item={a: results[a].evaluate_errors for a in ids}, sources=sources,
            outputs={m.partition("assets", h.evaluate, unit): assets},
            counts={"outputs": digest(evaluated), "config": self.config_key()}))
        tables = unit_clip_tables([results[a] for a in evaluated], sources)
        clips = tables["clips"]
        made = list(zip(clips.column("clip_id").to_pylist(), clips.column("content_hash").to_pylist()))
        commit(m, "resample", h.resample, unit, UnitOutcome(
            seen=evaluated, ok={a for a in evaluated if results[a].clip_count},
            errors=[r for a in evaluated for r in results[a].resample_errors],
            errors_by_item={a: results[a].resample_errors for a in evaluated}, sources=sources,
            outputs={m.partition(t, h.resample, unit): table for t, table in tables.items()},
            counts={"clips": clips.num_rows, "inputs": digest(evaluated), "outputs": digest(made)}))
        return clips

    def commit_captions(self, plan: Plan, unit: str, result: CaptionResult) -> int:
        """Commit one unit's captions (rows sorted, so the bytes do not depend on arrival order); returns how many."""
        from schemas.tables import CAPTIONS

        h, m = plan.hashes, self.manifest
        self.stage_seconds["caption"] += result.stage_seconds
        clip_ids = read_table(m.partition("clips", h.resample, unit), columns=["clip_id"]).column("clip_id").to_pylist()
        kept = self.kept_captions.pop(unit, KeptCaptions()).only(clip_ids)
        new = result.rows if self.job.run.record_timings else [dict(r, seconds=0.0) for r in result.rows]
        table, bad = checked_table(new, CAPTIONS, "caption", key="clip_id")
        rows = sorted(kept.rows + table.to_pylist(), key=lambda r: (r["clip_id"], r["caption_index"], r["backend"]))
        errors = kept.errors + carry_attempts(result.errors + bad, kept.earlier)
        commit(m, "caption", h.caption, unit, UnitOutcome(
            seen=clip_ids, ok={r["clip_id"] for r in rows}, errors=sorted(errors, key=lambda r: r["unit_id"]),
            outputs={m.partition("captions", h.caption, unit): table_from_rows(rows, CAPTIONS)},
            counts={"captions": len(rows), "inputs": (m.read_marker("resample", h.resample, unit) or {}).get("outputs"),
                    "outputs": digest([[r["clip_id"], r["caption_index"], r["backend"], r["text"]] for r in rows])}))
        return len(rows)

    def write_shards(self, plan: Plan) -> None:
        """All clips, sorted by clip id (units are ranges of sorted asset ids), into deterministic shards."""
        from pipeline.tasks import readable_clips
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
        unreadable: list[dict] = []

        def clips():
            for unit in units:
                table = read_table(m.partition("clips", h.resample, unit))
                clip_ids.extend(table.column("clip_id").to_pylist())
                readable, bad = readable_clips(table, read_table(m.partition("clip_arrays", h.resample, unit)),
                                               "shard")
                unreadable.extend(bad)
                yield from readable

        final = m.shard_layout(h.shard)
        tmp = m.shard_layout(f"{TEMP_PREFIX}{h.shard}")
        m.marker("shard", h.shard, "all").unlink(missing_ok=True)  # never a marker for shards being replaced
        for folder in (final.tars, final.index, tmp.tars, tmp.index):
            shutil.rmtree(folder, ignore_errors=True)
        start = time.perf_counter()
        rows, errors = write_shards(clips(), captions, assets, tmp, self.job.shard)
        self.stage_seconds["shard"] += time.perf_counter() - start
        os.replace(tmp.tars, final.tars)  # the marker below commits both folders
        os.replace(tmp.index, final.index)
        by_key = {sample_key(c): c for c in clip_ids}
        commit(m, "shard", h.shard, "all", UnitOutcome(
            seen=clip_ids, ok={by_key[r["key"]] for r in rows if r["key"] in by_key}, errors=unreadable + errors,
            counts={"shards": len({r["shard"] for r in rows}), "samples": len(rows),
                    "inputs": self.shard_inputs(plan)}))

    # ---- the run ---------------------------------------------------------------------------------------------
    def run(self) -> dict:
        """Run the job into its output folder, holding the folder's lock throughout; returns the summary."""
        with FolderLock(self.out, "dymesh run", stream=self.stream):
            return self.run_locked()

    def run_locked(self) -> dict:
        self.manifest.clean_temp()
        start = time.perf_counter()
        plan = plan_run(self.job, self.manifest, self.stream, self.show_progress, self.policy)
        self.phase_seconds["harvest"] = time.perf_counter() - start
        todo = self.pending(plan)
        if not any(todo.values()):
            print("nothing to do: every unit of this job is already committed in " f"{self.out}", file=self.stream)
            return self.summary(plan)
        if todo["clips"] or todo["caption"]:
            from pipeline.executor.session import ray_session

            run = self.job.run
            with ray_session(self.address, run.num_cpus, run.object_store_mb, quiet=not self.verbose,
                             command="dymesh run") as ray:
                start = time.perf_counter()
                self.run_units(ray, plan, todo)
                self.phase_seconds["units"] = time.perf_counter() - start
        if todo["shard"] and not self.shard_done(plan):
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
            self.kept_captions = {u: keep_captions(self.manifest, plan.hashes.caption, u, self.policy)
                                  for u in todo["caption"]}
            captions = CaptionStream(self.job, plan, self.manifest, todo["caption"], todo["clips"],
                                     {u: kept.clips for u, kept in self.kept_captions.items()},
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
        kept = keep_assets(self.manifest, plan, self.job, clip_units, self.policy, self.config_key())
        todo = [(u, a) for u in clip_units for a in plan.units[u] if a not in kept.results]
        self.asset_tasks += len(todo)
        scheduler = AssetScheduler(ray, self.job, plan, self.out, reserved)
        units = ClipUnits(self, plan, clip_units, kept, len(todo), captions)
        try:
            units.commit_kept()
            scheduler.run(todo, units.add, units.check)
        finally:
            units.progress.close()

    def summary(self, plan: Plan) -> dict:
        return job_summary(self.manifest, plan.hashes, plan.harvest_counts)


class ClipUnits:
    """Gathers the asset results of units being evaluated; commits a unit when its last asset is in, and starts the
    caption stream with the first committed unit."""

    def __init__(self, runner: Runner, plan: Plan, units: list[str], kept: KeptAssets, todo: int, captions=None):
        self.runner, self.plan, self.captions, self.earlier = runner, plan, captions, kept.earlier
        self.results: dict[str, dict[str, AssetResult]] = {
            u: {a: kept.results[a] for a in plan.units[u] if a in kept.results} for u in units}
        self.progress = Progress("evaluate+resample", todo, "assets", runner.stream, enabled=runner.show_progress)
        self.clips = 0

    def commit_kept(self) -> None:
        """Commit the units whose every asset result was read back (nothing of them to run)."""
        for unit in [u for u, results in self.results.items() if len(results) == len(self.plan.units[u])]:
            self.commit(unit)

    def commit(self, unit: str) -> None:
        with self.runner.lock:
            self.clips += self.runner.commit_clips(self.plan, unit, self.results.pop(unit)).num_rows
            if self.captions:
                self.captions.ready(unit)
        if self.captions and not self.captions.thread:
            self.captions.start()

    def add(self, unit: str, asset_id: str, result: AssetResult) -> None:
        if asset_id in self.earlier:  # retried: its rows count the earlier runs' tries too
            earlier = {asset_id: self.earlier[asset_id]}
            result.evaluate_errors = carry_attempts(result.evaluate_errors, earlier, asset_of)
            result.resample_errors = carry_attempts(result.resample_errors, earlier, asset_of)
        with self.runner.lock:
            self.runner.stage_seconds["evaluate+resample"] += result.stage_seconds
            self.results[unit][asset_id] = result
        if len(self.results[unit]) == len(self.plan.units[unit]):
            self.commit(unit)
        with self.runner.lock:
            self.progress.update(1, f"clips {self.clips}")

    def check(self) -> None:
        """Raise the caption stream's error (committed units are kept; the caller stops the caption thread)."""
        if self.captions and self.captions.error:
            raise self.captions.error
