"""The Cannon (Ness et al. 2015, ApJ 808, 16): a quadratic data-driven spectral model.

Each pixel's normalised flux is a quadratic polynomial of the (standardised) labels,
``f_n(lambda) = theta(lambda) . v(x_n) + noise``, with noise variance
``sigma_n(lambda)**2 + s(lambda)**2`` (the error spectrum plus a fitted per-pixel
intrinsic scatter). Training fits ``theta`` and ``s`` pixel by pixel; the test step finds
the labels that minimise chi-square for each spectrum (non-linear least squares), with
errors from the curvature of chi-square. Pure numpy/scipy, the baseline StarNet is compared
with.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from starlearn.spectra import SpectrumSet

__all__ = ["CannonModel"]

_S2_GRID = np.concatenate([[0.0], np.logspace(-10, 0, 41)])


def design_matrix(x: np.ndarray) -> np.ndarray:
    """Quadratic vectorizer: [1, x_i, x_i x_j (i <= j)] for x of shape (n, K)."""
    x = np.atleast_2d(x)
    k = x.shape[1]
    pairs = [x[:, i] * x[:, j] for i, j in itertools.combinations_with_replacement(range(k), 2)]
    return np.column_stack([np.ones(len(x)), x, *pairs])


def _design_jacobian(x: np.ndarray) -> np.ndarray:
    """d v / d x for one label vector x (K,): shape (n_terms, K)."""
    k = x.size
    rows = [np.zeros(k)] + [np.eye(k)[i] for i in range(k)]
    for i, j in itertools.combinations_with_replacement(range(k), 2):
        d = np.zeros(k)
        d[i] += x[j]
        d[j] += x[i]
        rows.append(d)
    return np.array(rows)


class CannonModel:
    """Fitted state of The Cannon on one wavelength grid (numpy arrays only).

    Parameters
    ----------
    n_iter : int
        Alternations between the weighted least-squares fit of ``theta`` and the fit of
        the per-pixel scatter ``s``.
    regularisation : float
        Ridge term added to each pixel's normal equations (stabilises pixels with few
        good values).
    """

    def __init__(self, *, n_iter: int = 3, regularisation: float = 1e-6) -> None:
        self.n_iter = n_iter
        self.regularisation = regularisation

    # ------------------------------------------------------------------ training
    def fit(self, flux: np.ndarray, ivar: np.ndarray, labels: np.ndarray) -> CannonModel:
        """Fit theta (n_pix, n_terms) and scatter s2 (n_pix,) from complete labels.

        flux, ivar : (n_spectra, n_pixels) normalised flux and its inverse variance
        (0 = masked); labels : (n_spectra, K) with no NaN.
        """
        if np.isnan(labels).any():
            raise ValueError("The Cannon needs complete training labels (no NaN)")
        self.label_mean_ = labels.mean(axis=0)
        std = labels.std(axis=0)
        self.label_std_ = np.where(std > 0, std, 1.0)
        v = design_matrix((labels - self.label_mean_) / self.label_std_)
        flux = np.asarray(flux, dtype=np.float64)
        ivar = np.asarray(ivar, dtype=np.float64)
        good = ivar > 0
        var = np.where(good, 1.0 / np.where(good, ivar, 1.0), np.inf)
        s2 = np.zeros(flux.shape[1])
        for _ in range(max(1, self.n_iter)):
            w = np.where(good, 1.0 / (var + s2), 0.0)  # (n, n_pix)
            a = np.einsum("np,nt,nu->ptu", w, v, v, optimize=True)
            a += self.regularisation * np.eye(v.shape[1])[None]
            b = np.einsum("np,nt,np->pt", w, v, np.where(good, flux, 0.0), optimize=True)
            theta = np.linalg.solve(a, b[..., None])[..., 0]
            resid2 = np.where(good, (flux - v @ theta.T) ** 2, 0.0)
            s2 = self._fit_scatter(resid2, var, good)
        self.theta_, self.s2_ = theta, s2
        return self

    @staticmethod
    def _fit_scatter(resid2: np.ndarray, var: np.ndarray, good: np.ndarray) -> np.ndarray:
        """Per-pixel s2 maximising the Gaussian likelihood, continuously.

        A coarse log grid (0.25 dex in s2) finds each pixel's best bracket, then a golden
        section search within the two neighbouring grid values (vectorised over pixels)
        refines it to 1e-6 of the bracket: the grid alone quantised s to +-15 %.
        """
        def nll(s2: np.ndarray | float) -> np.ndarray:
            total = var + s2
            return np.where(good, resid2 / total + np.log(np.where(good, total, 1.0)),
                            0.0).sum(axis=0)

        scores = np.array([nll(s2) for s2 in _S2_GRID])          # (n_grid, n_pix)
        k = np.argmin(scores, axis=0)
        lo = _S2_GRID[np.maximum(k - 1, 0)]
        hi = _S2_GRID[np.minimum(k + 1, _S2_GRID.size - 1)]
        ratio = (np.sqrt(5.0) - 1.0) / 2.0
        a, b = lo.copy(), hi.copy()
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        fc, fd = nll(c), nll(d)
        for _ in range(30):                                       # 0.618**30 = 5e-7
            left = fc < fd                                        # minimum in [a, d]
            b = np.where(left, d, b)
            a = np.where(left, a, c)
            new = np.where(left, b - ratio * (b - a), a + ratio * (b - a))
            fnew = nll(new)
            c, d = np.where(left, new, d), np.where(left, c, new)
            fc, fd = np.where(left, fnew, fd), np.where(left, fc, fnew)
        s2 = (a + b) / 2.0
        # never worse than the grid's best (a pixel whose likelihood is flat or odd)
        return np.where(nll(s2) <= scores[k, np.arange(k.size)], s2, _S2_GRID[k])

    # ------------------------------------------------------------------ test step
    def model_flux(self, labels: np.ndarray) -> np.ndarray:
        """Model spectra (n, n_pix) for labels (n, K) in label units."""
        return design_matrix((np.atleast_2d(labels) - self.label_mean_) / self.label_std_) \
            @ self.theta_.T

    def infer(self, flux: np.ndarray, ivar: np.ndarray) -> dict[str, Any]:
        """Best-fit labels, their errors and the reduced chi-square for each spectrum."""
        flux = np.atleast_2d(np.asarray(flux, dtype=np.float64))
        ivar = np.atleast_2d(np.asarray(ivar, dtype=np.float64))
        k = self.label_mean_.size
        n = flux.shape[0]
        labels, errors, chi2 = np.full((n, k), np.nan), np.full((n, k), np.nan), np.full(n, np.nan)
        theta = self.theta_
        linear = theta[:, 1:k + 1]
        for i in range(n):
            good = ivar[i] > 0
            if good.sum() <= k + 1:
                continue
            w = np.sqrt(1.0 / (1.0 / ivar[i, good] + self.s2_[good]))
            f, th, lin = flux[i, good], theta[good], linear[good]
            # start: the linear part of the model, solved exactly
            x0, *_ = np.linalg.lstsq(lin * w[:, None], (f - th[:, 0]) * w, rcond=None)
            x0 = np.clip(x0, -4, 4)

            def residual(x: np.ndarray, f=f, th=th, w=w) -> np.ndarray:
                return (design_matrix(x[None])[0] @ th.T - f) * w

            def jacobian(x: np.ndarray, th=th, w=w) -> np.ndarray:
                return (th @ _design_jacobian(x)) * w[:, None]

            starts = [x0, np.zeros(k)]
            best = None
            for start in starts:
                res = least_squares(residual, start, jac=jacobian, method="lm")
                if best is None or res.cost < best.cost:
                    best = res
            assert best is not None
            jt = best.jac
            try:
                cov = np.linalg.inv(jt.T @ jt)
            except np.linalg.LinAlgError:
                cov = np.full((k, k), np.nan)
            labels[i] = best.x * self.label_std_ + self.label_mean_
            errors[i] = np.sqrt(np.clip(np.diag(cov), 0, None)) * self.label_std_
            chi2[i] = 2 * best.cost / max(good.sum() - k, 1)
        return {"labels": labels, "errors": errors, "chi2": chi2}

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        """Fitted arrays for saving (JSON-able lists or tensors)."""
        return {"theta": self.theta_, "s2": self.s2_, "label_mean": self.label_mean_,
                "label_std": self.label_std_}

    @classmethod
    def from_state(cls, state: dict[str, Any], **params: Any) -> CannonModel:
        model = cls(**params)
        model.theta_ = np.asarray(state["theta"], dtype=np.float64)
        model.s2_ = np.asarray(state["s2"], dtype=np.float64)
        model.label_mean_ = np.asarray(state["label_mean"], dtype=np.float64)
        model.label_std_ = np.asarray(state["label_std"], dtype=np.float64)
        return model


def complete_rows(spectra: SpectrumSet, idx: list[int]) -> np.ndarray:
    """Rows whose labels ``idx`` are all present."""
    return np.flatnonzero(np.all(np.isfinite(spectra.labels[:, idx]), axis=1))
