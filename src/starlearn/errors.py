"""Errors starlearn raises for problems with the user's input (not bugs).

The command line prints these as ``Error: <file>: <reason>`` with exit status 1; in
Python they are ordinary exceptions. :class:`starlearn.io.ReadError` (a ValueError) is
the one for files that cannot be read.
"""

from __future__ import annotations

__all__ = ["NothingPredictedError"]


class NothingPredictedError(RuntimeError):
    """Not one input of a run could be predicted (the first reason is in the message, all
    of them in the rejects table)."""
