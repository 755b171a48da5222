"""Model artifacts: a folder with ``config.json`` and ``weights.safetensors`` (never pickle).

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

from starlearn._atomic import as_os_error
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
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()},
                  str(path / "weights.safetensors"))
    except Exception as err:  # safetensors' own error for a full disk
        system = as_os_error(err, path / "weights.safetensors")
        if system is None:
            raise
        raise system from err
    for name, value in (extra or {}).items():
        text = value if isinstance(value, str) else json.dumps(_plain(value), indent=1)
        (path / name).write_text(text)
    return path


_AGAIN = "retrain the model or copy the folder again"


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
    return _read_config(path, stacklevel=3), _read_weights(path / "weights.safetensors")


def _read_config(path: Path, stacklevel: int) -> dict[str, Any]:
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
    config = _read_json(config_file)
    if not isinstance(config, dict):
        raise ValueError(f"{config_file}: damaged (a JSON {type(config).__name__}, not an "
                         f"object); {_AGAIN}")
    if "schema_version" not in config:
        raise ValueError(f"{config_file}: damaged (no entry 'schema_version'); {_AGAIN}")
    version = config["schema_version"]
    if version not in _SUPPORTED:
        raise ValueError(f"{config_file}: artifact schema version {version} is not supported "
                         f"by this starlearn (supported: {sorted(_SUPPORTED)})")
    saved = _saved_version(config)
    current = library_versions().get("starlearn")
    if saved and current and saved != current:
        warnings.warn(f"{path}: model saved with starlearn {saved}, loading with {current}",
                      UserWarning, stacklevel=stacklevel)
    return config


def _read_json(file: Path) -> Any:
    """The JSON content of ``file``; ValueError naming it when it is damaged."""
    try:
        text = file.read_bytes().decode("utf-8")
    except IsADirectoryError:
        raise ValueError(f"{file}: damaged (a folder, not a file); {_AGAIN}") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{file}: damaged (not text: {err}); {_AGAIN}") from None
    except OSError as err:
        raise ValueError(f"{file}: cannot be read ({err.strerror or err})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        what = "empty file" if not text.strip() else f"not valid JSON: {err}"
        raise ValueError(f"{file}: damaged ({what}); {_AGAIN}") from None


def _saved_version(config: dict[str, Any]) -> Any:
    versions = config.get("versions")
    return versions.get("starlearn") if isinstance(versions, dict) else None


def _read_weights(file: Path) -> dict[str, torch.Tensor]:
    """The tensors of ``weights.safetensors``; FileNotFoundError when it is missing,
    ValueError naming it when it is damaged."""
    if not file.exists():
        raise FileNotFoundError(f"{file}: missing; the model folder is incomplete: {_AGAIN}")
    if not file.is_file():
        raise ValueError(f"{file}: damaged (not a file); {_AGAIN}")
    size = file.stat().st_size
    if size == 0:
        raise ValueError(f"{file}: damaged (empty file); the model folder is incomplete: "
                         f"{_AGAIN}")
    try:
        tensors = load_file(str(file))
    except OSError as err:
        raise ValueError(f"{file}: cannot be read ({err.strerror or err})") from None
    except Exception as err:  # SafetensorError and whatever else a damaged file causes
        raise ValueError(f"{file}: damaged (not a safetensors file, or cut short at "
                         f"{size} bytes: {err}); {_AGAIN}") from None
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"{file}: damaged (tensor {name!r} holds NaN or infinite "
                             f"values); {_AGAIN}")
    return tensors


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
    elif why is None and (info.get("weights_sha256") != _sha256(path / "weights.safetensors")
                          or info.get("onnx_sha256") != _sha256(model)):
        why = f"{model} does not match the weights in {path}"
    if why is not None:
        warnings.warn(f"{why}; ignoring it (run 'starlearn export --onnx' again)",
                      UserWarning, stacklevel=2)
        return None
    return model


def load(path: str | PathLike) -> Any:
    """Rebuild any starlearn estimator from its artifact folder (config.json alone says
    which class and which parameters).

    Only the estimators of :mod:`starlearn.estimators` are loaded: a ``class`` in
    config.json naming anything else is refused, and nothing it names is imported.

    Raises
    ------
    FileNotFoundError
        The folder, its ``config.json`` or its ``weights.safetensors`` does not exist.
    ValueError
        The folder is damaged or incomplete: ``path`` is a file; ``config.json`` is not JSON,
        lacks an entry, holds a wrong value or names no starlearn estimator class;
        ``weights.safetensors`` is not a safetensors file, holds NaN or does not match the
        network in config.json; ``metrics.json`` is not JSON. The message starts with the
        file at fault and says what is wrong with it.
    """
    return _restore(Path(path))


def _estimator_classes() -> dict[str, type]:
    """The loadable estimator classes by the class paths an artifact may give: the
    estimators of :mod:`starlearn.estimators` (which importing starlearn imports)."""
    from starlearn import estimators
    from starlearn.estimators._common import SavedEstimator

    known: dict[str, type] = {}
    for name in estimators.__all__:
        cls = getattr(estimators, name)
        if isinstance(cls, type) and issubclass(cls, SavedEstimator):
            known[f"starlearn.estimators.{name}"] = cls
            known[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return known


# entries every estimator's config.json has (the others are checked as they are read)
_REQUIRED = {"task": str, "params": dict, "network": dict, "grid": dict}
_REQUIRED_NETWORK = {"name": str, "n_pix": int}


class _Section(dict):
    """A JSON object of config.json whose missing entries raise :class:`_MissingEntry`
    with their place in the file (``labels.mean``)."""

    where = ""

    def __missing__(self, key: Any) -> Any:
        raise _MissingEntry(f"{self.where}{key}")


class _MissingEntry(KeyError):
    """An entry config.json lacks (the argument is its dotted place)."""


class _Tensors(dict):
    """The weights, whose missing entries raise :class:`_MissingTensor`."""

    def __missing__(self, key: Any) -> Any:
        raise _MissingTensor(key)


class _MissingTensor(KeyError):
    """A tensor weights.safetensors lacks."""


def _sections(value: Any, where: str = "") -> Any:
    """``value`` with its JSON objects as :class:`_Section` (lists of numbers as they are)."""
    if isinstance(value, dict):
        out = _Section({k: _sections(v, f"{where}{k}.") for k, v in value.items()})
        out.where = where
        return out
    if isinstance(value, list) and value and isinstance(value[0], (dict, list)):
        return [_sections(v, f"{where}{i}.") for i, v in enumerate(value)]
    return value


def _short(err: BaseException, limit: int = 400) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _restore(path: Path, cls: type | None = None) -> Any:
    """The estimator saved in ``path``: of the class config.json names (one of
    :func:`_estimator_classes`), or of ``cls`` (``Regressor.load``). Errors in the
    estimator's ``_from_artifact`` become ValueErrors naming the file at fault."""
    config = _read_config(path, stacklevel=4)  # warn at the caller of load
    config_file, weights_file = path / "config.json", path / "weights.safetensors"
    if "class" not in config:
        raise ValueError(f"{config_file}: damaged (no entry 'class'); {_AGAIN}")
    if cls is None:  # only a known class: nothing config.json names is imported
        known = _estimator_classes()
        class_path = config["class"]
        cls = known.get(class_path) if isinstance(class_path, str) else None
        if cls is None:
            names = ", ".join(sorted(k for k in known if k.count(".") == 2))
            raise ValueError(f"{config_file}: names no starlearn estimator class "
                             f"(class = {class_path!r}; known: {names})")
    for key, kind in _REQUIRED.items():
        if key not in config:
            raise ValueError(f"{config_file}: damaged (no entry {key!r}); {_AGAIN}")
        if not isinstance(config[key], kind):
            raise ValueError(f"{config_file}: damaged (entry {key!r} is a "
                             f"{type(config[key]).__name__}, not a {kind.__name__}); {_AGAIN}")
    network_keys = dict(_REQUIRED_NETWORK)
    if config["task"] in ("regress", "classify"):
        network_keys["n_labels"] = int
    for key, kind in network_keys.items():
        value = config["network"].get(key)
        if value is None:
            raise ValueError(f"{config_file}: damaged (no entry 'network.{key}'); {_AGAIN}")
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(f"{config_file}: damaged (entry 'network.{key}' is "
                             f"{value!r}, not a {kind.__name__}); {_AGAIN}")
    if (path / "metrics.json").exists():  # the estimators read it
        _read_json(path / "metrics.json")
    tensors = _read_weights(weights_file)
    _check_novelty(tensors, weights_file, config_file)
    saved = _saved_version(config)
    other = (f"; it was saved by starlearn {saved}"
             if saved and saved != library_versions().get("starlearn") else "")
    try:
        estimator = cls._from_artifact(_sections(config), _Tensors(tensors), path)
    except _MissingTensor as err:
        raise ValueError(f"{weights_file}: does not match {config_file} (no tensor "
                         f"{err.args[0]!r}); the two files are of different models or one "
                         f"is damaged: {_AGAIN}") from err
    except _MissingEntry as err:
        raise ValueError(f"{config_file}: damaged (no entry {err.args[0]!r}){other}; "
                         f"{_AGAIN}") from err
    except RuntimeError as err:
        if "state_dict" not in str(err):
            raise ValueError(f"{config_file}: damaged (the network it describes cannot be "
                             f"built: {_short(err)}){other}; {_AGAIN}") from err
        raise ValueError(f"{weights_file}: does not match {config_file} ({_short(err)}); "
                         f"the two files are of different models or one is damaged: "
                         f"{_AGAIN}") from err
    except KeyError as err:  # an entry looked up in a copy of a section, or a tensor
        raise ValueError(f"{config_file} and {weights_file} do not fit together (no entry "
                         f"{err.args[0]!r} in one of them){other}; {_AGAIN}") from err
    except (TypeError, ValueError, AttributeError, IndexError) as err:
        if isinstance(err, ValueError) and str(path) in str(err):
            raise  # a message of the estimator's own, naming the folder
        raise ValueError(f"{config_file}: damaged or written for another starlearn (a "
                         f"wrong entry: {type(err).__name__}: {_short(err)}){other}; "
                         f"{_AGAIN}") from err
    if (hasattr(estimator, "module_") and hasattr(estimator, "novelty_threshold_")
            and not hasattr(estimator, "feature_mean_")):  # neither tensors nor config
        raise ValueError(f"{weights_file}: does not match {config_file} (no tensors "
                         f"'novelty.mean' and 'novelty.icov'); {_AGAIN}")
    estimator.artifact_path_ = path
    return estimator


def _check_novelty(tensors: dict[str, torch.Tensor], weights_file: Path,
                   config_file: Path) -> None:
    """The far-from-training statistics (``novelty.mean`` (d,), ``novelty.icov`` (d, d))
    are there together and of matching shapes."""
    mean, icov = tensors.get("novelty.mean"), tensors.get("novelty.icov")
    if mean is None and icov is None:
        return
    shapes = [None if t is None else tuple(t.shape) for t in (mean, icov)]
    d = shapes[0][0] if shapes[0] is not None and len(shapes[0]) == 1 else None
    if d is None or shapes[1] != (d, d):
        raise ValueError(f"{weights_file}: does not match {config_file} (novelty.mean of "
                         f"shape {shapes[0]} and novelty.icov of shape {shapes[1]}); "
                         f"{_AGAIN}")
