"""LineWindow: cut a fixed window around a spectral line, in the star's rest frame."""

from __future__ import annotations

import numpy as np

from starlearn.grid import Grid, air_to_vacuum, get_grid
from starlearn.preprocess.base import Transform, _check_number
from starlearn.preprocess.doppler import DopplerShift, column_kms, doppler_factor
from starlearn.preprocess.resample import Resample
from starlearn.spectra import SpectrumSet

__all__ = ["HALPHA_AIR", "LineWindow"]

HALPHA_AIR = 6562.8
"""H-alpha in air (Å), the default line (6564.6 Å in vacuum)."""


class LineWindow(Transform):
    """Resample each spectrum onto a window of ``2 * half_width`` pixels centred on a line.

    The spectrum is first shifted to its rest frame by its radial velocity (meta column
    ``rv_column``, km/s), then resampled (flux-conserving, :class:`Resample`) onto a
    log-uniform window grid with the pixel step of ``sampling``. The classification work on
    emission-line stars used 140 pixels around H-alpha on the LAMOST grid: the defaults.

    Parameters
    ----------
    line : float
        Central wavelength of the line (Å), in air when ``air`` is True (as optical line
        lists give it), else in vacuum.
    air : bool
        ``line`` is an air wavelength (converted to vacuum; spectra are always vacuum).
    half_width : int
        Pixels on each side of the line (the window has ``2 * half_width`` pixels).
    sampling : str, Grid, dict or float
        Pixel step: a grid preset name, Grid or ``Grid.to_dict()`` dictionary (its step), or
        a velocity step in km/s.
    rv_column : str or None
        Meta column with each spectrum's radial velocity (km/s, or converted to km/s from
        the column's astropy unit; masked entries count as missing); None = the spectra
        are already at rest.
    min_coverage : float
        Fraction of the window's pixels that must hold good data, in (0, 1].
    on_missing : {"raise", "mask"}
        For a spectrum that does not cover the window (or has no finite radial velocity):
        raise ``ValueError`` naming it and its wavelength range, or return it fully masked
        (ivar 0), for batch runs that flag such spectra instead of stopping.

    Examples
    --------
    >>> import numpy as np
    >>> from starlearn import Grid, SpectrumSet
    >>> w = Grid.log_uniform(6000.0, 7000.0, n_pix=3000).wave
    >>> s = SpectrumSet(wave=w, flux=np.ones((2, 3000)))
    >>> out = LineWindow(rv_column=None).transform(s)
    >>> out.n_pix, round(float(out.wave[70] * out.wave[69]) ** 0.5, 1)
    (140, 6564.6)
    """

    def __init__(self, *, line: float = HALPHA_AIR, air: bool = True, half_width: int = 70,
                 sampling: str | Grid | dict | float = "lamost", rv_column: str | None = "rv",
                 min_coverage: float = 0.9, on_missing: str = "raise") -> None:
        self.line = line
        self.air = air
        self.half_width = half_width
        self.sampling = sampling
        self.rv_column = rv_column
        self.min_coverage = min_coverage
        self.on_missing = on_missing

    def _validate_params(self) -> None:
        who = "LineWindow"
        _check_number(self.line, "line", who, low=0.0, low_open=True)
        if not isinstance(self.air, (bool, np.bool_)):
            raise TypeError(f"{who}: 'air' must be True or False, got {self.air!r}")
        if (not isinstance(self.half_width, (int, np.integer)) or isinstance(self.half_width, bool)
                or self.half_width < 1):
            raise ValueError(f"{who}: 'half_width' must be a positive integer, "
                             f"got {self.half_width!r}")
        if self.rv_column is not None and not isinstance(self.rv_column, str):
            raise TypeError(f"{who}: 'rv_column' must be a meta column name (str) or None, "
                            f"got {self.rv_column!r}")
        _check_number(self.min_coverage, "min_coverage", who, low=0.0, high=1.0,
                      low_open=True)
        if self.on_missing not in ("raise", "mask"):
            raise ValueError(f"{who}: 'on_missing' must be 'raise' or 'mask', "
                             f"got {self.on_missing!r}")
        if isinstance(self.sampling, (str, Grid, dict)):
            try:
                get_grid(self.sampling)
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{who}: 'sampling' must be a grid preset name, a Grid, a "
                                 f"Grid dict or a velocity step in km/s: {exc}") from None
        else:
            _check_number(self.sampling, "sampling", who, low=0.0, low_open=True)

    @property
    def line_vacuum(self) -> float:
        """The line's vacuum wavelength (Å)."""
        return float(air_to_vacuum(self.line)) if self.air else float(self.line)

    @property
    def grid(self) -> Grid:
        """The window grid (vacuum Å, rest frame).

        Examples
        --------
        >>> g = LineWindow().grid  # 140 LAMOST pixels around H-alpha
        >>> g.n_pix, round(g.start, 1), round(g.stop, 1), round(g.velocity_step, 2)
        (140, 6460.4, 6670.5, 69.03)
        >>> LineWindow(line=8542.09, half_width=50, sampling=10.0).grid.n_pix
        100
        """
        if isinstance(self.sampling, (str, Grid, dict)):
            dlog10 = get_grid(self.sampling).dlog10
        else:
            dlog10 = float(np.log10(1.0 + float(self.sampling) / 299_792.458))
        n = int(self.half_width)
        return Grid(log10_start=float(np.log10(self.line_vacuum) - (n - 0.5) * dlog10),
                    dlog10=dlog10, n_pix=2 * n, name=f"window-{self.line:g}")

    def _crop(self, spectra: SpectrumSet, rv: np.ndarray) -> SpectrumSet:
        """The pixels that can reach the window at velocities ``rv`` (km/s), with three
        pixels to spare on each side (so that the pixel edges inside are the ones of the
        whole spectrum and the result is the same): the shift and the resampling then
        touch ~150 pixels per spectrum instead of thousands. Spectra with their own
        wavelengths are left whole."""
        if not spectra.shared_wave or len(spectra) == 0:
            return spectra
        edges = self.grid.edges
        factor = doppler_factor(np.asarray(rv, dtype=float))
        lo = np.searchsorted(spectra.wave, edges[0] * factor.min()) - 3
        hi = np.searchsorted(spectra.wave, edges[-1] * factor.max()) + 3
        lo, hi = max(0, int(lo)), min(spectra.n_pix, int(hi))
        if hi - lo < 2 or hi - lo >= spectra.n_pix:
            return spectra
        cols = slice(lo, hi)
        return spectra.replace(wave=spectra.wave[cols], flux=spectra.flux[:, cols],
                               ivar=spectra.ivar[:, cols], mask=spectra.mask[:, cols])

    def _transform(self, spectra: SpectrumSet) -> SpectrumSet:
        if self.rv_column is not None:
            if self.rv_column not in spectra.meta.colnames:
                raise ValueError(f"LineWindow: the spectra have no meta column "
                                 f"'{self.rv_column}' with radial velocities (km/s); give "
                                 "rv_column=None for spectra already at rest")
            rv = column_kms(spectra.meta[self.rv_column])  # km/s, NaN where masked
            known = np.isfinite(rv)
            if not known.all() and self.on_missing == "raise":
                i = int(np.flatnonzero(~known)[0])
                raise ValueError(f"LineWindow: spectrum '{spectra.ids[i]}' has no radial "
                                 f"velocity (meta '{self.rv_column}' is {rv[i]}), so the "
                                 "window cannot be placed; use on_missing='mask' to flag such "
                                 "spectra instead")
            meta = spectra.meta.copy()
            meta[self.rv_column] = np.where(known, rv, 0.0)
            shifted = DopplerShift(rv_column=self.rv_column).transform(
                self._crop(spectra, meta[self.rv_column]).replace(meta=meta))
        else:
            known = np.ones(len(spectra), dtype=bool)
            shifted = self._crop(spectra, np.zeros(1))
        grid = self.grid
        out = Resample(grid=grid, min_good=0.5).transform(shifted)
        covered = ((~out.mask).mean(axis=1) >= self.min_coverage) & known
        if covered.all():
            return out
        if self.on_missing == "raise":
            i = int(np.flatnonzero(~covered)[0])
            wave = spectra.wave if spectra.wave.ndim == 1 else spectra.wave[i]
            if self.rv_column is not None:  # to its rest frame
                wave = wave / doppler_factor(float(meta[self.rv_column][i]))
            good = ~spectra.mask[i]
            span = (f"{wave[good].min():.1f}-{wave[good].max():.1f} Å" if good.any()
                    else "no good pixels")
            raise ValueError(
                f"LineWindow: spectrum '{spectra.ids[i]}' ({span} in its rest frame) does "
                f"not cover the window {grid.start:.1f}-{grid.stop:.1f} Å around "
                f"{self.line:g} Å (less than {self.min_coverage:.0%} of the window has good "
                f"pixels; {int((~covered).sum())} of {len(spectra)} spectra); "
                "use on_missing='mask' to flag such spectra instead")
        flux, ivar, mask = out.flux.copy(), out.ivar.copy(), out.mask.copy()
        flux[~covered], ivar[~covered], mask[~covered] = 0.0, 0.0, True
        return out.replace(flux=flux, ivar=ivar, mask=mask)
