"""The estimator bases: what every starlearn estimator shares, written once.

:class:`ArtifactEstimator` (every estimator, The Cannon included) holds the declarative
parameter checks, the preparation of prediction inputs, the model folder (``save``,
``load``, ``metrics.json``, ``history.csv``) and the rebuilding from it.
:class:`NetworkEstimator` adds what every torch network shares: the optimisation
parameters, the fit template, training callbacks, checkpoints, the far-from-training
check, inference engines and the ONNX export.

A new task subclasses :class:`NetworkEstimator` and writes only what is its own:

- ``_task`` ("regress", ...) and ``_parameter_constraints`` for its own parameters;
- ``_plan_training(train, valid, rng, **data)``: read the data, fit the scalers, build the
  targets; return a :class:`TrainingPlan` (batches, loss, network outputs);
- ``_finish_training(plan)``: calibrate on held-out spectra, set ``valid_metrics_``;
- ``_input_arrays(spectra)``: the network input of prepared spectra; ``_onnx_spec()``;
- ``_artifact_sections()`` / ``_restore_sections(config)``: its fitted state in
  config.json, and prediction methods.

CONTRIBUTING.md has a worked example.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from starlearn.estimators._common import (
    NOVELTY_PREFIX,
    as_source,
    check_grid,
    fit_checkpoint,
    fit_novelty,
    history_csv,
    make_trainer,
    novelty_distance,
    novelty_tensors,
    params_from_config,
    preprocess_to_config,
    read_rows,
    reset_fitted,
    restore_novelty,
)
from starlearn.estimators._validation import Boolean, Constraint, Integer, OneOf, Real, check_params
from starlearn.spectra import SpectrumSet

__all__ = ["ArtifactEstimator", "NetworkEstimator", "TrainingPlan"]

TRAINING_PARAMETERS = """\
    epochs, batch_size, lr, weight_decay, optimizer, scheduler, patience, max_time
        Optimisation: at most ``epochs`` passes over the training set in batches of
        ``batch_size``; learning rate ``lr`` with ``optimizer`` "adam", "adamw", "rmsprop"
        or "sgd" and L2 ``weight_decay``; ``scheduler`` "cosine" (decay to lr/100),
        "plateau" (halved when the validation score stalls) or "none"; the best
        validation epoch's weights are kept and training stops after ``patience`` epochs
        without a better one, or after ``max_time`` seconds.
    valid_fraction : float
        Share of the training set held out for early stopping when ``fit`` gets no
        ``valid`` set.
    device : str
        Torch device for training: "auto" (CUDA when present), "cpu", "cuda", ...
    seed : int
        Seed of the weights, the splits, the shuffling and the augmentation.
    progress : bool
        Show progress bars."""
"""The shared parameters' documentation: ``{training_parameters}`` in a subclass's
docstring is replaced by it."""


@dataclass
class TrainingPlan:
    """What a task's ``_plan_training`` hands to the fit template."""

    train_batches: Callable[[int], Iterable[Any]]
    """``train_batches(epoch)``: the training batches of one epoch."""
    valid_batches: list[Any]
    """The validation batches (built once)."""
    loss: Callable[[Any, Any], Any]
    """``loss(module, batch)``: the training loss (a scalar tensor)."""
    n_train: int
    """Training spectra (for the checkpoint's identity)."""
    outputs: dict[str, Any] = field(default_factory=dict)
    """Network size arguments beyond ``n_pix`` (``n_labels`` ...)."""
    network: dict[str, Any] = field(default_factory=dict)
    """Architecture settings (the estimator's ``model_config`` and its own additions)."""
    valid_fn: Callable[[Any, Any], Any] | None = None
    """``valid_fn(module, batch) -> (loss, score)`` on the validation batches, or None."""
    wrap: Callable[[Any], Any] | None = None
    """Wraps the network for training (e.g. a domain discriminator), or None."""
    state: dict[str, Any] = field(default_factory=dict)
    """Anything ``_finish_training`` needs (held-out spectra ...)."""


