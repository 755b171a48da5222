"""Autoencoder: reconstruction, denoising, latent spaces and odd-spectrum scores."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from os import PathLike
from typing import Any, ClassVar

import numpy as np
import torch
from astropy.table import Table
from sklearn.utils.validation import check_is_fitted

from starlearn.estimators._common import prepare_fit_data, read_rows
from starlearn.estimators._validation import Boolean, Constraint, Integer, OneOf, Real
from starlearn.estimators.base import NetworkEstimator, TrainingPlan
from starlearn.models import MODEL_DEFAULTS, model_names
from starlearn.noise import draw_noise, draw_snr, noise_sigma, signal_level
from starlearn.spectra import SpectrumSet
from starlearn.train.data import FluxScaler, iterate_batches, to_tensor

__all__ = ["Autoencoder"]


class _Switch:
    """The ``denoise`` attribute: a boolean hyperparameter that can also be called.

    ``est.denoise`` is truthy when the model was configured to denoise, and
    ``est.denoise(spectra)`` returns the denoised spectra.
    """

    __slots__ = ("func", "value")

    def __init__(self, value: bool, func: Any) -> None:
        self.value = value
        self.func = func

    def __bool__(self) -> bool:
        return bool(self.value)

    def __eq__(self, other: object) -> bool:
        return bool(self.value) == other

    def __hash__(self) -> int:
        return hash(bool(self.value))

    def __repr__(self) -> str:
        return repr(self.value)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)


class _DenoiseParameter:
    """Descriptor storing the ``denoise`` hyperparameter beside the ``denoise`` method."""

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        return _Switch(obj.__dict__.get("_denoise_flag", False), obj._denoise_spectra)

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__["_denoise_flag"] = value.value if isinstance(value, _Switch) else value


class Autoencoder(NetworkEstimator):
    """Learn a compact representation of spectra; reconstruct, denoise, find odd spectra.

    Parameters
    ----------
    model : {"dense-ae", "conv-ae"}
        Dense autoencoder (4 + 4 layers, the PFS talk's) or the translation-equivariant
        convolutional one.
    latent : int
        Latent size (dense-ae: the vector length; conv-ae: channels of the latent map).
    denoise : bool
        Train to remove noise. With ``snr`` the training spectra are taken as clean and
        noise at that S/N is added on the fly (input noisy, target clean); without it the
        training spectra are noisy and training is self-supervised (noise2self: random
        pixels hidden from the input are predicted from their neighbours, loss weighted by
        ivar), which needs no clean data.
    snr : float or (lo, hi), optional
        S/N per pixel of the noise added to clean spectra (log-uniform in the range).
    noise_shape : array (n_pixels,), optional
        Relative per-pixel noise shape (e.g. 1 / S/N curve of an exposure-time
        calculator), normalised to median 1, for the added noise.
    variational : bool
        Variational autoencoder (KL term weighted by ``beta``).
    beta : float
        Weight of the KL term per pixel.
    model_config : dict, optional
        Architecture overrides (``hidden``, ``channels``, ``kernel``).
    preprocess : Transform, optional
        Preprocessing applied to every input and saved with the model.
{training_parameters}
    blind_fraction : float
        Share of pixels hidden per spectrum in self-supervised denoising.
    odd_quantile : float
        Quantile of the validation scores above which a spectrum is flagged odd.

    Attributes
    ----------
    module_, wave_, flux_scaler_, history_
    recon_rms_ : ndarray (n_pixels,)
        Per-pixel RMS error of the reconstruction on the validation set (flux units):
        the reconstructed spectra's ivar is 1 / recon_rms_**2.
    chi2_threshold_, density_threshold_ : float
        Odd-spectrum thresholds on the reduced chi-square and the latent density score.
    valid_metrics_ : dict
        Reconstruction quality on the validation set (median per-pixel RMS error, median
        reduced chi-square, share flagged odd), also in the model folder's metrics.json.
    """

    _task: ClassVar[str] = "autoencode"
    _parameter_constraints: ClassVar[dict[str, list[Constraint | type | None]]] = {
        "model": [OneOf(lambda: model_names("autoencode"))],
        "latent": [Integer(1)],
        "variational": [Boolean()],
        "beta": [Real(0.0)],
        "blind_fraction": [Real(0.0, 1.0, closed="neither")],
        "odd_quantile": [Real(0.0, 1.0, closed="neither")],
    }

    def __init__(self, model: str = "dense-ae", latent: int = 32, *, denoise: bool = False,
                 snr: float | tuple[float, float] | None = None,
                 noise_shape: Any = None, variational: bool = False, beta: float = 1e-3,
                 model_config: dict[str, Any] | None = None, preprocess: Any = None,
                 epochs: int = 100, batch_size: int = 64, lr: float = 1e-3,
                 weight_decay: float = 0.0, optimizer: str = "adam",
                 scheduler: str = "plateau", patience: int = 10,
                 max_time: float | None = None, valid_fraction: float = 0.1,
                 blind_fraction: float = 0.1, odd_quantile: float = 0.99,
                 device: str = "auto", seed: int = 0, progress: bool = True) -> None:
        self.model = model
        self.latent = latent
        self.denoise = denoise
        self.snr = snr
        self.noise_shape = noise_shape
        self.variational = variational
        self.beta = beta
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
        self.blind_fraction = blind_fraction
        self.odd_quantile = odd_quantile
        self.device = device
        self.seed = seed
        self.progress = progress

    denoise = _DenoiseParameter()

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        params = super().get_params(deep)
        params["denoise"] = self.__dict__.get("_denoise_flag", False)
        return params

    def _check_params(self) -> None:
        if self.snr is not None and not self.denoise:
            raise ValueError("Autoencoder: snr adds noise for denoising; set denoise=True")
        lo, hi = self._snr_range() if self.snr is not None else (1.0, 1.0)
        if not 0 < lo <= hi:
            raise ValueError(f"Autoencoder: snr must be positive (lo <= hi), got {self.snr!r}")

    def _snr_range(self) -> tuple[float, float]:
        snr = self.snr
        if isinstance(snr, (int, float)):
            return float(snr), float(snr)
        lo, hi = snr  # type: ignore[misc]
        return float(lo), float(hi)

    @property
    def _mode(self) -> str:
        if not self.denoise:
            return "reconstruct"
        return "clean-target" if self.snr is not None else "noise2self"

    # ------------------------------------------------------------------ fitting
    def fit(self, train: SpectrumSet | str | PathLike | Any,
            valid: SpectrumSet | str | PathLike | Any = None, *,
            checkpoint: str | PathLike | None = None, callbacks: Any = None) -> Autoencoder:
        """Train on ``train`` (SpectrumSet, data-set path or open data set); returns self.
        ``checkpoint``: a file where the training state is saved after every epoch; when it
        exists (same settings and data) the training resumes from it. ``callbacks``:
        training hooks (:mod:`starlearn.train.callbacks`)."""
        return self._fit(train, valid, checkpoint=checkpoint, callbacks=callbacks)

    def _plan_training(self, train: Any, valid: Any, rng: np.random.Generator,
                       **data: Any) -> TrainingPlan:
        fit_data = prepare_fit_data("Autoencoder", train, valid, preprocess=self.preprocess,
                                    valid_fraction=self.valid_fraction, rng=rng)
        source, train_rows, valid_set = fit_data.source, fit_data.train_rows, fit_data.valid
        self.wave_ = fit_data.wave
        pool = np.arange(len(source)) if train_rows is None else train_rows
        sample = np.sort(rng.choice(pool, min(2000, pool.size), replace=False))
        # conv-ae: a per-pixel mean would pin features to wavelengths and break the
        # translation equivariance, so it gets one constant level
        self.flux_scaler_ = FluxScaler.fit(read_rows(source, sample), seed=self.seed,
                                           per_pixel=self.model != "conv-ae")
        self._noise_shape = self._shape()
        valid_rng = np.random.default_rng(self.seed + 7)
        valid_batches = [self._batch(b, valid_rng)
                         for b in iterate_batches(valid_set, batch_size=256, shuffle=False)]

        def train_batches(epoch: int):
            for batch in iterate_batches(source, batch_size=self.batch_size, shuffle=True,
                                         rng=rng, rows=train_rows):
                yield self._batch(batch, rng)

        # the whole architecture, defaults included, so that the model folder still loads
        # when a default changes
        network = {**MODEL_DEFAULTS[self.model][1], "latent": int(self.latent),
                   "variational": bool(self.variational), **(self.model_config or {})}
        return TrainingPlan(train_batches, valid_batches, self._loss, n_train=pool.size,
                            network=network,
                            state={"valid": valid_set,
                                   "density_sample": read_rows(source, sample[:1000])})

    def _finish_training(self, plan: TrainingPlan) -> None:
        self._calibrate(plan.state["valid"], plan.state["density_sample"])

    def _shape(self) -> np.ndarray:
        if self.noise_shape is None:
            return np.ones(self.wave_.size)
        shape = np.asarray(self.noise_shape, dtype=np.float64)
        if shape.shape != self.wave_.shape:
            raise ValueError(f"Autoencoder: noise_shape has {shape.size} values for "
                             f"{self.wave_.size} pixels")
        return shape / np.median(shape[np.isfinite(shape) & (shape > 0)])

    def _noisy(self, spectra: SpectrumSet, rng: np.random.Generator) -> tuple[np.ndarray,
                                                                               np.ndarray]:
        """Clean spectra plus noise at the configured S/N: (noisy flux, its ivar)."""
        snr = draw_snr(self._snr_range(), rng, size=len(spectra))
        level = signal_level(spectra.flux, ~spectra.mask, empty=1.0)
        shape = self._noise_shape
        sigma = noise_sigma(level[:, None], snr[:, None], noise_shape=shape, good=shape > 0)
        return draw_noise(spectra.flux, sigma, rng)

    def _batch(self, spectra: SpectrumSet, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        """(input, target, weight) tensors for the configured training mode."""
        scale = self.flux_scaler_.scale
        mode = self._mode
        if mode == "clean-target":
            flux, ivar = self._noisy(spectra, rng)
            x, bad = self.flux_scaler_.transform(flux, spectra.mask, ivar)
            weight = np.where(spectra.mask, 0.0, 1.0)
        else:
            x, bad = self.flux_scaler_.transform(spectra.flux, spectra.mask, spectra.ivar)
            weight = np.where(bad, 0.0, spectra.ivar * scale**2)
            if mode == "noise2self":
                blind = rng.random(x.shape) < self.blind_fraction
                x = np.where(blind, 0.0, x).astype(np.float32)
                bad = bad | blind
                weight = np.where(blind, weight, 0.0)
        target, _ = self.flux_scaler_.transform(spectra.flux, spectra.mask)
        dev = self.device_
        return (to_tensor(x, None, dev), torch.as_tensor(target, device=dev),
                torch.as_tensor(weight, dtype=torch.float32, device=dev))

    def _loss(self, module: torch.nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        x, target, weight = batch
        recon, kl = module(x)
        chi2 = (weight * (recon - target) ** 2).sum() / weight.sum().clamp(min=1e-12)
        return chi2 + self.beta * kl.mean() / target.shape[1]

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def _run(self, spectra: SpectrumSet, batch_size: int = 256) -> tuple[np.ndarray,
                                                                        np.ndarray]:
        module = self.module_.to(self.device_).eval()
        recon, latent = [], []
        for batch in iterate_batches(spectra, batch_size=batch_size, shuffle=False):
            x, _ = self.flux_scaler_.transform(batch.flux, batch.mask, batch.ivar)
            xt = to_tensor(x, None, self.device_)
            r, _ = module(xt)
            recon.append(r.cpu().numpy() * self.flux_scaler_.scale + self.flux_scaler_.mean)
            latent.append(module.latent_vector(xt).cpu().numpy())
        return np.concatenate(recon), np.concatenate(latent)

    def _input_arrays(self, spectra: SpectrumSet) -> np.ndarray:
        """(n, 1, n_pixels) float32: the scaled flux, bad pixels 0 (what ``encode`` and
        ``reconstruct`` feed the network)."""
        x, _ = self.flux_scaler_.transform(spectra.flux, spectra.mask, spectra.ivar)
        return x[:, None, :]

    def _onnx_spec(self) -> tuple[torch.nn.Module, torch.Tensor, list[str]]:
        """The exported network: scaled input -> (reconstruction in scaled units, latent);
        flux = reconstruction * flux_scaler_.scale + flux_scaler_.mean."""
        return _Reconstruction(self.module_), self._example_input(1), ["reconstruction",
                                                                        "latent"]

    def encode(self, spectra: SpectrumSet | str | PathLike) -> np.ndarray:
        """Latent vectors, (n_spectra, latent)."""
        return self._run(self.prepare_inputs(spectra))[1]

    @torch.no_grad()
    def decode(self, latent: np.ndarray) -> np.ndarray:
        """Spectra (n, n_pixels) in flux units from latent vectors (dense-ae) or latent
        maps (conv-ae, (n, latent, n_pixels / stride))."""
        check_is_fitted(self)
        module = self.module_.to(self.device_).eval()
        z = torch.as_tensor(np.asarray(latent, dtype=np.float32), device=self.device_)
        return module.decode(z).cpu().numpy() * self.flux_scaler_.scale + self.flux_scaler_.mean

    def reconstruct(self, spectra: SpectrumSet | str | PathLike) -> SpectrumSet:
        """Reconstructed spectra (denoised for a denoising model) on the model's grid.

        The returned ivar is 1 / recon_rms_**2, the per-pixel reconstruction error
        measured on the validation set (pixels the model never saw stay masked).
        """
        spectra = self.prepare_inputs(spectra)
        recon, _ = self._run(spectra)
        ivar = np.broadcast_to(self._recon_ivar(), recon.shape)
        return spectra.replace(flux=recon, ivar=ivar, mask=np.broadcast_to(
            ~np.isfinite(self._recon_ivar()) | (self._recon_ivar() <= 0), recon.shape))

    def _denoise_spectra(self, spectra: SpectrumSet | str | PathLike) -> SpectrumSet:
        """Denoised spectra (the reconstruction of a model trained with denoise=True);
        called as ``est.denoise(spectra)``."""
        if not self.denoise:
            raise ValueError("this autoencoder was not trained to denoise (denoise=False); "
                             "use reconstruct()")
        return self.reconstruct(spectra)

    def _recon_ivar(self) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.where(self.recon_rms_ > 0, 1.0 / self.recon_rms_**2, 0.0)

    def _scores(self, spectra: SpectrumSet, recon: np.ndarray,
                latent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reduced chi-square of the reconstruction and -log latent density per spectrum."""
        model_var = self.recon_rms_[None, :] ** 2
        with np.errstate(divide="ignore"):
            var = np.where(spectra.ivar > 0, 1.0 / np.maximum(spectra.ivar, 1e-30), np.inf)
        good = ~spectra.mask & np.isfinite(var)
        r2 = np.where(good, (spectra.flux - recon) ** 2 / (var + model_var), 0.0)
        chi2 = r2.sum(axis=1) / np.maximum(good.sum(axis=1), 1)
        density = -self.density_.score_samples(latent.astype(np.float64))
        return chi2, density

    def _oddness(self, chi2: np.ndarray, density: np.ndarray) -> np.ndarray:
        """One score per spectrum, 1 at the odd threshold: the larger of chi2 and density,
        each scaled so that its validation median maps to 0 and its threshold to 1."""
        a = (chi2 - self.chi2_median_) / max(self.chi2_threshold_ - self.chi2_median_, 1e-12)
        b = (density - self.density_median_) / max(
            self.density_threshold_ - self.density_median_, 1e-12)
        return np.maximum(a, b)

    def score(self, spectra: SpectrumSet | str | PathLike) -> Table:
        """Odd-spectrum table: id, chi2 (reduced), density (-log latent density), oddness
        (the larger of the two scaled to their thresholds), odd (oddness > 1), and the
        latent vector (columns z0, z1, ...)."""
        spectra = self.prepare_inputs(spectra)
        recon, latent = self._run(spectra)
        chi2, density = self._scores(spectra, recon, latent)
        table = Table({"id": np.asarray(spectra.ids, dtype=str), "chi2": chi2,
                       "density": density})
        oddness = self._oddness(chi2, density)
        table["oddness"] = oddness
        table["odd"] = oddness > 1.0
        for k in range(latent.shape[1]):
            table[f"z{k}"] = latent[:, k].astype(np.float32)
        return table

    def _calibrate(self, valid: SpectrumSet, sample: SpectrumSet) -> None:
        """Reconstruction error per pixel, latent density and odd thresholds, measured on
        the validation set as the model will see real data (with noise added first when
        training added noise to clean spectra)."""
        from sklearn.mixture import GaussianMixture

        seen = valid
        if self._mode == "clean-target":
            noisy, ivar = self._noisy(valid, np.random.default_rng(self.seed + 11))
            seen = valid.replace(flux=noisy, ivar=np.where(valid.mask, 0.0, ivar))
        recon, latent = self._run(seen)
        resid2 = np.where(valid.mask, np.nan, (recon - valid.flux) ** 2)
        with warnings.catch_warnings():  # pixels masked everywhere: no estimate (inf)
            warnings.simplefilter("ignore", RuntimeWarning)
            mse = np.nanmean(resid2, axis=0)
            if self._mode == "clean-target":
                noise_var = 0.0  # compared with the clean truth
            else:
                with np.errstate(divide="ignore"):
                    var = np.where(valid.ivar > 0, 1.0 / np.maximum(valid.ivar, 1e-30), np.nan)
                noise_var = np.nanmean(var, axis=0)
        rms = np.sqrt(np.maximum(mse - noise_var, 0.01 * mse))
        self.recon_rms_ = np.where(np.isfinite(rms), rms, np.inf)
        # latent density from (up to 1,000) training spectra, seen as in use
        if self._mode == "clean-target":
            noisy, ivar = self._noisy(sample, np.random.default_rng(self.seed + 13))
            sample = sample.replace(flux=noisy, ivar=np.where(sample.mask, 0.0, ivar))
        train_latent = self._run(sample)[1].astype(np.float64)
        n_comp = int(min(8, max(1, len(train_latent) // 200)))
        self.density_ = GaussianMixture(n_comp, covariance_type="full", reg_covar=1e-3,
                                        random_state=self.seed).fit(train_latent)
        chi2, density = self._scores(seen, recon, latent)
        self.chi2_threshold_ = float(np.quantile(chi2, self.odd_quantile))
        self.density_threshold_ = float(np.quantile(density, self.odd_quantile))
        self.chi2_median_ = float(np.median(chi2))
        self.density_median_ = float(np.median(density))
        finite = self.recon_rms_[np.isfinite(self.recon_rms_)]
        self.valid_metrics_ = {
            "n_valid": len(valid), "mode": self._mode,
            "recon_rms_median": float(np.median(finite)) if finite.size else None,
            "chi2_median": self.chi2_median_,
            "odd_fraction": float(np.mean(self._oddness(chi2, density) > 1.0))}

    # ------------------------------------------------------------------ the model folder
    def _saved_params(self) -> dict[str, Any]:
        params = super()._saved_params()
        if params["noise_shape"] is not None:
            params["noise_shape"] = np.asarray(params["noise_shape"]).tolist()
        return params

    @classmethod
    def _params_from_saved(cls, params: dict[str, Any]) -> dict[str, Any]:
        if isinstance(params.get("snr"), list):
            params = {**params, "snr": tuple(params["snr"])}
        return params

    def _artifact_sections(self) -> dict[str, Any]:
        gm = self.density_
        return {**super()._artifact_sections(),
                "flux_scaler": {"mean": self.flux_scaler_.mean,
                                "scale": self.flux_scaler_.scale},
                "reconstruction": {"rms": np.where(np.isfinite(self.recon_rms_),
                                                   self.recon_rms_, -1.0)},
                "odd": {"chi2_threshold": self.chi2_threshold_,
                        "density_threshold": self.density_threshold_,
                        "chi2_median": self.chi2_median_,
                        "density_median": self.density_median_,
                        "density": {"weights": gm.weights_, "means": gm.means_,
                                    "covariances": gm.covariances_,
                                    "precisions_cholesky": gm.precisions_cholesky_}}}

    def _training_section(self) -> dict[str, Any]:
        return {**super()._training_section(), "mode": self._mode}

    def _restore_sections(self, config: Mapping[str, Any]) -> None:
        from sklearn.mixture import GaussianMixture

        super()._restore_sections(config)
        self.flux_scaler_ = FluxScaler(np.asarray(config["flux_scaler"]["mean"], np.float32),
                                       float(config["flux_scaler"]["scale"]))
        rms = np.asarray(config["reconstruction"]["rms"], dtype=np.float64)
        self.recon_rms_ = np.where(rms < 0, np.inf, rms)
        odd = config["odd"]
        self.chi2_threshold_ = float(odd["chi2_threshold"])
        self.density_threshold_ = float(odd["density_threshold"])
        self.chi2_median_ = float(odd["chi2_median"])
        self.density_median_ = float(odd["density_median"])
        dens = odd["density"]
        gm = GaussianMixture(len(dens["weights"]), covariance_type="full")
        gm.weights_ = np.asarray(dens["weights"])
        gm.means_ = np.asarray(dens["means"])
        gm.covariances_ = np.asarray(dens["covariances"])
        gm.precisions_cholesky_ = np.asarray(dens["precisions_cholesky"])
        self.density_ = gm


class _Reconstruction(torch.nn.Module):
    """An autoencoder's reconstruction and latent vector in one pass (the ONNX export)."""

    def __init__(self, network: torch.nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        recon, _ = self.network(x)
        return recon, self.network.latent_vector(x)
