"""Replacing files whole: write under a hidden temporary name in the same folder, then
rename, so that a reader or a kill never sees half a file (the archive runner's parts and
catalogues, training checkpoints, data sets)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write", "temporary_name"]


def temporary_name(path: Path) -> Path:
    """``.<name>.<pid>.tmp`` beside ``path`` (the same file system, so the rename is atomic;
    the process id keeps concurrent writers apart)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` a temporary file, then move it to ``path``."""
    tmp = temporary_name(path)
    write(tmp)
    os.replace(tmp, path)
