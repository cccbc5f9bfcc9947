"""Files Blender imports (.fbx, .dae, .blend, .abc, .usd*, .obj, .ply, .stl) -> GLB bytes, converted in an isolated
subprocess, then evaluated by the spec-exact glTF evaluator like any other asset.

Blender comes from the optional extra (`pip install -e '.[blender]'`: the `bpy` 4.2.23 wheel, CPython 3.11 only) or
from any Python that has `bpy`, named by DYMESH_BLENDER_PYTHON. The subprocess gets the file alone in a fresh
private folder, a minimal environment (HOME in that folder, so no user config or add-ons), no network (a new
network namespace via `unshare` where the kernel allows it, and an audit hook refusing sockets in any case), caps on
its address space, CPU time and output size (self-applied before Blender loads), a wall-clock timeout, and no
script auto-execution (see blender_convert.py). Every failure is an AssetError with one line saying why.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from stages.evaluate import AssetError, LimitExceeded, Limits, MalformedAsset, UnsupportedAsset
from stages.formats import BLENDER_SUFFIXES  # defined with the other formats: reading a glTF never imports this

SCRIPT = Path(__file__).with_name("blender_convert.py")
# Part of the evaluate stage's hash: bump it whenever blender_convert.py changes what it writes (docs/CHANGES.md).
# 2: FBX takes keep their own timeline (imported with anim_offset 0; Blender's default shifted them by a frame).
CONVERSION_VERSION = 2
ENABLE = ("install the Blender extra: pip install -e '.[blender]' (bpy 4.2.23, Python 3.11 only), or set "
          "DYMESH_BLENDER_PYTHON to a Python that has bpy")
OUTPUT_TAIL_BYTES = 4096
# how running out of the address-space cap shows (Blender maps large libraries at start-up and on first use)
OUT_OF_MEMORY = re.compile(r"failed to map segment|cannot allocate memory|MemoryError|bad_alloc|out of memory", re.I)
MiB = 1024 * 1024


class ConversionFailed(AssetError):
    """Blender could not convert the file within its limits."""

    kind = "conversion"


def blender_python() -> str | None:
    """The interpreter that runs Blender: DYMESH_BLENDER_PYTHON, else this one when it has bpy, else None."""
    named = os.environ.get("DYMESH_BLENDER_PYTHON")
    if named:
        return named
    return sys.executable if importlib.util.find_spec("bpy") is not None else None


@functools.lru_cache(maxsize=1)
def network_isolation() -> tuple[str, ...]:
    """`unshare` arguments that give the subprocess an empty network namespace, or () where that is not allowed."""
    unshare = shutil.which("unshare")
    if not unshare:
        return ()
    for args in ((unshare, "--net"), (unshare, "--map-root-user", "--net")):
        try:
            if subprocess.run([*args, "true"], capture_output=True, timeout=10).returncode == 0:
                return args
        except (OSError, subprocess.SubprocessError):
            continue
    return ()


def convert_to_glb(data: bytes, suffix: str, name: str, limits: Limits = Limits()) -> bytes:
    """GLB bytes of a file Blender imports; ConversionFailed / UnsupportedAsset / LimitExceeded otherwise."""
    suffix = suffix.lower()
    if suffix not in BLENDER_SUFFIXES:
        raise UnsupportedAsset(name, f"{suffix or 'no suffix'} is not a format DyMesh converts with Blender")
    if len(data) > limits.max_file_bytes:
        raise LimitExceeded(name, f"file is {len(data)} bytes, over the {limits.max_file_bytes} byte cap")
    python = blender_python()
    if python is None:
        raise UnsupportedAsset(name, f"{suffix} files are converted with Blender, which is not installed: {ENABLE}")
    with tempfile.TemporaryDirectory(prefix="dymesh-blender-") as folder:
        source, target, log = Path(folder, "input" + suffix), Path(folder, "output.glb"), Path(folder, "log.txt")
        source.write_bytes(data)
        timeout = max(1.0, float(limits.convert_timeout_s))
        cpu_seconds = int(timeout * (os.cpu_count() or 1)) + 1  # a backstop: Blender's threads share it
        command = [*network_isolation(), python, "-I", "-B", str(SCRIPT), str(source), str(target),
                   str(int(limits.convert_memory_mb) * MiB), str(cpu_seconds), str(limits.max_file_bytes)]
        environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": folder, "TMPDIR": folder,
                       "LANG": "C.UTF-8", "PYTHONNOUSERSITE": "1", "OMP_NUM_THREADS": "1"}
        with open(log, "wb") as output:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                       cwd=folder, env=environment, start_new_session=True)
            try:
                code = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill(process)
                raise ConversionFailed(name, f"Blender did not finish within evaluate.convert_timeout_s="
                                             f"{timeout:g}s; the conversion was killed") from None
            finally:
                _kill(process)
        result = _result(log)
        if code == 0 and result.get("ok") and target.is_file():
            size = target.stat().st_size
            if size > limits.max_file_bytes:
                raise LimitExceeded(name, f"converted GLB is {size} bytes, over the {limits.max_file_bytes} cap")
            return target.read_bytes()
        raise _failure(name, code, result, limits)


def _kill(process: subprocess.Popen) -> None:
    """Kill the subprocess's whole session (Blender may start helper threads or processes)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        process.wait()


def _result(log: Path) -> dict:
    with open(log, "rb") as handle:
        handle.seek(max(0, log.stat().st_size - OUTPUT_TAIL_BYTES))
        tail = handle.read().decode("utf-8", "replace")
    for line in reversed(tail.splitlines()):
        if line.startswith("DYMESH-RESULT "):
            try:
                return json.loads(line[len("DYMESH-RESULT "):])
            except ValueError:
                break
    last = [line for line in tail.splitlines() if line.strip()][-1:] or [""]
    return {"ok": False, "error": "", "message": last[0][-300:]}


def _failure(name: str, code: int, result: dict, limits: Limits) -> AssetError:
    signals = {-signal.SIGKILL: "was killed", -signal.SIGXCPU: "ran over its CPU time",
               -signal.SIGXFSZ: "wrote more than the output cap", -signal.SIGSEGV: "crashed (segmentation fault)",
               -signal.SIGABRT: "aborted"}
    message = result.get("message", "")
    if result.get("error") == "memory" or OUT_OF_MEMORY.search(message):
        return LimitExceeded(name, f"Blender ran out of evaluate.convert_memory_mb={limits.convert_memory_mb}")
    if code == -signal.SIGXFSZ:
        return LimitExceeded(name, f"Blender's output passed the {limits.max_file_bytes} byte cap")
    if code < 0:
        detail = result.get("message") or ""
        return ConversionFailed(name, f"Blender {signals.get(code, f'died of signal {-code}')} (memory cap "
                                      f"{limits.convert_memory_mb} MiB){': ' + detail if detail else ''}")
    what = result.get("error") or f"exit code {code}"
    return MalformedAsset(name, f"Blender could not convert it ({what}: {result.get('message', '')})")
