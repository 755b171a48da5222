"""The ``starlearn`` command group: error handling and exit codes, shared by every command."""

from __future__ import annotations

import errno
import os
from typing import Any

import click

__all__ = ["EXIT_REJECTED", "describe_os_error", "main"]

EXIT_REJECTED = 3
"""Exit status of ``predict --strict`` when some inputs were rejected or not predicted."""


class _Main(click.Group):
    """The command group: a problem with the user's input (a file that cannot be read, a
    model of another grid, a checkpoint of another training, an archive run in which
    nothing could be predicted ... raised with the file and the reason) is printed as
    ``Error: <reason>`` with exit status 1 instead of a traceback; STARLEARN_DEBUG=1
    shows the traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        from starlearn.errors import InputError

        try:
            return super().invoke(ctx)
        except (InputError, ValueError, FileNotFoundError, FileExistsError) as err:
            if os.environ.get("STARLEARN_DEBUG"):
                raise
            raise click.ClickException(str(err)) from err
        except OSError as err:  # a full or read-only disk, a folder without permission
            if os.environ.get("STARLEARN_DEBUG"):
                raise
            raise click.ClickException(describe_os_error(err)) from err


_DISK_HINTS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
               errno.EROFS: "the file system is read-only",
               errno.EACCES: "no permission to write there",
               errno.EPERM: "no permission to write there"}


def describe_os_error(err: OSError) -> str:
    """``<file>: <what the system said> (<what it means>)``; nothing of the run that
    failed is left under a final name (outputs are written whole or not at all)."""
    where = err.filename or "a file"
    what = err.strerror or str(err)
    hint = _DISK_HINTS.get(err.errno or 0)
    if hint is None:
        text = str(err).lower()
        hint = next((h for key, h in (("no space", _DISK_HINTS[errno.ENOSPC]),
                                      ("read-only", _DISK_HINTS[errno.EROFS]),
                                      ("permission", _DISK_HINTS[errno.EACCES])) if key in text),
                    None)
    return f"{where}: {what}" + (f" ({hint}; nothing was written under the final name)"
                                 if hint else "")


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="starlearn")
def main() -> None:
    """starlearn: deep learning on stellar spectra (regression, autoencoders, classification).

    Data sets are HDF5 files in the starlearn data-set format (docs/dataset-format.md).
    """

