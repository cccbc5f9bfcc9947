"""`dymesh run JOB.yaml [--out DIR] [--address ADDR] [--retry-failed]`: run a job spec end to end (resumable,
idempotent, one run per output folder).

Exit codes: 0 done; 1 the job failed (a whole source gave nothing, no clips, a stall, the caption stage) and says
why; 2 a usage error; 3 another run holds the output folder; 69 the Ray cluster does not answer, refuses this
machine or went away (docs/cluster.md); 73 permission denied / read-only; 74 disk full.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pipeline.errors import UserError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run", help="run a job spec: harvest -> evaluate -> resample -> caption -> shard",
        description="Run a job spec end to end on a local Ray (default) or a cluster. Re-running the same "
                    "command resumes a killed run, retries transient failures (network, time limits, memory) and "
                    "does nothing for a finished job. One run at a time per output folder.")
    parser.add_argument("job", help="job spec YAML (see jobs/)")
    parser.add_argument("--out", help="output folder (default: out/<job name>)")
    parser.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, then the job's "
                                          "run.address, else a local Ray started for this run)")
    parser.add_argument("--retry-failed", action="store_true",
                        help="also retry the permanent failures of committed units (malformed, over a limit, ...)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--verbose", action="store_true",
                        help="show Ray's own messages too (else they go to the Ray session's log folder)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from pipeline.commands.status import print_summary
    from pipeline.config import load_job
    from pipeline.errors import CaptionWorkerError, StalledError
    from pipeline.runner import Runner
    from pipeline.summary import failures

    job = load_job(args.job)
    if args.out and "://" in args.out:
        raise UserError(f"--out {args.out}: a dataset run writes to a local folder (object stores: copy the "
                        "finished folder, or point the shard stage there)")
    out = Path(args.out or Path("out") / job.name)
    address = args.address or os.environ.get("RAY_ADDRESS") or job.run.address
    if address:  # a cluster that does not answer or refuses this machine: one line now, before any work
        from pipeline.executor.cluster import join_address

        join_address(address)
    runner = Runner(job, out, address=args.address, show_progress=not args.quiet, retry_failed=args.retry_failed,
                    verbose=args.verbose)
    try:
        summary = runner.run()
    except StalledError as exc:
        print(f"dymesh run: stalled: {exc}", file=sys.stderr)
        return 1
    except CaptionWorkerError as exc:
        print(f"dymesh run: caption stage failed: {exc}", file=sys.stderr)
        return 1
    print_summary(out, summary)
    problems = failures(summary, job.sources)
    for problem in problems:
        print(f"dymesh run: failed: {problem}", file=sys.stderr)
    return 1 if problems else 0
