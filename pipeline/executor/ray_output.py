"""Ray's own messages stay out of the terminal of a dataset run: they go to a file in Ray's session log folder.

Ray's C++ core worker writes to this process's stderr (`[... E core_worker.cc ...]` lines) and its Python loggers
print warnings (the token-authentication banner, say). While a run's Ray session is up, file descriptor 2 points at
`<ray session>/logs/dymesh-driver-<pid>.err` and the `ray` loggers write there too; Python's `sys.stderr` (progress
lines, warnings, error messages) is a copy of the terminal's descriptor, so the user still sees everything DyMesh
says. Workers' output (with `log_to_driver`) goes to the same file, except the lines a `keep` test picks (rank 0's
progress lines of `dymesh train`), which reach stdout once each, plain: Ray would print them with a colour-coded
`(RayTrainWorker pid=...)` prefix, and on both stdout and stderr. `--verbose` leaves Ray's output on the terminal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from pathlib import Path


class RayOutputToLog:
    """Start before ray.init, `settle()` once Ray is up (moves the file into its session folder), `stop()` last."""

    def __init__(self):
        self.path: Path | None = None
        self.saved_fd: int | None = None
        self.saved_stderr = None
        self.handler: logging.Handler | None = None
        self.handlers: list[logging.Handler] = []  # the `ray` logger's own, put back by stop()
        self.propagate = True
        self.last_resort: logging.Handler | None = None
        self.dispatcher = None  # Ray's worker-output dispatcher, while route_worker_output's handler is in it

    def start(self) -> RayOutputToLog:
        sys.stderr.flush()
        fd, name = tempfile.mkstemp(prefix=f"dymesh-driver-{os.getpid()}-", suffix=".err")
        os.close(fd)
        fd = os.open(name, os.O_WRONLY | os.O_APPEND)  # appends, like the logging handler's own descriptor
        self.path = Path(name)
        self.saved_fd = os.dup(2)
        os.dup2(fd, 2)
        os.close(fd)
        self.saved_stderr = sys.stderr
        sys.stderr = open(os.dup(self.saved_fd), "w", buffering=1, encoding=getattr(self.saved_stderr, "encoding",
                          None) or "utf-8", errors="backslashreplace")
        self.handler = logging.FileHandler(self.path)
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        ray_logger = logging.getLogger("ray")  # Ray's own handler writes to sys.stderr as it is at emit time
        self.handlers, self.propagate = ray_logger.handlers[:], ray_logger.propagate
        ray_logger.handlers = [self.handler]
        ray_logger.propagate = False
        # ray.init reconfigures its loggers, leaving some without handlers: Python's last resort then prints them
        self.last_resort, logging.lastResort = logging.lastResort, self.handler
        return self

    def settle(self, ray) -> None:
        """Move the file into the Ray session's log folder (where Ray keeps its other logs), if there is one here."""
        with contextlib.suppress(Exception):  # no local session folder (a remote cluster): the file stays in /tmp
            logs = Path(ray._private.worker._global_node.get_logs_dir_path())
            target = logs / f"dymesh-driver-{os.getpid()}.err"
            os.replace(self.path, target)
            self.handler.close()
            self.handler.baseFilename = str(target)
            self.path = target

    def route_worker_output(self, keep) -> None:
        """Workers' output lines: those `keep(line)` accepts (from stdout) once on this process's stdout, every line
        in the log file (Ray's own printer, which writes them to the terminal, is taken out)."""
        from ray._private.ray_logging import global_worker_stdstream_dispatcher as dispatcher

        def handle(batch: dict) -> None:
            who = f"({batch.get('actor_name') or batch.get('task_name') or 'worker'} pid={batch.get('pid')})"
            lines = batch.get("lines") or []
            text = "".join(f"{who} {line}\n" for line in lines)
            with contextlib.suppress(OSError):
                os.write(2, text.encode("utf-8", "backslashreplace"))  # descriptor 2 is the log file now
            if not batch.get("is_err"):
                for line in lines:
                    if keep(line):
                        print(line, flush=True)

        dispatcher.remove_handler("ray_print_logs")
        dispatcher.add_handler("dymesh_worker_output", handle)
        self.dispatcher = dispatcher

    def stop(self) -> None:
        if self.dispatcher is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.dispatcher.remove_handler("dymesh_worker_output")
            self.dispatcher = None
        if self.saved_fd is None:
            return
        sys.stderr.flush()
        os.dup2(self.saved_fd, 2)
        os.close(self.saved_fd)
        self.saved_fd = None
        sys.stderr = self.saved_stderr  # the copy stays open: a progress line of a stopping thread may still come
        ray_logger = logging.getLogger("ray")
        ray_logger.handlers, ray_logger.propagate = self.handlers, self.propagate
        logging.lastResort = self.last_resort
        self.handler.close()
