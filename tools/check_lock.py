"""Check that requirements.lock resolves, wheels only, on every supported Python (needs a package index).

    python tools/check_lock.py [--python 3.11 3.12 3.13] [--torch-index URL] [--keep DIR]

For each Python version, pip's own resolver runs on the lock as a user's machine would see it
(`pip install --dry-run --ignore-installed --only-binary=:all: --python-version V --platform manylinux...`)
and the resolved set must equal the lock: every package pinned, at the pinned version, nothing extra.
Pins published only as source (GPUtil) are built into wheels first, so "wheels only" holds for the rest.
The CPU torch build (`torch==X+cpu`) lives on the PyTorch CPU index (--torch-index); where that index
cannot be reached, the lock is resolved with the CPU build's own requirements in place of torch (read
from the torch installed here) and the torch line is reported as not checked. Exit 1 when any version
fails to resolve or the resolved set differs from the lock.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
PYTHONS = ("3.11", "3.12", "3.13")
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# manylinux tags pip accepts on a glibc 2.28+ x86-64 Linux, newest first (pip does not expand --platform itself).
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux_2_12_x86_64", "manylinux2010_x86_64", "manylinux_2_5_x86_64",
             "manylinux1_x86_64")
SOURCE_ONLY = ("GPUtil",)  # pins with no wheel on the index: built here (pure Python) before resolving


def read_lock(path: Path) -> dict[str, str]:
    """{canonical name: version} of the `name==version` lines of a pip lock file."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    return pins


def pip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, check=check)


def torch_cpu_wheel(version: str, python: str, index: str, scratch: Path) -> str:
    """Where pip finds the CPU torch wheel for `python` (its file name), or why it does not."""
    report = scratch / f"torch-{python}.json"
    result = pip("install", "--dry-run", "--ignore-installed", "--no-deps", "--only-binary=:all:", "--python-version",
                 python, *[a for p in PLATFORMS for a in ("--platform", p)], "--extra-index-url", index, "--retries",
                 "0", "--timeout", "10", "--report", str(report), f"torch=={version}", check=False)
    if result.returncode != 0:
        return f"NOT found (from {index} or the configured indexes)"
    [item] = json.loads(report.read_text())["install"]
    return "found: " + item["download_info"]["url"]


def torch_requirements(python: str) -> list[str]:
    """The installed torch's own requirements (no extras) whose markers hold on `python`."""
    environment = {"python_version": python, "python_full_version": f"{python}.0", "extra": ""}
    requirements = [Requirement(r) for r in metadata.requires("torch") or []]
    return [str(r.name) + str(r.specifier) for r in requirements
            if r.marker is None or r.marker.evaluate(environment)]


def resolve(lock: dict[str, str], python: str, scratch: Path) -> dict[str, str]:
    """Resolve the lock for `python`, the CPU torch build replaced by its requirements; {name: version} resolved."""
    lines = []
    for name, version in lock.items():
        if name == "torch" and "+cpu" in version:
            lines.extend(torch_requirements(python))  # the CPU wheel itself is looked up by torch_cpu_wheel
        else:
            lines.append(f"{name}=={version}")
    requirements = scratch / f"lock-{python}.txt"
    requirements.write_text("\n".join(lines) + "\n")
    report = scratch / f"report-{python}.json"
    result = pip("install", "--dry-run", "--ignore-installed", "--only-binary=:all:", "--python-version", python,
                 *[a for p in PLATFORMS for a in ("--platform", p)], "--find-links", str(scratch / "wheels"),
                 "--report", str(report), "-r", str(requirements), check=False)
    if result.returncode != 0:
        errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
        raise RuntimeError("; ".join(errors[-2:]) or result.stderr.strip()[-400:])
    installed = json.loads(report.read_text())["install"]
    return {canonicalize_name(i["metadata"]["name"]): i["metadata"]["version"] for i in installed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lock", type=Path, default=REPO / "requirements.lock")
    parser.add_argument("--python", nargs="+", default=list(PYTHONS))
    parser.add_argument("--torch-index", default=TORCH_CPU_INDEX)
    parser.add_argument("--keep", type=Path, help="keep the requirement files and pip reports here")
    args = parser.parse_args()
    lock = read_lock(args.lock)
    failed = False
    with tempfile.TemporaryDirectory(prefix="dymesh-lock-") as temporary:
        scratch = args.keep or Path(temporary)
        scratch.mkdir(parents=True, exist_ok=True)
        for name in SOURCE_ONLY:
            key = canonicalize_name(name)
            if key in lock:
                pip("wheel", "--no-deps", "-q", "-w", str(scratch / "wheels"), f"{name}=={lock[key]}")
        for python in args.python:
            try:
                resolved = resolve(lock, python, scratch)
            except RuntimeError as exc:
                print(f"Python {python}: does NOT resolve: {exc}")
                failed = True
                continue
            torch = lock.get("torch", "")
            note = f"torch {torch}: {torch_cpu_wheel(torch, python, args.torch_index, scratch)}" if "+cpu" in torch else ""
            failed |= "NOT found" in note
            expected = {n: v for n, v in lock.items() if not (n == "torch" and "+cpu" in v)}
            extra = sorted(f"{n}=={v}" for n, v in resolved.items() if n not in expected)
            missing = sorted(n for n in expected if n not in resolved)
            moved = sorted(f"{n} {expected[n]} -> {v}" for n, v in resolved.items()
                           if n in expected and v != expected[n])
            ok = not (extra or missing or moved)
            failed |= not ok
            print(f"Python {python}: {'resolves' if ok else 'DIFFERS from the lock'}, {len(resolved)} wheels"
                  + (f"; not pinned: {extra}" if extra else "") + (f"; not pulled in: {missing}" if missing else "")
                  + (f"; other versions: {moved}" if moved else "") + (f"; {note}" if note else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
