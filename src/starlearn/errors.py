"""Errors starlearn raises for problems with the user's input (not bugs).

Every one of them is an :class:`InputError` (and also the builtin exception a Python user
would expect: a ValueError for a file that cannot be read, a FileExistsError for a locked
output ...). The command line prints an InputError as ``Error: <file>: <reason>`` with exit
status 1 and no traceback (``STARLEARN_DEBUG=1`` shows it); anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

__all__ = ["InputError", "NothingPredictedError"]


class InputError(Exception):
    """Base of the errors about the user's input: a file, an option, a model folder, an
    output in use; the message names the thing and what is wrong with it."""


class NothingPredictedError(InputError, RuntimeError):
    """Not one input of a run could be predicted (the first reason is in the message, all
    of them in the rejects table)."""
