"""The training job: fit with a per-epoch checkpoint, save the model folder whole (with its
ONNX export), drop the checkpoint — what ``starlearn train`` and the search's final
retraining do, for Python users alike::

    from starlearn.estimators import Regressor
    from starlearn.jobs import train_and_save

    train_and_save(Regressor("starnet"), "model", "train.h5")   # model/ + model/model.onnx
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

from starlearn._atomic import check_writable
from starlearn._lock import output_lock

__all__ = ["JOB_SETTINGS", "JOB_USES", "TASK_ESTIMATORS", "build_classifier", "build_estimator",
           "check_settings", "checkpoint_path", "estimator_class", "estimator_parameters",
           "label_estimator",
           "save_model", "train_and_save"]


def checkpoint_path(output: str | PathLike, resume: bool) -> Path:
    """Where a training into the model folder ``output`` keeps its per-epoch checkpoint
    (``OUTPUT.checkpoint``, beside the folder). One left by an interrupted training is
    continued only with ``resume=True``; without it a FileExistsError says so."""
    output = Path(output)
    path = output.with_name(output.name + ".checkpoint")
    if path.exists() and not resume:
        raise FileExistsError(f"{path} holds an interrupted training: pass --resume "
                              "(resume=True) to continue it, or remove the file to start "
                              "again")
    return path


def save_model(estimator: Any, output: str | PathLike) -> Path:
    """Write the model folder ``output`` and, for a network with an ONNX export,
    ``model.onnx`` beside the weights (so that prediction runs ONNX Runtime from the first
    spectrum; an export that fails leaves a working model that predicts with torch, with a
    warning). The folder is written whole into a temporary folder, then put in place of any
    earlier model, so that a failure (a full disk) or a kill never leaves half a model
    under the name."""
    from starlearn.infer.engine import onnx_available

    output = Path(output)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        estimator.save(tmp)
        if hasattr(estimator, "module_") and onnx_available():
            try:
                estimator.export_onnx(tmp)
            except NotImplementedError:
                pass
            except Exception as err:  # the trained model must not be lost
                warnings.warn(f"ONNX export failed ({type(err).__name__}: {err}); predict "
                              "will use the torch engine", stacklevel=2)
        old = output.with_name(f".{output.name}.{os.getpid()}.old")
        if output.exists():
            os.replace(output, old)
        os.replace(tmp, output)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return output


def train_and_save(estimator: Any, output: str | PathLike, *fit_args: Any,
                   resume: bool = False, overwrite: bool = False, **fit_kwargs: Any) -> Any:
    """Fit ``estimator`` (``fit(*fit_args, checkpoint=..., **fit_kwargs)``) with a
    per-epoch checkpoint beside ``output``, save it there with :func:`save_model`, then drop
    the checkpoint; the model folder is locked for the whole job (a second job on it stops
    at once, see :mod:`starlearn._lock`). Returns the fitted estimator.

    Raises
    ------
    FileExistsError
        ``output`` exists and ``overwrite`` is False, or a checkpoint of an interrupted
        training is there and ``resume`` is False.
    """
    output = Path(output)
    if output.exists() and not overwrite:
        raise FileExistsError(f"{output} exists; pass --overwrite (overwrite=True) to replace "
                              "it (the old model stays until the new one is saved)")
    check_writable(output)
    with output_lock(output):
        checkpoint = checkpoint_path(output, resume)
        estimator.fit(*fit_args, checkpoint=checkpoint, **fit_kwargs)
        save_model(estimator, output)
        checkpoint.unlink(missing_ok=True)
    return estimator


# ---------------------------------------------------------------------- estimators from settings
TASK_ESTIMATORS = {"regress": ("Regressor", "starnet"), "autoencode": ("Autoencoder",
                                                                      "dense-ae"),
                   "classify": ("Classifier", "vgg1d")}
"""Each task's estimator class (in :mod:`starlearn.estimators`) and default model."""

JOB_USES = {"regress": {"grid", "labels"}, "autoencode": {"grid", "latent"},
            "classify": {"classes", "line", "half_width", "missing_rv", "adapt",
                         "source_resolution", "target_resolution"}}
"""Settings each task's training job turns into constructor arguments itself (a resampling
step, a line window, a domain adapter ...); every other setting must be a constructor
parameter of the task's estimator."""

JOB_SETTINGS = set().union(*JOB_USES.values())
"""Every setting some training job takes itself."""


def estimator_class(task: str) -> type:
    """The estimator class of ``task`` ("regress", "autoencode", "classify")."""
    from starlearn import estimators

    if task not in TASK_ESTIMATORS:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(TASK_ESTIMATORS)}")
    return getattr(estimators, TASK_ESTIMATORS[task][0])


def estimator_parameters(task: str) -> list[str]:
    """The constructor parameters of ``task``'s estimator that settings may give (from its
    signature: the one place they are defined)."""
    import inspect

    signature = inspect.signature(estimator_class(task))
    return [name for name in signature.parameters if name not in ("self", "model")]


