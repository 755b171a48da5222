"""Regressor: stellar labels from spectra with a StarNet-family network and honest errors."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from os import PathLike
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch

from starlearn.estimators._common import (
    as_source,
    check_grid,
    novelty_distance,
    novelty_threshold,
    prepare_fit_data,
    read_rows,
    split_rows,
)
from starlearn.estimators._labels import (
    FLAG_FAR_FROM_TRAINING,
    FLAG_FEW_GOOD_PIXELS,
    FLAG_OUTSIDE_RANGE,
    LabelEstimator,
)
from starlearn.estimators._regressor_training import (
    _alignment_loss,
    _frozen_part,
    _nll,
    _nll_and_mse,
    _TargetPool,
    _translated,
)
from starlearn.estimators._validation import Boolean, Constraint, Integer, OneOf, Real
from starlearn.estimators.base import NetworkEstimator, TrainingPlan
from starlearn.models import model_names
from starlearn.noise import measure_snr, redraw_noise
from starlearn.spectra import SpectrumSet
from starlearn.train.data import FluxScaler, iterate_batches, to_tensor
from starlearn.train.domain import (
    CycleTranslator,
    DomainAdversarial,
    ramp_at,
    train_translator,
)

__all__ = ["ADAPT", "ADAPT_DEFAULT", "FLAG_FAR_FROM_TRAINING", "FLAG_FEW_GOOD_PIXELS",
           "FLAG_OUTSIDE_RANGE", "Regressor"]

ADAPT = ("auto", "none", "match", "coral", "mmd", "adversarial", "cycle", "match+coral",
         "match+mmd", "match+adversarial", "match+cycle")
"""Values of the Regressor's ``adapt`` parameter."""
ADAPT_DEFAULT = "mmd"
"""What ``adapt="auto"`` means when ``fit`` gets target spectra (chosen by
benchmarks/transfer.py, session 10: MMD gave the lowest target errors, Teff 312 K
against 592 K without adaptation, 530 K with "match" and 459 K with "coral"; without
target spectra "auto" is "none")."""
_TRANSLATOR = "translator."

