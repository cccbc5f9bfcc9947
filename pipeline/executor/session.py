"""The one way DyMesh starts or joins Ray: a context manager that shuts down only what it started.

Joining a cluster (`address`) checks it first and turns its loss into one line (pipeline.executor.cluster).
"""

from __future__ import annotations

import os

from pipeline.executor.ray_output import RayOutputToLog

MiB = 1024 * 1024


class ray_session:
    """Connect to `address` (a cluster), or start a local Ray with `num_cpus` (default: this machine's) and an
    object store of `object_store_mb` (default 512 MiB on machines with <= 4 CPUs, else Ray's); reuse a session that
    is already up. `log_to_driver`: show the workers' output here (training progress) or not (pipeline runs)."""

    def __init__(self, address: str | None = None, num_cpus: int | None = None, object_store_mb: int | None = None,
                 log_to_driver: bool = False, quiet: bool = False, command: str = "dymesh", worker_lines=None):
        self.address, self.num_cpus, self.object_store_mb = address, num_cpus, object_store_mb
        self.log_to_driver = log_to_driver
        self.command = command  # names this program in the one-line errors (`dymesh run`)
        self.joined: str | None = None  # host:port of the cluster joined (None: a local Ray)
        self.watch = None  # the LossWatch of a joined cluster
        self.owned = False
        # quiet: Ray's own messages go to its session log folder, not the terminal (pipeline.executor.ray_output)
        self.output = RayOutputToLog() if quiet else None
        self.configure_logging = not quiet  # not quiet (--verbose): Ray's own INFO lines too (its banners)
        self.worker_lines = worker_lines  # quiet with log_to_driver: the workers' lines shown (the rest: the log)

    def __enter__(self):
        import ray

        if ray.is_initialized():
            self.output = None
            return ray
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if self.address:
            from pipeline.executor.cluster import join_address

            self.joined = join_address(self.address)  # before anything starts: ClusterError says what to do
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
            if self.log_to_driver:
                self.output.route_worker_output(self.worker_lines or (lambda line: False))
        self.owned = True
        if self.joined:
            self.watch_cluster(ray)
        return ray

    def init(self, ray) -> None:
        if self.joined:
            from pipeline.errors import ClusterError
            from pipeline.executor.cluster import one_line

            try:
                ray.init(address=self.joined, log_to_driver=self.log_to_driver,
                         configure_logging=self.configure_logging)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ClusterError(f"could not join the Ray cluster at {self.joined}: {one_line(exc)}; check that "
                                   f"this machine runs a node of it with Ray {ray.__version__}") from None
        else:
            cpus = self.num_cpus or os.cpu_count() or 1
            store = self.object_store_mb or (512 if cpus <= 4 else None)
            ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=self.log_to_driver,
                     configure_logging=self.configure_logging, object_store_memory=store * MiB if store else None)

    def watch_cluster(self, ray) -> None:
        """Start the watcher that reports the cluster's loss should Ray end this process (LossWatch)."""
        from pipeline.executor.cluster import LossWatch

        node = ray._private.worker._global_node
        terminal = self.output.saved_fd if self.output and self.output.saved_fd is not None else 2
        log = str(self.output.path) if self.output and self.output.path else None
        self.watch = LossWatch(self.command, self.joined).start(node.raylet_socket_name, log, terminal)

    def __exit__(self, exc_type, exc, tb):
        import ray

        try:
            if self.owned:
                ray.shutdown()
        finally:
            if self.output:
                self.output.stop()
            if self.watch:
                self.watch.done()
        if exc is not None and self.joined and not isinstance(exc, (KeyboardInterrupt, SystemExit)):
            from pipeline.errors import ClusterError
            from pipeline.executor.cluster import cluster_gone, gone_message

            if cluster_gone(self.joined):  # a Ray error because the cluster went away: one line, not a traceback
                log = str(self.output.path) if self.output and self.output.path else None
                raise ClusterError(gone_message(self.joined, log)) from exc
        return False
