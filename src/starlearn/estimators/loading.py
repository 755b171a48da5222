"""Rebuilding estimators from their model folders: only starlearn's estimators, and every
kind of damage named (which file, what is wrong)."""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

import torch

from starlearn._provenance import library_versions
from starlearn.artifact import DAMAGED_HINT, read_config, read_json, read_weights, saved_version

__all__ = ["load"]


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
    from starlearn.estimators.base import ArtifactEstimator

    known: dict[str, type] = {}
    for name in estimators.__all__:
        cls = getattr(estimators, name)
        if isinstance(cls, type) and issubclass(cls, ArtifactEstimator):
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
    config = read_config(path, stacklevel=4)  # warn at the caller of load
    config_file, weights_file = path / "config.json", path / "weights.safetensors"
    if "class" not in config:
        raise ValueError(f"{config_file}: damaged (no entry 'class'); {DAMAGED_HINT}")
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
            raise ValueError(f"{config_file}: damaged (no entry {key!r}); {DAMAGED_HINT}")
        if not isinstance(config[key], kind):
            raise ValueError(f"{config_file}: damaged (entry {key!r} is a "
                             f"{type(config[key]).__name__}, not a {kind.__name__}); "
                             f"{DAMAGED_HINT}")
    network_keys = dict(_REQUIRED_NETWORK)
    if config["task"] in ("regress", "classify"):
        network_keys["n_labels"] = int
    for key, kind in network_keys.items():
        value = config["network"].get(key)
        if value is None:
            raise ValueError(f"{config_file}: damaged (no entry 'network.{key}'); {DAMAGED_HINT}")
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(f"{config_file}: damaged (entry 'network.{key}' is "
                             f"{value!r}, not a {kind.__name__}); {DAMAGED_HINT}")
    metrics_file = path / "metrics.json"  # read once, here: damage named before the rest
    metrics = read_json(metrics_file) if metrics_file.exists() else {}
    tensors = read_weights(weights_file)
    _check_novelty(tensors, weights_file, config_file)
    saved = saved_version(config)
    other = (f"; it was saved by starlearn {saved}"
             if saved and saved != library_versions().get("starlearn") else "")
    try:
        estimator = cls._from_artifact(_sections(config), _Tensors(tensors), path)
    except _MissingTensor as err:
        raise ValueError(f"{weights_file}: does not match {config_file} (no tensor "
                         f"{err.args[0]!r}); the two files are of different models or one "
                         f"is damaged: {DAMAGED_HINT}") from err
    except _MissingEntry as err:
        raise ValueError(f"{config_file}: damaged (no entry {err.args[0]!r}){other}; "
                         f"{DAMAGED_HINT}") from err
    except RuntimeError as err:
        if "state_dict" not in str(err):
            raise ValueError(f"{config_file}: damaged (the network it describes cannot be "
                             f"built: {_short(err)}){other}; {DAMAGED_HINT}") from err
        raise ValueError(f"{weights_file}: does not match {config_file} ({_short(err)}); "
                         f"the two files are of different models or one is damaged: "
                         f"{DAMAGED_HINT}") from err
    except KeyError as err:  # an entry looked up in a copy of a section, or a tensor
        raise ValueError(f"{config_file} and {weights_file} do not fit together (no entry "
                         f"{err.args[0]!r} in one of them){other}; {DAMAGED_HINT}") from err
    except (TypeError, ValueError, AttributeError, IndexError) as err:
        if isinstance(err, ValueError) and str(path) in str(err):
            raise  # a message of the estimator's own, naming the folder
        raise ValueError(f"{config_file}: damaged or written for another starlearn (a "
                         f"wrong entry: {type(err).__name__}: {_short(err)}){other}; "
                         f"{DAMAGED_HINT}") from err
    if (hasattr(estimator, "module_") and hasattr(estimator, "novelty_threshold_")
            and not hasattr(estimator, "feature_mean_")):  # neither tensors nor config
        raise ValueError(f"{weights_file}: does not match {config_file} (no tensors "
                         f"'novelty.mean' and 'novelty.icov'); {DAMAGED_HINT}")
    estimator.valid_metrics_ = metrics
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
                         f"{DAMAGED_HINT}")