class Regressor(LabelEstimator, NetworkEstimator):
    """Predict stellar labels (Teff, log g, [Fe/H], abundances) with uncertainties.

    Parameters
    ----------
    model : str
        Network name: ``shallow-nn``, ``deep-nn``, ``shallow-cnn``, ``starnet``,
        ``deep-cnn`` (the StarNet architecture table; any network registered for the
        "regress" task). The Cannon is its own estimator with the same interface:
        :class:`~starlearn.estimators.Cannon`.
    labels : list of str, optional
        Labels to predict; default all labels of the training set. Missing labels (NaN)
        in the training set are allowed: they do not enter the loss.
    model_config : dict, optional
        Overrides of the architecture (e.g. ``{"filters": [8, 32], "dense": [512, 256]}``).
    preprocess : Transform, optional
        A fitted-on-train preprocessing step or Pipeline (e.g. resampling to a grid and
        continuum normalisation) applied to every input; saved with the model.
{training_parameters}
        The best epoch is the one with the lowest mean squared error of the standardised
        label means on the validation set (at most 5,000 spectra held out).
    calib_fraction : float
        Share of the training set held out for calibrating the errors (at least 200
        spectra, or a quarter of a smaller set; at most 5,000): spectra that chose nothing
        else (neither the weights nor the best epoch).
    mask_channel : bool
        Give the bad-pixel mask to the network as a second input channel.
    augment_noise : float
        Probability that a training spectrum gets an extra noise realisation drawn from
        its error spectrum (1/sqrt(ivar)).
    augment_mask : float
        Fraction of pixels masked at random in each training spectrum ("missing data").
    augment_rv : float
        Standard deviation (km/s) of a random Doppler jitter applied by shifting pixels
        (rounded to whole pixels on log-uniform grids).
    mc_samples : int
        Noise realisations per spectrum for propagating the error spectrum at prediction.
        0 (the default): the network's predicted variance, trained on noisy spectra,
        already carries the noise; use > 0 only for a model trained on noiseless spectra,
        whose head cannot have learnt it.
    epistemic : {"none", "mc-dropout"}
        Model uncertainty added to the head's: "mc-dropout" runs ``epistemic_samples``
        passes with dropout on (the network needs ``model_config={"dropout": p}``, p > 0)
        and adds the spread of their means in quadrature.
    epistemic_samples : int
        Passes for ``epistemic="mc-dropout"``.
    label_errors : bool
        Use the training labels' own uncertainties where the data carry them (meta
        ``<label>_err`` in label units, as ``starlearn ingest --labels`` joins a
        catalogue's error columns): the loss becomes the Gaussian likelihood of variance
        predicted + label error squared (heteroscedastic label noise, see
        :func:`starlearn.train.losses.masked_gaussian_nll`), so a badly known label weighs
        less and the predicted error does not learn the catalogue's errors. No effect on
        data without such columns.
    adapt : str
        Unsupervised domain adaptation to the unlabelled ``target`` spectra given to
        ``fit`` (e.g. synthetic training spectra, observed targets; see docs/transfer.md):

        * "none": none (a ``target`` then only makes the far-from-training flag and the
          domain distance target-aware);
        * "match": instrument matching: each training (and validation, calibration)
          spectrum takes the bad-pixel mask of a random target spectrum and noise that
          brings its per-pixel error up to that target spectrum's (its error shape and
          S/N, scaled to the spectrum's median flux; noisier pixels are left alone).
          Resampling onto the target grid is the ``preprocess`` step's job (the command
          line adds it when the target is on another survey grid);
        * "coral": CORAL, the squared distance between the covariances of the network's
          last hidden features (``module.embed``) of a source and a target batch over
          4 d**2, times ``adapt_weight``;
        * "mmd": Gaussian-kernel maximum mean discrepancy of those features (kernel widths
          0.5, 1 and 2 times the batch's median distance), times ``adapt_weight``;
        * "adversarial": a domain discriminator on the features and a domain-confusion
          loss times ``adapt_weight`` (the Classifier's, :mod:`starlearn.train.domain`);
        * "cycle": a learned translation (:class:`~starlearn.train.domain.CycleTranslator`:
          one small dense autoencoder per domain with a shared latent space, trained on
          the unlabelled spectra with reconstruction, cycle-consistency and ``adapt_weight``
          times a latent MMD); the network learns from source spectra passed through the
          source autoencoder and predicts target spectra translated into the source
          domain (saved with the model: prediction inputs are taken as target spectra);
        * "match+..." : matching, then the feature alignment or translation;
        * "auto" (default): :data:`ADAPT_DEFAULT` with a ``target``, else "none".

        The alignment weights (coral, mmd, adversarial) rise from 0 along the DANN ramp
        ``2 / (1 + exp(-10 epoch / (epochs - 1))) - 1``.
    adapt_weight : float
        Weight of the alignment term (dimensionless, against the Gaussian NLL of the
        standardised labels); for "cycle" the weight of the latent MMD.
    cycle_latent, cycle_hidden : int
        "cycle": shared latent size and hidden width of each encoder and decoder.
    cycle_epochs : int
        "cycle": passes of the translator's training over the larger of the two sets
        (Adam, lr 1e-3, batches of 64; at most a third of ``max_time`` when that is set).
    min_usable : float
        Least fraction of the model's pixels that must be usable (covered, unmasked, ivar >
        0 after the model's preprocessing) for a spectrum to be predicted; below it the
        spectrum's outputs are NaN and flag 4 (``FLAG_FEW_GOOD_PIXELS``) is set, never
        numbers for pixels the model cannot see. 0.5 by default; settable after loading
        (``model.min_usable = 0.3``) and with ``starlearn predict --min-usable``.
    engine : str
        Prediction backend: "torch", "onnx" (ONNX Runtime on the CPU, exported once per
        fitted model) or "auto" (onnx on the CPU when onnxruntime is installed).

    Attributes
    ----------
    module_ : torch.nn.Module
    label_names_ : list of str
    label_mean_, label_std_ : ndarray (n_labels,)
        Label standardisation.
    label_min_, label_max_ : ndarray (n_labels,)
        Range of the training labels (predictions outside are flagged).
    error_scale_, noise_scale_, scatter_ : ndarray (n_labels,)
        Error calibration fitted on the calibration split: the reported error is
        ``sqrt((error_scale_ * statistical error)**2 + (noise_scale_ * noise)**2
        + scatter_**2)`` (scatter_ in label units), the statistical error being the head's
        predicted sigma (plus the noise propagation and the epistemic spread where asked)
        and ``noise`` the first-order noise error: 1 / (the spectrum's median S/N per
        pixel) times ``noise_map_`` at the predicted labels; see
        :func:`starlearn.estimators._common.calibrate_errors`.
    noise_map_ : ndarray (n_terms, n_labels) or None
        How input noise reaches each label, ``log(spread over noise draws x S/N)`` as a
        quadratic in the standardised labels, measured once on the calibration split
        (16 draws per spectrum) so that prediction needs no noise draws; None with
        ``mc_samples > 0``.
    valid_metrics_ : dict
        Accuracy on the calibration split and the calibration measured on it out of fold
        (each half's z-scores with the calibration fitted on the other half): an honest
        held-out figure, not 1.00 by construction. With a ``target``, ``"domain"``: the
        distance between source and target features of the fitted network
        (:func:`starlearn.evaluate.transfer.domain_distance`); after :meth:`fine_tune`,
        ``"fine_tune"``: what it did.
    adapt_ : str
        The adaptation used ("none" without a target).
    translator_ : CycleTranslator or None
        The "cycle" translation (prediction inputs pass through it).
    wave_ : ndarray (n_pixels,)
        The wavelength grid (vacuum Angstrom) the model was trained on.
    history_ : list of dict
        Per-epoch losses.
    """

    _parameter_constraints: ClassVar[dict[str, list[Constraint | type | None]]] = {
        "model": [OneOf(lambda: model_names("regress"))],
        "mask_channel": [Boolean()],
        "augment_noise": [Real(0.0, 1.0, closed="left")],
        "augment_mask": [Real(0.0, 1.0, closed="left")],
        "augment_rv": [Real(0.0)],
        "mc_samples": [Integer(0)],
        "epistemic": [OneOf(("none", "mc-dropout"))],
        "epistemic_samples": [Integer(2)],
        "label_errors": [Boolean()],
        "adapt": [OneOf(ADAPT)],
        "adapt_weight": [Real(0.0)],
        "cycle_latent": [Integer(1)],
        "cycle_hidden": [Integer(1)],
        "cycle_epochs": [Integer(1)],
    }

    def __init__(self, model: str = "starnet", labels: list[str] | None = None, *,
                 model_config: dict[str, Any] | None = None, preprocess: Any = None,
                 epochs: int = 16, batch_size: int = 64, lr: float = 1e-3,
                 weight_decay: float = 0.0, optimizer: str = "adam",
                 scheduler: str = "cosine", patience: int = 8,
                 max_time: float | None = None, valid_fraction: float = 0.1,
                 calib_fraction: float = 0.1,
                 mask_channel: bool = False, augment_noise: float = 0.0,
                 augment_mask: float = 0.0, augment_rv: float = 0.0, mc_samples: int = 0,
                 epistemic: str = "none", epistemic_samples: int = 8,
                 label_errors: bool = True,
                 adapt: str = "auto", adapt_weight: float = 1.0, cycle_latent: int = 32,
                 cycle_hidden: int = 256, cycle_epochs: int = 20,
                 min_usable: float = 0.5, device: str = "auto", engine: str = "auto",
                 seed: int = 0,
                 progress: bool = True) -> None:
        self.model = model
        self.labels = labels
        self.model_config = model_config
        self.preprocess = preprocess
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.patience = patience
        self.max_time = max_time
        self.valid_fraction = valid_fraction
        self.calib_fraction = calib_fraction
        self.mask_channel = mask_channel
        self.augment_noise = augment_noise
        self.augment_mask = augment_mask
        self.augment_rv = augment_rv
        self.mc_samples = mc_samples
        self.epistemic = epistemic
        self.epistemic_samples = epistemic_samples
        self.label_errors = label_errors
        self.adapt = adapt
        self.adapt_weight = adapt_weight
        self.cycle_latent = cycle_latent
        self.cycle_hidden = cycle_hidden
        self.cycle_epochs = cycle_epochs
        self.min_usable = min_usable
        self.device = device
        self.engine = engine
        self.seed = seed
        self.progress = progress

    # ------------------------------------------------------------------ checks
    def _validate(self) -> None:
        if self.model == "cannon":
            raise ValueError("Regressor: The Cannon is its own estimator: use "
                             "starlearn.estimators.Cannon(labels) (the command line's "
                             "--model cannon builds it)")
        super()._validate()

    def _check_params(self) -> None:
        if self.epistemic == "mc-dropout" and not float(
                (self.model_config or {}).get("dropout", 0.0)) > 0:
            raise ValueError("Regressor: epistemic='mc-dropout' needs a network with dropout: "
                             "model_config={'dropout': 0.1} (or more)")

    # ------------------------------------------------------------------ fitting
    def fit(self, train: SpectrumSet | str | PathLike | Any,
            valid: SpectrumSet | str | PathLike | Any = None, *,
            target: SpectrumSet | str | PathLike | Any = None,
            checkpoint: str | PathLike | None = None, callbacks: Any = None) -> Regressor:
        """Train on ``train`` (SpectrumSet, data-set path or open data set); returns self.

        Without ``valid``, ``valid_fraction`` of ``train`` (a seeded random choice) is held
        out for early stopping; ``calib_fraction`` of ``train`` is always held out for
        calibrating the errors (it chooses nothing else). ``target``: unlabelled spectra
        of the survey the model will predict (their labels, if any, are never read),
        for the domain adaptation ``adapt``; they must be on the model's grid after
        ``preprocess``. ``checkpoint``: a file where the training state is saved after
        every epoch; when it exists (same settings and data) the training resumes from it
        (see :mod:`starlearn.train.checkpoint`). ``callbacks``: training hooks
        (:mod:`starlearn.train.callbacks`).
        """
        return self._fit(train, valid, checkpoint=checkpoint, callbacks=callbacks,
                         target=target)

    def _resolve_adapt(self, target: Any) -> str:
        if self.adapt == "auto":
            return ADAPT_DEFAULT if target is not None else "none"
        if self.adapt != "none" and target is None:
            raise ValueError(f"Regressor.fit: adapt={self.adapt!r} needs unlabelled target "
                             "spectra: fit(train, target=...)")
        return self.adapt

    def _plan_training(self, train: Any, valid: Any, rng: np.random.Generator, *,
                       target: Any = None) -> TrainingPlan:
        self.adapt_ = self._resolve_adapt(target)
        fit_data = prepare_fit_data("Regressor", train, valid, preprocess=self.preprocess,
                                    valid_fraction=self.valid_fraction, rng=rng)
        source, valid_set = fit_data.source, fit_data.valid
        pool = np.arange(len(source)) if fit_data.train_rows is None else fit_data.train_rows
        train_rows, calib_rows = self._calibration_split(pool, rng)
        self.wave_ = fit_data.wave
        label_idx = self._fit_labels(source, train_rows)
        target_set = None
        if target is not None:
            target_set = read_rows(as_source(target), None)
            if self.preprocess is not None:
                target_set = self.preprocess.transform(target_set)
            check_grid(target_set, self.wave_, "target spectra")
        self._target_pool = _TargetPool.of(target_set) if "match" in self.adapt_ else None
        calib_set = self._matched(read_rows(source, calib_rows), rng)
        valid_set = self._matched(valid_set, rng)
        scaler_rows = np.sort(rng.choice(train_rows, min(2000, train_rows.size), replace=False))
        self.flux_scaler_ = FluxScaler.fit(read_rows(source, scaler_rows), seed=self.seed)
        self.translator_ = None
        if "cycle" in self.adapt_:
            self.translator_ = self._fit_translator(
                self._matched(read_rows(source, scaler_rows), rng), target_set)
            self.translator_.direction = "source"  # training: source spectra
        align = self.adapt_.split("+")[-1]
        target_x = None
        if target_set is not None and align in ("coral", "mmd", "adversarial"):
            target_x = torch.as_tensor(self._input_arrays(target_set), device=self.device_)

        clock: list[float] = []
        n_batches = max(1, -(-train_rows.size // self.batch_size))

        def train_batches(epoch: int):
            # the ramp follows the epochs, or the time limit when that ends training first
            clock[:] = clock or [time.perf_counter()]
            for step, batch in enumerate(iterate_batches(
                    source, batch_size=self.batch_size, shuffle=True, rng=rng,
                    rows=train_rows)):
                x, y = self._batch(self._matched(batch, rng), label_idx, rng, augment=True)
                if target_x is None:
                    yield x, y
                    continue
                progress = (epoch + step / n_batches) / max(self.epochs - 1, 1)
                if self.max_time is not None:
                    progress = max(progress, (time.perf_counter() - clock[0]) / self.max_time)
                pick = torch.as_tensor(rng.integers(len(target_x), size=len(x)))
                yield (x, y, target_x[pick.to(target_x.device)],
                       float(self.adapt_weight) * ramp_at(progress))

        valid_idx = [valid_set.label_names.index(n) for n in self.label_names_]
        valid_batches = [self._batch(b, valid_idx, rng, augment=False)
                         for b in iterate_batches(valid_set, batch_size=256, shuffle=False)]
        wrap = None
        if align == "adversarial":
            width = self._feature_width()
            wrap = lambda m: DomainAdversarial(m, width)  # noqa: E731
        return TrainingPlan(
            train_batches, valid_batches, _alignment_loss(align), n_train=train_rows.size,
            outputs={"n_labels": len(self.label_names_)},
            network={**(self.model_config or {}), "in_channels": 2 if self.mask_channel else 1},
            valid_fn=_nll_and_mse, wrap=wrap,
            state={"source": source, "train_rows": train_rows, "calib": calib_set, "rng": rng,
                   "target": target_set})

    def _feature_width(self) -> int:
        """Width of the features (``embed``) of the network being built."""
        from starlearn.models import build_model

        net = build_model(self.model, n_pix=int(self.wave_.size),
                          n_labels=len(self.label_names_),
                          **{**(self.model_config or {}),
                             "in_channels": 2 if self.mask_channel else 1})
        with torch.no_grad():
            return int(net.embed(torch.zeros(1, 2 if self.mask_channel else 1,
                                             self.wave_.size)).shape[1])

    def _fit_translator(self, source: SpectrumSet, target: SpectrumSet) -> CycleTranslator:
        """Train the "cycle" translator on scaled source and target fluxes (channel 0)."""
        def inputs(spectra: SpectrumSet) -> tuple[torch.Tensor, torch.Tensor]:
            x, bad = self.flux_scaler_.transform(spectra.flux, spectra.mask, spectra.ivar)
            return (torch.as_tensor(x, device=self.device_),
                    torch.as_tensor(~bad, dtype=torch.float32, device=self.device_))

        generator = torch.Generator().manual_seed(self.seed + 3)
        model, losses = train_translator(
            *inputs(source), *inputs(target), latent=self.cycle_latent,
            hidden=self.cycle_hidden, epochs=self.cycle_epochs,
            align_weight=float(self.adapt_weight), generator=generator,
            batch_size=self.batch_size,
            max_time=None if self.max_time is None else self.max_time / 3)
        self.translator_history_ = losses
        return model

    def _matched(self, spectra: SpectrumSet, rng: np.random.Generator) -> SpectrumSet:
        """Source spectra with the mask and noise of random target spectra ("match")."""
        pool = getattr(self, "_target_pool", None)
        if pool is None:
            return spectra
        flux, mask, ivar = pool.match(spectra.flux, spectra.mask, spectra.ivar, rng)
        return spectra.replace(flux=flux, mask=mask, ivar=ivar)

    def _finish_training(self, plan: TrainingPlan) -> None:
        from starlearn.evaluate.transfer import domain_distance

        state = plan.state
        pool = state["train_rows"]
        sample = state["rng"].choice(pool, size=min(2000, pool.size), replace=False)
        train_sample = self._matched(read_rows(state["source"], np.sort(sample)), state["rng"])
        target = state["target"]
        target_features = None
        if target is not None:
            target = target[:2000]
            target_features = self._predict_arrays(target, mc=False)["features"]
        if self.translator_ is not None:  # source spectra pass the source autoencoder
            self._set_direction("source")
        try:  # the far-from-training check knows the target spectra too
            source_features = self._calibrate(state["calib"], train_sample,
                                              known_features=target_features)
        finally:
            self._set_direction("target")
        self._target_pool = None
        if target_features is not None:
            # a target spectrum like the ones the model was adapted to is not "far"
            d = novelty_distance(target_features, self.feature_mean_, self.feature_icov_)
            self.novelty_threshold_ = max(self.novelty_threshold_, novelty_threshold(d))
            self.valid_metrics_["domain"] = {
                "method": self.adapt_,
                **domain_distance(source_features[:1000], target_features[:1000],
                                  seed=self.seed)}

    def _set_direction(self, direction: str) -> None:
        """Which autoencoder the "cycle" translator reads (engines rebuilt to match)."""
        if getattr(self, "translator_", None) is not None and \
                self.translator_.direction != direction:
            self.translator_.direction = direction
            self.__dict__.pop("engine_", None)
            self.__dict__.pop("artifact_path_", None)

    # ------------------------------------------------------------------ few-shot
    def fine_tune(self, spectra: SpectrumSet | str | PathLike | Any, *, epochs: int = 60,
                  freeze_epochs: int | None = None, lr: float | None = None,
                  batch_size: int = 16, valid_fraction: float = 0.15,
                  calib_fraction: float = 0.25, progress: bool | None = None) -> Regressor:
        """Fine-tune the fitted network on a few labelled spectra of the target survey;
        returns self (see docs/transfer.md).

        The policy: the label standardisation, the flux scaling, the grid and any
        "cycle" translator are kept from the pretrained model (the few spectra are taken
        as target spectra). ``calib_fraction`` of the spectra (at least 5) is held out
        for the error calibration and ``valid_fraction`` of the rest (at least 3) picks
        the best epoch of each phase; they never train. Phase 1 (``freeze_epochs``,
        default half of ``epochs``): the convolutional feature layers (the network's
        ``features``; for a dense network every layer but the last hidden one and the
        head) are frozen and the rest learns at ``lr`` (default the model's ``lr``).
        Phase 2 (the remaining epochs): every layer learns at ``lr / 10`` with a cosine
        decay. Batches of ``batch_size``; the model's noise, mask and RV augmentation
        apply. Then the errors are recalibrated and the far-from-training check refitted
        on the held-out and training few, and ``valid_metrics_`` holds the held-out
        result (``valid_metrics_["fine_tune"]`` what was done).

        Raises
        ------
        ValueError
            Spectra on another grid than the model's, without the model's labels, or
            fewer than 20 of them.
        """
        from sklearn.utils.validation import check_is_fitted

        from starlearn.train.trainer import Trainer, TrainerConfig, resolve_device

        check_is_fitted(self)
        name = "Regressor.fine_tune"
        try:
            few = self.prepare_inputs(spectra)
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None
        missing = [n for n in self.label_names_ if n not in (few.label_names or [])]
        if missing:
            raise ValueError(f"{name}: the spectra lack the model's labels {missing} (it "
                             f"predicts {self.label_names_})")
        if len(few) < 20:
            raise ValueError(f"{name}: at least 20 labelled spectra are needed, got "
                             f"{len(few)}")
        self.device_ = resolve_device(self.device)
        rng = np.random.default_rng([self.seed, 11])
        torch.manual_seed(self.seed + 11)
        n = len(few)
        rest, calib = split_rows(n, max(calib_fraction, 5 / n), rng)
        fit_rows, valid_rows = split_rows(rest.size, max(valid_fraction, 3 / rest.size), rng)
        train_set, valid_set = few[rest[fit_rows]], few[rest[valid_rows]]
        calib_set = few[calib]
        idx = [few.label_names.index(n) for n in self.label_names_]
        epochs = int(epochs)
        first = epochs // 2 if freeze_epochs is None else int(freeze_epochs)
        lr = float(self.lr if lr is None else lr)
        show = self.progress if progress is None else progress
        self._set_direction("target")
        self.module_.train()
        frozen = _frozen_part(self.module_)

        def batches(epoch: int):
            for b in iterate_batches(train_set, batch_size=batch_size, shuffle=True, rng=rng):
                yield self._batch(b, idx, rng, augment=True)

        valid_batches = [self._batch(valid_set, idx, rng, augment=False)]
        history = list(getattr(self, "history_", []))
        for phase, (n_epochs, phase_lr, sched) in enumerate(
                ((first, lr, "none"), (epochs - first, lr / 10, "cosine"))):
            if n_epochs <= 0:
                continue
            for p in frozen:
                p.requires_grad_(phase != 0)
            config = TrainerConfig(epochs=n_epochs, lr=phase_lr,
                                   weight_decay=self.weight_decay, optimizer=self.optimizer,
                                   scheduler=sched, patience=n_epochs, progress=show)
            rows = Trainer(self.module_, config, self.device_).fit(
                batches, lambda: valid_batches, _nll, valid_fn=_nll_and_mse)
            for row in rows:
                history.append({**row, "epoch": len(history)})
        for p in self.module_.parameters():
            p.requires_grad_(True)
        self.module_.eval()
        self.__dict__.pop("engine_", None)
        self.__dict__.pop("artifact_path_", None)  # its model.onnx holds the old weights
        self.history_ = history
        self._calibrate(calib_set, train_set)
        self.fine_tune_ = {"n_spectra": n, "n_train": len(train_set),
                           "n_valid": len(valid_set), "n_calib": len(calib_set),
                           "freeze_epochs": first, "epochs": epochs, "lr": lr,
                           "frozen_parameters": int(sum(p.numel() for p in frozen))}
        self.valid_metrics_["fine_tune"] = dict(self.fine_tune_)
        return self

    def _batch(self, spectra: SpectrumSet, label_idx: list[int], rng: np.random.Generator,
               augment: bool) -> tuple[torch.Tensor, torch.Tensor]:
        flux, mask = spectra.flux.astype(np.float64), spectra.mask.copy()
        if augment:
            flux, mask = self._augment(flux, mask, spectra.ivar, rng)
        x, bad = self.flux_scaler_.transform(flux, mask, spectra.ivar)
        x = to_tensor(x, bad if self.mask_channel else None, self.device_)
        if getattr(self, "translator_", None) is not None:
            with torch.no_grad():
                x = _translated(self.translator_, x)
        y = (spectra.labels[:, label_idx] - self.label_mean_) / self.label_std_
        var = self._label_variance(spectra) if self.label_errors else None
        if var is not None:  # (n, 2, n_labels): the labels and their error variances
            y = np.stack([y, var], axis=1)
        return x, torch.as_tensor(y, dtype=torch.float32, device=self.device_)

    def _label_variance(self, spectra: SpectrumSet) -> np.ndarray | None:
        """(n, n_labels) variances of the labels' own errors (meta ``<label>_err``, label
        units, as ``ingest --labels`` joins them) in standardised units, 0 where unknown;
        None when the spectra carry no error of any model label."""
        names = spectra.meta.colnames if spectra.meta is not None else []
        if not any(f"{n}_err" in names for n in self.label_names_):
            return None
        var = np.zeros((len(spectra), len(self.label_names_)))
        for j, name in enumerate(self.label_names_):
            if f"{name}_err" in names:
                err = np.asarray(np.ma.filled(spectra.meta[f"{name}_err"], np.nan),
                                 dtype=np.float64) / self.label_std_[j]
                var[:, j] = np.where(np.isfinite(err), err**2, 0.0)
        return var

    def _augment(self, flux: np.ndarray, mask: np.ndarray, ivar: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if self.augment_noise > 0:
            flux, _ = redraw_noise(flux, ivar, rng, fraction=self.augment_noise)
        if self.augment_mask > 0:
            mask = mask | (rng.random(mask.shape) < self.augment_mask)
        if self.augment_rv > 0:
            dlog = np.median(np.diff(np.log(self.wave_)))
            shifts = np.rint(rng.normal(0, self.augment_rv, len(flux)) / 299792.458
                             / dlog).astype(int)
            for i, k in enumerate(shifts):
                if k:
                    flux[i] = np.roll(flux[i], k)
                    mask[i] = np.roll(mask[i], k)
                    if k > 0:
                        mask[i, :k] = True  # pixels rolled in from the other end
                    else:
                        mask[i, k:] = True
        return flux, mask

    def _noise_map_on(self, calib: SpectrumSet) -> np.ndarray | None:
        """How input noise reaches each label, as a smooth function of the labels: the
        spread over noise draws on the calibration spectra (here, once, not at each
        prediction) times their S/N, fitted as exp(quadratic) in the predicted labels
        (None with ``mc_samples > 0``: the draws are made at prediction)."""
        if int(self.mc_samples) > 0:
            return None
        draws = self._predict_arrays(calib, mc_override=_MAP_DRAWS)
        return _fit_noise_map((draws["mean"] - self.label_mean_) / self.label_std_,
                              draws["err_noise"] / draws["inv_snr"][:, None])

    # ------------------------------------------------------------------ prediction
    def _network_input(self, flux: np.ndarray, mask: np.ndarray,
                       ivar: np.ndarray) -> np.ndarray:
        """(n, channels, n_pixels) float32 network input: scaled flux [and bad-pixel mask]."""
        x, bad = self.flux_scaler_.transform(flux, mask, ivar)
        return np.stack([x, bad.astype(np.float32)] if self.mask_channel else [x], axis=1)

    def _input_arrays(self, spectra: SpectrumSet) -> np.ndarray:
        return self._network_input(spectra.flux, spectra.mask, spectra.ivar)

    def _onnx_spec(self) -> tuple[torch.nn.Module, torch.Tensor, list[str]]:
        example = self._example_input(2 if self.mask_channel else 1)
        n = len(self.label_names_)
        scale = getattr(self, "error_scale_", None)
        scatter = getattr(self, "scatter_", None)
        module = _LabelOutputs(
            self.module_, getattr(self, "translator_", None), label_mean=self.label_mean_,
            label_std=self.label_std_, error_scale=np.ones(n) if scale is None else scale,
            scatter=np.zeros(n) if scatter is None else scatter).to(self.device_)
        return module, example, list(LABEL_OUTPUTS)

    def _predict_arrays(self, spectra: SpectrumSet, batch_size: int = 256,
                        mc: bool = True, mc_override: int | None = None) -> dict[str, Any]:
        snr = measure_snr(spectra, step=4)  # every 4th pixel: as good a median, 4x faster
        inv_snr = np.divide(1.0, snr, out=np.full(snr.shape, np.nan), where=snr > 0)
        rng = np.random.default_rng(self.seed + 1)
        k = (int(self.mc_samples) if mc else 0) if mc_override is None else int(mc_override)
        engine = self._get_engine(work=len(spectra) * (k + 1))
        means, aleatoric, spread, feats = [], [], [], []
        for batch, x in _prefetched(_array_batches(spectra, batch_size),
                                    lambda b: self._network_input(b.flux, b.mask, b.ivar)):
            mean, log_var, features = engine.run(x)[:3]  # older model.onnx: 3
            feats.append(features)
            means.append(mean)
            aleatoric.append(np.exp(0.5 * log_var))
            if k > 0:
                # the input already carries one noise realisation: the spread of the means
                # over K further ones estimates the propagated error spectrum
                # (float64 draws: the same noise stream as earlier versions, so that a saved
                # model gives the same errors)
                n_pix = batch.flux.shape[1]
                noisy = redraw_noise(batch.flux, batch.ivar, rng,
                                     n_draws=k)[0].reshape(-1, n_pix)
                mask = np.broadcast_to(batch.mask, (k, *batch.mask.shape)).reshape(-1, n_pix)
                ivar = np.broadcast_to(batch.ivar, (k, *batch.ivar.shape)).reshape(-1, n_pix)
                mk = engine.run(self._network_input(noisy, mask, ivar))[0]
                spread.append(mk.reshape(k, len(batch.flux), -1).std(axis=0))
        mean = np.concatenate(means) * self.label_std_ + self.label_mean_
        ale = np.concatenate(aleatoric) * self.label_std_
        prop = (np.concatenate(spread) * self.label_std_) if k > 0 else np.zeros_like(ale)
        epi = (self._dropout_spread(spectra, batch_size) * self.label_std_
               if self.epistemic == "mc-dropout" and mc else np.zeros_like(ale))
        return {"mean": mean, "err_model": ale, "err_noise": prop, "err_epistemic": epi,
                "err_stat": np.sqrt(ale**2 + prop**2 + epi**2),
                "features": np.concatenate(feats), "chi2": None, "inv_snr": inv_snr,
                "noise": self._noise_term(mean, inv_snr)}

    def _dropout_spread(self, spectra: SpectrumSet, batch_size: int) -> np.ndarray:
        """Spread (standardised units) of the predicted means over ``epistemic_samples``
        passes with the dropout layers on (MC dropout; torch, seeded)."""
        from torch import nn

        dropouts = [m for m in self.module_.modules() if isinstance(m, nn.Dropout)]
        generator = torch.random.get_rng_state()
        torch.manual_seed(self.seed + 2)
        out = []
        try:
            for m in dropouts:
                m.train()
            with torch.no_grad():
                for batch in _array_batches(spectra, batch_size):
                    x = torch.as_tensor(self._network_input(batch.flux, batch.mask, batch.ivar),
                                        device=self.device_)
                    if getattr(self, "translator_", None) is not None:
                        x = _translated(self.translator_, x)
                    draws = torch.stack([self.module_(x)[0]
                                         for _ in range(int(self.epistemic_samples))])
                    out.append(draws.std(dim=0).cpu().numpy())
        finally:
            for m in dropouts:
                m.eval()
            torch.random.set_rng_state(generator)
        return np.concatenate(out)

    # ------------------------------------------------------------------ the model folder
    def _artifact_sections(self) -> dict[str, Any]:
        translator = getattr(self, "translator_", None)
        return {**super()._artifact_sections(),
                "flux_scaler": {"mean": self.flux_scaler_.mean,
                                "scale": self.flux_scaler_.scale},
                "adapt": {"method": getattr(self, "adapt_", "none"),
                          "translator": None if translator is None else {
                              "n_pix": translator.n_pix, "latent": translator.latent,
                              "hidden": translator.hidden}},
                **({"fine_tune": self.fine_tune_} if hasattr(self, "fine_tune_") else {})}

    def _artifact_tensors(self) -> dict[str, Any]:
        translator = getattr(self, "translator_", None)
        own = {} if translator is None else {
            _TRANSLATOR + k: v for k, v in translator.state_dict().items()}
        return {**super()._artifact_tensors(), **own}

    def _restore_state(self, config: Mapping[str, Any], tensors: dict[str, Any]) -> None:
        own = {k[len(_TRANSLATOR):]: v for k, v in tensors.items() if k.startswith(_TRANSLATOR)}
        super()._restore_state(config, {k: v for k, v in tensors.items()
                                        if not k.startswith(_TRANSLATOR)})
        adapt = config.get("adapt") or {}
        self.adapt_ = adapt.get("method", "none")
        self.translator_ = None
        if adapt.get("translator"):
            spec = adapt["translator"]
            self.translator_ = CycleTranslator(spec["n_pix"], latent=spec["latent"],
                                               hidden=spec["hidden"]).to(self.device_)
            self.translator_.load_state_dict(own)
            self.translator_.eval()
        if "fine_tune" in config:
            self.fine_tune_ = dict(config["fine_tune"])

    @classmethod
    def _from_artifact(cls, config: Mapping[str, Any], tensors: dict[str, torch.Tensor],
                       path: Path) -> Any:
        if config["network"].get("name") == "cannon":  # saved by Regressor(model="cannon")
            from starlearn.estimators.cannon import Cannon

            return Cannon._from_artifact(config, tensors, path)
        return super()._from_artifact(config, tensors, path)

    def _restore_sections(self, config: Mapping[str, Any]) -> None:
        super()._restore_sections(config)
        scaler = config["flux_scaler"]
        self.flux_scaler_ = FluxScaler(np.asarray(scaler["mean"], np.float32),
                                       float(scaler["scale"]))


LABEL_OUTPUTS = ("mean", "log_var", "features", "label", "label_err")
"""Outputs of a Regressor's prediction graph (its engines and ``model.onnx``), in order."""


class _LabelOutputs(torch.nn.Module):
    """A regression network's mean, log-variance and last hidden layer in one pass (what
    prediction needs: the features feed the far-from-training check), after the "cycle"
    translation when there is one; and, so that ``model.onnx`` runs alone, the labels in
    their units (``mean * label_std + label_mean``) and their error with the calibration's
    scale and intrinsic scatter (``sqrt((scale * exp(log_var / 2) * label_std)**2 +
    scatter**2)``: all of starlearn's calibrated error but its S/N term)."""

    def __init__(self, network: torch.nn.Module,
                 translator: CycleTranslator | None = None, *, label_mean: Any,
                 label_std: Any, error_scale: Any, scatter: Any) -> None:
        super().__init__()
        self.network = network
        self.translator = translator
        for name, value in (("label_mean", label_mean), ("label_std", label_std),
                            ("error_scale", error_scale), ("scatter", scatter)):
            self.register_buffer(name, torch.as_tensor(
                np.asarray(value, dtype=np.float32).reshape(1, -1)), persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.translator is not None:
            x = _translated(self.translator, x)
        features = self.network.embed(x)
        mean, log_var = self.network.head(features)
        label = mean * self.label_std + self.label_mean
        sigma = self.error_scale * torch.exp(0.5 * log_var) * self.label_std
        return mean, log_var, features, label, torch.sqrt(sigma**2 + self.scatter**2)


class _Rows(NamedTuple):
    flux: np.ndarray
    mask: np.ndarray
    ivar: np.ndarray


def _array_batches(spectra: SpectrumSet, batch_size: int) -> Iterator[_Rows]:
    """Consecutive row blocks of an in-memory set's arrays (views: no copies and none of
    the checks a new SpectrumSet would repeat)."""
    for start in range(0, len(spectra), batch_size):
        rows = slice(start, start + batch_size)
        yield _Rows(spectra.flux[rows], spectra.mask[rows], spectra.ivar[rows])


def _prefetched(items: Iterator[Any], prepare: Any) -> Iterator[tuple[Any, Any]]:
    """(item, prepare(item)) pairs, preparing the next item in a thread while the caller
    works on the current one (numpy and the inference engines release the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        item = next(items, None)
        pending = pool.submit(prepare, item) if item is not None else None
        while pending is not None:
            current, ready = item, pending.result()
            item = next(items, None)
            pending = pool.submit(prepare, item) if item is not None else None
            yield current, ready


_MAP_DRAWS = 16
"""Noise draws per calibration spectrum for the noise sensitivity map (at fit time only)."""


def _fit_noise_map(x: np.ndarray, sensitivity: np.ndarray) -> np.ndarray | None:
    """Coefficients (n_terms, n_labels) of ``log(sensitivity) = design_matrix(x) @ coef``
    (quadratic in the standardised labels ``x``, ridge-regularised least squares), the
    sensitivity being a label's spread over noise draws times the spectrum's S/N."""
    from starlearn.cannon import design_matrix

    ok = np.all(np.isfinite(x), axis=1) & np.all(np.isfinite(sensitivity) & (sensitivity > 0),
                                                 axis=1)
    if ok.sum() < 20:
        return None
    v = design_matrix(np.clip(x[ok], -4.0, 4.0))
    a = v.T @ v + 1e-3 * len(v) * np.eye(v.shape[1])
    return np.linalg.solve(a, v.T @ np.log(sensitivity[ok]))
