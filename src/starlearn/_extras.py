"""Optional dependencies: import one where a command needs it, or name the extra to install.

``pip install starlearn`` gives reading, preprocessing, training and prediction. The
packages that serve one command each are optional extras (``docs/install.md`` lists
them). Their imports live inside the functions that use them, never at module level,
so that ``import starlearn``, ``starlearn --help`` and every core command work without
them; each such import goes through :func:`require`, which turns a missing package into
a :class:`~starlearn.errors.MissingExtraError` naming the extra:

    starlearn search needs optuna: pip install 'starlearn[search]'

Accelerators with a fallback (fitsio: astropy reads the same files) and the quiet
choices of ``engine="auto"`` (ONNX Runtime when installed, torch otherwise) do not call
:func:`require`: they ask whether the package imports and go on without it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from starlearn.errors import MissingExtraError

__all__ = ["PACKAGES", "missing", "require"]

PACKAGES = {
    "dask.distributed": "dask[distributed]",
    "gaiaxpy": "GaiaXPy",
    "imblearn": "imbalanced-learn",
    "psycopg2": "psycopg2-binary",
}
"""The pip package of an optional module whose name differs from it (the message names
the package a user would look for)."""


def missing(module: str, *, extra: str, what: str) -> MissingExtraError:
    """The error (not raised) saying that ``what`` needs ``module`` and which extra
    installs it: ``"<what> needs <package>: pip install 'starlearn[<extra>]'"``."""
    package = PACKAGES.get(module, module)
    return MissingExtraError(f"{what} needs {package}: pip install 'starlearn[{extra}]'",
                             name=module, package=package, extra=extra)


def require(module: str, *, extra: str, what: str) -> ModuleType:
    """Import ``module`` and return it, or raise :class:`MissingExtraError` naming the
    starlearn ``extra`` that installs it.

    Parameters
    ----------
    module : str
        Dotted module name (``"optuna"``, ``"dask.distributed"``).
    extra : str
        The extra of ``pyproject.toml`` that brings it (``"search"``).
    what : str
        What needs it, as the user asked for it (``"starlearn search"``,
        ``"engine='onnx'"``): the message starts with it.

    Raises
    ------
    MissingExtraError
        ``module`` (or a package it needs) cannot be imported; it is also an
        ImportError and an :class:`~starlearn.errors.InputError` (the command line prints
        it as ``Error: <message>``), and the ImportError is its ``__cause__``.

    Examples
    --------
    >>> require("json", extra="search", what="this example").__name__
    'json'
    >>> try:
    ...     require("no_such_module_xyz", extra="search", what="starlearn search")
    ... except MissingExtraError as err:
    ...     print(err)
    starlearn search needs no_such_module_xyz: pip install 'starlearn[search]'
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise missing(module, extra=extra, what=what) from err
