"""Errors the CLI turns into exit code 2; kept free of heavy imports for a fast start-up."""


class UsageError(Exception):
    """A usage or configuration problem: the CLI prints this message and exits with code 2."""
