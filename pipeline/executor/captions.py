"""The caption stage on Ray Data, beside evaluation: one dataset over every pending caption unit, in unit order.

`map_batches` with an actor pool of `CaptionUnits` (the model loads once per actor; Ray Data restarts an actor
that dies mid-task); each call waits until the driver says its unit's clips are committed (polling the driver-side
`PartitionReader`), then captions those of them that have no caption kept from an earlier run. A background thread
streams the results back with `iter_rows` and hands each unit's CaptionResult to `commit(unit, result)` as it
arrives, while the main thread keeps dispatching evaluate tasks. A failure on either side stops the other: an
evaluation error sets the reader's stop flag (waiting actors return at once, nothing is committed for them); a
caption error is kept in `error` for the main thread.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.config import JobSpec
from pipeline.errors import CaptionWorkerError, StalledError
from pipeline.manifest import Manifest, read_table
from pipeline.plan import Plan
from pipeline.progress import Progress
from pipeline.tasks import CaptionResult

STOPPED = "stopped"  # a unit given up because the run is stopping
POLL_S = 0.05  # how often a waiting caption actor asks whether its unit's clips are committed


@dataclass(frozen=True)
class CaptionUnit:
    """One unit for the caption actors: where its clips are, its assets' names and tags, and the clips whose
    captions an earlier run committed (kept, not captioned again)."""

    unit: str
    clips: str  # path of the unit's clips partition
    arrays: str  # path of its clip_arrays partition
    assets: dict[str, dict]  # asset id -> {"name", "tags"}
    done: tuple[str, ...] = ()


def object_column(values: list) -> np.ndarray:
    """A 1-D NumPy object array (a Ray Data column of Python objects)."""
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column


class PartitionReader:
    """Ray actor on the driver's node: reads the job folder's Parquet partitions for workers on other nodes and
    tells them whether a unit's clips are committed yet (the driver says so) or the run is stopping."""

    def __init__(self, ready: list[str]):
        self.stopped = False
        self.units = set(ready)

    def read(self, path: str):
        return read_table(Path(path))

    def ready(self, unit: str) -> None:
        self.units.add(unit)

    def state(self, unit: str) -> str:
        """STOPPED, "ready" (the unit's clips are committed) or "waiting"."""
        return STOPPED if self.stopped else "ready" if unit in self.units else "waiting"

    def stop(self) -> None:
        self.stopped = True


class CaptionUnits:
    """Ray Data callable class around stages.caption's captioner (the model is loaded once, in __init__): a batch
    of CaptionUnits -> (`unit`, `result`: its CaptionResult, or STOPPED); each unit first waits for its clips."""

    def __init__(self, config, reader):
        from stages.caption import make_captioner

        self.captioner = make_captioner(config)
        self.reader = reader

    def __call__(self, batch: dict) -> dict:
        import ray

        from pipeline.tasks import captions_for_unit

        import pyarrow.compute as pc

        units, results = [], []
        for item in batch["item"]:
            units.append(item.unit)
            while (state := ray.get(self.reader.state.remote(item.unit))) == "waiting":
                time.sleep(POLL_S)  # the unit's clips are still being evaluated
            if state == STOPPED:
                results.append(STOPPED)
                continue
            clips, arrays = ray.get([self.reader.read.remote(item.clips), self.reader.read.remote(item.arrays)])
            if item.done:  # the same mask on both tables keeps them row for row
                pending = pc.invert(pc.is_in(clips.column("clip_id"), value_set=pa.array(item.done)))
                clips, arrays = clips.filter(pending), arrays.filter(pending)
            results.append(captions_for_unit(self.captioner, clips, arrays, item.assets) if clips.num_rows
                           else CaptionResult([], []))
        return {"unit": np.array(units), "result": object_column(results)}


