"""`dymesh run JOB.yaml [--out DIR] [--address ADDR]`: run a job spec end to end (resumable, idempotent)."""

from __future__ import annotations

import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run", help="run a job spec: harvest -> evaluate -> resample -> caption -> shard",
        description="Run a job spec end to end on a local Ray (default) or a cluster. Re-running the same "
                    "command resumes a killed run and does nothing for a finished one.")
    parser.add_argument("job", help="job spec YAML (see jobs/)")
    parser.add_argument("--out", help="output folder (default: out/<job name>)")
    parser.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, then the job's "
                                          "run.address, else a local Ray started for this run)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.set_defaults(func=run)


def run(args) -> int:
    from pipeline.config import load_job
    from pipeline.errors import CaptionWorkerError, StalledError
    from pipeline.runner import Runner
    from pipeline.commands.status import print_summary

    job = load_job(args.job)
    out = Path(args.out or Path("out") / job.name)
    runner = Runner(job, out, address=args.address, show_progress=not args.quiet)
    try:
        summary = runner.run()
    except StalledError as exc:
        print(f"dymesh run: stalled: {exc}", file=sys.stderr)
        return 1
    except CaptionWorkerError as exc:
        print(f"dymesh run: caption stage failed: {exc}", file=sys.stderr)
        return 1
    print_summary(out, summary)
    return 0
