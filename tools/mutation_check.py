"""Mutation check: break chosen lines of product code, one at a time, and run the test that must catch each.

    python tools/mutation_check.py [--only NAME ...] [--keep]

In a scratch copy of the checkout (tracked and untracked, not ignored, files; the checkout itself is never
touched) each mutation replaces one line's text by a broken one; the named test must then FAIL (killed). Before
the mutations, every named test is run once on the unbroken copy and must pass (else its failure proves nothing).
Prints a table mutation -> test -> killed/survived and exits 1 if any mutation survives, its line is gone
(stale: the code changed; choose the line again), or a test fails unmutated. docs/testing.md has the last table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from checkout import copy_checkout  # noqa: E402  (the tests' helper: the same copy the docs and cluster tests run in)


@dataclass(frozen=True)
class Mutation:
    """One broken line: `old` (found exactly once in `path`) becomes `new`; `test` (a pytest node id) must fail."""

    name: str
    path: str
    old: str
    new: str
    test: str


MUTATIONS = [
    Mutation("harvest: size cap off by one", "stages/harvest/item.py",
             "        if total > cap:\n", "        if total > cap + 1:\n",
             "tests/test_harvest.py::test_a_download_without_a_length_is_capped_while_it_streams"),
    Mutation("untrusted files: a file of exactly the cap refused", "stages/untrusted_files.py",
             "    if size > cap and not allow_more:", "    if size >= cap and not allow_more:",
             "tests/test_harvest.py::test_size_cap_and_empty_files_are_error_rows"),
    Mutation("untrusted files: no symlink-out-of-root check", "stages/untrusted_files.py",
             "and not follow_links and not inside(target, real_root):", "and not follow_links and False:",
             "tests/test_evaluate_broken.py::test_symlink_out_of_the_folder_is_refused"),
    Mutation("harvest: Objaverse-XL sha256 not verified", "stages/harvest/objaverse_xl.py",
             'and digest != row["sha256"].lower():', 'and False:',
             "tests/test_sources_objaverse_xl.py"),
    Mutation("evaluate: slerp takes the long way (quaternion sign)", "stages/evaluate/interpolation.py",
             "    q1 = np.where(dot < 0, -q1, q1)", "    q1 = np.where(dot > 0, -q1, q1)",
             "tests/test_evaluate_reference.py"),
    Mutation("resample: window cutter drops the last window", "stages/resample/timeline.py",
             "range(0, total - length + 1, stride or length)", "range(0, total - length, stride or length)",
             "tests/test_resample_steps.py::test_window_boundaries"),
    Mutation("runner: no folder lock", "pipeline/lock.py",
             "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)", "pass",
             "tests/test_run_lock.py::test_a_second_holder_is_refused_naming_the_first"),
    Mutation("runner: a skipped row wins over a failed one", "pipeline/accounting.py",
             'return "failed" if "failed" in statuses else "skipped" if statuses else None',
             'return "skipped" if "skipped" in statuses else "failed" if statuses else None',
             "tests/test_pipeline_mechanics.py::test_account_gives_every_item_exactly_one_outcome"),
    Mutation("runner: a finished unit is never seen as done", "pipeline/manifest.py",
             "        return self.marker(stage, stage_hash, unit).is_file()",
             "        return False",
             "tests/test_pipeline_mechanics.py::test_markers_commit_units"),
    Mutation("config: hash text not canonical (key order)", "pipeline/config.py",
             '"upstream": upstream}, sort_keys=True)', '"upstream": upstream}, sort_keys=False)',
             "tests/test_config.py::test_demo_stage_hashes_are_pinned"),
    Mutation("untrusted_json: depth limit off by one", "stages/untrusted_json.py",
             "        if depth > limit:", "        if depth > limit + 1:",
             "tests/hostile/test_hostile_documents.py::test_json_depth_bound_is_exact_and_constants_are_refused"),
    Mutation("safe_pickle: any global allowed", "stages/shard/safe_pickle.py",
             "            return self._globals[(module, name)]",
             "            return self._globals.get((module, name)) or super().find_class(module, name)",
             "tests/hostile/test_hostile_aam.py"),
]


def run_test(copy: Path, test: str, timeout_s: float) -> tuple[int, float]:
    """(pytest's exit code, seconds) of `test` in the scratch copy; 124 when it ran over `timeout_s`."""
    shared = Path(os.environ.get("DYMESH_SHARED", REPO.parent / "shared")).resolve()
    env = dict(os.environ, PYTHONPATH=str(copy), DYMESH_SHARED=str(shared), RAY_USAGE_STATS_ENABLED="0",
               PYTHONDONTWRITEBYTECODE="1")
    started = time.monotonic()
    try:
        code = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", test], cwd=copy,
                              env=env, capture_output=True, timeout=timeout_s).returncode
    except subprocess.TimeoutExpired:
        code = 124
    return code, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="run only the mutations whose name contains one of these")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copy (its path is printed)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per test run")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if not args.only or any(word in m.name for word in args.only)]
    copy = Path(tempfile.mkdtemp(prefix="dymesh-mutation-"))
    rows, bad = [], 0
    try:
        copy_checkout(copy)
        baseline = {}
        for test in dict.fromkeys(m.test for m in chosen):
            baseline[test] = run_test(copy, test, args.timeout)[0]
        for mutation in chosen:
            path = copy / mutation.path
            original = path.read_text()
            if original.count(mutation.old) != 1:
                verdict, seconds = "STALE (line not found once: choose it again)", 0.0
            elif baseline[mutation.test] != 0:
                verdict, seconds = f"TEST FAILS UNMUTATED (exit {baseline[mutation.test]})", 0.0
            else:
                path.write_text(original.replace(mutation.old, mutation.new))
                try:
                    code, seconds = run_test(copy, mutation.test, args.timeout)
                finally:
                    path.write_text(original)
                verdict = "killed" if code == 1 else "SURVIVED" if code == 0 else f"ERROR (pytest exit {code})"
            bad += verdict != "killed"
            rows.append((mutation.name, f"{mutation.path}", mutation.test, verdict, seconds))
            print(f"{verdict:>9}  {mutation.name}", file=sys.stderr, flush=True)
    finally:
        if args.keep:
            print(f"scratch copy kept: {copy}", file=sys.stderr)
        else:
            shutil.rmtree(copy, ignore_errors=True)
    print("| mutation | file | test | result | s |")
    print("|---|---|---|---|---:|")
    for name, path, test, verdict, seconds in rows:
        print(f"| {name} | `{path}` | `{test}` | {verdict} | {seconds:.0f} |")
    print(f"\n{len(rows) - bad} of {len(rows)} mutations killed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
