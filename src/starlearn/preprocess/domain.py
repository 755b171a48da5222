"""DomainAdapter: make spectra of one instrument look like those of another.

The emission-line-star work trained on Ondřejov 2-m spectra (R ~ 13,000) and classified
LAMOST low-resolution spectra (R ~ 1,800): the network sees the line shapes of the training
instrument, so the training spectra are first brought to the target's resolution ("Gaussian
blur"), sampling, wavelength convention and noise level.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from starlearn.grid import Grid, air_to_vacuum, get_grid
from starlearn.noise import add_noise_to_snr, measure_snr
from starlearn.preprocess.base import Transform, _check_number
from starlearn.preprocess.resolution import DegradeResolution
from starlearn.spectra import SpectrumSet

__all__ = ["DomainAdapter", "median_snr"]


def median_snr(spectra: SpectrumSet, step: int = 1) -> np.ndarray:
    """Median S/N per pixel of each spectrum (``|flux| * sqrt(ivar)`` over good pixels; 0 for
    a spectrum without good pixels): :func:`starlearn.noise.measure_snr`; ``step > 1`` takes
    every step-th pixel only (faster, for large sets).

    Examples
    --------
    >>> from starlearn import SpectrumSet
    >>> s = SpectrumSet(wave=[1.0, 2.0, 3.0], flux=[[2.0, 2.0, 4.0], [1.0, 1.0, 1.0]],
    ...                 ivar=[[100.0, 100.0, 100.0], [4.0, 0.0, 4.0]])
    >>> median_snr(s)
    array([20.,  2.])
    """
    return measure_snr(spectra, step=step)


class DomainAdapter(Transform):
    """Bring source-instrument spectra to a target instrument's resolution, grid and noise.

    Steps, in order:

    1. air to vacuum wavelengths (``source_air=True``; starlearn readers already give vacuum);
    2. Gaussian degradation from ``r_source`` to ``r_target`` and flux-conserving
       resampling onto ``target_grid`` (if given), as one operator
       (:class:`DegradeResolution` with ``grid``), so that the errors are right;
    3. (the resampling is part of step 2);
    4. noise matching: each spectrum gets a target S/N (``target_snr``) and, if its own
       median S/N per pixel is higher, white Gaussian noise with
       ``sigma = level * sqrt(1/snr_target**2 - 1/snr_now**2)`` (``level`` = median |flux|)
       is added and ivar lowered accordingly; noisier spectra are left as they are.

    Parameters
    ----------
    r_source, r_target : float
        Resolving powers R = lambda / FWHM of the source and target instruments,
        ``r_target < r_source``.
    target_grid : str, Grid, dict or None
        The target's wavelength grid (preset name, Grid or Grid dict); None keeps the sampling.
    target_snr : None, float, (lo, hi) or a sequence of more than two floats
        Median S/N per pixel wanted: one value, a log-uniform range, or an empirical
        sample (e.g. ``median_snr(target_spectra)``) drawn with replacement. None skips
        noise matching.
    source_air : bool
        The source wavelengths are in air.
    seed : int
        Seed of the S/N draws and the noise (spectrum ``i`` uses ``(seed, i)``).

    Examples
    --------
    >>> import numpy as np
    >>> from starlearn import Grid, SpectrumSet
    >>> w = Grid.log_uniform(6400.0, 6700.0, n_pix=4000).wave
    >>> line = 1 - 0.6 * np.exp(-0.5 * ((w - 6564.6) / (6564.6 / 13000 / 2.3548)) ** 2)
    >>> s = SpectrumSet(wave=w, flux=line[None], ivar=np.full((1, 4000), 1e4))
    >>> out = DomainAdapter(r_source=13000, r_target=1800).transform(s)
    >>> bool(out.flux.min() > 0.9)
    True
    """

    def __init__(self, *, r_source: float, r_target: float,
                 target_grid: str | Grid | dict | None = None,
                 target_snr: float | Sequence[float] | None = None,
                 source_air: bool = False, seed: int = 0) -> None:
        self.r_source = r_source
        self.r_target = r_target
        self.target_grid = target_grid
        self.target_snr = target_snr
        self.source_air = source_air
        self.seed = seed

    @classmethod
    def for_target(cls, source: SpectrumSet, target: SpectrumSet, *,
                   r_source: float | None = None, r_target: float | None = None,
                   window: Grid | None = None, seed: int = 0) -> DomainAdapter:
        """The adapter that brings ``source`` spectra to the instrument of ``target``
        spectra (what ``starlearn train --adapt-to`` builds): resolving powers from the
        survey presets the two sets are on (or as given), the target's grid when it is a
        preset, and the target's S/N — measured on its native pixels inside ``window``
        (a Grid, e.g. a LineWindow's), where the classifier looks — as the noise to match.

        Raises
        ------
        ValueError
            When a resolving power is not given and the set's grid is not a preset.

        Examples
        --------
        >>> import numpy as np
        >>> from starlearn import SpectrumSet
        >>> from starlearn.grid import get_grid
        >>> ondrejov, lamost = get_grid("ondrejov-halpha"), get_grid("lamost")
        >>> source = SpectrumSet(wave=ondrejov.wave, flux=np.ones((2, ondrejov.n_pix)),
        ...                      ivar=np.full((2, ondrejov.n_pix), 300.0**2))
        >>> target = SpectrumSet(wave=lamost.wave, flux=np.ones((3, lamost.n_pix)),
        ...                      ivar=np.full((3, lamost.n_pix), 40.0**2))
        >>> adapter = DomainAdapter.for_target(source, target)
        >>> adapter.r_source, adapter.r_target, adapter.target_grid.name
        (13000.0, 1800.0, 'lamost')
        >>> out = adapter.transform(source)
        >>> out.n_pix, out.meta["snr"].round(1).tolist()
        (3909, [40.0, 40.0])
        """
        from starlearn.grid import find_preset

        def resolution(spectra: SpectrumSet, given: float | None, what: str) -> float:
            if given is not None:
                return float(given)
            preset = find_preset(spectra.wave) if spectra.shared_wave else None
            if preset is None or preset.resolution is None:
                raise ValueError(f"DomainAdapter.for_target: cannot tell the resolving power "
                                 f"of the {what} spectra (their grid is not a survey preset); "
                                 f"give r_{what} (--{what}-resolution)")
            return float(preset.resolution)

        near = target
        if window is not None:
            outside = (target.wave < window.start) | (target.wave > window.stop)
            near = target.replace(mask=target.mask | np.broadcast_to(outside,
                                                                      target.mask.shape))
        snr = median_snr(near)
        return cls(r_source=resolution(source, r_source, "source"),
                   r_target=resolution(target, r_target, "target"),
                   target_grid=find_preset(target.wave) if target.shared_wave else None,
                   target_snr=snr[snr > 0] if (snr > 0).any() else None, seed=seed)

    def _validate_params(self) -> None:
        who = "DomainAdapter"
        _check_number(self.r_source, "r_source", who, low=0.0, low_open=True)
        _check_number(self.r_target, "r_target", who, low=0.0, low_open=True)
        if not self.r_target < self.r_source:
            raise ValueError(f"{who}: 'r_target' must be lower than 'r_source' (resolution "
                             f"can only be degraded), got r_source={self.r_source}, "
                             f"r_target={self.r_target}")
        if self.target_grid is not None:
            if not isinstance(self.target_grid, (str, Grid, dict)):
                raise TypeError(f"{who}: 'target_grid' must be a preset name, a Grid, a Grid "
                                f"dict or None, got {type(self.target_grid).__name__}")
            try:
                get_grid(self.target_grid)
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{who}: 'target_grid': {exc}") from None
        if self.target_snr is not None:
            try:
                values = np.atleast_1d(np.asarray(self.target_snr, dtype=float))
            except (TypeError, ValueError):
                values = np.array([np.nan])
            if (values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values))
                    or np.any(values <= 0)):
                raise ValueError(f"{who}: 'target_snr' must be a positive number, a (lo, hi) "
                                 f"range or a 1-D sample of positive numbers, "
                                 f"got {self.target_snr!r}")
        if not isinstance(self.source_air, (bool, np.bool_)):
            raise TypeError(f"{who}: 'source_air' must be True or False, "
                            f"got {self.source_air!r}")
        _check_number(self.seed, "seed", who, low=0, integer=True)

    def _draw_snr(self, n: int) -> np.ndarray:
        values = np.atleast_1d(np.asarray(self.target_snr, dtype=float))
        out = np.empty(n)
        for i in range(n):
            rng = np.random.default_rng([int(self.seed), i, 1])
            if values.size == 1:
                out[i] = values[0]
            elif values.size == 2:
                out[i] = np.exp(rng.uniform(*np.log(np.sort(values))))
            else:
                out[i] = values[rng.integers(values.size)]
        return out

    def _transform(self, spectra: SpectrumSet) -> SpectrumSet:
        if self.source_air:
            spectra = spectra.replace(wave=air_to_vacuum(spectra.wave))
        # blur and rebinning as one operator: the errors of the pixels the blur correlates
        # are propagated through the rebinning exactly
        spectra = DegradeResolution(r_in=self.r_source, r_out=self.r_target,
                                    grid=self.target_grid).transform(spectra)
        if self.target_snr is None:
            return spectra
        want = self._draw_snr(len(spectra))
        rngs = [np.random.default_rng([int(self.seed), i]) for i in range(len(spectra))]
        flux, ivar, reached = add_noise_to_snr(spectra.flux, spectra.ivar, want, rngs,
                                               mask=spectra.mask)
        meta = spectra.meta.copy()
        meta["snr"] = reached
        return spectra.replace(flux=flux, ivar=ivar, meta=meta)
