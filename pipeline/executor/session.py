"""The one way DyMesh starts or joins Ray: a context manager that shuts down only what it started."""

from __future__ import annotations

import os

from pipeline.executor.ray_output import RayOutputToLog

MiB = 1024 * 1024


class ray_session:
    """Connect to `address` (a cluster), or start a local Ray with `num_cpus` (default: this machine's) and an
    object store of `object_store_mb` (default 512 MiB on machines with <= 4 CPUs, else Ray's); reuse a session that
    is already up. `log_to_driver`: show the workers' output here (training progress) or not (pipeline runs)."""

    def __init__(self, address: str | None = None, num_cpus: int | None = None, object_store_mb: int | None = None,
                 log_to_driver: bool = False, quiet: bool = False):
        self.address, self.num_cpus, self.object_store_mb = address, num_cpus, object_store_mb
        self.log_to_driver = log_to_driver
        self.owned = False
        # quiet: Ray's own messages go to its session log folder, not the terminal (pipeline.executor.ray_output)
        self.output = RayOutputToLog() if quiet else None

    def __enter__(self):
        import ray

        if ray.is_initialized():
            self.output = None
            return ray
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if self.output:
            self.output.start()
        try:
            self.init(ray)
        except BaseException:
            if self.output:
                self.output.stop()
            raise
        if self.output:
            self.output.settle(ray)
        self.owned = True
        return ray

    def init(self, ray) -> None:
        if self.address:
            ray.init(address=self.address, log_to_driver=self.log_to_driver, configure_logging=False)
        else:
            cpus = self.num_cpus or os.cpu_count() or 1
            store = self.object_store_mb or (512 if cpus <= 4 else None)
            ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=self.log_to_driver,
                     configure_logging=False, object_store_memory=store * MiB if store else None)

    def __exit__(self, *exc):
        import ray

        try:
            if self.owned:
                ray.shutdown()
        finally:
            if self.output:
                self.output.stop()
        return False
