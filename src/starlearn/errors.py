"""Errors starlearn raises for problems with the user's input (not bugs), and the
warnings about input it repaired.

Every one of them is an :class:`InputError` (and also the builtin exception a Python user
would expect: a ValueError for a file that cannot be read, a FileExistsError for a locked
output, an ImportError for an optional package that is not installed ...). The command
line prints an InputError as ``Error: <file>: <reason>`` with exit status 1 and no
traceback (``STARLEARN_DEBUG=1`` shows it); anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

__all__ = ["InputError", "MissingExtraError", "NothingPredictedError", "ResampledWarning"]


class InputError(Exception):
    """Base of the errors about the user's input: a file, an option, a model folder, an
    output in use; the message names the thing and what is wrong with it."""


class MissingExtraError(InputError, ImportError):
    """An optional package that a command or function needs is not installed; the message
    names the package and the ``pip install 'starlearn[<extra>]'`` that brings it
    (see :func:`starlearn._extras.require`, and ``docs/install.md`` for the extras).

    Attributes
    ----------
    name : str
        The module that could not be imported (as :class:`ImportError` has it).
    package : str
        The pip package that provides it (``imbalanced-learn`` for ``imblearn``).
    extra : str
        The starlearn extra that installs it (``search``, ``onnx`` ...).
    """

    def __init__(self, message: str, *, name: str | None = None, package: str | None = None,
                 extra: str | None = None) -> None:
        super().__init__(message, name=name)
        self.package = package
        self.extra = extra


class NothingPredictedError(InputError, RuntimeError):
    """Not one input of a run could be predicted (the first reason is in the message, all
    of them in the rejects table)."""


class ResampledWarning(UserWarning):
    """Input spectra on another wavelength grid than the model's were resampled onto it
    (:meth:`starlearn.estimators.base.ArtifactEstimator.prepare_inputs`).

    Attributes
    ----------
    grid : str
        The input spectra's grid as the message names it (``"3899 pixels,
        3700.0-9078.2 A"``), so that a batch run can count the spectra per input grid.
    """

    def __init__(self, message: str, *, grid: str) -> None:
        super().__init__(message)
        self.grid = grid
