"""Evaluate + resample on Ray: one task per asset, with an item time limit, retries of crashed workers and a stall
limit.

Why Ray tasks and not `Dataset.map_batches`: Ray Data has no per-item time limit, and a pathological asset must be
killed (`ray.cancel(force=True)`) and recorded without losing its unit (https://github.com/ray-project/ray/issues/45661).
Each task asks for a `memory` resource that grows with the asset's size, so big assets get fewer concurrent slots.
At most `workers` tasks are in flight, so a submitted task starts at once and its time limit counts from submission.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import JobSpec
from pipeline.errors import StalledError
from pipeline.plan import Plan
from pipeline.tasks import AssetResult, clips_for_asset, failed_asset

MiB = 1024 * 1024


@dataclass
class Attempt:
    """One asset task in flight."""

    unit: str
    asset_id: str
    started: float
    number: int  # 1 for the first try


class AssetScheduler:
    """Runs every asset of some units as Ray tasks and hands each asset's AssetResult to `finish(unit, id, result)`."""

    def __init__(self, ray, job: JobSpec, plan: Plan, out: Path, reserved_cpus: float = 0.0):
        self.ray, self.job, self.plan, self.out = ray, job, plan, out
        cpus = int(ray.cluster_resources().get("CPU", 1) - reserved_cpus + 1e-9)
        self.workers = job.run.workers or max(1, cpus)
        # a task must fit on one node: cap memory requests by the largest node's memory resource
        node_memory = max((n["Resources"].get("memory", 0) for n in ray.nodes() if n.get("Alive")), default=0)
        self.node_memory = node_memory or 64 * 1024 * MiB
        self.config_refs = ray.put(job.evaluate), ray.put(job.resample), ray.put(job.split)
        self.task = ray.remote(clips_for_asset)
        self.running: dict = {}  # ObjectRef -> Attempt

    def memory_for(self, asset_id: str) -> int:
        run = self.job.run
        wanted = run.memory_base_mb * MiB + run.memory_per_byte * self.plan.assets[asset_id].bytes
        return int(min(wanted, run.memory_max_mb * MiB, self.node_memory))

    def submit(self, unit: str, asset_id: str, number: int = 1) -> AssetResult | None:
        """Start one try of an asset; the failure row when it cannot even start (its stored bytes are gone, say)."""
        asset = self.plan.assets[asset_id]
        source = asset.source_text()
        try:
            data = (self.out / asset.blob).read_bytes()
        except OSError as exc:
            return failed_asset(asset_id, "blob-unreadable", f"{source}: its stored bytes {asset.blob} cannot be "
                                f"read ({exc.strerror or exc}); remove {self.out}/markers/harvest to harvest again",
                                source, number)
        try:
            ref = self.task.options(num_cpus=1, memory=self.memory_for(asset_id), max_retries=0).remote(
                asset_id, data, asset.format, source, *self.config_refs)
        except self.ray.exceptions.RayError as exc:  # the object store cannot take the bytes now, say
            return failed_asset(asset_id, "worker-error", f"{source}: cannot start its task: "
                                f"{' '.join(str(exc).split())[:300]}", source, number)
        self.running[ref] = Attempt(unit, asset_id, time.monotonic(), number)
        return None

    def outcome(self, ref, attempt: Attempt) -> AssetResult | None:
        """The task's result, or the failure row of why it has none; None when the asset is retried instead.
        Every way an asset task can fail is classified here."""
        exceptions = self.ray.exceptions
        source = self.plan.assets[attempt.asset_id].source_text()
        try:
            return self.ray.get(ref)
        except (exceptions.WorkerCrashedError, exceptions.ObjectLostError, exceptions.NodeDiedError) as exc:
            if attempt.number <= self.job.run.max_retries:
                return self.submit(attempt.unit, attempt.asset_id, attempt.number + 1)
            message = f"{source}: worker died {attempt.number} times ({type(exc).__name__})"
            return failed_asset(attempt.asset_id, "worker-crashed", message, source, attempt.number)
        except exceptions.OutOfMemoryError:
            message = f"{source}: killed by Ray's memory monitor; raise run.memory_per_byte"
            return failed_asset(attempt.asset_id, "out-of-memory", message, source, attempt.number)
        except exceptions.RayError as exc:
            message = " ".join(str(exc).split())[:500]
            return failed_asset(attempt.asset_id, "worker-error", message, source, attempt.number)

    def timed_out(self, attempt: Attempt) -> AssetResult:
        limit = self.job.run.item_timeout_s
        source = self.plan.assets[attempt.asset_id].source_text()
        message = f"{source}: evaluate+resample ran over run.item_timeout_s={limit:g}s and was killed"
        return failed_asset(attempt.asset_id, "timeout", message, source, attempt.number)

    def run(self, items: list[tuple[str, str]], finish: Callable[[str, str, AssetResult], None],
            check: Callable[[], None] = lambda: None) -> None:
        """Run every (unit, asset id) of `items`; `check()` is called each second (it raises to stop the run)."""
        run = self.job.run
        queue = deque(items)
        last_progress = time.monotonic()
        while queue or self.running:
            check()
            while queue and len(self.running) < self.workers:
                unit, asset_id = queue.popleft()
                failed = self.submit(unit, asset_id)
                if failed is not None:
                    finish(unit, asset_id, failed)
            refs = list(self.running)
            ready, _ = self.ray.wait(refs, num_returns=1, timeout=1.0)
            ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=0) if ready else (ready, None)
            now = time.monotonic()
            for ref in ready:
                last_progress = now
                attempt = self.running.pop(ref)
                result = self.outcome(ref, attempt)
                if result is not None:
                    finish(attempt.unit, attempt.asset_id, result)
            for ref, attempt in list(self.running.items()):
                if now - attempt.started > run.item_timeout_s:
                    self.ray.cancel(ref, force=True)
                    del self.running[ref]
                    finish(attempt.unit, attempt.asset_id, self.timed_out(attempt))
                    last_progress = now
            if now - last_progress > run.stall_timeout_s:
                raise StalledError(f"nothing finished for {run.stall_timeout_s:g}s (run.stall_timeout_s); "
                                   "committed units are kept: re-run the same command to resume")