class CaptionStream:
    """The caption dataset and the thread that commits its units (see the module docstring)."""

    def __init__(self, job: JobSpec, plan: Plan, manifest: Manifest, units: list[str], clips_pending: list[str],
                 done: dict[str, set[str]], commit: Callable[[str, CaptionResult], int], lock: threading.Lock,
                 stream, show_progress: bool):
        self.job, self.plan, self.manifest, self.units, self.done = job, plan, manifest, units, done
        self.commit, self.lock = commit, lock  # commit(unit, result) -> captions written; called under the lock
        self.stream, self.show_progress = stream, show_progress
        self.clips_pending = bool(clips_pending)  # evaluate+resample runs beside the dataset
        self.ready_units = set(units) - set(clips_pending)  # units whose clips are committed
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None
        self.reader = None
        self.before: dict = {}
        self.last_commit = time.monotonic()

    def items(self) -> list[dict]:
        h, m = self.plan.hashes, self.manifest
        return [{"item": CaptionUnit(
            u, *(str(m.partition(t, h.resample, u).resolve()) for t in ("clips", "clip_arrays")),
            {a: {"name": self.plan.assets[a].name, "tags": self.plan.assets[a].tags} for a in self.plan.units[u]},
            tuple(sorted(self.done.get(u, ()))),
        )} for u in self.units]

    def ready(self, unit: str) -> None:
        """The driver committed `unit`'s clips (called under the runner's lock)."""
        self.ready_units.add(unit)
        if self.reader is not None:
            self.reader.ready.remote(unit)

    def start(self) -> None:
        """Build the dataset and start consuming it in a thread."""
        import logging

        import ray
        import ray.data
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        run = self.job.run
        self.logger = logging.getLogger("ray.data")
        self.level = self.logger.level
        self.logger.setLevel(logging.ERROR)  # no per-dataset info lines; failures still raise below
        self.context = ray.data.DataContext.get_current()
        settings = {
            "enable_progress_bars": False,  # our own progress line
            "print_on_execution_start": False,
            # -> ExecutionTimeoutError; off while actors may wait for clips (finish() watches for stalls then)
            "execution_no_progress_timeout_s": -1 if self.clips_pending else run.stall_timeout_s,
            "wait_for_min_actors_s": int(max(1, run.stall_timeout_s)),  # actors that never get resources
            "max_consecutive_actor_init_deaths": run.max_retries,  # a model that cannot load is fatal
        }
        self.before = {key: getattr(self.context, key) for key in settings}
        for key, value in settings.items():
            setattr(self.context, key, value)
        items = self.items()
        pool = max(1, min(run.caption_actors, len(self.units)))
        # only the driver's machine needs --out: the actors fetch each unit's clips through this reader
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        with self.lock:  # no unit made ready between reading the set and the reader taking it
            self.reader = ray.remote(PartitionReader).options(num_cpus=0, scheduling_strategy=here).remote(
                sorted(self.ready_units))
        dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            CaptionUnits, fn_constructor_args=(self.job.caption, self.reader), batch_size=1, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=pool), num_cpus=run.caption_num_cpus,
            num_gpus=run.caption_num_gpus)
        self.thread = threading.Thread(target=self.consume, args=(dataset,), name="dymesh-captions", daemon=True)
        self.thread.start()

    def consume(self, dataset) -> None:
        """Thread body: commit each caption unit as its row arrives; keep the first error for the main thread."""
        from ray.data.exceptions import ExecutionTimeoutError
        from ray.exceptions import RayError

        progress = Progress("caption", len(self.units), "units", self.stream, enabled=self.show_progress)
        captions = 0
        try:
            for row in dataset.iter_rows():
                if isinstance(row["result"], str):  # STOPPED: this unit's clips never came; nothing to commit
                    continue
                with self.lock:
                    captions += self.commit(row["unit"], row["result"])
                    progress.update(1, f"captions {captions}")
                    self.last_commit = time.monotonic()
        except (RayError, ExecutionTimeoutError) as exc:
            self.error = self.explain(exc)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which raises it
            self.error = exc
        finally:
            with self.lock:
                progress.close()

    def explain(self, exc: Exception) -> Exception:
        """The user-facing error for a Ray failure of the caption dataset."""
        from ray.data.exceptions import ExecutionTimeoutError
        from ray.exceptions import GetTimeoutError

        run = self.job.run
        if isinstance(exc, GetTimeoutError):  # from wait_for_min_actors_s
            return StalledError(
                f"the caption actors were not ready within {run.stall_timeout_s:g}s (run.stall_timeout_s): "
                f"too few free CPUs/GPUs for run.caption_actors x (num_cpus={run.caption_num_cpus:g}, "
                f"num_gpus={run.caption_num_gpus:g}), or a model load slower than that; committed units are"
                " kept: re-run to resume")
        if isinstance(exc, ExecutionTimeoutError):
            return StalledError(f"no caption finished for {run.stall_timeout_s:g}s (run.stall_timeout_s); "
                                "committed units are kept: re-run the same command to resume")
        detail = re.sub(r"\x1b\[[0-9;]*m", "", " ".join(str(exc).split()))  # no terminal colours
        return CaptionWorkerError(  # the root cause comes last in Ray's message
            f"the caption actors failed (backend {self.job.caption.backend}): ...{detail[-400:]}; "
            "fix the caption backend (or use backend: motion) and re-run to resume")

    def finish(self, stop: bool) -> None:
        """Join the thread (`stop`: the run is failing, so waiting actors return at once) and clean up."""
        import ray

        stall_s, clips_done = self.job.run.stall_timeout_s, time.monotonic()
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
