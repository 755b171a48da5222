"""Evaluate autoencoders: reconstruction error, denoising gain per S/N, latent maps."""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from typing import TYPE_CHECKING, Any

import numpy as np

from starlearn.spectra import SpectrumSet

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["denoising_gain", "evaluate_autoencoder", "latent_map",
           "plot_reconstruction_cases"]


def _rms(a: np.ndarray, b: np.ndarray, good: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b)[good] ** 2)))


def denoising_gain(clean: SpectrumSet, noisy: SpectrumSet, denoised: SpectrumSet) -> float:
    """RMS(noisy − truth) / RMS(denoised − truth) over pixels good in all three."""
    good = ~(clean.mask | noisy.mask | denoised.mask)
    return _rms(noisy.flux, clean.flux, good) / _rms(denoised.flux, clean.flux, good)


def add_noise(spectra: SpectrumSet, snr: float, *, seed: int = 0,
              shape: np.ndarray | None = None) -> SpectrumSet:
    """Gaussian noise at ``snr`` per pixel relative to each spectrum's median |flux|."""
    rng = np.random.default_rng(seed)
    level = np.array([np.median(np.abs(f[~m])) if (~m).any() else 1.0
                      for f, m in zip(spectra.flux, spectra.mask, strict=True)])
    relative = np.ones(spectra.n_pix) if shape is None else np.asarray(shape) / np.median(
        shape)
    sigma = (level / snr)[:, None] * relative[None, :]
    flux = spectra.flux + rng.standard_normal(spectra.flux.shape) * sigma
    return spectra.replace(flux=flux, ivar=np.where(spectra.mask, 0.0, 1.0 / sigma**2))


def evaluate_autoencoder(ae: Any, test: SpectrumSet, *,
                         snr_values: Sequence[float] = (5.0, 10.0, 20.0, 50.0),
                         clean: bool | None = None, seed: int = 0,
                         plots: str | PathLike | None = None) -> dict[str, Any]:
    """Reconstruction and (for denoisers) denoising metrics on a test set.

    When ``test`` is clean (noiseless synthetic spectra; by default assumed for models
    trained with clean targets), noise is added at each S/N in ``snr_values`` and the
    denoising gain RMS(noisy − truth) / RMS(denoised − truth) is reported per S/N.
    Otherwise the reconstruction RMS and chi-square against the (noisy) test spectra.
    With ``plots`` (a folder), writes ``reconstruction.png``
    (:func:`plot_reconstruction_cases`).
    """
    clean = bool(ae.denoise) and ae.snr is not None if clean is None else clean
    recon = ae.reconstruct(test)
    good = ~(test.mask | recon.mask)
    scores = ae.score(test)
    result: dict[str, Any] = {
        "n_test": len(test), "model": ae.model, "latent": int(ae.latent),
        "reconstruction_rms": _rms(recon.flux, test.flux, good),
        "mean_spectrum_rms": _rms(np.broadcast_to(test.mean_flux(), test.flux.shape),
                                  test.flux, good),
        "median_chi2": float(np.median(scores["chi2"])),
        "odd_fraction": float(np.mean(scores["odd"])),
    }
    if clean:
        result["denoising"] = []
        for k, snr in enumerate(snr_values):
            noisy = add_noise(test, snr, seed=seed + k)
            denoised = ae.reconstruct(noisy)
            result["denoising"].append({"snr": float(snr),
                                        "gain": denoising_gain(test, noisy, denoised)})
    if plots is not None:
        from pathlib import Path

        folder = Path(plots)
        folder.mkdir(parents=True, exist_ok=True)
        plot_reconstruction_cases(ae.prepare_inputs(test), recon,
                                  np.asarray(scores["chi2"]), folder / "reconstruction.png",
                                  title=f"{ae.model} (latent {int(ae.latent)}) on "
                                        f"{len(test)} test spectra")
    return result


def plot_reconstruction_cases(observed: SpectrumSet, recon: SpectrumSet, chi2: np.ndarray,
                              path: str | PathLike | None = None, *, title: str = ""
                              ) -> Figure:
    """The typical, the 90th-percentile and the worst reconstruction by reduced
    chi-square: each spectrum with its error band, the reconstruction and the residuals
    (:func:`starlearn.evaluate.plots.plot_reconstruction`).

    ``observed`` are the spectra as the model reads them (``ae.prepare_inputs``),
    ``recon`` their reconstruction (``ae.reconstruct``) and ``chi2`` the reduced
    chi-square per spectrum (``ae.score(...)["chi2"]``). Returns the Figure; writes it to
    ``path`` when given.
    """
    from starlearn.evaluate.plots import _finish, plot_reconstruction

    chi2 = np.asarray(chi2, dtype=np.float64)
    order = np.argsort(np.where(np.isfinite(chi2), chi2, np.inf), kind="stable")
    cases = {"median": order[(len(order) - 1) // 2],
             "90th percentile": order[int(0.9 * (len(order) - 1))],
             "worst": order[-1]}
    picked: dict[int, str] = {}
    for name, i in cases.items():  # a small test set can pick one spectrum twice
        picked[int(i)] = f"{picked[int(i)]}, {name}" if int(i) in picked else name
    titles = [f"{observed.ids[i]}: {name} of the set by χ²/pixel ({chi2[i]:.2f})"
              for i, name in picked.items()]
    fig = plot_reconstruction(observed, recon, list(picked), titles=titles)
    if title:
        fig.suptitle(title, fontsize=10)
    return _finish(fig, path)


def latent_map(latent: np.ndarray, color: np.ndarray, path: str | PathLike, *,
               label: str = "", method: str = "tsne", seed: int = 0) -> np.ndarray:
    """2-D embedding of latent vectors (t-SNE from scikit-learn, or PCA), coloured by
    ``color``, written as a PNG; returns the (n, 2) embedding."""
    from starlearn.evaluate.embedding import embed_2d
    from starlearn.evaluate.plots import plot_embedding

    try:
        xy = embed_2d(latent, method, seed)
    except ValueError:
        raise ValueError(f"latent_map: method must be 'tsne' or 'pca', got {method!r}") from None
    plot_embedding(xy, color, path, label=label, title=f"latent space ({method})",
                   method=method)
    return xy
