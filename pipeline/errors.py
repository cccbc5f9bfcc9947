"""Exceptions shared by the CLI and the runner."""


class UserError(Exception):
    """An error the user can fix (bad path, bad job spec); printed as one line, no traceback."""
