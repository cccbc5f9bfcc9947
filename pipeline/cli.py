"""The `dymesh` command line: one entry point, one sub-command per module in `pipeline.commands`."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from pipeline import __version__
from pipeline.errors import EXIT_CLUSTER, EXIT_LOCKED, ClusterError, UserError, storage_problem
from pipeline.lock import LockedError

# Order is the order shown in `dymesh --help`.
COMMAND_MODULES = (
    "generate",
    "generate_sources",
    "inspect",
    "evaluate",
    "resample",
    "run",
    "status",
    "stats",
    "report",
    "gc",
    "preview",
    "caption",
    "aam",
    "train",
    "animate",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dymesh",
        description="DyMesh: build animated-mesh datasets from glTF assets and train on them.",
    )
    parser.add_argument("--version", action="version", version=f"dymesh {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"pipeline.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"pipeline.commands.{name}":
                continue  # command not built in this checkout
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        try:
            return _dispatch(argv)
        finally:
            sys.stdout.flush()  # a reader that closed early (`| head`) shows up here, not at interpreter exit
    except BrokenPipeError:
        return _reader_went_away()


def _dispatch(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except LockedError as exc:
        print(f"dymesh {args.command}: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except ClusterError as exc:
        print(f"dymesh {args.command}: {exc}", file=sys.stderr)
        return EXIT_CLUSTER
    except UserError as exc:
        print(f"dymesh {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk or a permission problem anywhere: one line, no traceback
        problem = storage_problem(exc)
        if problem is None:
            raise
        print(f"dymesh {args.command}: {problem[1]}", file=sys.stderr)
        return problem[0]
    except KeyboardInterrupt:
        print(f"dymesh {args.command}: interrupted", file=sys.stderr)
        return 130


def _reader_went_away() -> int:
    """The reader of stdout closed it (`dymesh status OUT | head -1`): stop quietly, exit as SIGPIPE would (141)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush of stdout must not raise again
    os.close(devnull)
    return 128 + 13


if __name__ == "__main__":
    sys.exit(main())
