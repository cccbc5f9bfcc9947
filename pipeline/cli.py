"""The `dymesh` command line: one entry point, one sub-command per module in `pipeline.commands`."""

from __future__ import annotations

import argparse
import importlib
import sys

from pipeline import __version__
from pipeline.errors import UserError

# Order is the order shown in `dymesh --help`.
COMMAND_MODULES = (
    "generate",
    "inspect",
    "evaluate",
    "resample",
    "run",
    "status",
    "stats",
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
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"dymesh {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dymesh {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
