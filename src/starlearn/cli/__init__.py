"""The ``starlearn`` command: thin verbs over the library (parse, call, print).

One module per family of commands, each registering its commands on the group in
:mod:`starlearn.cli._group`; the modules never import each other, and whatever a command
does beyond parsing options and printing lives in :mod:`starlearn.jobs` or below.
"""

from starlearn.cli import data, explore, models, report, search, train  # noqa: F401 (registers)
from starlearn.cli._group import EXIT_REJECTED, describe_os_error, main

__all__ = ["EXIT_REJECTED", "describe_os_error", "main"]