class ArtifactEstimator(BaseEstimator):
    """Base of every starlearn estimator: parameter checks, prediction inputs, the model
    folder. Subclasses set ``_task`` and ``_parameter_constraints``."""

    _task: ClassVar[str] = ""
    _parameter_constraints: ClassVar[dict[str, list[Constraint | type | None]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__doc__ and "{training_parameters}" in cls.__doc__:
            cls.__doc__ = cls.__doc__.replace("{training_parameters}", TRAINING_PARAMETERS)

    # ------------------------------------------------------------------ checks
    @classmethod
    def _constraints(cls) -> dict[str, list[Constraint | type | None]]:
        """Every constraint of the class and its bases (a subclass's entry wins)."""
        merged: dict[str, list[Constraint | type | None]] = {}
        for klass in reversed(cls.__mro__):
            merged.update(getattr(klass, "_parameter_constraints", {}) or {})
        return merged

    def _validate(self) -> None:
        """Check every parameter against the declared constraints, then the rules that
        join several parameters (:meth:`_check_params`); a ValueError names the first
        bad one."""
        check_params(type(self).__name__, self.get_params(deep=False), self._constraints())
        self._check_params()

    def _check_params(self) -> None:
        """Rules across parameters (e.g. an option that needs another); none here."""

    # ------------------------------------------------------------------ prediction inputs
    def prepare_inputs(self, spectra: SpectrumSet | str | PathLike | Any, *,
                       resample: str | None = None) -> SpectrumSet:
        """Spectra as the fitted model reads them: in memory, on the model's wavelength
        grid (``wave_``), through the saved ``preprocess`` step.

        Parameters
        ----------
        spectra : SpectrumSet, data-set path or store
        resample : {"never", "auto", "always"} or None
            What to do with spectra on another wavelength grid than the model's when the
            saved ``preprocess`` does not set the grid itself (it has no step with a
            ``grid``, such as :class:`~starlearn.preprocess.Resample` or
            :class:`~starlearn.preprocess.LineWindow`):

            - "never": refuse them (ValueError);
            - "auto": resample them when every spectrum's wavelength range covers at
              least ``min_usable`` (0.5 unless set) of the model's pixels and its pixels
              are at most 10% wider than the model's (in ln wavelength); refuse them
              otherwise, saying why (spectra much coarser than the model's grid are not
              the data the model was trained on);
            - "always": resample any spectra on another grid.

            None (the default): the estimator's ``resample`` attribute when set
            (``model.resample = "auto"`` after loading, as ``starlearn predict
            --resample`` does; ``predict`` and ``network_input`` follow it), else "never".

        Notes
        -----
        Resampling is flux-conserving (:class:`~starlearn.preprocess.Resample` onto the
        model's log-uniform grid, before ``preprocess``): the inverse variance is
        propagated, and model pixels outside a spectrum's coverage (or less than half
        covered by its good pixels) are masked, so that ``min_usable`` decides whether it
        is predicted (NaN and flag 4 otherwise). It is said in one
        :class:`~starlearn.errors.ResampledWarning` (a UserWarning) naming both grids
        (``"... resampled onto the model's grid ..."``), once per grid under
        Python's default warning filter. A real LAMOST file cut at the red end (3,899
        pixels, 3,700-9,078 A) reaches a model trained on ``starlearn synth lamost``
        (3,909 pixels, 3,700-9,099 A) with its last 10 pixels masked.

        Raises
        ------
        ValueError
            For spectra on another grid than the model's that the policy does not
            resample (the message says why), a model grid that is not log-uniform, or an
            unknown policy.
        """
        check_is_fitted(self)
        policy = resample if resample is not None else (getattr(self, "resample", None)
                                                         or "never")
        if policy not in ("never", "auto", "always"):
            raise ValueError(f"{type(self).__name__}.prepare_inputs: resample must be "
                             f"'never', 'auto' or 'always', got {policy!r}")
        spectra = read_rows(as_source(spectra), None)
        wave = np.asarray(self.wave_, dtype=np.float64)
        steps, sets_grid = [self.preprocess], False
        while steps:  # does the saved preprocessing put the spectra on a grid itself?
            step = steps.pop()
            steps.extend(getattr(step, "steps", None) or [])
            sets_grid = sets_grid or getattr(step, "grid", None) is not None
        on_grid = spectra.shared_wave and spectra.wave.shape == wave.shape and bool(
            np.allclose(spectra.wave, wave, rtol=1e-7, atol=0))
        if policy != "never" and not on_grid and not sets_grid:
            import warnings

            from starlearn.errors import ResampledWarning
            from starlearn.grid import Grid, find_preset
            from starlearn.preprocess import Resample

            rows = np.atleast_2d(np.asarray(spectra.wave, dtype=np.float64))
            got = (f"{spectra.n_pix} pixels, {float(np.nanmin(rows)):.1f}-"
                   f"{float(np.nanmax(rows)):.1f} A"
                   + ("" if spectra.shared_wave else ", per-spectrum wavelengths"))
            ours = f"{wave.size} pixels, {wave[0]:.1f}-{wave[-1]:.1f} A"
            grid = find_preset(wave)
            if grid is None or not grid.matches(wave):
                grid = Grid.log_uniform(float(wave[0]), float(wave[-1]), n_pix=wave.size)
            if not grid.matches(wave):
                raise ValueError(f"input spectra are on another wavelength grid ({got}) than "
                                 f"the model ({ours}), and the model's grid is not "
                                 "log-uniform, so they cannot be resampled onto it here: "
                                 "resample them first (starlearn.preprocess.Resample)")
            need = float(getattr(self, "min_usable", 0.5))
            cover = (np.searchsorted(wave, np.nanmax(rows, axis=1), side="right")
                     - np.searchsorted(wave, np.nanmin(rows, axis=1), side="left")) / wave.size
            with np.errstate(invalid="ignore", divide="ignore"):
                step_in = np.nanmedian(np.abs(np.diff(np.log(rows), axis=1)), axis=1)
            coarser = step_in / float(np.median(np.diff(np.log(wave))))
            if policy == "auto" and (np.any(cover < need) or np.any(~(coarser <= 1.1))):
                why = (f"they cover only {float(cover.min()):.0%} of the model's pixels "
                       f"(min_usable {need:.0%})" if np.any(cover < need) else
                       f"their pixels are {float(np.nanmax(coarser)):.2f} times as wide as "
                       "the model's (more than 1.1)")
                raise ValueError(f"input spectra are on another wavelength grid ({got}) than "
                                 f"the model ({ours}); not resampled automatically: {why}. "
                                 "Pass resample='always' (starlearn predict --resample "
                                 "always) to resample them anyway, or resample them first "
                                 "(starlearn.preprocess.Resample)")
            warnings.warn(ResampledWarning(
                f"input spectra on another wavelength grid ({got}) resampled onto the "
                f"model's grid ({ours}), flux-conserving: ivar propagated, model pixels "
                f"outside their coverage masked (min_usable {need:.0%} decides; "
                f"resample={policy!r})", grid=got), stacklevel=2)
            spectra = Resample(grid=grid).transform(spectra)
        if self.preprocess is not None:
            spectra = self.preprocess.transform(spectra)
        check_grid(spectra, self.wave_, "input spectra")
        return spectra

    # ------------------------------------------------------------------ the model folder
    def _saved_params(self) -> dict[str, Any]:
        """Constructor parameters as JSON values (Transforms as their dictionaries)."""
        params = self.get_params(deep=False)
        params["preprocess"] = preprocess_to_config(self.preprocess)
        return params

    def _network_section(self) -> dict[str, Any]:
        return dict(self.network_config_)

    def _artifact_sections(self) -> dict[str, Any]:
        """The task's fitted state for config.json (beyond class, task, params, network,
        grid, training)."""
        return {}

    def _artifact_tensors(self) -> dict[str, Any]:
        """The arrays for weights.safetensors."""
        return {}

    def _training_section(self) -> dict[str, Any]:
        history = getattr(self, "history_", [])
        return {"epochs_run": len(history),
                "best_valid_loss": min((h["valid_loss"] for h in history), default=None),
                "seconds": history[-1]["seconds"] if history else 0.0}

    def save(self, path: str | PathLike) -> Path:
        """Write the model folder ``path``: config.json (class, task, parameters,
        network, grid and fitted state, with a schema version), weights.safetensors,
        metrics.json (held-out quality) and history.csv (per-epoch losses)."""
        from starlearn.artifact import write_artifact

        check_is_fitted(self)
        module = type(self).__module__.rsplit(".", 1)[0]
        config = {"class": f"{module}.{type(self).__name__}", "task": self._task,
                  "params": self._saved_params(), "network": self._network_section(),
                  "grid": {"wave": self.wave_}, **self._artifact_sections(),
                  "training": self._training_section()}
        return write_artifact(path, config=config, tensors=self._artifact_tensors(),
                              extra={"metrics.json": getattr(self, "valid_metrics_", {}),
                                     "history.csv": history_csv(getattr(self, "history_",
                                                                        []))})

    @classmethod
    def load(cls, path: str | PathLike) -> Any:
        """Rebuild a fitted estimator from its model folder (errors as
        :func:`starlearn.estimators.load` raises them)."""
        from starlearn.estimators.loading import _restore

        return _restore(Path(path), cls)

    @classmethod
    def _params_from_saved(cls, params: dict[str, Any]) -> dict[str, Any]:
        """Saved parameters as the constructor takes them (a subclass rebuilds its own
        JSON-changed values here)."""
        return params

    @classmethod
    def _from_artifact(cls, config: Mapping[str, Any], tensors: dict[str, Any],
                       path: Path) -> Any:
        est = cls(**cls._params_from_saved(params_from_config(config, path, cls._task)))
        est.wave_ = np.asarray(config["grid"]["wave"], dtype=np.float64)
        est.history_ = []  # the loader sets valid_metrics_ from metrics.json
        est._restore_state(config, tensors)
        return est

    def _restore_state(self, config: Mapping[str, Any], tensors: dict[str, Any]) -> None:
        """Set the fitted state from config.json and the tensors."""
        self._restore_sections(config)

    def _restore_sections(self, config: Mapping[str, Any]) -> None:
        """The task's own fitted state from config.json (what ``_artifact_sections``
        wrote)."""


class NetworkEstimator(ArtifactEstimator):
    """Base of the estimators that train a torch network: shared optimisation
    parameters, the fit template, callbacks, checkpoints, the far-from-training check,
    inference engines and ONNX export."""

    _parameter_constraints: ClassVar[dict[str, list[Constraint | type | None]]] = {
        "model_config": [dict, None],
        "epochs": [Integer(1)],
        "batch_size": [Integer(1)],
        "lr": [Real(0.0, closed="neither")],
        "weight_decay": [Real(0.0)],
        "optimizer": [OneOf(("adam", "adamw", "rmsprop", "sgd"))],
        "scheduler": [OneOf(("cosine", "plateau", "none"))],
        "patience": [Integer(1)],
        "max_time": [Real(0.0, closed="neither"), None],
        "valid_fraction": [Real(0.0, 1.0, closed="left")],
        "min_usable": [Real(0.0, 1.0)],
        "device": [str],
        "engine": [OneOf(lambda: _engines())],
        "seed": [Integer(0)],
        "progress": [Boolean()],
    }

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "module_")

    # ------------------------------------------------------------------ fit template
    def _fit(self, train: Any, valid: Any = None, *, checkpoint: str | PathLike | None = None,
             callbacks: Any = None, **data: Any) -> Any:
        """validate -> reset -> plan (data, scalers, targets) -> build -> train ->
        finish (calibration, held-out metrics); returns self."""
        import torch

        from starlearn.models import build_model
        from starlearn.train.callbacks import as_callbacks
        from starlearn.train.trainer import resolve_device

        self._validate()
        hooks = as_callbacks(callbacks)
        reset_fitted(self)
        rng = np.random.default_rng(self.seed)
        torch.manual_seed(self.seed)
        self.device_ = resolve_device(self.device)
        plan = self._plan_training(train, valid, rng, **data)
        self.network_config_ = {"name": self.model, "n_pix": int(self.wave_.size),
                                **plan.outputs, **plan.network}
        build = {k: v for k, v in self.network_config_.items() if k != "name"}
        self.module_ = build_model(self.model, **build)
        trained = plan.wrap(self.module_) if plan.wrap is not None else self.module_
        trainer = make_trainer(self, trained)
        self.history_ = trainer.fit(
            plan.train_batches, lambda: plan.valid_batches, plan.loss, valid_fn=plan.valid_fn,
            callbacks=hooks, checkpoint=fit_checkpoint(self, checkpoint, n_train=plan.n_train,
                                                       wave=self.wave_, rngs=[rng]))
        self.module_.eval()
        self._finish_training(plan)
        return self

    def _plan_training(self, train: Any, valid: Any, rng: np.random.Generator,
                       **data: Any) -> TrainingPlan:  # pragma: no cover - subclasses
        raise NotImplementedError

    def _finish_training(self, plan: TrainingPlan) -> None:
        """After training: calibrations and ``valid_metrics_`` (none here)."""

    # ------------------------------------------------------------------ far from training
    def _fit_novelty(self, train_features: np.ndarray, valid_features: np.ndarray) -> None:
        """The far-from-training check: a shrunk covariance of (a sample of) the training
        spectra's network features; the threshold from held-out features."""
        self.feature_mean_, self.feature_icov_, self.novelty_threshold_ = fit_novelty(
            train_features, valid_features)

    def _far_from_training(self, features: np.ndarray) -> np.ndarray:
        """(n,) bool: features farther from the training ones than the threshold."""
        distance = novelty_distance(features, self.feature_mean_, self.feature_icov_)
        return ~(distance <= self.novelty_threshold_)

    # ------------------------------------------------------------------ network input
    def network_input(self, spectra: SpectrumSet | str | PathLike | Any, *,
                      prepared: bool = False) -> np.ndarray:
        """The network's input (n, channels, n_pixels), float32, for spectra as
        ``predict`` takes them (``prepared=True``: spectra already through
        :meth:`prepare_inputs`). What prediction, saliency and the int8 calibration feed
        the network."""
        if not prepared:
            spectra = self.prepare_inputs(spectra)
        return self._input_arrays(spectra)

    def _input_arrays(self, spectra: SpectrumSet) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    # ------------------------------------------------------------------ engines and ONNX
    def _get_engine(self, work: int | None = None) -> Any:
        """The inference engine for ``self.engine`` and ``work`` network evaluations (built
        once, then reused; "auto" upgrades from torch to ONNX when a large job comes; a
        checked ``model.onnx`` in the model folder is used without exporting again)."""
        from starlearn.artifact import onnx_file
        from starlearn.infer.engine import AUTO_ONNX_MIN_WORK, make_engine

        cached = getattr(self, "engine_", None)
        upgrade = (self.engine == "auto" and cached is not None and cached.name == "torch"
                   and work is not None and work >= AUTO_ONNX_MIN_WORK)
        if cached is not None and self.engine in ("auto", cached.name) and not upgrade:
            return cached
        module, example, names = self._onnx_spec()
        folder = getattr(self, "artifact_path_", None)
        self.engine_ = make_engine(
            module, self.engine, device=self.device_, example=example, output_names=names,
            work=work, onnx_path=onnx_file(folder) if folder else None,
            int8_path=onnx_file(folder, "model.int8.onnx") if folder else None)
        return self.engine_

    def _onnx_spec(self) -> tuple[Any, Any, list[str]]:  # pragma: no cover - subclasses
        """(module, example input, output names) of what prediction runs."""
        raise NotImplementedError(f"{type(self).__name__} has no ONNX export")

    def _example_input(self, channels: int = 1) -> Any:
        """A seeded random network input (4, channels, n_pixels) for exports."""
        import torch

        return torch.randn(4, channels, self.wave_.size,
                           generator=torch.Generator().manual_seed(0))

    def export_onnx(self, path: str | PathLike, int8_calibration: Any = None,
                    n_calibration: int = 512) -> dict[str, Any]:
        """Export the prediction network to ``model.onnx`` in the model folder ``path``
        (which must hold this model's saved weights); the export is checked against torch
        to 1e-4. Later loads of the folder use it for ``engine="onnx"``/"auto".

        With ``int8_calibration`` (spectra as ``predict`` takes them), also write
        ``model.int8.onnx``, quantised with the first ``n_calibration`` of them, for
        ``engine="onnx-int8"``. Returns {"onnx": path[, "int8": path, "int8_max_diff":
        largest output difference on the calibration spectra]}.

        Notes
        -----
        Each file carries ``metadata_props`` (strings; JSON for lists and objects) so
        that it can be used without starlearn: ``starlearn_version``, ``estimator``
        (class), ``task``, ``network``, ``labels`` and ``label_units`` (label models:
        ``label_mean``, ``label_std``, and the error calibration ``error_scale``,
        ``noise_scale``, ``scatter``; the graph's ``label`` and ``label_err`` outputs are
        already de-standardised and calibrated) or
        ``classes``, the input grid (``n_pix``, ``wave_min``, ``wave_max`` in vacuum
        Angstrom, ``wave_spacing`` "log-uniform" with ``dlog10`` or "tabulated"),
        ``input`` (what the network reads), ``outputs`` (output names in order) and
        ``output_<name>`` (what each holds), ``weights_sha256`` (of
        ``weights.safetensors``) and ``preprocess`` (the saved preprocessing to apply
        first, JSON).
        """
        from starlearn.artifact import sha256_file, write_onnx
        from starlearn.infer.engine import export_onnx

        module, example, names = self._onnx_spec()
        wave = np.asarray(self.wave_, dtype=np.float64)
        steps = np.diff(np.log10(wave))
        log_uniform = bool(np.allclose(steps, steps.mean(), rtol=1e-6, atol=0))
        labels = list(getattr(self, "label_names_", []) or [])
        meaning = {  # what the outputs hold (unchanged network outputs)
            "mean": "standardised labels (n, n_labels): label = mean * label_std + "
                    "label_mean",
            "log_var": "log variance of the standardised labels (n, n_labels): sigma = "
                       "exp(log_var / 2) * label_std (before starlearn's calibration)",
            "features": "last hidden layer (n, n_features), for the far-from-training "
                        "check",
            "label": "labels in their units (n, n_labels), in the order of labels "
                     "(label_units)",
            "label_err": "calibrated 1-sigma error of label (n, n_labels), in its units: "
                         "sqrt((error_scale * exp(log_var / 2) * label_std)**2 + "
                         "scatter**2); starlearn adds in quadrature noise_scale times its "
                         "S/N term, which needs the input's error spectrum",
            "proba": "class probabilities (n, n_classes), in the order of classes",
            "reconstruction": "reconstructed spectra in scaled units (n, n_pixels)",
            "latent": "latent vectors",
        }
        from importlib.metadata import version

        from starlearn.units import label_unit, unit_text

        meta: dict[str, Any] = {
            "starlearn_version": version("starlearn"),
            "estimator": f"{type(self).__module__.rsplit('.', 1)[0]}.{type(self).__name__}",
            "task": self._task, "network": str(getattr(self, "model", "")),
            "n_pix": int(wave.size), "wave_min": float(wave[0]), "wave_max": float(wave[-1]),
            "wave_unit": "Angstrom (vacuum)",
            "wave_spacing": "log-uniform" if log_uniform else "tabulated",
            "input": f"float32 (n, channels, {wave.size}): the spectra on this grid after "
                     "the preprocess step and the estimator's input scaling (starlearn's "
                     "network_input)",
            "outputs": list(names),
            "weights_sha256": sha256_file(Path(path) / "weights.safetensors")
            if (Path(path) / "weights.safetensors").exists() else "",
            "preprocess": preprocess_to_config(self.preprocess),
        }
        if log_uniform:
            meta["dlog10"] = float(steps.mean())
        if labels:
            meta["labels"] = labels
            meta["label_units"] = [unit_text(label_unit(n)) for n in labels]
            meta["label_mean"] = np.asarray(self.label_mean_).tolist()
            meta["label_std"] = np.asarray(self.label_std_).tolist()
            for key in ("error_scale", "noise_scale", "scatter"):
                value = getattr(self, f"{key}_", None)
                if value is not None:
                    meta[key] = np.asarray(value, dtype=np.float64).ravel().tolist()
        if getattr(self, "classes_", None) is not None:
            meta["classes"] = [str(c) for c in self.classes_]
        for name in names:
            meta[f"output_{name}"] = meaning.get(name, name)

        def with_metadata(data: bytes) -> bytes:
            import onnx  # present: export_onnx needs it

            proto = onnx.load_from_string(data)
            known = {p.key for p in proto.metadata_props}
            for key, value in meta.items():
                if key in known:
                    continue
                entry = proto.metadata_props.add()
                entry.key = key
                entry.value = value if isinstance(value, str) else json.dumps(value)
            return proto.SerializeToString()

        data = with_metadata(export_onnx(module, example, output_names=names))
        out: dict[str, Any] = {"onnx": write_onnx(path, data)}
        if int8_calibration is not None:
            from starlearn.infer.quantize import quantize_int8

            spectra = read_rows(as_source(int8_calibration), None)
            x = self.network_input(spectra[:n_calibration])
            int8, diff = quantize_int8(data, x)
            out["int8"] = write_onnx(path, with_metadata(int8), "model.int8.onnx",
                                     extra={"calibration_spectra": len(x),
                                            "max_output_diff": diff})
            out["int8_max_diff"] = diff
        self.artifact_path_ = out["onnx"].parent
        self.__dict__.pop("engine_", None)
        return out

    # ------------------------------------------------------------------ the model folder
    def _artifact_tensors(self) -> dict[str, Any]:
        return {**self.module_.state_dict(), **novelty_tensors(self)}

    def _restore_state(self, config: Mapping[str, Any], tensors: dict[str, Any]) -> None:
        from starlearn.models import build_model
        from starlearn.train.trainer import resolve_device

        self.network_config_ = dict(config["network"])
        self.device_ = resolve_device(self.device)
        if "novelty" in config or any(k.startswith(NOVELTY_PREFIX) for k in tensors):
            tensors = restore_novelty(self, config, tensors)  # names a missing entry
        build = {k: v for k, v in self.network_config_.items() if k != "name"}
        self.module_ = build_model(self.network_config_["name"], **build)
        self.module_.load_state_dict(tensors)
        self.module_.eval()
        self._restore_sections(config)


def _engines() -> tuple[str, ...]:
    from starlearn.infer.engine import ENGINES

    return tuple(ENGINES)
