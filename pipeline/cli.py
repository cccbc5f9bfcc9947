"""The `dymesh` command line: one entry point, one sub-command per module in `pipeline.commands`.

Start-up is part of every command's cost: `dymesh COMMAND ...` imports only COMMAND's module (and that module
imports its heavy packages only when it runs); `dymesh --help` imports every command module, none of which
imports more than argparse-level packages at the top.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from pipeline import __version__
from pipeline.errors import EXIT_CLUSTER, EXIT_LOCKED, ClusterError, LockedError, UserError, storage_problem

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
    "verify",
    "preview",
    "caption",
    "aam",
    "train",
    "animate",
)


def command_module(argv: list[str]) -> str | None:
    """The module of the sub-command named in argv (its first word not starting with '-'), if there is one."""
    word = next((a for a in argv if not a.startswith("-")), None)
    name = None if word is None else word.replace("-", "_")
    return name if name in COMMAND_MODULES else None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser with every sub-command, or only the one in module `only` (what running that command needs)."""
    parser = argparse.ArgumentParser(
        prog="dymesh",
        description="DyMesh: build animated-mesh datasets from glTF assets and train on them.",
    )
    parser.add_argument("--version", action="version", version=f"dymesh {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in (only,) if only else COMMAND_MODULES:
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
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(command_module(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        if isinstance(exc, (LockedError, ClusterError)):  # their messages say what to do; their own exit codes
            print(f"dymesh {args.command}: {exc}", file=sys.stderr)
            return EXIT_LOCKED if isinstance(exc, LockedError) else EXIT_CLUSTER
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
