"""Provenance records: the command line, resolved configuration and library versions."""

from __future__ import annotations

import datetime as _dt
import platform
from importlib import metadata
from typing import Any

__all__ = ["library_versions", "provenance"]

_LIBRARIES = ("starlearn", "numpy", "scipy", "astropy", "h5py", "torch")


def library_versions() -> dict[str, str]:
    """Installed versions of starlearn and the libraries whose behaviour it depends on."""
    out = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def provenance(command: list[str] | None = None, **config: Any) -> dict[str, Any]:
    """A JSON-able record of how an output was made (never the environment variables)."""
    return {
        "command": [str(x) for x in (command or [])],
        "config": {k: v for k, v in config.items()},
        "versions": library_versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