def _names(value: Any, key: str) -> list[str] | None:
    """A list of names (labels, classes): a list of strings; anything else (a single
    string included: "teff,logg" is not a list) is a ValueError."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValueError(f"'{key}' must be a list of names, e.g. {key} = [\"teff\", \"logg\"], "
                     f"got {value!r}")


def check_settings(task: str, settings: Mapping[str, Any], *, where: str = "settings"
                   ) -> dict[str, Any]:
    """``settings`` with dashes as underscores, after refusing keys that neither the job
    (:data:`JOB_SETTINGS`) nor ``task``'s estimator knows; ``where`` names the source in the
    message (e.g. the TOML file)."""
    clean = {str(k).replace("-", "_"): v for k, v in settings.items()}
    known = set(estimator_parameters(task)) | JOB_USES[task]
    unknown = sorted(set(clean) - known)
    if unknown:
        raise ValueError(f"{where}: unknown setting(s) {', '.join(unknown)} for --task {task}; "
                         f"known: {', '.join(sorted(known))}")
    return clean


def build_estimator(task: str, model: str | None = None, *,
                    settings: Mapping[str, Any] | None = None, train: Any = None,
                    target: Any = None) -> Any:
    """The estimator a training job fits, from plain settings (command-line options and a
    TOML file merged): ``grid`` becomes a :class:`~starlearn.preprocess.Resample` step,
    ``labels``/``classes`` lists of names; for ``classify`` see :func:`build_classifier`
    (``train`` and ``target`` are its spectra). For ``regress``, ``adapt`` is the
    Regressor's domain adaptation to the ``target`` spectra given to ``fit`` (a
    method other than "none"/"auto" without a ``target`` is refused here, before any
    work). Unknown settings are refused (:func:`check_settings`); values are checked by
    the estimator itself."""
    from starlearn.preprocess import Resample

    settings = check_settings(task, settings or {})
    model = model or TASK_ESTIMATORS[task][1]
    if task == "classify":
        return build_classifier(model, train, target, settings=settings)
    grid = settings.pop("grid", None)
    cls = estimator_class(task)
    preprocess = Resample(grid=grid) if grid else None
    if task == "regress":
        labels = _names(settings.pop("labels", None), "labels")
        adapt = settings.get("adapt")
        if adapt not in (None, "none", "auto") and target is None:
            raise ValueError("adapt (--adapt) needs target spectra (--adapt-to TARGET.h5)")
        return label_estimator(model, labels, preprocess=preprocess, **settings)
    latent = int(settings.pop("latent", 32 if model == "dense-ae" else 16))
    if settings.get("snr") is not None and not settings.get("denoise"):
        raise ValueError("snr (--snr) is the noise added for denoising; add --denoise")
    return cls(model, latent, preprocess=preprocess, **settings)


def label_estimator(model: str, labels: list[str] | None = None, **settings: Any) -> Any:
    """The label estimator of ``model``: :class:`~starlearn.estimators.Cannon` for
    "cannon" (the network-only settings, such as ``epochs``, do not apply to it and are
    left out), else a :class:`~starlearn.estimators.Regressor` with that network."""
    import inspect

    from starlearn.estimators import Cannon, Regressor

    if model == "cannon":
        if settings.get("adapt") not in (None, "none", "auto"):
            raise ValueError("adapt (--adapt) trains a network's features: it does not "
                             "apply to The Cannon (--model cannon)")
        own = set(inspect.signature(Cannon).parameters)
        return Cannon(labels, **{k: v for k, v in settings.items() if k in own})
    return Regressor(model, labels, **settings)


def build_classifier(model: str, train: Any, target: Any = None, *,
                     settings: Mapping[str, Any]) -> Any:
    """The Classifier of the emission-line-star recipe: a :class:`LineWindow` around
    ``line`` (Å, default H-alpha 6562.8; ``"none"`` for the whole spectrum) sampled like
    the target survey, divided by a linear continuum fitted to its line-free edges,
    spectra without a radial velocity taken as at rest (flagged) or, with
    ``missing_rv="measure"``, measured from the line, and with ``target``
    spectra (unlabelled) domain adaptation
    ``adapt`` = "blur" (the default with a target: :meth:`DomainAdapter.for_target`),
    "adversarial" or "blur+adversarial"."""
    from starlearn.estimators import Classifier
    from starlearn.grid import find_preset
    from starlearn.preprocess import DomainAdapter, LineWindow

    settings = dict(settings)
    adapt = settings.pop("adapt", None)
    if adapt is not None and target is None:
        raise ValueError("adapt (--adapt) needs target spectra (--adapt-to TARGET.h5)")
    adapt = adapt or ("blur" if target is not None else None)
    if settings.get("balance") == "none":
        settings["balance"] = None
    line = settings.pop("line", None)
    half_width = int(settings.pop("half_width", None) or 70)
    missing_rv = str(settings.pop("missing_rv", None) or "rest")
    r_source = settings.pop("source_resolution", None)
    r_target = settings.pop("target_resolution", None)
    classes = _names(settings.pop("classes", None), "classes")
    window = None
    if line is None or str(line).lower() != "none":
        sampling: Any = "lamost"
        if target is not None and target.shared_wave and find_preset(target.wave) is not None:
            sampling = find_preset(target.wave)
        window = LineWindow(line=float(line) if line else 6562.8, half_width=half_width,
                            sampling=sampling,
                            # spectra without a velocity (real files of archives that
                            # give none) are taken as at rest and flagged, or measured
                            # from the line: a model trained on synthetic spectra (rv
                            # column all zeros) predicts them
                            rv_column="rv", missing_rv=missing_rv, on_missing="mask",
                            # one continuum fit over the window's edges, in training and
                            # prediction alike (flux-calibrated spectra are sloped)
                            continuum="linear")
    adapter = None
    if adapt is not None and "blur" in adapt:
        adapter = DomainAdapter.for_target(train, target, r_source=r_source,
                                           r_target=r_target,
                                           window=window.grid if window is not None
                                           else None)
    return Classifier(model, classes, preprocess=window, adapter=adapter,
                      adversarial=adapt is not None and "adversarial" in adapt, **settings)
