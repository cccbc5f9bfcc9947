"""One module per `dymesh` sub-command.

Each module defines `register(subparsers)` which adds its parser and sets `func` (taking the parsed
arguments, returning an exit code). Modules import heavy packages (numpy is fine; ray, torch,
pyarrow, duckdb are not) only inside the function that runs the command, so `dymesh --help` is fast.
"""
