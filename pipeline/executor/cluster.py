"""Joining a Ray cluster: check the address before anything starts, and say so in one line when the cluster goes.

    address = join_address("auto")     # host:port of a cluster that answers, with this process set up to join it

`auto` means the cluster last started on this machine with `ray start --head` (Ray records it in
<ray temp dir>/ray_current_cluster); Ray's own fallback, any Ray process found on the machine (another program's
private Ray, which ends with that program), is never used. Before joining, one gRPC call to the cluster's GCS says
whether anything answers and whether it wants a token: Ray 2.60 clusters started where a token exists
(~/.ray/auth_token, written by any local `ray.init`) use token authentication, and a driver given an explicit
address would otherwise retry `InvalidAuthToken` for half a minute and fail. When the cluster wants a token and one
is set here (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token), this process joins with it.

Ray's core worker ends the driver process at once (no exception, exit status 1) when its node goes away, so a small
watcher process (`LossWatch`) outlives the driver: when the driver ends without saying it is done and the cluster
(or this machine's node) no longer answers, the watcher prints the one-line error.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from pipeline.errors import ClusterError

PROBE_S = 5.0  # how long a cluster may take to answer (one just started with `ray start` needs a few seconds)
DEFAULT_PORT = 6379


def recorded_address() -> tuple[str | None, Path]:
    """(address of the cluster last started here with `ray start --head`, or None; the file Ray records it in)."""
    from ray._common.utils import get_ray_address_file

    path = Path(get_ray_address_file(None))
    with contextlib.suppress(OSError):
        return path.read_text().strip() or None, path
    return None, path


def resolve(address: str) -> str:
    """host:port for `address` (`auto`: the cluster of the last `ray start --head` on this machine)."""
    address = address.strip()
    if address.startswith("ray://"):
        raise ClusterError(f"--address {address}: Ray Client addresses are not supported; run dymesh on a node of "
                           "the cluster and give the head's HOST:PORT (the GCS port, 6379 unless `ray start "
                           "--head --port` said otherwise)")
    if address == "auto":
        recorded, path = recorded_address()
        if not recorded:
            raise ClusterError("--address auto: no Ray cluster was started on this machine with `ray start --head` "
                               f"(nothing in {path}); start one (ray start --head --port 6390) or give the "
                               "cluster's address (--address HOST:PORT); without --address dymesh starts its own "
                               "local Ray")
        return recorded
    host, _, port = address.rpartition(":")
    if not host:
        return f"{address}:{DEFAULT_PORT}"
    if not port.isdigit():
        raise ClusterError(f"--address {address}: expected HOST:PORT (the head's GCS port, e.g. 127.0.0.1:6390) "
                           "or auto")
    return address


def local_token() -> tuple[str | None, str]:
    """(the `authorization` header value of the Ray token set on this machine, or None; where tokens are read)."""
    from ray._raylet import AuthenticationTokenLoader

    loader = AuthenticationTokenLoader.instance()
    loader.reset_cache()
    header = loader.get_token_for_http_header(ignore_auth_mode=True) or {}
    where = ("RAY_AUTH_TOKEN" if os.environ.get("RAY_AUTH_TOKEN") else
             os.environ.get("RAY_AUTH_TOKEN_PATH") or str(Path.home() / ".ray" / "auth_token"))
    return header.get("authorization"), where


def probe(address: str, token: str | None = None, timeout: float = PROBE_S, wait: bool = True) -> str:
    """What the GCS at `address` says to one call: "ok", "token" (it wants a (different) token), "down" (nothing
    answers within `timeout`; `wait=False`: nothing listens now) or "other: <status>"."""
    import grpc
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    metadata = [("authorization", token)] if token else None
    with grpc.insecure_channel(address) as channel:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        try:
            stub.GetClusterId(gcs_service_pb2.GetClusterIdRequest(), timeout=timeout, metadata=metadata,
                              wait_for_ready=wait)
        except grpc.RpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.UNAUTHENTICATED:
                return "token"
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                return "down"
            return f"other: {code.name} {exc.details() or ''}".strip()
    return "ok"


def join_address(address: str, timeout: float = PROBE_S) -> str:
    """The host:port to pass to ray.init for `address`, after checking that a Ray cluster answers there and setting
    this process up for its authentication; raises ClusterError (one line saying what to do) otherwise."""
    resolved = resolve(address)
    found = " (the cluster of the last `ray start --head` here, found by --address auto)" if address == "auto" else ""
    answer = probe(resolved, timeout=timeout)
    if answer == "down":
        raise ClusterError(f"no Ray cluster answers at {resolved}{found} (waited {timeout:.0f} s): start one there "
                           f"(ray start --head --port {resolved.rpartition(':')[2]}) or check the address and the "
                           "firewall; without --address (and RAY_ADDRESS, run.address) dymesh starts its own "
                           "local Ray")
    if answer.startswith("other"):
        raise ClusterError(f"the service at {resolved} is not a Ray {ray_version()} cluster's GCS ({answer}); give "
                           "the head's GCS address (`ray start --head --port PORT`, default 6379)")
    if answer == "token":
        token, where = local_token()
        mode = os.environ.get("RAY_AUTH_MODE", "").lower()
        if token is None:
            raise ClusterError(f"the Ray cluster at {resolved} uses token authentication and no token is set here: "
                               "print the head's token there (ray get-auth-token) and set it here as RAY_AUTH_TOKEN "
                               "(or in ~/.ray/auth_token), then run again")
        if mode == "disabled":
            raise ClusterError(f"the Ray cluster at {resolved} uses token authentication but RAY_AUTH_MODE=disabled "
                               "is set here: unset it (or set RAY_AUTH_MODE=token), then run again")
        if probe(resolved, token, timeout) == "token":
            raise ClusterError(f"the Ray cluster at {resolved} refuses this machine's token (from {where}): set "
                               "RAY_AUTH_TOKEN to the head's token (ray get-auth-token, run on the head), then run "
                               "again")
        if mode != "token":
            from ray._private.authentication.authentication_token_setup import _enable_token_auth

            _enable_token_auth()  # RAY_AUTH_MODE=token for this process (and the Ray processes it starts)
    return resolved


def ray_version() -> str:
    import ray

    return ray.__version__


def one_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (Ray's are long)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def node_answers(raylet_socket: str | None) -> bool:
    """This machine's Ray node (its raylet's socket) still accepts connections (True when there is none to ask)."""
    if not raylet_socket:
        return True
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2.0)
        try:
            sock.connect(raylet_socket)
        except OSError:
            return False
    return True


def gone_message(address: str, log: str | None) -> str:
    """The one line (after `dymesh CMD: `) for a cluster that went away during a run."""
    where = f"; Ray's messages are in {log}" if log else ""
    return (f"the Ray cluster at {address} went away during the run (its head, or this machine's Ray "
            f"node, stopped); everything committed so far is kept: start the cluster again and re-run the same "
            f"command to resume{where}")


def cluster_gone(address: str, raylet_socket: str | None = None) -> bool:
    """This machine's node of the cluster at `address`, or its head, no longer answers."""
    if not node_answers(raylet_socket):
        return True
    with contextlib.suppress(Exception):
        return probe(address, timeout=3.0, wait=False) == "down"  # a token is not needed to see it answer
    return False


