"""Noise injection, augmentation and the S/N convention of starlearn, in one place.

The S/N convention
------------------
The **S/N of a spectrum** is a per-pixel number: the **median, over the spectrum's good
pixels, of signal / sigma** in each pixel (not a per-resolution-element S/N, not a mean).

* *Measured* from data (:func:`measure_snr`): the median over good pixels (unmasked,
  ``ivar > 0``) of ``|flux| * sqrt(ivar)``.
* *Asked for* when noise is made (:func:`noise_sigma`): the noise sigma of pixel ``j`` is
  ``sigma_j = signal_j / snr_j``, with the per-pixel S/N ``snr_j`` following an optional
  relative S/N curve (or noise shape) normalised so that its median over the good pixels is
  the asked ``snr``. Two signals are in use:

  - photon-like noise (the synthetic generator, :func:`starlearn.synth.generate`): the
    signal is the noise-free flux and the S/N curve ``sqrt(photons)``, so that
    ``median(flux_j / sigma_j) = snr`` exactly;
  - noise independent of the flux (:class:`starlearn.preprocess.AddNoise`, the
    autoencoder's clean-target training, the benchmarks): the signal is one level per
    spectrum, ``median(|flux|)`` over its good pixels (:func:`signal_level`), so that
    ``median(level / sigma_j) = snr``.

  For spectra with shallow lines both give nearly the same measured S/N.

* A range ``(lo, hi)`` of S/N draws one S/N per spectrum **log-uniformly** in
  ``[lo, hi]`` (:func:`draw_snr`).

Sigma, variance and ivar
------------------------
``sigma`` is the standard deviation of the flux (flux units), ``ivar = 1 / sigma**2`` (flux
units**-2). A pixel with ``sigma <= 0`` or ``ivar == 0`` has no noise level: it gets no
noise and ``ivar == 0`` (the SpectrumSet then marks it bad).

Random numbers
--------------
Every draw takes a :class:`numpy.random.Generator`, or a sequence of them with one per
spectrum (row): then row ``i``'s draws come from its own stream only, so that a spectrum's
noise does not depend on the other spectra in the batch. Normal deviates are drawn with
``standard_normal`` in C order (a row's pixels in order), so the same seed gives the same
noise as the code this module replaced.

Floor 1 of the layer table (DESIGN.md): imports numpy, the standard library and
:mod:`starlearn.spectra` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from starlearn.spectra import SpectrumSet

__all__ = [
    "IVAR_FLOOR",
    "add_noise_to_snr",
    "check_snr",
    "draw_noise",
    "draw_snr",
    "gaussian_noise",
    "ivar_from_sigma",
    "measure_snr",
    "noise_sigma",
    "redraw_noise",
    "sigma_from_ivar",
    "signal_level",
    "snr_from_unit",
]

IVAR_FLOOR = 1e-30
"""Smallest ivar turned into a sigma (flux units**-2): sigma is at most 1e15 flux units."""

Rng = np.random.Generator | Sequence[np.random.Generator]
SnrSpec = float | tuple[float, float] | Sequence[float]


# ------------------------------------------------------------------------------ checks
def check_snr(snr: Any, name: str = "snr") -> float | tuple[float, float]:
    """Validate an S/N: a number > 0, or a ``(lo, hi)`` range with ``0 < lo <= hi``.

    Parameters
    ----------
    snr : float or (lo, hi)
        Median S/N per pixel.
    name : str
        The parameter's name in the error message.

    Returns
    -------
    float or (float, float)

    Raises
    ------
    ValueError
        When ``snr`` is not finite, not positive, or not a number or a pair.

    Examples
    --------
    >>> check_snr(30), check_snr([10, 100])
    (30.0, (10.0, 100.0))
    >>> check_snr((100, 10), name="target_snr")
    Traceback (most recent call last):
    ...
    ValueError: 'target_snr' as a range must be (lo, hi) with lo <= hi, got (100, 10)
    """
    try:
        arr = np.asarray(snr, dtype=np.float64)
    except (TypeError, ValueError):
        arr = np.asarray(np.nan)
    if arr.shape not in ((), (2,)) or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"'{name}' must be a finite number > 0 or a (lo, hi) pair with "
                         f"0 < lo <= hi, got {snr!r}")
    if arr.shape == ():
        return float(arr)
    if not arr[0] <= arr[1]:
        raise ValueError(f"'{name}' as a range must be (lo, hi) with lo <= hi, got {snr!r}")
    return float(arr[0]), float(arr[1])


def _check_ivar(ivar: Any, name: str = "ivar") -> np.ndarray:
    ivar = np.asarray(ivar)
    if ivar.dtype.kind not in "fiu":
        raise ValueError(f"'{name}' must be a numeric array, got dtype {ivar.dtype}")
    if not np.all(np.isfinite(ivar)) or np.any(ivar < 0):
        raise ValueError(f"'{name}' must be finite and >= 0 (inverse variance, flux "
                         "units**-2; 0 marks a pixel without a noise level)")
    return ivar


def _same_shape(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{what}: shapes differ, {a.shape} and {b.shape}")


# ------------------------------------------------------------------------------ S/N draws
def snr_from_unit(snr: SnrSpec, u: Any) -> float | np.ndarray:
    """Map uniform deviates ``u`` in [0, 1) to S/N values, log-uniformly in ``(lo, hi)``.

    ``exp(log(lo) + u * (log(hi) - log(lo)))``; a single number ``snr`` is returned as it
    is (as a float for a scalar ``u``, else an array of the shape of ``u``).

    Parameters
    ----------
    snr : float or (lo, hi)
        Median S/N per pixel, or its range.
    u : float or array
        Uniform deviates in [0, 1).

    Returns
    -------
    float or ndarray

    Examples
    --------
    >>> snr_from_unit((10, 1000), [0.0, 0.5])  # the middle of the range in log
    array([ 10., 100.])
    >>> snr_from_unit(50.0, 0.3)
    50.0
    """
    spec = check_snr(snr)
    if isinstance(spec, float):
        return spec if np.ndim(u) == 0 else np.full(np.shape(u), spec)
    lo, hi = np.log(spec[0]), np.log(spec[1])
    out = np.exp(lo + np.asarray(u, dtype=np.float64) * (hi - lo))
    return float(out) if np.ndim(u) == 0 else out


def draw_snr(snr: SnrSpec, rng: np.random.Generator,
             size: int | tuple[int, ...] | None = None) -> float | np.ndarray:
    """Draw S/N values: log-uniform in ``(lo, hi)``; a single number draws nothing.

    Parameters
    ----------
    snr : float or (lo, hi)
        Median S/N per pixel, or its range.
    rng : numpy.random.Generator
        Source of the draws (one uniform deviate per value; none for a single number).
    size : int, tuple or None
        Number (shape) of values; None gives a float.

    Returns
    -------
    float or ndarray

    Examples
    --------
    >>> import numpy as np
    >>> s = draw_snr((20, 200), np.random.default_rng(0), size=1000)
    >>> bool(s.min() >= 20 and s.max() <= 200)
    True
    >>> round(float(np.median(np.log10(s))), 1)  # log-uniform: median near sqrt(20 * 200)
    1.8
    """
    spec = check_snr(snr)
    if isinstance(spec, float):
        return spec if size is None else np.full(size, spec)
    return np.exp(rng.uniform(np.log(spec[0]), np.log(spec[1]), size))


# ------------------------------------------------------------------------------ sigma
def signal_level(flux: Any, good: Any = None, *, empty: float = np.nan) -> np.ndarray:
    """One signal level per spectrum: the median of ``|flux|`` over its good pixels.

    Parameters
    ----------
    flux : array (n_spectra, n_pixels)
        Flux (any unit); the median is taken in its dtype.
    good : bool array (n_spectra, n_pixels), (n_pixels,) or None
        Pixels to use (default all).
    empty : float
        Level of a spectrum without good pixels.

    Returns
    -------
    ndarray (n_spectra,), float64, in the unit of ``flux``.

    Examples
    --------
    >>> signal_level([[1.0, -3.0, 2.0], [4.0, 4.0, 100.0]])
    array([2., 4.])
    >>> signal_level([[1.0, -3.0, 2.0], [4.0, 4.0, 100.0]], [[True, True, False], [False] * 3])
    array([ 2., nan])
    """
    flux = np.atleast_2d(np.asarray(flux))
    good = (np.ones(flux.shape, dtype=bool) if good is None
            else np.broadcast_to(np.asarray(good, dtype=bool), flux.shape))
    return np.array([np.median(np.abs(f[g])) if g.any() else empty
                     for f, g in zip(flux, good, strict=True)], dtype=np.float64)


def _relative(curve: Any, good: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(curve, its median over good finite pixels) with the curve checked."""
    c = np.asarray(curve, dtype=np.float64)
    if np.any(c < 0):
        raise ValueError(f"'{name}' must be >= 0 (0 or non-finite marks pixels without a "
                         "noise level)")
    use = np.isfinite(c) if good is None else np.isfinite(c) & np.asarray(good, dtype=bool)
    use = np.broadcast_to(use, c.shape)
    if c.ndim <= 1:
        med = np.asarray(np.median(c[use]) if use.any() else np.nan)
    elif use.all():
        med = np.median(c, axis=-1)
    elif np.all(use == use.reshape(-1, c.shape[-1])[:1]):  # the same pixels in every row
        med = np.median(c[..., use.reshape(-1, c.shape[-1])[0]], axis=-1)
    else:
        med = np.array([np.median(r[u]) if u.any() else np.nan for r, u in
                        zip(c.reshape(-1, c.shape[-1]), use.reshape(-1, c.shape[-1]),
                            strict=True)]).reshape(c.shape[:-1])
    if not np.all(med > 0):
        raise ValueError(f"'{name}' must have a positive median over the good pixels")
    return c, med


