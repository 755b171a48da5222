"""Classifier: spectrum classes (e.g. emission-line stars) with a VGG-like 1-D CNN.

Class imbalance is handled by SMOTE (imbalanced-learn, in pixel space or on a PCA
projection), random oversampling or a class-weighted loss; the shift between the training
instrument and the target survey by a :class:`~starlearn.preprocess.DomainAdapter` applied
to the training spectra and/or domain-adversarial training (a discriminator on the learned
features and a domain-confusion loss) against unlabelled target spectra.
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from typing import Any, ClassVar

import numpy as np
import torch
from astropy.table import Table
from torch import nn

from starlearn.estimators._common import (
    as_source,
    check_grid,
    preprocess_from_config,
    preprocess_to_config,
    read_rows,
    split_rows,
    too_few_usable,
)
from starlearn.estimators._labels import FLAG_FAR_FROM_TRAINING, FLAG_FEW_GOOD_PIXELS
from starlearn.estimators._validation import Boolean, Constraint, Integer, OneOf, Real
from starlearn.estimators.base import NetworkEstimator, TrainingPlan
from starlearn.models import model_names
from starlearn.noise import gaussian_noise, sigma_from_ivar, signal_level
from starlearn.spectra import SpectrumSet
from starlearn.train.balance import METHODS, balance_classes
from starlearn.train.domain import DomainAdversarial, domain_confusion_loss, ramp

__all__ = [
    "BALANCE",
    "FLAG_FAR_FROM_TRAINING",
    "FLAG_FEW_GOOD_PIXELS",
    "FLAG_RV_ASSUMED",
    "Classifier",
    "edge_normalise",
]

BALANCE = METHODS
"""Class-imbalance treatments (:data:`starlearn.train.balance.METHODS`)."""

FLAG_RV_ASSUMED = 32
"""Flag bit: the spectrum had no radial velocity and was taken as at rest (the model's
:class:`~starlearn.preprocess.LineWindow` has ``missing_rv="rest"``; meta ``rv_assumed``)."""


def edge_normalise(flux: np.ndarray, good: np.ndarray, edge: float = 0.2) -> np.ndarray:
    """Divide each spectrum by the straight line through the median flux of its first and
    last ``edge`` fraction of good pixels, minus 1 (a line at the window's centre stays).

    Works for continuum-normalised and flux-calibrated spectra alike, so that windows from
    different instruments share one scale. Bad pixels take the value interpolated
    linearly between the nearest good pixels on each side (the nearest one at the
    window's ends): a masked line core reads as the line around it, not as a core at the
    continuum, which a network takes for a central reversal (a real F0 LAMOST star with
    its H-alpha core masked was called double-peak). Rows with no usable edges are 0.
    """
    flux = np.asarray(flux)
    good = np.asarray(good, dtype=bool)
    n, n_pix = flux.shape
    k = max(2, round(edge * n_pix))
    out = np.zeros((n, n_pix), dtype=np.float32)
    rows = np.flatnonzero(good[:, :k].any(axis=1) & good[:, n_pix - k:].any(axis=1))
    if rows.size == 0:
        return out
    g = good[rows]
    x = np.arange(n_pix, dtype=np.float64)

    def median(values: np.ndarray, part: slice) -> np.ndarray:
        # median over the good pixels of each row's part (every row has at least one)
        return np.nanmedian(np.where(g[:, part], values[..., part], np.nan), axis=1)

    left, right = slice(0, k), slice(n_pix - k, n_pix)
    f_left, f_right = median(flux[rows], left), median(flux[rows], right)
    x_left, x_right = median(x, left), median(x, right)
    continuum = (f_left[:, None] + (f_right - f_left)[:, None] * (x - x_left[:, None])
                 / np.maximum(x_right - x_left, 1)[:, None])
    positive = np.all((continuum > 0) | ~g, axis=1)
    rows, g, continuum = rows[positive], g[positive], continuum[positive]
    ratio = np.divide(flux[rows], continuum, out=np.zeros_like(continuum), where=g) - 1.0
    ratio = np.where(g, ratio, 0.0)
    for i in np.flatnonzero(~g.all(axis=1)):
        ratio[i, ~g[i]] = np.interp(x[~g[i]], x[g[i]], ratio[i, g[i]])
    out[rows] = ratio
    return out


class _Probabilities(nn.Module):
    """Class probabilities and features in one pass (what prediction needs)."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.network.embed(x)
        return torch.softmax(self.network.head(features), dim=1), features


class Classifier(NetworkEstimator):
    """Classify spectra (e.g. absorption, emission, double-peak H-alpha profiles).

    Parameters
    ----------
    model : str
        Network name (``vgg1d``).
    classes : list of str, optional
        Class names in output order; default the training set's ``class_names``.
        Training spectra of other classes, or without a class (-1), are left out.
    model_config : dict, optional
        Architecture overrides, e.g. ``{"blocks": [[16, 16], [32, 32]], "dense": [64]}``.
    preprocess : Transform, optional
        Applied to every input (training, validation, target and prediction), e.g.
        :class:`~starlearn.preprocess.LineWindow` (140 pixels around H-alpha); saved with
        the model.
    adapter : Transform, optional
        Applied to the labelled training and validation spectra only, before
        ``preprocess``: a :class:`~starlearn.preprocess.DomainAdapter` that makes the
        training instrument look like the target one (not saved: prediction inputs come
        from the target instrument).
    balance : {None, "smote", "oversample", "weights"}
        Class-imbalance treatment: SMOTE (synthetic minority spectra interpolated between
        neighbours, imbalanced-learn), random oversampling of the minority classes, or a
        loss weighted by inverse class frequency.
    smote_space : {"pca", "pixels"}
        SMOTE on a PCA projection (``smote_components`` components, mapped back to pixels)
        or directly on the pixels.
    smote_components : int
    adversarial : bool
        Domain-adversarial training against the unlabelled ``target`` given to ``fit``.
    adversarial_weight : float
        Weight of the domain loss (ramped up from 0 during training).
{training_parameters}
        The classifier's scheduler is "plateau" by default (a cosine decay ended the
        learning rate before the double-peak class was learnt on small sets); the epoch
        with the lowest validation cross-entropy is kept; the validation split is
        stratified by class.
    augment_noise : float
        Probability that a training spectrum gets an extra noise realisation drawn from its
        error spectrum.
    min_usable : float
        Least fraction of the model's pixels that must be usable (covered, unmasked, ivar >
        0 after the model's preprocessing) for a spectrum to be classified; below it the
        class is "" and the probabilities NaN, with flag 4 (``FLAG_FEW_GOOD_PIXELS``). 0.5 by
        default; settable after loading and with ``starlearn predict --min-usable``.
    engine : str
        Prediction backend (see :func:`starlearn.infer.make_engine`).

    Attributes
    ----------
    classes_ : list of str
    module_ : torch.nn.Module
    wave_ : ndarray
        The wavelength grid the network reads (after ``preprocess``).
    class_counts_ : ndarray
        Training spectra per class before balancing.
    history_ : list of dict
    """

    _task: ClassVar[str] = "classify"
    _estimator_type = "classifier"  # scikit-learn before 1.6
    _parameter_constraints: ClassVar[dict[str, list[Constraint | type | None]]] = {
        "model": [OneOf(lambda: model_names("classify"))],
        "classes": [list, tuple, None],
        "balance": [OneOf(BALANCE)],
        "smote_space": [OneOf(("pca", "pixels"))],
        "smote_components": [Integer(1)],
        "adversarial": [Boolean()],
        "adversarial_weight": [Real(0.0)],
        "augment_noise": [Real(0.0, 1.0)],
    }

    def __init__(self, model: str = "vgg1d", classes: list[str] | None = None, *,
                 model_config: dict[str, Any] | None = None, preprocess: Any = None,
                 adapter: Any = None, balance: str | None = None, smote_space: str = "pca",
                 smote_components: int = 20, adversarial: bool = False,
                 adversarial_weight: float = 0.3, epochs: int = 40, batch_size: int = 64,
                 lr: float = 1e-3, weight_decay: float = 0.0, optimizer: str = "adam",
                 scheduler: str = "plateau",
                 patience: int = 8, max_time: float | None = None,
                 valid_fraction: float = 0.15, augment_noise: float = 0.5,
                 min_usable: float = 0.5, device: str = "auto", engine: str = "auto",
                 seed: int = 0, progress: bool = True) -> None:
        self.model = model
        self.classes = classes
        self.model_config = model_config
        self.preprocess = preprocess
        self.adapter = adapter
        self.balance = balance
        self.smote_space = smote_space
        self.smote_components = smote_components
        self.adversarial = adversarial
        self.adversarial_weight = adversarial_weight
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.patience = patience
        self.max_time = max_time
        self.valid_fraction = valid_fraction
        self.augment_noise = augment_noise
        self.min_usable = min_usable
        self.device = device
        self.engine = engine
        self.seed = seed
        self.progress = progress

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import ClassifierTags

        tags = super().__sklearn_tags__()
        tags.estimator_type = "classifier"
        tags.classifier_tags = ClassifierTags()
        return tags

    # ------------------------------------------------------------------ data
    def _input_arrays(self, spectra: SpectrumSet) -> np.ndarray:
        """(n, 1, n_pixels) float32: edge-normalised flux, bad pixels 0."""
        good = ~spectra.mask & (spectra.ivar > 0)
        return edge_normalise(spectra.flux.astype(np.float64), good)[:, None, :]

    def _class_index(self, spectra: SpectrumSet, what: str) -> np.ndarray:
        """Index into ``classes_`` for each spectrum (-1 when its class is not modelled)."""
        if spectra.classes is None:
            raise ValueError(f"Classifier.fit: the {what} spectra have no classes")
        names = list(spectra.class_names)
        lookup = np.array([self.classes_.index(n) if n in self.classes_ else -1
                           for n in names] + [-1])
        return lookup[np.where(spectra.classes >= 0, spectra.classes, len(names))]

    def _prepare(self, spectra: SpectrumSet, *, adapt: bool) -> SpectrumSet:
        if adapt and self.adapter is not None:
            spectra = self.adapter.fit_transform(spectra)
        if self.preprocess is not None:
            spectra = self.preprocess.transform(spectra)
        return spectra

    # ------------------------------------------------------------------ fitting
    def fit(self, train: SpectrumSet | str | PathLike, valid: Any = None,
            target: Any = None, *, checkpoint: str | PathLike | None = None,
            callbacks: Any = None) -> Classifier:
        """Train on labelled ``train`` spectra; returns self.

        ``valid``: labelled validation spectra of the training instrument (default: a
        stratified ``valid_fraction`` of ``train``). ``target``: unlabelled spectra of the
        instrument the model will classify (needed for ``adversarial=True``).
        ``checkpoint``: a file where the training state is saved after every epoch; when it
        exists (same settings and data) the training resumes from it. ``callbacks``:
        training hooks (:mod:`starlearn.train.callbacks`).
        """
        return self._fit(train, valid, checkpoint=checkpoint, callbacks=callbacks,
                         target=target)

    def _plan_training(self, train: Any, valid: Any, rng: np.random.Generator, *,
                       target: Any = None) -> TrainingPlan:
        train_set = read_rows(as_source(train), None)
        if self.adapter is not None:
            train_set = self.adapter.fit_transform(train_set)
        if self.preprocess is not None:
            train_set = self.preprocess.fit_transform(train_set)
        if train_set.wave is None or np.ndim(train_set.wave) != 1:
            raise ValueError("Classifier.fit: training spectra must share one wavelength "
                             "grid; give a preprocess step (e.g. LineWindow or Resample)")
        if train_set.classes is None:
            raise ValueError("Classifier.fit: the training spectra have no classes")
        self.classes_ = list(self.classes) if self.classes else list(train_set.class_names)
        unknown = [c for c in self.classes_ if c not in train_set.class_names]
        if unknown:
            raise ValueError(f"Classifier.fit: classes {unknown} are not in the training set "
                             f"(it has {list(train_set.class_names)})")
        y_all = self._class_index(train_set, "training")
        # spectra of other classes, and those the preprocessing left without data (e.g. a
        # window they do not cover), do not train the model
        usable = (~train_set.mask).mean(axis=1) >= 0.5
        keep = np.flatnonzero((y_all >= 0) & usable)
        counts = np.bincount(y_all[keep], minlength=len(self.classes_))
        if (counts == 0).any():
            empty = [c for c, n in zip(self.classes_, counts, strict=True) if n == 0]
            raise ValueError(f"Classifier.fit: no usable training spectra of classes {empty} "
                             f"({int((~usable).sum())} of {len(train_set)} spectra have fewer "
                             "than half their pixels usable after preprocessing)")
        if valid is None:
            train_idx, valid_idx = _stratified_split(y_all[keep], self.valid_fraction, rng)
            valid_set, train_set = train_set[keep[valid_idx]], train_set[keep[train_idx]]
        else:
            valid_set = self._prepare(read_rows(as_source(valid), None), adapt=True)
            train_set = train_set[keep]
        self.wave_ = np.asarray(train_set.wave, dtype=np.float64)
        check_grid(valid_set, self.wave_, "validation spectra")
        y_train = self._class_index(train_set, "training")
        y_valid = self._class_index(valid_set, "validation")
        valid_set, y_valid = valid_set[y_valid >= 0], y_valid[y_valid >= 0]
        self.class_counts_ = np.bincount(y_train, minlength=len(self.classes_))
        x_train = self._input_arrays(train_set)
        x_train, y_train = balance_classes(x_train, y_train, self.balance,
                                           space=self.smote_space,
                                           components=self.smote_components,
                                           seed=int(rng.integers(2**31)))
        self.balanced_counts_ = np.bincount(y_train, minlength=len(self.classes_))
        # noise augmentation: sigma of the network input per pixel (edge-normalised units)
        sigma = _input_sigma(train_set)
        if len(sigma) < len(x_train):  # synthetic (balanced) spectra borrow a typical sigma
            extra = rng.integers(len(sigma), size=len(x_train) - len(sigma))
            sigma = np.concatenate([sigma, sigma[extra]])

        target_x = None
        if self.adversarial:
            if target is None:
                raise ValueError("Classifier.fit: adversarial=True needs unlabelled target "
                                 "spectra (fit(train, target=...))")
            target_set = self._prepare(read_rows(as_source(target), None), adapt=False)
            check_grid(target_set, self.wave_, "target spectra")
            target_x = self._input_arrays(target_set)

        weight = None
        if self.balance == "weights":
            weight = torch.as_tensor(len(y_train) / (len(self.classes_)
                                                     * np.maximum(self.class_counts_, 1)),
                                     dtype=torch.float32, device=self.device_)
        dev = self.device_
        ce = nn.CrossEntropyLoss(weight=weight)

        def train_batches(epoch: int):
            strength = self.adversarial_weight * ramp(epoch, self.epochs)
            order = rng.permutation(len(x_train))
            for start in range(0, len(order), self.batch_size):
                rows = order[start:start + self.batch_size]
                xb = x_train[rows]
                if self.augment_noise > 0:
                    xb = xb + gaussian_noise(sigma[rows], rng,
                                             fraction=self.augment_noise).astype(np.float32)
                batch = [torch.as_tensor(xb, device=dev),
                         torch.as_tensor(y_train[rows], device=dev)]
                if target_x is not None:
                    pick_t = rng.integers(len(target_x), size=len(rows))
                    batch += [torch.as_tensor(target_x[pick_t], device=dev),
                              strength]
                yield batch

        def loss_fn(module: nn.Module, batch: list[Any]) -> torch.Tensor:
            if len(batch) == 2 or not module.training:
                return ce(module(batch[0]), batch[1])
            x_s, y_s, x_t, strength = batch
            net = module.network
            f_s, f_t = net.embed(x_s), net.embed(x_t)
            # the discriminator learns to tell the domains apart (features held fixed) and
            # the features learn to leave it at 50/50 (discriminator held fixed)
            d_loss, confusion = domain_confusion_loss(module, f_s, f_t)
            return ce(net.head(f_s), y_s) + d_loss + float(strength) * confusion

        x_valid = self._input_arrays(valid_set)
        valid_batches = [(torch.as_tensor(x_valid[s:s + 512], device=dev),
                          torch.as_tensor(y_valid[s:s + 512], device=dev))
                         for s in range(0, len(x_valid), 512)]
        return TrainingPlan(
            train_batches, valid_batches, loss_fn, n_train=len(train_set),
            outputs={"n_labels": len(self.classes_)}, network=dict(self.model_config or {}),
            wrap=(lambda m: DomainAdversarial(m, m.n_features)) if self.adversarial else None,
            state={"train": train_set, "valid": valid_set, "y_valid": y_valid})

    def _finish_training(self, plan: TrainingPlan) -> None:
        from starlearn.evaluate.classification import classification_metrics

        state = plan.state
        proba, features = self._predict_arrays(state["valid"])
        self.valid_metrics_ = classification_metrics(state["y_valid"], proba, self.classes_)
        self._fit_novelty(self._predict_arrays(state["train"][:2000])[1], features)

    # ------------------------------------------------------------------ prediction
    def _onnx_spec(self) -> tuple[nn.Module, torch.Tensor, list[str]]:
        example = self._example_input(1)
        return _Probabilities(self.module_), example, ["proba", "features"]

    def _predict_arrays(self, spectra: SpectrumSet) -> tuple[np.ndarray, np.ndarray]:
        engine = self._get_engine(len(spectra))
        proba, features = engine.run(self._input_arrays(spectra))
        return proba, features

    def predict_proba(self, spectra: SpectrumSet | str | PathLike) -> np.ndarray:
        """Class probabilities (n_spectra, n_classes), columns in ``classes_`` order."""
        return self._predict_arrays(self.prepare_inputs(spectra))[0]

    def predict(self, spectra: SpectrumSet | str | PathLike) -> Table:
        """The most probable class of each spectrum.

        Returns
        -------
        astropy Table: ``id``, ``class`` (name), ``probability`` (of that class),
        ``prob_<class>`` for every class (the class name made an identifier: runs of
        characters other than letters, digits and "_" become "_", so "double-peak" gives
        ``prob_double_peak``), ``flags`` (bits: 2 far from the training data,
        4 fewer than ``min_usable`` of the pixels usable, e.g. the window is not covered:
        then class "" and NaN probabilities; 32 no radial velocity, the window was placed
        at rest: :data:`FLAG_RV_ASSUMED`).
        """
        spectra = self.prepare_inputs(spectra)
        proba, features = self._predict_arrays(spectra)
        far = self._far_from_training(features)
        few = too_few_usable(spectra, self.min_usable)
        proba = np.where(few[:, None], np.nan, proba)
        best = np.nan_to_num(proba, nan=-1.0).argmax(axis=1)
        table = Table({"id": np.asarray(spectra.ids, dtype=str),
                       "class": np.where(few, "", np.asarray(self.classes_)[best]),
                       "probability": proba[np.arange(len(best)), best].astype(np.float32)})
        import re

        for j, name in enumerate(self.classes_):
            # a valid identifier (FITS, SQL, pandas): "double-peak" -> prob_double_peak
            column = "prob_" + (re.sub(r"\W+", "_", str(name)).strip("_") or str(j))
            table[column if column not in table.colnames else f"{column}_{j}"] = (
                proba[:, j].astype(np.float32))
        assumed = (np.asarray(spectra.meta["rv_assumed"], dtype=bool)
                   if "rv_assumed" in spectra.meta.colnames else np.zeros(len(spectra), bool))
        table["flags"] = (np.where(far, FLAG_FAR_FROM_TRAINING, 0)
                          | np.where(few, FLAG_FEW_GOOD_PIXELS, 0)
                          | np.where(assumed, FLAG_RV_ASSUMED, 0)).astype(np.int32)
        return table

    def features(self, spectra: SpectrumSet | str | PathLike) -> np.ndarray:
        """The network's learned features (last hidden layer) of each spectrum."""
        return self._predict_arrays(self.prepare_inputs(spectra))[1]

    def score(self, spectra: SpectrumSet | str | PathLike) -> float:
        """Accuracy: the fraction of the spectra of a modelled class (others left out)
        whose predicted class is theirs; higher is better, as scikit-learn expects."""
        spectra = read_rows(as_source(spectra), None)
        truth = self._class_index(spectra, "scored")
        keep = truth >= 0
        if not keep.any():
            raise ValueError(f"Classifier.score: none of the spectra is of the classes "
                             f"{self.classes_}")
        predicted = np.asarray(self.predict(spectra[np.flatnonzero(keep)])["class"])
        return float(np.mean(predicted == np.asarray(self.classes_)[truth[keep]]))

    # ------------------------------------------------------------------ the model folder
    def _saved_params(self) -> dict[str, Any]:
        """The training-only ``adapter`` is recorded but not needed to predict."""
        return {**super()._saved_params(), "adapter": preprocess_to_config(self.adapter)}

    @classmethod
    def _params_from_saved(cls, params: dict[str, Any]) -> dict[str, Any]:
        return {**params, "adapter": preprocess_from_config(params.get("adapter"))}

    def _artifact_sections(self) -> dict[str, Any]:
        return {**super()._artifact_sections(),
                "classes": {"names": self.classes_, "counts": self.class_counts_,
                            "balanced_counts": self.balanced_counts_},
                "novelty": {"threshold": self.novelty_threshold_}}  # arrays: in the tensors

    def _restore_sections(self, config: Mapping[str, Any]) -> None:
        super()._restore_sections(config)
        classes = config["classes"]
        self.classes_ = list(classes["names"])
        self.class_counts_ = np.asarray(classes["counts"], dtype=np.int64)
        self.balanced_counts_ = np.asarray(classes["balanced_counts"], dtype=np.int64)


def _input_sigma(spectra: SpectrumSet) -> np.ndarray:
    """Noise of the edge-normalised network input (n, 1, n_pixels) from the error spectra."""
    sigma = sigma_from_ivar(spectra.ivar, spectra.mask)
    level = signal_level(spectra.flux, ~spectra.mask & (spectra.ivar > 0), empty=1.0)
    return (sigma / np.maximum(level, 1e-30)[:, None]).astype(np.float32)[:, None, :]


def _stratified_split(y: np.ndarray, fraction: float,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(train, valid) indices with ``fraction`` of every class held out (at least one)."""
    train, valid = [], []
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        if rows.size < 2:
            train.append(rows)
            continue
        t, v = split_rows(rows.size, fraction, rng) if rows.size >= 4 else (
            np.arange(1, rows.size), np.arange(1))
        train.append(rows[t])
        valid.append(rows[v])
    if not valid:
        raise ValueError("Classifier.fit: too few training spectra to hold out a validation "
                         "set; give valid=")
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(valid))