class LossWatch:
    """A watcher process that prints `gone_message` if this driver ends without `done()` and the cluster is gone."""

    def __init__(self, command: str, address: str):
        self.command, self.address = command, address
        self.process: subprocess.Popen | None = None
        self.pipe: int | None = None

    def start(self, raylet_socket: str | None, log: str | None, stderr_fd: int) -> LossWatch:
        read, self.pipe = os.pipe()  # not inherited by anything else this process starts (os.pipe is CLOEXEC)
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH"))
                                                           if p),
                   DYMESH_LOSS_WATCH=json.dumps([self.command, self.address, raylet_socket, log]))
        # what it watches goes in the environment: a command line naming Ray's folders would be matched (and
        # killed) by tools that stop a cluster's processes by name
        self.process = subprocess.Popen([sys.executable, "-m", "pipeline.executor.cluster"], stdin=read,
                                        stdout=subprocess.DEVNULL, stderr=stderr_fd, env=env, start_new_session=True)
        os.close(read)
        return self

    def done(self) -> None:
        """The driver ends on its own terms: the watcher exits quietly."""
        if self.pipe is None:
            return
        with contextlib.suppress(OSError):
            os.write(self.pipe, b"done")
        os.close(self.pipe)
        self.pipe = None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


def watch(command: str, address: str, raylet_socket: str | None, log: str | None) -> int:
    """The watcher: wait for the driver to end; print the one line if it ended abruptly with its cluster gone."""
    import grpc  # noqa: F401  (imported now, so that the line follows the driver's end at once)
    from ray.core.generated import gcs_service_pb2_grpc  # noqa: F401

    said = sys.stdin.buffer.read()  # returns when the driver closes its end, whichever way it ends
    if said == b"done":
        return 0
    if cluster_gone(address, raylet_socket):
        print(f"{command}: {gone_message(address, log)}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(watch(*json.loads(os.environ["DYMESH_LOSS_WATCH"])))
