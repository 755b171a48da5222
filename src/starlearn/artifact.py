"""Model artifacts: a folder with ``config.json`` and ``weights.safetensors`` (never pickle).

``config.json`` holds the schema version, the estimator's class path and parameters, the
network config, the wavelength grid, the labels or classes with their scaling, the
training summary and library versions; ``weights.safetensors`` holds tensors only.
:func:`load` rebuilds any estimator from its folder.
"""

from __future__ import annotations

import importlib
import json
import warnings
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from starlearn._provenance import library_versions

__all__ = ["SCHEMA_VERSION", "load", "onnx_file", "read_artifact", "write_artifact",
           "write_onnx"]

SCHEMA_VERSION = 1
"""Version of the artifact layout written by this starlearn."""

_SUPPORTED = {1}


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def write_artifact(path: str | PathLike, *, config: dict[str, Any],
                   tensors: dict[str, torch.Tensor], extra: dict[str, Any] | None = None,
                   overwrite: bool = True) -> Path:
    """Write ``config.json`` (with schema version and versions added) and the weights.

    ``extra`` maps file names to JSON-able objects (e.g. ``metrics.json``) or strings
    (e.g. ``history.csv``).
    """
    path = Path(path)
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise FileExistsError(f"{path}: folder exists and is not empty")
    path.mkdir(parents=True, exist_ok=True)
    full = {"schema_version": SCHEMA_VERSION, **_plain(config), "versions": library_versions()}
    (path / "config.json").write_text(json.dumps(full, indent=1))
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()},
              str(path / "weights.safetensors"))
    for name, value in (extra or {}).items():
        text = value if isinstance(value, str) else json.dumps(_plain(value), indent=1)
        (path / name).write_text(text)
    return path


def read_artifact(path: str | PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read ``config.json`` and the weights; errors name the folder and the problem."""
    path = Path(path)
    config_file = path / "config.json"
    if not config_file.exists():
        raise FileNotFoundError(f"{path}: not a starlearn model folder (no config.json)")
    try:
        config = json.loads(config_file.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{config_file}: not valid JSON ({err})") from None
    version = config.get("schema_version")
    if version not in _SUPPORTED:
        raise ValueError(f"{config_file}: artifact schema version {version} is not supported "
                         f"by this starlearn (supported: {sorted(_SUPPORTED)})")
    saved = config.get("versions", {}).get("starlearn")
    current = library_versions().get("starlearn")
    if saved and current and saved != current:
        warnings.warn(f"{path}: model saved with starlearn {saved}, loading with {current}",
                      UserWarning, stacklevel=3)
    weights_file = path / "weights.safetensors"
    tensors = load_file(str(weights_file)) if weights_file.exists() else {}
    return config, tensors


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_onnx(path: str | PathLike, data: bytes, name: str = "model.onnx",
               extra: dict[str, Any] | None = None) -> Path:
    """Add ``name`` (an ONNX export of the weights in the folder: ``model.onnx``, or
    ``model.int8.onnx`` quantised) to an artifact, with ``<name>.json`` recording the
    SHA-256 of the weights it was made from (and ``extra``). Written atomically (temporary
    file, then rename)."""
    path = Path(path)
    weights = path / "weights.safetensors"
    if not weights.exists():
        raise FileNotFoundError(f"{path}: no weights.safetensors to export")
    tmp = path / f"{name}.tmp"
    tmp.write_bytes(data)
    tmp.replace(path / name)
    record = {"weights_sha256": _sha256(weights), "onnx_sha256": _sha256(path / name),
              "versions": library_versions(), **_plain(extra or {})}
    (path / f"{name}.json").write_text(json.dumps(record, indent=1))
    return path / name


def onnx_file(path: str | PathLike, name: str = "model.onnx") -> Path | None:
    """The artifact's ONNX file ``name`` if it was exported from the weights now in the
    folder (checked by SHA-256), else None (a stale export is ignored with a warning)."""
    path = Path(path)
    model, record = path / name, path / f"{name}.json"
    if not (model.exists() and record.exists()):
        return None
    info = json.loads(record.read_text())
    if (info.get("weights_sha256") != _sha256(path / "weights.safetensors")
            or info.get("onnx_sha256") != _sha256(model)):
        warnings.warn(f"{model} does not match the weights in {path}; ignoring it "
                      "(run 'starlearn export --onnx' again)", UserWarning, stacklevel=2)
        return None
    return model


def load(path: str | PathLike) -> Any:
    """Rebuild any starlearn estimator from its artifact folder (config.json alone says
    which class and which parameters)."""
    config, tensors = read_artifact(path)
    class_path = config.get("class")
    if not class_path or not str(class_path).startswith("starlearn."):
        raise ValueError(f"{path}: config.json names no starlearn estimator class "
                         f"(class = {class_path!r})")
    module, _, name = class_path.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    estimator = cls._from_artifact(config, tensors, Path(path))
    estimator.artifact_path_ = Path(path)
    return estimator
