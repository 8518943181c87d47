"""Domain errors. The command line turns each into a one-line message and an exit code."""

from __future__ import annotations


class HotlineError(Exception):
    """Base of every error a user can cause or fix (bad input file, unreachable broker, …)."""


class UsageError(HotlineError):
    """A bad argument value that argparse could not catch (a month string, a missing file)."""


class StoreError(HotlineError):
    """The store cannot be opened or written."""


class SourceError(HotlineError):
    """An event source (file, Kafka) cannot be read or reached."""


class OutputError(HotlineError):
    """An output file or standard output cannot be written (full disk, no permission, …)."""
