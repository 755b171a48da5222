"""Wavelength grids: log-uniform grids, survey presets, and air/vacuum conversion.

All grids are in **vacuum** Angstrom. A log-uniform grid has a constant pixel step in
log10(wavelength), i.e. constant velocity width per pixel
``dv = c * ln(10) * dlog10`` (km/s).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["C_KMS", "PRESETS", "Grid", "air_to_vacuum", "find_preset", "get_grid",
           "vacuum_to_air"]

C_KMS = 299_792.458
"""Speed of light in km/s."""


@dataclass(frozen=True)
class Grid:
    """A log-uniform vacuum wavelength grid.

    Pixel ``i`` (0-based) is centred at ``10 ** (log10_start + i * dlog10)`` Angstrom.

    Parameters
    ----------
    log10_start : float
        log10 of the first pixel's central vacuum wavelength (Angstrom).
    dlog10 : float
        Pixel step in log10(wavelength / Angstrom).
    n_pix : int
        Number of pixels.
    resolution : float or None
        Resolving power R = lambda / FWHM of the instrument's line-spread function, if the
        grid belongs to an instrument (used by synthetic surveys and resolution matching).
    name : str
        Preset name or a free label.
    gaps : tuple of (lo, hi) pixel index ranges
        Half-open pixel ranges ``[lo, hi)`` with no data (e.g. APOGEE chip gaps).

    Examples
    --------
    >>> g = Grid.log_uniform(15000.0, 17000.0, n_pix=1000)
    >>> round(float(g.wave[0]), 6), round(float(g.wave[-1]), 6), g.n_pix
    (15000.0, 17000.0, 1000)
    """

    log10_start: float
    dlog10: float
    n_pix: int
    resolution: float | None = None
    name: str = ""
    gaps: tuple[tuple[int, int], ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not (self.dlog10 > 0 and self.n_pix >= 2):
            raise ValueError(f"Grid: need dlog10 > 0 and n_pix >= 2, got dlog10={self.dlog10}, "
                             f"n_pix={self.n_pix}")
        object.__setattr__(self, "n_pix", int(self.n_pix))
        object.__setattr__(self, "gaps", tuple((int(a), int(b)) for a, b in self.gaps))

    @classmethod
    def log_uniform(cls, start: float, stop: float, *, n_pix: int | None = None,
                    sampling_r: float | None = None, resolution: float | None = None,
                    name: str = "") -> Grid:
        """A log-uniform grid from ``start`` to ``stop`` (vacuum Angstrom, both included).

        Give exactly one of ``n_pix`` (number of pixels) or ``sampling_r`` (the sampling
        resolving power lambda / delta-lambda of one pixel; the pixel count is rounded so
        that the grid ends at ``stop``). ``resolution`` is the instrument's resolving power
        and does not change the sampling.

        Examples
        --------
        >>> g = Grid.log_uniform(15000.0, 17000.0, sampling_r=3 * 22_500, resolution=22_500)
        >>> g.n_pix, round(g.velocity_step, 3), round(g.stop, 6)
        (8450, 4.441, 17000.0)
        """
        if not 0 < start < stop:
            raise ValueError(f"Grid.log_uniform: need 0 < start < stop, got {start}, {stop}")
        if (n_pix is None) == (sampling_r is None):
            raise ValueError("Grid.log_uniform: give exactly one of n_pix or sampling_r")
        span = np.log10(stop) - np.log10(start)
        if n_pix is None:
            n_pix = round(span / np.log10(1 + 1 / sampling_r)) + 1
        return cls(float(np.log10(start)), float(span / (n_pix - 1)), int(n_pix),
                   resolution, name)

    @property
    def wave(self) -> np.ndarray:
        """Pixel centres, vacuum Angstrom, shape (n_pixels,)."""
        return 10.0 ** (self.log10_start + self.dlog10 * np.arange(self.n_pix))

    @property
    def edges(self) -> np.ndarray:
        """Pixel edges (geometric midpoints), vacuum Angstrom, shape (n_pixels + 1,)."""
        return 10.0 ** (self.log10_start + self.dlog10 * (np.arange(self.n_pix + 1) - 0.5))

    @property
    def velocity_step(self) -> float:
        """Velocity width of one pixel in km/s."""
        return float(C_KMS * np.log(10) * self.dlog10)

    @property
    def gap_mask(self) -> np.ndarray:
        """Boolean (n_pixels,), True inside the grid's gaps (pixels without data)."""
        out = np.zeros(self.n_pix, dtype=bool)
        for lo, hi in self.gaps:
            out[lo:hi] = True
        return out

    @property
    def start(self) -> float:
        """First pixel centre, vacuum Angstrom."""
        return float(10.0 ** self.log10_start)

    @property
    def stop(self) -> float:
        """Last pixel centre, vacuum Angstrom."""
        return float(10.0 ** (self.log10_start + self.dlog10 * (self.n_pix - 1)))

    def matches(self, wave: np.ndarray, rtol: float = 1e-7) -> bool:
        """True when ``wave`` (Angstrom) is this grid's pixel centres."""
        wave = np.asarray(wave)
        return wave.shape == (self.n_pix,) and np.allclose(wave, self.wave, rtol=rtol, atol=0)

    def offset_of(self, wave: np.ndarray, rtol: float = 1e-7) -> int | None:
        """The index of this grid's pixel at ``wave[0]`` when ``wave`` (Angstrom, 1-D) is a
        contiguous run of this grid's pixel centres (e.g. a LAMOST file cut at the red
        end), else None.

        Examples
        --------
        >>> lamost = PRESETS["lamost"]
        >>> lamost.offset_of(lamost.wave[10:500]), lamost.offset_of(lamost.wave[10:500] + 0.1)
        (10, None)
        """
        wave = np.asarray(wave, dtype=np.float64)
        if wave.ndim != 1 or wave.size < 2 or wave.size > self.n_pix or wave[0] <= 0:
            return None
        start = round((np.log10(wave[0]) - self.log10_start) / self.dlog10)
        if start < 0 or start + wave.size > self.n_pix:
            return None
        ok = np.allclose(wave, self.wave[start:start + wave.size], rtol=rtol, atol=0)
        return int(start) if ok else None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able description; ``Grid.from_dict`` inverts it exactly.

        Examples
        --------
        >>> import json
        >>> d = PRESETS["apogee"].to_dict()
        >>> d["n_pix"], d["gaps"][1]
        (8575, [3274, 3585])
        >>> Grid.from_dict(json.loads(json.dumps(d))) == PRESETS["apogee"]
        True
        """
        d = asdict(self)
        d["gaps"] = [list(g) for g in self.gaps]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Grid:
        d = dict(d)
        d["gaps"] = tuple(tuple(g) for g in d.get("gaps", ()))
        return cls(**d)


def _apogee() -> Grid:
    # apStar/aspcapStar combined grid: log10(lambda) = 4.179 + 6e-6 * i, 8575 pixels.
    # Pixels with data on the three detectors (blue, green, red) in DR13-DR17:
    # [246, 3274), [3585, 6080), [6344, 8335) (7,514 pixels; apogee package and astroNN
    # for DR13+, and ASPCAP's chip start wavelengths). DR10-DR12 files have data in the
    # narrower [322, 3242), [3648, 6048), [6412, 8306) (7,214 pixels) and zeros, masked by
    # the readers, in between. The gaps are where no release has data.
    return Grid(4.179, 6e-6, 8575, resolution=22_500.0, name="apogee",
                gaps=((0, 246), (3274, 3585), (6080, 6344), (8335, 8575)))


PRESETS: dict[str, Grid] = {
    "apogee": _apogee(),
    # LAMOST LRS, every release: log10(lambda) = COEFF0 + COEFF1 i = 3.5682 + 1e-4 i,
    # 3,699.99 - 9,099.1 A in 3,909 pixels (files cut at the red end have fewer: a run of
    # this grid's first pixels), R ~ 1,800.
    "lamost": Grid(3.5682, 1e-4, 3909, resolution=1800.0, name="lamost"),
    # SDSS/SEGUE/BOSS spectra lie on the lattice log10(lambda) = k 1e-4 (COEFF0 a multiple
    # of 1e-4): 3,800.2 - 9,198.5 A, 3,841 pixels of it, R ~ 2,000.
    "segue": Grid(3.5798, 1e-4, 3841, resolution=2000.0, name="segue"),
    # Subaru PFS medium-resolution red arm 7,100 - 8,850 A, R ~ 5,000, exactly 4,096 pixels.
    "pfs-mr": Grid.log_uniform(7100.0, 8850.0, n_pix=4096, resolution=5000.0, name="pfs-mr"),
    # Ondrejov 2-m CCD700 around H-alpha, 6,250 - 6,770 A, R ~ 13,000, ~0.26 A per pixel.
    "ondrejov-halpha": Grid.log_uniform(6250.0, 6770.0, n_pix=2000, resolution=13_000.0,
                                        name="ondrejov-halpha"),
}
"""Survey grid presets by name (all vacuum Angstrom)."""


def find_preset(wave: np.ndarray) -> Grid | None:
    """The preset whose pixel centres ``wave`` (Angstrom) are, or a contiguous run of
    (a LAMOST spectrum of 3,899 of the preset's 3,909 pixels), or None.

    Examples
    --------
    >>> find_preset(PRESETS["lamost"].wave[:3899]).name
    'lamost'
    >>> find_preset(np.linspace(5000.0, 6000.0, 100)) is None
    True
    """
    for grid in PRESETS.values():
        if grid.matches(wave):
            return grid
    for grid in PRESETS.values():
        if grid.offset_of(wave) is not None:
            return grid
    return None


def get_grid(grid: str | Grid | dict[str, Any]) -> Grid:
    """A Grid from a preset name, a Grid, or a ``Grid.to_dict()`` dictionary.

    Examples
    --------
    >>> g = get_grid("lamost")
    >>> g.n_pix, g.resolution, round(g.start, 2)
    (3909, 1800.0, 3699.99)
    >>> get_grid(g.to_dict()) == g
    True
    >>> get_grid("hermes")
    Traceback (most recent call last):
    ...
    ValueError: unknown grid preset 'hermes'; presets are ['apogee', 'lamost', ...]
    """
    if isinstance(grid, Grid):
        return grid
    if isinstance(grid, dict):
        return Grid.from_dict(grid)
    try:
        return PRESETS[grid]
    except KeyError:
        raise ValueError(f"unknown grid preset '{grid}'; presets are {sorted(PRESETS)}") from None


def _refractive_index_air(vacuum_wave: np.ndarray) -> np.ndarray:
    """Refractive index of standard air at a vacuum wavelength (Angstrom).

    Ciddor (1996) as given by Morton (2000, ApJS 130, 403), the IAU standard used by
    SDSS and VALD: n = 1 + 8.34254e-5 + 2.406147e-2 / (130 - s^2) + 1.5998e-4 / (38.9 - s^2),
    s = 1e4 / lambda_vac (inverse micron).
    """
    s2 = (1e4 / vacuum_wave) ** 2
    return 1 + 8.34254e-5 + 2.406147e-2 / (130.0 - s2) + 1.5998e-4 / (38.9 - s2)


_TAPER_START = 1900.0   # Angstrom: vacuum = air below here
_TAPER_END = 2000.0     # Angstrom: Morton (2000) in full from here up


def _air_refractivity(vacuum_wave: np.ndarray) -> np.ndarray:
    """``n - 1`` of standard air, tapered to 0 between 2,000 and 1,900 Angstrom (vacuum).

    The IAU quotes air wavelengths above 2,000 Angstrom and vacuum ones below. Switching
    abruptly would make the conversion jump by 0.65 Angstrom at 2,000 Angstrom (two spectra
    that straddle it would get a gap or an overlap); a smoothstep over the 100 Angstrom
    below keeps it continuous and monotonic (slope >= 0.99) and leaves every wavelength
    above 2,000 Angstrom on the standard formula.
    """
    wave = np.maximum(np.asarray(vacuum_wave, dtype=np.float64), _TAPER_START)
    x = np.clip((wave - _TAPER_START) / (_TAPER_END - _TAPER_START), 0.0, 1.0)
    return (_refractive_index_air(wave) - 1.0) * x * x * (3.0 - 2.0 * x)


def vacuum_to_air(wave: Any) -> np.ndarray:
    """Convert vacuum wavelengths (Angstrom) to standard-air wavelengths (Angstrom).

    Morton (2000) above 2,000 Angstrom; below 1,900 Angstrom air and vacuum are taken
    equal, as the IAU does, and in between the refractivity is tapered smoothly to 0 so
    that the conversion has no jump (:func:`_air_refractivity`).

    Examples
    --------
    >>> vacuum_to_air([6564.614, 1500.0])  # H-alpha; no air below 1,900 Angstrom
    array([6562.80101973, 1500.        ])
    """
    wave = np.asarray(wave, dtype=np.float64)
    return wave / (1.0 + _air_refractivity(wave))


def air_to_vacuum(wave: Any) -> np.ndarray:
    """Convert standard-air wavelengths (Angstrom) to vacuum wavelengths (Angstrom).

    Inverts :func:`vacuum_to_air` by fixed-point iteration, so that the round trip is exact
    to better than 1e-8 Angstrom at every wavelength, across the 1,900-2,000 Angstrom taper
    too.

    Examples
    --------
    >>> round(float(air_to_vacuum(6562.8)), 3)
    6564.613
    >>> w = np.array([1950.0, 5000.0, 15000.0])
    >>> bool(np.all(np.abs(vacuum_to_air(air_to_vacuum(w)) - w) < 1e-8))
    True
    """
    air = np.asarray(wave, dtype=np.float64)
    vac = air * (1.0 + _air_refractivity(air))
    for _ in range(6):
        vac = vac - (vacuum_to_air(vac) - air)
    return vac
