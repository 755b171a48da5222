"""Model artifacts: a folder with ``config.json`` and ``weights.safetensors`` (never pickle).

Every file of the folder gets the mode of a new file under the process umask (``0o644``
under umask ``0o022``; safetensors alone would leave the weights ``0o600``), so that a
model folder can be shared within a group.

``config.json`` holds the schema version, the estimator's class path and parameters, the
network config, the wavelength grid, the labels or classes with their scaling, the
training summary and library versions; ``weights.safetensors`` holds tensors only.
:func:`load` rebuilds any estimator from its folder.
"""

from __future__ import annotations

import json
import warnings
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from starlearn._atomic import as_os_error, share_mode
from starlearn._provenance import library_versions

__all__ = ["DAMAGED_HINT", "SCHEMA_VERSION", "onnx_file", "read_artifact", "read_config",
           "read_json", "read_weights", "saved_version", "sha256_file", "write_artifact",
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
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()},
                  str(path / "weights.safetensors"))
    except Exception as err:  # safetensors' own error for a full disk
        system = as_os_error(err, path / "weights.safetensors")
        if system is None:
            raise
        raise system from err
    share_mode(path / "weights.safetensors")
    share_mode(path / "config.json")
    for name, value in (extra or {}).items():
        text = value if isinstance(value, str) else json.dumps(_plain(value), indent=1)
        (path / name).write_text(text)
        share_mode(path / name)
    return path


DAMAGED_HINT = "retrain the model or copy the folder again"


def read_artifact(path: str | PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read ``config.json`` and the weights.

    Raises
    ------
    FileNotFoundError
        The folder, its ``config.json`` or its ``weights.safetensors`` does not exist.
    ValueError
        ``path`` is a file, or ``config.json`` or ``weights.safetensors`` is damaged (not
        JSON, not a safetensors file, NaN weights, ...) or of an unsupported schema
        version. Every message starts with the folder or file it is about.
    """
    path = Path(path)
    return read_config(path, stacklevel=3), read_weights(path / "weights.safetensors")


def read_config(path: Path, stacklevel: int) -> dict[str, Any]:
    """The checked ``config.json`` of the folder ``path`` (warns, at ``stacklevel``, when
    another starlearn version saved it)."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: model folder does not exist")
    if not path.is_dir():
        raise ValueError(f"{path}: is a file, not a model folder (give the folder that holds "
                         "config.json and weights.safetensors)")
    config_file = path / "config.json"
    if not config_file.exists():
        raise FileNotFoundError(f"{path}: not a starlearn model folder (no config.json)")
    config = read_json(config_file)
    if not isinstance(config, dict):
        raise ValueError(f"{config_file}: damaged (a JSON {type(config).__name__}, not an "
                         f"object); {DAMAGED_HINT}")
    if "schema_version" not in config:
        raise ValueError(f"{config_file}: damaged (no entry 'schema_version'); {DAMAGED_HINT}")
    version = config["schema_version"]
    if version not in _SUPPORTED:
        raise ValueError(f"{config_file}: artifact schema version {version} is not supported "
                         f"by this starlearn (supported: {sorted(_SUPPORTED)})")
    saved = saved_version(config)
    current = library_versions().get("starlearn")
    if saved and current and saved != current:
        warnings.warn(f"{path}: model saved with starlearn {saved}, loading with {current}",
                      UserWarning, stacklevel=stacklevel)
    return config


def read_json(file: Path) -> Any:
    """The JSON content of ``file``; ValueError naming it when it is damaged."""
    try:
        text = file.read_bytes().decode("utf-8")
    except IsADirectoryError:
        raise ValueError(f"{file}: damaged (a folder, not a file); {DAMAGED_HINT}") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{file}: damaged (not text: {err}); {DAMAGED_HINT}") from None
    except OSError as err:
        raise ValueError(f"{file}: cannot be read ({err.strerror or err})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        what = "empty file" if not text.strip() else f"not valid JSON: {err}"
        raise ValueError(f"{file}: damaged ({what}); {DAMAGED_HINT}") from None


def saved_version(config: dict[str, Any]) -> Any:
    versions = config.get("versions")
    return versions.get("starlearn") if isinstance(versions, dict) else None


def read_weights(file: Path) -> dict[str, torch.Tensor]:
    """The tensors of ``weights.safetensors``; FileNotFoundError when it is missing,
    ValueError naming it when it is damaged."""
    if not file.exists():
        raise FileNotFoundError(f"{file}: missing; the model folder is incomplete: {DAMAGED_HINT}")
    if not file.is_file():
        raise ValueError(f"{file}: damaged (not a file); {DAMAGED_HINT}")
    size = file.stat().st_size
    if size == 0:
        raise ValueError(f"{file}: damaged (empty file); the model folder is incomplete: "
                         f"{DAMAGED_HINT}")
    try:
        tensors = load_file(str(file))
    except OSError as err:
        raise ValueError(f"{file}: cannot be read ({err.strerror or err})") from None
    except Exception as err:  # SafetensorError and whatever else a damaged file causes
        raise ValueError(f"{file}: damaged (not a safetensors file, or cut short at "
                         f"{size} bytes: {err}); {DAMAGED_HINT}") from None
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"{file}: damaged (tensor {name!r} holds NaN or infinite "
                             f"values); {DAMAGED_HINT}")
    return tensors


def sha256_file(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB blocks."""
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
    share_mode(tmp)
    tmp.replace(path / name)
    record = {"weights_sha256": sha256_file(weights), "onnx_sha256": sha256_file(path / name),
              "versions": library_versions(), **_plain(extra or {})}
    (path / f"{name}.json").write_text(json.dumps(record, indent=1))
    share_mode(path / f"{name}.json")
    return path / name


def onnx_file(path: str | PathLike, name: str = "model.onnx") -> Path | None:
    """The artifact's ONNX file ``name`` if it was exported from the weights now in the
    folder (checked by SHA-256), else None (a stale or damaged export, or a damaged
    ``<name>.json`` record, is ignored with a warning)."""
    path = Path(path)
    model, record = path / name, path / f"{name}.json"
    if not (model.exists() and record.exists()):
        return None
    why = None
    try:
        info = json.loads(record.read_text())
    except (OSError, ValueError) as err:  # ValueError: not UTF-8 or not JSON
        info, why = None, f"{record} is damaged ({err})"
    if why is None and not isinstance(info, dict):
        why = f"{record} is damaged (not a JSON object)"
    elif why is None and (info.get("weights_sha256") != sha256_file(path / "weights.safetensors")
                          or info.get("onnx_sha256") != sha256_file(model)):
        why = f"{model} does not match the weights in {path}"
    if why is not None:
        warnings.warn(f"{why}; ignoring it (run 'starlearn export --onnx' again)",
                      UserWarning, stacklevel=2)
        return None
    return model