def noise_sigma(signal: Any, snr: Any, *, snr_curve: Any = None, noise_shape: Any = None,
                good: Any = None) -> np.ndarray:
    """Noise sigma per pixel for a spectrum of median S/N per pixel ``snr``.

    ``sigma_j = signal_j / snr_j``, where the per-pixel S/N ``snr_j`` is ``snr`` times the
    relative S/N curve ``c_j / median(c)`` (``snr_curve``), or ``snr`` over the relative
    noise shape ``s_j / median(s)`` (``noise_shape``), medians over the ``good`` pixels
    (and, per spectrum, along the last axis). Without a curve ``sigma = signal / snr``.
    Pixels where the curve is 0 or not finite have no noise level: sigma 0 there.

    Parameters
    ----------
    signal : float or array broadcasting to (n_spectra, n_pixels)
        The signal in flux units: the noise-free flux (photon-like noise) or one level per
        spectrum (``signal_level(flux)[:, None]``, noise independent of the flux).
    snr : float or array broadcasting with ``signal`` (e.g. (n_spectra, 1))
        Median S/N per pixel, > 0.
    snr_curve : array (n_pixels,) or (n_spectra, n_pixels), optional
        Relative S/N per pixel (e.g. an exposure-time-calculator curve, or ``sqrt`` of the
        photon counts), >= 0.
    noise_shape : array (n_pixels,) or (n_spectra, n_pixels), optional
        Relative noise sigma per pixel (e.g. a real error spectrum), >= 0. Give at most one
        of ``snr_curve`` and ``noise_shape``.
    good : bool array broadcasting to the curve, optional
        Pixels over which the curve is normalised to median 1 (default all).

    Returns
    -------
    ndarray, float64, the broadcast shape of ``signal``, ``snr`` and the curve
        Sigma in flux units (not squared).

    Raises
    ------
    ValueError
        If ``snr`` is not > 0, a curve is negative or has no positive median, or both
        curves are given.

    Examples
    --------
    >>> import numpy as np
    >>> noise_sigma(2.0, 50.0)
    array(0.04)
    >>> sig = noise_sigma(1.0, 10.0, snr_curve=[1.0, 2.0, 4.0])
    >>> np.median(1.0 / sig).item()
    10.0
    """
    snr = np.asarray(snr, dtype=np.float64)
    if not np.all(np.isfinite(snr)) or np.any(snr <= 0):
        raise ValueError("'snr' must be finite and > 0 (median S/N per pixel)")
    if snr_curve is not None and noise_shape is not None:
        raise ValueError("give at most one of 'snr_curve' and 'noise_shape'")
    signal = np.asarray(signal, dtype=np.float64)
    if snr_curve is None and noise_shape is None:
        return np.asarray(signal / snr)
    if snr_curve is not None:
        c, med = _relative(snr_curve, good, "snr_curve")
        k = snr / med[..., None] if np.ndim(med) else snr / med
        ok = np.isfinite(c) & (c > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            sigma = signal / (k * c)
        return np.where(ok, sigma, 0.0)
    s, med = _relative(noise_shape, good, "noise_shape")
    ok = np.isfinite(s) & (s > 0)
    rel = s / med[..., None] if np.ndim(med) else s / med
    with np.errstate(invalid="ignore", over="ignore"):
        sigma = (signal / snr) * rel
    return np.where(ok, sigma, 0.0)


def sigma_from_ivar(ivar: Any, mask: Any = None) -> np.ndarray:
    """Sigma ``1 / sqrt(ivar)`` per pixel (flux units); 0 where ``ivar == 0`` or masked.

    Computed in the floating dtype of ``ivar``; ivar below :data:`IVAR_FLOOR` is raised to
    it (sigma at most 1e15).

    Raises
    ------
    ValueError
        If ``ivar`` is negative or not finite, or ``mask`` has another shape.

    Examples
    --------
    >>> sigma_from_ivar([[4.0, 0.0, 100.0]], mask=[[False, False, True]])
    array([[0.5, 0. , 0. ]])
    """
    ivar = _check_ivar(ivar)
    good = ivar > 0
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        _same_shape(ivar, mask, "sigma_from_ivar: ivar and mask")
        good = good & ~mask
    return np.where(good, 1.0 / np.sqrt(np.maximum(ivar, IVAR_FLOOR)), 0.0)


def ivar_from_sigma(sigma: Any) -> np.ndarray:
    """``1 / sigma**2`` (flux units**-2), 0 where sigma is 0 or not finite.

    Examples
    --------
    >>> ivar_from_sigma([0.5, 0.0, np.inf])
    array([4., 0., 0.])
    """
    sigma = np.asarray(sigma, dtype=np.float64)
    return np.divide(1.0, sigma**2, out=np.zeros(sigma.shape),
                     where=np.isfinite(sigma) & (sigma > 0))


# ------------------------------------------------------------------------------ draws
def _normals(rng: Rng, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal deviates of ``shape``; with one generator per row, row by row."""
    if isinstance(rng, np.random.Generator):
        return rng.standard_normal(shape)
    rngs = list(rng)
    if not shape or len(rngs) != shape[0]:
        raise ValueError(f"one generator per spectrum: got {len(rngs)} generators for "
                         f"{shape[0] if shape else 0} spectra")
    return np.stack([r.standard_normal(shape[1:]) for r in rngs]).reshape(shape)


def _pick(rng: Rng, n: int, fraction: float) -> np.ndarray:
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"'fraction' must lie in [0, 1], got {fraction!r}")
    if isinstance(rng, np.random.Generator):
        return rng.random(n) < fraction
    rngs = list(rng)
    if len(rngs) != n:
        raise ValueError(f"one generator per spectrum: got {len(rngs)} generators for "
                         f"{n} spectra")
    return np.array([r.random() < fraction for r in rngs], dtype=bool)


def _gaussian(sigma: np.ndarray, rng: Rng, shape: tuple[int, ...],
              fraction: float | None) -> tuple[np.ndarray, np.ndarray | None]:
    """(noise of ``shape``, the rows picked or None): picks first, then the deviates."""
    if np.any(sigma < 0):
        raise ValueError("'sigma' must be >= 0 (standard deviation, flux units)")
    if fraction is None:
        return _normals(rng, shape) * sigma, None
    pick = _pick(rng, shape[0] if shape else 0, float(fraction))
    pick = pick.reshape((-1,) + (1,) * (len(shape) - 1))
    return pick * _normals(rng, shape) * sigma, pick


def gaussian_noise(sigma: Any, rng: Rng, *, fraction: float | None = None,
                   shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Gaussian noise of standard deviation ``sigma`` (the noise only, not added).

    Parameters
    ----------
    sigma : array
        Sigma per pixel (flux units, or the units of whatever the noise is added to), >= 0;
        0 gives no noise.
    rng : Generator or sequence of Generators (one per row)
        Source of the deviates.
    fraction : float in [0, 1], optional
        Probability that a row (spectrum, first axis) gets noise; the picks are drawn
        before the normal deviates (one uniform deviate per row), and rows not picked
        get 0.
    shape : tuple, optional
        Shape of the noise when ``sigma`` broadcasts to it (default ``sigma.shape``).

    Returns
    -------
    ndarray of ``shape``, float64 (the deviates are float64 whatever the dtype of sigma).

    Raises
    ------
    ValueError
        If ``sigma`` is negative or ``fraction`` outside [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> noise = gaussian_noise(0.1, np.random.default_rng(0), shape=(2, 20000))
    >>> noise.shape, noise.std(axis=1).round(2)
    ((2, 20000), array([0.1, 0.1]))
    """
    sigma = np.asarray(sigma)
    shape = sigma.shape if shape is None else tuple(shape)
    return _gaussian(sigma, rng, shape, fraction)[0]


def draw_noise(flux: Any, sigma: Any, rng: Rng) -> tuple[np.ndarray, np.ndarray]:
    """Add Gaussian noise of ``sigma`` to noise-free ``flux``: (noisy flux, its ivar).

    Parameters
    ----------
    flux : array (n_spectra, n_pixels)
        Noise-free flux.
    sigma : array broadcasting to ``flux``
        Sigma per pixel (flux units), >= 0 (e.g. from :func:`noise_sigma`); pixels with
        sigma 0 get no noise and ivar 0.
    rng : Generator or sequence of Generators (one per spectrum)
        Source of the noise.

    Returns
    -------
    flux, ivar : ndarray (n_spectra, n_pixels)
        ``flux + sigma * N(0, 1)`` and ``1 / sigma**2`` (0 where sigma is 0).

    Examples
    --------
    >>> import numpy as np
    >>> flux = np.ones((2, 5000))
    >>> noisy, ivar = draw_noise(flux, noise_sigma(1.0, 100.0), np.random.default_rng(0))
    >>> measure_snr(noisy, ivar).round(-1)
    array([100., 100.])
    """
    flux = np.asarray(flux)
    sigma = np.asarray(sigma)
    shape = np.broadcast_shapes(flux.shape, sigma.shape)
    if shape != flux.shape:
        raise ValueError(f"draw_noise: sigma of shape {sigma.shape} does not fit flux of "
                         f"shape {flux.shape}")
    noise, _ = _gaussian(sigma, rng, shape, None)
    return flux + noise, np.broadcast_to(ivar_from_sigma(sigma), shape)


def redraw_noise(flux: Any, ivar: Any, rng: Rng, *, fraction: float | None = None,
                 n_draws: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A further noise realisation from the error spectrum: ``flux + N(0, 1) / sqrt(ivar)``.

    The training augmentation "an extra noise realisation from its error spectrum": the
    result scatters around ``flux`` with sigma ``1 / sqrt(ivar)``; around the true flux of
    an already noisy spectrum its variance is twice the original.

    Parameters
    ----------
    flux : array (n_spectra, n_pixels)
        Flux (noisy or not).
    ivar : array (n_spectra, n_pixels)
        Inverse variance of ``flux`` (flux units**-2), finite and >= 0; pixels with ivar 0
        get no noise. Sigma is computed in its dtype (:func:`sigma_from_ivar`).
    rng : Generator or sequence of Generators (one per spectrum)
        Source of the noise.
    fraction : float in [0, 1], optional
        Probability that a spectrum gets the extra realisation (the others are returned
        unchanged); see :func:`gaussian_noise`.
    n_draws : int, optional
        Return ``n_draws`` independent realisations, shape (n_draws, n_spectra, n_pixels)
        (one Generator only).

    Returns
    -------
    flux, ivar : ndarray
        The noisy flux and its ivar about the true flux, ``ivar / 2`` where noise was
        added (``ivar`` elsewhere).

    Raises
    ------
    ValueError
        If the shapes differ or ivar is negative or not finite.

    Examples
    --------
    >>> import numpy as np
    >>> flux, ivar = np.ones((2, 20000)), np.full((2, 20000), 100.0**2)  # sigma 0.01
    >>> rngs = [np.random.default_rng([7, i]) for i in range(2)]  # one per spectrum
    >>> noisy, ivar2 = redraw_noise(flux, ivar, rngs)
    >>> (noisy - flux).std(axis=1).round(3), float(ivar2[0, 0])  # ivar halved
    (array([0.01, 0.01]), 5000.0)
    """
    flux = np.asarray(flux)
    ivar = _check_ivar(ivar)
    _same_shape(flux, ivar, "redraw_noise: flux and ivar")
    sigma = sigma_from_ivar(ivar)
    if n_draws is not None:
        if fraction is not None or not isinstance(rng, np.random.Generator):
            raise ValueError("redraw_noise: n_draws takes one Generator and no fraction")
        shape = (int(n_draws), *flux.shape)
        noise, _ = _gaussian(sigma[None], rng, shape, None)
        return flux[None] + noise, np.broadcast_to(ivar / 2.0, shape)
    noise, pick = _gaussian(sigma, rng, flux.shape, fraction)
    return flux + noise, ivar / 2.0 if pick is None else np.where(pick, ivar / 2.0, ivar)


def add_noise_to_snr(flux: Any, ivar: Any, snr: Any, rng: Rng, *, mask: Any = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Add noise to already noisy spectra to bring them down to the S/N ``snr``.

    Each spectrum's S/N now, ``s`` (:func:`measure_snr`), is lowered to ``snr`` by white
    noise added in quadrature: ``sigma_add = level * sqrt(1 / snr**2 - 1 / s**2)`` with
    ``level`` = median ``|flux|`` over the good pixels (:func:`signal_level`), and
    ``ivar -> 1 / (1 / ivar + sigma_add**2)`` on the good pixels. Spectra at or below
    ``snr`` already, or without good pixels, are returned unchanged.

    Parameters
    ----------
    flux, ivar : array (n_spectra, n_pixels)
        Flux and its inverse variance (flux units**-2, finite, >= 0).
    snr : float or array (n_spectra,)
        Target median S/N per pixel, > 0.
    rng : Generator or sequence of Generators (one per spectrum)
        Source of the noise. A spectrum that gets noise draws one normal deviate per good
        pixel (in order) from its generator; the others draw nothing.
    mask : bool array (n_spectra, n_pixels), optional
        Bad pixels (True), besides those with ivar 0.

    Returns
    -------
    flux, ivar : ndarray (n_spectra, n_pixels), float64
    snr : ndarray (n_spectra,)
        The S/N each spectrum has now: ``snr`` where noise was added, its own otherwise.

    Raises
    ------
    ValueError
        If the shapes differ, ``snr`` is not > 0 or ivar is negative or not finite.

    Examples
    --------
    >>> import numpy as np
    >>> flux, ivar = np.ones((2, 5000)), np.full((2, 5000), 100.0**2)  # S/N 100
    >>> noisy, ivar2, snr = add_noise_to_snr(flux, ivar, [30.0, 300.0],
    ...                                      np.random.default_rng(1))
    >>> snr, measure_snr(noisy, ivar2).round(1)  # the second one stays at 100
    (array([ 30., 100.]), array([ 30., 100.]))
    """
    given = np.atleast_2d(np.asarray(flux))
    given_ivar = np.atleast_2d(_check_ivar(ivar))
    _same_shape(given, given_ivar, "add_noise_to_snr: flux and ivar")
    bad = (np.zeros(given.shape, dtype=bool) if mask is None
           else np.atleast_2d(np.asarray(mask, dtype=bool)))
    _same_shape(given, bad, "add_noise_to_snr: flux and mask")
    flux = given.astype(np.float64)  # a copy
    ivar = given_ivar.astype(np.float64)
    n = len(flux)
    want = np.broadcast_to(np.asarray(snr, dtype=np.float64), (n,))
    if not np.all(np.isfinite(want)) or np.any(want <= 0):
        raise ValueError("'snr' must be finite and > 0 (median S/N per pixel)")
    single = isinstance(rng, np.random.Generator)
    rngs = None if single else list(rng)
    if rngs is not None and len(rngs) != n:
        raise ValueError(f"one generator per spectrum: got {len(rngs)} generators for "
                         f"{n} spectra")
    now = measure_snr(given, given_ivar, bad)  # measured in the dtype given
    good = ~bad
    level = signal_level(given, good, empty=0.0)
    for i in np.flatnonzero((want < now) & (level > 0)):
        sigma = level[i] * np.sqrt(1.0 / want[i] ** 2 - 1.0 / now[i] ** 2)
        r = rng if single else rngs[i]
        g = good[i]
        flux[i, g] += sigma * r.standard_normal(int(g.sum()))
        ivar[i, g] = 1.0 / (1.0 / ivar[i, g] + sigma**2)
    return flux, ivar, np.where(want < now, want, now)


# ------------------------------------------------------------------------------ measure
def measure_snr(flux: Any, ivar: Any = None, mask: Any = None, *, step: int = 1
                ) -> np.ndarray:
    """Median S/N per pixel of each spectrum: ``|flux| * sqrt(ivar)`` over good pixels.

    Good pixels are unmasked with ``ivar > 0``; a spectrum without any gets 0.

    Parameters
    ----------
    flux : array (n_spectra, n_pixels) or SpectrumSet
        Flux; a SpectrumSet brings its own ivar and mask.
    ivar : array (n_spectra, n_pixels)
        Inverse variance of ``flux`` (flux units**-2), finite and >= 0.
    mask : bool array (n_spectra, n_pixels), optional
        True = bad pixel.
    step : int
        Use every ``step``-th pixel only (faster for large sets, about as good a median).

    Returns
    -------
    ndarray (n_spectra,), float64

    Raises
    ------
    ValueError
        If the shapes differ, ivar is missing, negative or not finite.

    Examples
    --------
    >>> import numpy as np
    >>> measure_snr(np.full((1, 4), 2.0), np.full((1, 4), 100.0))
    array([20.])
    """
    if isinstance(flux, SpectrumSet):
        flux, ivar, mask = flux.flux, flux.ivar, flux.mask if mask is None else mask
    if ivar is None:
        raise ValueError("measure_snr needs ivar (or a SpectrumSet)")
    flux = np.atleast_2d(np.asarray(flux))
    ivar = np.atleast_2d(_check_ivar(ivar))
    _same_shape(flux, ivar, "measure_snr: flux and ivar")
    mask = np.zeros(flux.shape, dtype=bool) if mask is None else np.atleast_2d(
        np.asarray(mask, dtype=bool))
    _same_shape(flux, mask, "measure_snr: flux and mask")
    cols = slice(None, None, max(1, int(step)))
    mask, ivar, flux = mask[:, cols], ivar[:, cols], flux[:, cols]
    good = ~mask & (ivar > 0)
    values = np.where(good, np.abs(flux) * np.sqrt(np.maximum(ivar, 0)), np.nan)
    out = np.zeros(len(flux))
    has = good.any(axis=1)
    out[has] = np.nanmedian(values[has], axis=1)
    return out
