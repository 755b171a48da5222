"""How realistic are starlearn.synth spectra? Each preset against real spectra of similar stars.

Every measurement below is one function applied in the same way to the real and to the
synthetic spectrum (same pixels, same mask, same continuum method), so the numbers can be
used to calibrate the generator's physics. Real files are read with ``starlearn.read``
(vacuum wavelengths) from ``<data>/fits-samples``; synthetic spectra come from
``starlearn.synth.render``.

1. Optical line blanketing (presets ``lamost`` and ``segue``). Real LAMOST LRS spectra of
   F, G and K stars (all LAMOST folders) and the SDSS star spectra (SDSS-I/II, BOSS; most
   SDSS samples are galaxies and quasars and are skipped). The header SUBCLASS is mapped to
   Teff / log g with the dwarf sequence of Pecaut & Mamajek (2013) (see
   ``DWARF_SEQUENCE``); [Fe/H] is 0 when the header has none. A synthetic star with these
   labels is rendered noiseless at rest; the real spectrum is shifted to rest with
   ``DopplerShift`` (meta ``rv`` = z c) and the synthetic one is interpolated onto the real
   rest-frame pixels. Blanketing in a band is ``B = 1 - mean(flux / envelope)`` over the
   band's good pixels, where the *envelope* is :func:`upper_envelope`: the 95th percentile
   of the good pixels in 100 A windows centred every 25 A, linearly interpolated, applied
   twice (the second pass on flux / first envelope removes the slope bias of a percentile).
   Bands: 3900-4400, 4400-5000, 5000-5600, 5600-6800 A (rest, vacuum). Three synthetic
   values are given: the envelope method on the synthetic spectrum with the real star's
   per-pixel noise added (relative error ``1 / (sqrt(ivar) envelope)`` of the real
   spectrum times the true synthetic continuum, mean of ``N_NOISE`` draws: noise biases a
   high percentile upwards, so this is the like-for-like value), the envelope method on the
   noiseless synthetic spectrum, and the TRUE blanketing ``1 - mean(flux / Planck)`` (the
   generator multiplies its continuum-normalised flux by ``_planck(wave, teff)``; dividing by
   it recovers the normalised spectrum exactly). ``true - envelope(noiseless)`` is the
   envelope method's own bias; ``real / synthetic(noise-matched)`` is the realism ratio.
2. Vega H-alpha (``ondrejov-halpha``): the archive's continuum-normalised alpha Lyr spectrum
   against a synthetic Teff 9600 K, log g 3.95, [Fe/H] -0.5, vsini 22 km/s star divided by
   its known (Planck) continuum. Flux at H-alpha (6564.61 A vacuum) +-10 and +-20 A (median
   of the pixels within +-1 A of each point, mean of the blue and red side), equivalent
   width of 1 - F integrated over 6564.61 +- 40 A, core depth (1 - minimum of the 3-pixel
   running mean within +-3 A of the line).
3. APOGEE CO band heads (``apogee``): :func:`co_band_heads` finds, within +-10 A of each
   expected head of the 12CO second-overtone bands, the steepest descent of the flux (the
   head is the blue edge of the band) in a Gaussian-smoothed derivative (sigma 1 A) with
   sub-pixel refinement, in the real apStar giant and in noiseless synthetic giants; the
   heads implied by the generator's own CO term values are printed alongside.
4. ``pfs-mr``: the PFS samples hold no real stellar spectrum (the pfsGAObject example is an
   all-zero placeholder, pfsObject/pfsArm are simulated). As a substitute the Ca II triplet
   (8500.36, 8544.44, 8664.52 A vacuum) is measured on the real LAMOST G/K spectra with the
   best i-band S/N and on pfs-mr synthetic spectra degraded to LAMOST's resolution and
   interpolated onto the real pixels (the envelope computed over 7100-8850 A on both):
   equivalent width over +-10 A (NaN when > 20 % of the window is masked in the real
   spectrum), core depth, blanketing over 8400-8800 A; and on the native pfs-mr spectrum
   (R 5000).
5. A figure with one panel per preset (real and synthetic, normalised the same way) and
   zooms on two CO heads and on H-alpha.

Run: ``python benchmarks/synthetic_vs_real.py [--data ../shared/data] [--out JSON]
[--figure docs/figures/synthetic_vs_real.png]`` (about 10 s on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table
from scipy.ndimage import gaussian_filter1d, uniform_filter1d

import starlearn as sl
from starlearn.grid import C_KMS, PRESETS
from starlearn.noise import gaussian_noise, sigma_from_ivar
from starlearn.preprocess import DopplerShift
from starlearn.synth import render
from starlearn.synth.generator import _planck

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
DEFAULT_FIGURE = ROOT / "docs" / "figures" / "synthetic_vs_real.png"

# ---- definitions shared by real and synthetic spectra
ENV_WINDOW = 100.0          # A, full width of the running-percentile window
ENV_STEP = 25.0             # A, spacing of the window centres
ENV_PERCENTILE = 95.0
ENV_MIN_PIXELS = 10         # fewer good pixels in a window: no envelope node there
BANDS = ((3900.0, 4400.0), (4400.0, 5000.0), (5000.0, 5600.0), (5600.0, 6800.0))
BAND_MIN_GOOD = 0.5         # a band needs this fraction of good pixels
N_NOISE = 10                # noise draws for the noise-matched synthetic blanketing
MIN_SNR_SUMMARY = 10.0      # stars in the G/K summary: S/N (g band) at least this
FEH_SHIFT = -0.5            # the summary also gives the ratio for [Fe/H] shifted by this

HALPHA = 6564.61            # vacuum A
HALPHA_OFFSETS = (10.0, 20.0)
HALPHA_EW_HALF = 40.0
VEGA = {"teff": 9600.0, "logg": 3.95, "fe_h": -0.5, "vsini": 22.0}

CO_GUESSES = {"3-0": 15582.0, "4-1": 15780.0, "5-2": 15982.0, "6-3": 16189.0,
              "7-4": 16397.0, "8-5": 16610.0, "9-6": 16836.0}
REFERENCE_GIANT = {"teff": 4200.0, "logg": 1.8, "fe_h": 0.0}

CAT = (8500.36, 8544.44, 8664.52)      # Ca II triplet, vacuum A
CAT_HALF = 10.0
PFS_RANGE = (7100.0, 8850.0)
PFS_BAND = (8400.0, 8800.0)

# Dwarf (luminosity class V) Teff sequence of Pecaut & Mamajek (2013, ApJS 208, 9, Table 5;
# E. Mamajek's "A Modern Mean Dwarf Stellar Color and Effective Temperature Sequence"),
# keyed by spectral type F0 = 10, G0 = 20, K0 = 30, M0 = 40; intermediate subtypes are
# interpolated. log g: typical main-sequence gravities, log g = 4.44 + log(M / R^2) with
# the sequence's masses and radii, rounded (F0 ~4.2, Sun 4.44, late K ~4.65).
DWARF_SEQUENCE = {
    10: 7220, 11: 7020, 12: 6820, 13: 6750, 14: 6670, 15: 6550, 16: 6350, 17: 6280,
    18: 6180, 19: 6050, 20: 5930, 21: 5860, 22: 5770, 23: 5720, 24: 5680, 25: 5660,
    26: 5600, 27: 5550, 28: 5480, 29: 5380, 30: 5270, 31: 5170, 32: 5100, 33: 4830,
    34: 4600, 35: 4440, 36: 4300, 37: 4050, 40: 3850}
DWARF_LOGG = {10: 4.20, 15: 4.30, 20: 4.40, 22: 4.44, 25: 4.48, 30: 4.55, 33: 4.58,
              35: 4.62, 37: 4.65, 40: 4.68}


# ------------------------------------------------------------------------------ methods
def upper_envelope(wave: np.ndarray, flux: np.ndarray, good: np.ndarray, *,
                   window: float = ENV_WINDOW, step: float = ENV_STEP,
                   percentile: float = ENV_PERCENTILE) -> np.ndarray:
    """Robust upper envelope (pseudo-continuum) of one spectrum, on all of ``wave``.

    The ``percentile`` of the good pixels in windows of ``window`` A centred every ``step``
    A, linearly interpolated between the window centres (constant beyond the first and
    last; windows with fewer than ``ENV_MIN_PIXELS`` good pixels or a percentile <= 0, as at
    the noise-dominated blue end of faint LAMOST spectra, give no node); then the same on
    ``flux / envelope`` and the two multiplied (a high percentile of a sloped continuum is
    biased; on the flattened spectrum the slope is gone). All NaN if it cannot be defined.
    """
    wave = np.asarray(wave, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float64)
    good = np.asarray(good, dtype=bool) & np.isfinite(flux) & np.isfinite(wave)
    out = np.full(wave.shape, np.nan)
    w, f = wave[good], flux[good]
    if w.size < 2 * ENV_MIN_PIXELS:
        return out
    centres = np.arange(w[0], w[-1] + step, step)
    lo = np.searchsorted(w, centres - window / 2)
    hi = np.searchsorted(w, centres + window / 2)

    def one_pass(values: np.ndarray) -> np.ndarray:
        nodes = np.array([np.percentile(values[a:b], percentile) if b - a >= ENV_MIN_PIXELS
                          else np.nan for a, b in zip(lo, hi, strict=True)])
        ok = np.isfinite(nodes) & (nodes > 0)     # noise-dominated windows: no node
        if not ok.any():
            return np.full(w.shape, np.nan)
        return np.interp(w, centres[ok], nodes[ok])

    first = one_pass(f)
    if not np.all(np.isfinite(first)):
        return out
    env = first * one_pass(f / first)
    out[:] = np.interp(wave, w, env)
    return out


def band_blanketing(wave: np.ndarray, norm: np.ndarray, good: np.ndarray,
                    bands: tuple[tuple[float, float], ...] = BANDS) -> list[float]:
    """``1 - mean(norm)`` over the good pixels of each band (NaN if too few are good)."""
    out = []
    for lo, hi in bands:
        inband = (wave >= lo) & (wave < hi)
        use = inband & good & np.isfinite(norm)
        if inband.sum() == 0 or use.sum() < BAND_MIN_GOOD * inband.sum():
            out.append(float("nan"))
        else:
            out.append(float(1.0 - np.mean(norm[use])))
    return out


def co_band_heads(wave: np.ndarray, flux: np.ndarray, guesses: Any, *,
                  halfwidth: float = 10.0, smooth: float = 1.0,
                  min_depth: float = 0.03) -> list[dict[str, Any]]:
    """Positions of molecular band heads (sharp blue edges) near ``guesses``.

    Works on any spectrum (normalised or not; masked pixels as NaN). For each guess the
    pixels within ``halfwidth + 5 smooth + 5`` A are put on a uniform wavelength grid (their
    median step; masked pixels linearly interpolated over) and divided by their 90th
    percentile; the derivative of this flux smoothed by a Gaussian of ``smooth`` A (sigma)
    is computed and the head is its most negative value within ``guess +- halfwidth``
    (sub-pixel: vertex of the parabola through the minimum and its neighbours). ``depth``
    is the drop across the edge, ``median(F[x-4, x-0.5]) - median(F[x+0.5, x+4])`` divided
    by the first term; a head is ``detected`` when the minimum is not on the window's edge,
    the depth is at least ``min_depth`` and at least 80 % of the pixels within +-2 A are
    unmasked.

    Parameters
    ----------
    wave, flux : 1-D arrays (A, any flux unit)
    guesses : sequence of expected head wavelengths, or a mapping name -> wavelength.

    Returns
    -------
    One dict per guess: ``name``, ``guess``, ``wave`` (NaN if not measurable), ``slope``
    (per A, in units of the local 90th percentile), ``depth``, ``detected``, ``note``.
    """
    wave = np.asarray(wave, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float64)
    items = (list(guesses.items()) if isinstance(guesses, dict)
             else [(f"{g:.0f}", g) for g in guesses])
    out = []
    for name, guess in items:
        res: dict[str, Any] = {"name": name, "guess": float(guess), "wave": float("nan"),
                               "slope": float("nan"), "depth": float("nan"),
                               "detected": False, "note": ""}
        pad = halfwidth + 5.0 * smooth + 5.0
        sel = (wave > guess - pad) & (wave < guess + pad)
        w, f = wave[sel], flux[sel]
        ok = np.isfinite(f)
        if ok.sum() < max(10, 0.7 * sel.sum()):
            res["note"] = "masked or outside the spectrum"
            out.append(res)
            continue
        dw = float(np.median(np.diff(w)))
        u = np.arange(w[ok][0], w[ok][-1] + 0.5 * dw, dw)
        fu = np.interp(u, w[ok], f[ok])
        fu = fu / np.percentile(fu, 90)
        d = gaussian_filter1d(fu, smooth / dw, order=1, mode="nearest") / dw
        idx = np.nonzero(np.abs(u - guess) <= halfwidth)[0]
        if idx.size < 3:
            res["note"] = "window outside the spectrum"
            out.append(res)
            continue
        i = int(idx[np.argmin(d[idx])])
        x = u[i]
        if idx[0] < i < idx[-1]:
            a, b, c = d[i - 1], d[i], d[i + 1]
            den = a - 2 * b + c
            if den > 0:
                x = u[i] + 0.5 * dw * (a - c) / den
        pre = np.median(fu[(u >= x - 4.0) & (u < x - 0.5)])
        post = np.median(fu[(u > x + 0.5) & (u <= x + 4.0)])
        near = np.abs(w - x) <= 2.0
        res.update(wave=float(x), slope=float(d[i]), depth=float((pre - post) / pre))
        notes = []
        if i in (idx[0], idx[-1]):
            notes.append("at window edge")
        if res["depth"] < min_depth:
            notes.append("shallow")
        if near.sum() and ok[near].mean() < 0.8:
            notes.append("masked pixels nearby")
        res["detected"] = not notes
        res["note"] = ", ".join(notes)
        out.append(res)
    return out


def _median_near(wave: np.ndarray, flux: np.ndarray, x: float, half: float = 1.0) -> float:
    sel = (np.abs(wave - x) <= half) & np.isfinite(flux)
    return float(np.median(flux[sel])) if sel.any() else float("nan")


def _core(wave: np.ndarray, norm: np.ndarray, centre: float, half: float = 3.0
          ) -> tuple[float, float]:
    """Core depth (1 - minimum of the 3-pixel running mean within +-half A) and core
    wavelength (mean wavelength of the pixels whose running mean is within 0.01 of that
    minimum: the middle of a flat-bottomed core)."""
    sel = np.nonzero((np.abs(wave - centre) <= half) & np.isfinite(norm))[0]
    if sel.size < 3:
        return float("nan"), float("nan")
    sm = uniform_filter1d(norm[sel], 3, mode="nearest")
    low = sm <= sm.min() + 0.01
    return float(1.0 - sm.min()), float(np.mean(wave[sel][low]))


def _half_depth_width(wave: np.ndarray, norm: np.ndarray, core: float, depth: float
                      ) -> float:
    """Full width (A) where the flux first rises back to 1 - depth / 2 on both sides of the
    core wavelength (linear interpolation between pixels)."""
    level = 1.0 - 0.5 * depth
    ok = np.isfinite(norm)
    w, f = wave[ok], norm[ok]
    i0 = int(np.searchsorted(w, core))
    edges = []
    for step in (-1, 1):
        i = i0
        while 0 < i < w.size - 1 and f[i] < level:
            i += step
        if not 0 < i < w.size - 1:
            return float("nan")
        j = i - step                                   # last pixel below the level
        edges.append(w[j] + (level - f[j]) * (w[i] - w[j]) / (f[i] - f[j]))
    return float(edges[1] - edges[0])


def _ew(wave: np.ndarray, norm: np.ndarray, centre: float, half: float) -> float:
    """Integral of 1 - norm over centre +- half (NaN if > 20 % of its pixels are masked)."""
    inwin = np.abs(wave - centre) <= half
    sel = inwin & np.isfinite(norm)
    if sel.sum() < 3 or sel.sum() < 0.8 * inwin.sum():
        return float("nan")
    return float(np.trapezoid(1.0 - norm[sel], wave[sel]))


def halpha_metrics(wave: np.ndarray, norm: np.ndarray) -> dict[str, float]:
    """H-alpha flux at +-10/+-20 A (mean of both sides), EW over +-40 A, core depth."""
    out: dict[str, float] = {}
    for off in HALPHA_OFFSETS:
        blue = _median_near(wave, norm, HALPHA - off)
        red = _median_near(wave, norm, HALPHA + off)
        out[f"f_pm{off:.0f}"] = 0.5 * (blue + red)
        out[f"f_m{off:.0f}"], out[f"f_p{off:.0f}"] = blue, red
    out["ew_pm40"] = _ew(wave, norm, HALPHA, HALPHA_EW_HALF)
    out["core_depth"], out["core_wave"] = _core(wave, norm, HALPHA)
    out["half_depth_width"] = _half_depth_width(wave, norm, out["core_wave"],
                                                out["core_depth"])
    return out


# ------------------------------------------------------------------------------ helpers
def parse_type(subclass: str) -> tuple[str, float, str] | None:
    """('G', 5.0, 'V') from 'G5V'; None if not an O-M spectral type."""
    m = re.match(r"^\s*([OBAFGKM])(\d(?:\.\d+)?)?\s*([IV]*)", str(subclass))
    if not m:
        return None
    return m.group(1), float(m.group(2) or 0.0), m.group(3)


def dwarf_labels(letter: str, number: float) -> tuple[float, float] | None:
    """(Teff, log g) of a dwarf of type letter+number from the Pecaut & Mamajek sequence."""
    base = {"F": 10, "G": 20, "K": 30, "M": 40}.get(letter)
    if base is None:
        return None
    x = base + number
    keys = np.array(sorted(DWARF_SEQUENCE))
    if not keys[0] <= x <= keys[-1]:
        return None
    teff = float(np.interp(x, keys, [DWARF_SEQUENCE[k] for k in keys]))
    gk = np.array(sorted(DWARF_LOGG))
    logg = float(np.interp(x, gk, [DWARF_LOGG[k] for k in gk]))
    return teff, logg


def sdss_photometric_teff(header: fits.Header) -> tuple[float, float] | None:
    """(Teff, dereddened g-r) from an spSpec header's fibre ugriz (MAG) and SFD_EBV.

    Teff from Ivezic et al. (2008, ApJ 684, 287, eq. 3), extinction A_g / A_r = 3.793 /
    2.751 E(B-V) (Schlegel et al. 1998, Table 6).
    """
    try:
        mags = [float(x) for x in str(header["MAG"]).split()]
        ebv = float(header.get("SFD_EBV", 0.0))
    except (KeyError, ValueError):
        return None
    if len(mags) != 5:
        return None
    gr = mags[1] - mags[2] - (3.793 - 2.751) * ebv
    if not -0.3 < gr < 1.3:
        return None
    logt = 3.882 - 0.316 * gr + 0.0488 * gr**2 + 0.0283 * gr**3
    return float(10.0**logt), float(gr)


def _read(path: Path) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sl.read(path)


def _good(s: Any, i: int = 0) -> np.ndarray:
    return ~np.asarray(s.mask[i]) & np.isfinite(s.flux[i]) & (np.asarray(s.ivar[i]) > 0)


def _row_wave(s: Any, i: int = 0) -> np.ndarray:
    w = np.asarray(s.wave, dtype=np.float64)
    return w if w.ndim == 1 else w[i]


def _fmt(x: float, spec: str = ".3f") -> str:
    return "nan" if x is None or not np.isfinite(x) else format(x, spec)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return [_jsonable(v) for v in x.tolist()]
    if isinstance(x, np.bool_ | bool):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        return float(x) if np.isfinite(x) else None
    if isinstance(x, np.str_):
        return str(x)
    return x


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(c.rjust(w) if i else c.ljust(w)
                                for i, (c, w) in enumerate(zip(r, widths, strict=True)))
              + " |")


def _synthetic(survey: str, labels: list[dict[str, float]]) -> tuple[Any, np.ndarray]:
    """Noiseless synthetic spectra at rest and their true continuum-normalised flux."""
    stars = Table({k: [float(d[k]) for d in labels] for k in labels[0]})
    stars["id"] = [f"{survey}-{i:03d}" for i in range(len(labels))]
    s = render(survey, stars, seed=0, snr=None)
    teff = np.asarray(stars["teff"], dtype=np.float64)
    cont = (np.ones(s.flux.shape) if survey in ("apogee", "pfs-mr")
            else _planck(np.asarray(s.wave), teff))
    return s, np.asarray(s.flux, dtype=np.float64) / cont


# ------------------------------------------------------------------------------ section 1
def collect_optical(fs: Path) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Real F/G/K star spectra of LAMOST and SDSS with assumed labels; skipped files."""
    stars, skipped = [], []
    paths = [("lamost", p) for sub in ("lamost", "lamost-lrs-dr1", "lamost-lrs-dr8",
                                       "lamost-lrs-gz")
             for p in sorted((fs / sub).glob("*.fits*"))]
    paths += [("segue", p) for sub in ("sdss-spec", "sdss-spec-dr9", "sdss-spspec-dr7")
              for p in sorted((fs / sub).glob("*.fit*"))]
    for survey, path in paths:
        name = f"{path.parent.name}/{path.name}"
        try:
            s = _read(path)
        except Exception as err:
            skipped.append((name, f"unreadable: {err}"))
            continue
        meta = s.meta
        cls = str(meta["class"][0]) if "class" in meta.colnames else ""
        sub = str(meta["subclass"][0]) if "subclass" in meta.colnames else ""
        objtype = str(meta["objtype"][0]) if "objtype" in meta.colnames else ""
        def num(col: str, meta: Table = meta) -> float:
            return float(meta[col][0]) if col in meta.colnames else float("nan")

        rv = num("rv")
        snr = num("sn_g") if np.isfinite(num("sn_g")) else num("snr")
        star: dict[str, Any] = {"file": name, "path": str(path), "survey": survey,
                                "class": cls, "subclass": sub, "rv": rv, "snr_g": snr,
                                "snr_r": num("sn_r"), "snr_i": num("sn_i"), "flags": []}
        if cls.upper() != "STAR":
            skipped.append((name, f"CLASS {cls or '?'} {sub}".strip() + " (not a star)"))
            continue
        if not np.isfinite(rv) or abs(rv) > 1000:
            skipped.append((name, f"no usable rv ({rv})"))
            continue
        spt = parse_type(sub) if sub else None
        fe_h, fe_src = 0.0, "assumed 0 (no [Fe/H] in the header)"
        if spt is not None:
            letter, number, lum = spt
            if letter not in "FGK":
                skipped.append((name, f"SUBCLASS {sub}: not F/G/K"))
                continue
            labels = dwarf_labels(letter, number)
            if labels is None:
                skipped.append((name, f"SUBCLASS {sub}: outside the dwarf table"))
                continue
            teff, logg = labels
            if lum and lum != "V":
                star["flags"].append(f"luminosity class {lum}: not a dwarf")
            elif not lum:
                star["flags"].append("no luminosity class: dwarf assumed")
            star["type"] = f"{letter}{number:g}"
            star["teff_source"] = "Pecaut & Mamajek dwarf sequence"
        elif objtype == "SPECTROPHOTO_STD":
            phot = sdss_photometric_teff(fits.getheader(path, 0))
            if phot is None:
                skipped.append((name, "SPECTROPHOTO_STD without usable photometry"))
                continue
            teff, gr = phot
            # SDSS spectrophotometric standards are colour-selected F subdwarfs of the
            # halo (BD+17 4708-like): near the turn-off and metal-poor
            logg, fe_h = 4.1, -1.5
            fe_src = "assumed -1.5 (halo F subdwarf standard)"
            letter = "F" if teff >= 5980 else "G"
            star["type"] = f"{letter}? (std)"
            star["teff_source"] = f"Ivezic+2008 from dereddened g-r = {gr:.3f}"
            star["flags"].append("SDSS spectrophotometric standard; Teff from g-r")
        else:
            skipped.append((name, f"STAR without a spectral type ({sub or objtype})"))
            continue
        if snr < MIN_SNR_SUMMARY:
            star["flags"].append(f"low S/N ({snr:.1f})")
        star.update(teff=teff, logg=logg, fe_h=fe_h, fe_h_source=fe_src, letter=letter,
                    spectra=s)
        stars.append(star)
    return stars, skipped


def measure_optical(stars: list[dict[str, Any]]) -> None:
    """Blanketing of every real star and of its synthetic twin (results into the dicts)."""
    for survey in ("lamost", "segue"):
        group = [s for s in stars if s["survey"] == survey]
        if not group:
            continue
        labels = [{"teff": s["teff"], "logg": s["logg"], "fe_h": s["fe_h"]} for s in group]
        shifted = [{**d, "fe_h": max(d["fe_h"] + FEH_SHIFT, -2.5)} for d in labels]
        syn, syn_norm = _synthetic(survey, labels)
        syn2, syn2_norm = _synthetic(survey, shifted)
        sw = np.asarray(syn.wave, dtype=np.float64)
        for k, star in enumerate(group):
            real = DopplerShift().transform(star["spectra"])
            w = _row_wave(real)
            f = np.asarray(real.flux[0], dtype=np.float64)
            good = _good(real)
            env = upper_envelope(w, f, good)
            star["rest_wave"], star["rest_flux"], star["good"], star["env"] = w, f, good, env
            star["B_real"] = band_blanketing(w, f / env, good)
            rel = np.where(good, sigma_from_ivar(real.ivar[0]) / env, 0.0)
            rng = np.random.default_rng(1000 + k)
            for tag, s_flux, s_norm in (("", syn.flux[k], syn_norm[k]),
                                        ("_feh_shift", syn2.flux[k], syn2_norm[k])):
                sf = np.interp(w, sw, np.asarray(s_flux, dtype=np.float64),
                               left=np.nan, right=np.nan)
                sn = np.interp(w, sw, s_norm, left=np.nan, right=np.nan)
                sgood = good & np.isfinite(sf)
                cont = sf / sn                                 # true synthetic continuum
                star[f"B_syn_true{tag}"] = band_blanketing(w, sn, sgood)
                senv = upper_envelope(w, sf, sgood)
                star[f"B_syn_env_noiseless{tag}"] = band_blanketing(w, sf / senv, sgood)
                draws = []
                for _ in range(N_NOISE):
                    noisy = sf + gaussian_noise(rel * cont, rng)
                    draws.append(band_blanketing(w, noisy / upper_envelope(w, noisy, sgood),
                                                 sgood))
                star[f"B_syn_env_noise{tag}"] = list(np.mean(draws, axis=0))
                if not tag:
                    star["syn_flux"], star["syn_env"] = sf, senv
            star["ratio"] = [r / s if s else float("nan")
                             for r, s in zip(star["B_real"], star["B_syn_env_noise"],
                                             strict=True)]
            star["ratio_feh_shift"] = [
                r / s if s else float("nan")
                for r, s in zip(star["B_real"], star["B_syn_env_noise_feh_shift"], strict=True)]


def print_optical(stars: list[dict[str, Any]], skipped: list[tuple[str, str]]) -> dict:
    print("\n== 1. Optical line blanketing: real LAMOST / SDSS spectra vs 'lamost' / 'segue' "
          "synthetic ==")
    print(f"B = 1 - mean(flux / envelope) per band; envelope = {ENV_PERCENTILE:g}th "
          f"percentile in {ENV_WINDOW:g} A windows every {ENV_STEP:g} A, two passes; rest "
          "frame, vacuum. syn env+noise: the real star's per-pixel noise added to the "
          f"synthetic spectrum (mean of {N_NOISE} draws); syn true: 1 - mean(flux / known "
          "Planck continuum). ratio = real / (syn env+noise).")
    print("Skipped files:")
    for name, why in skipped:
        print(f"  {name}: {why}")
    header = ["file", "preset", "SpT", "Teff", "logg", "[Fe/H]", "S/N g", "band (A)",
              "B_real", "syn env+noise", "syn env noiseless", "syn true", "real/syn"]
    rows = []
    for s in stars:
        for j, (lo, hi) in enumerate(BANDS):
            first = j == 0
            rows.append([s["file"] if first else "", s["survey"] if first else "",
                         s["type"] if first else "", f"{s['teff']:.0f}" if first else "",
                         f"{s['logg']:.2f}" if first else "",
                         f"{s['fe_h']:+.1f}" if first else "",
                         f"{s['snr_g']:.1f}" if first else "", f"{lo:.0f}-{hi:.0f}",
                         _fmt(s["B_real"][j]), _fmt(s["B_syn_env_noise"][j]),
                         _fmt(s["B_syn_env_noiseless"][j]), _fmt(s["B_syn_true"][j]),
                         _fmt(s["ratio"][j], ".2f")])
    _table(header, rows)
    print("Flags:")
    for s in stars:
        print(f"  {s['file']}: {s['type']}, Teff from {s['teff_source']}; [Fe/H] "
              f"{s['fe_h_source']}; " + "; ".join(s["flags"]))
    core = [s for s in stars if s["letter"] in "GK" and s["snr_g"] >= MIN_SNR_SUMMARY
            and not any("not a dwarf" in f for f in s["flags"])]
    print(f"\nSummary over the {len(core)} G/K stars with S/N g >= {MIN_SNR_SUMMARY:g} "
          "(medians):")
    header = ["band (A)", "B_real", "syn env+noise", "syn env noiseless", "syn true",
              "envelope bias (noiseless env - true)", "real/syn",
              f"real/syn at [Fe/H]{FEH_SHIFT:+.1f}"]
    rows, summary = [], {}
    for j, (lo, hi) in enumerate(BANDS):
        def med(key: str, j: int = j) -> float:
            v = np.array([s[key][j] for s in core], dtype=float)
            v = v[np.isfinite(v)]
            return float(np.median(v)) if v.size else float("nan")
        vals = {k: med(k) for k in ("B_real", "B_syn_env_noise", "B_syn_env_noiseless",
                                    "B_syn_true", "ratio", "ratio_feh_shift")}
        vals["envelope_bias"] = vals["B_syn_env_noiseless"] - vals["B_syn_true"]
        summary[f"{lo:.0f}-{hi:.0f}"] = vals
        rows.append([f"{lo:.0f}-{hi:.0f}", _fmt(vals["B_real"]), _fmt(vals["B_syn_env_noise"]),
                     _fmt(vals["B_syn_env_noiseless"]), _fmt(vals["B_syn_true"]),
                     _fmt(vals["envelope_bias"], "+.3f"), _fmt(vals["ratio"], ".2f"),
                     _fmt(vals["ratio_feh_shift"], ".2f")])
    _table(header, rows)
    return {"stars_in_summary": [s["file"] for s in core], "bands": summary}


# ------------------------------------------------------------------------------ section 2
def vega(fs: Path) -> dict[str, Any] | None:
    path = fs / "ondrejov" / "alpha-lyr-absorption.fits"
    print("\n== 2. Vega H-alpha: ondrejov/alpha-lyr-absorption.fits vs 'ondrejov-halpha' "
          "synthetic ==")
    if not path.exists():
        print(f"  {path} not found: skipped")
        return None
    real = _read(path)
    w = _row_wave(real)
    f = np.where(_good(real), np.asarray(real.flux[0], dtype=np.float64), np.nan)
    syn, norm = _synthetic("ondrejov-halpha", [VEGA])
    sw = np.asarray(syn.wave, dtype=np.float64)
    m_real = halpha_metrics(w, f)
    m_syn = halpha_metrics(sw, norm[0])
    print(f"real: {real.meta['object'][0]}, archive continuum-normalised, air -> vacuum, "
          "observer's frame (no rv in the file); synthetic: Teff {teff:.0f} K, log g "
          "{logg}, [Fe/H] {fe_h}, vsini {vsini:.0f} km/s, noiseless, divided by its Planck "
          "continuum. F(+-x): median within +-1 A of 6564.61 -/+ x, mean of the two sides; "
          "EW: integral of 1 - F over 6564.61 +- 40 A (6524.61-6604.61); core depth: "
          "1 - min of the 3-pixel running mean within +-3 A; core wavelength: middle of the "
          "pixels within 0.01 of that minimum.".format(**VEGA))
    rows = []
    for key, label, spec in (("f_pm10", "F(+-10 A)", ".3f"), ("f_m10", "  F(-10 A)", ".3f"),
                             ("f_p10", "  F(+10 A)", ".3f"), ("f_pm20", "F(+-20 A)", ".3f"),
                             ("f_m20", "  F(-20 A)", ".3f"), ("f_p20", "  F(+20 A)", ".3f"),
                             ("ew_pm40", "EW +-40 A (A)", ".2f"),
                             ("core_depth", "core depth", ".3f"),
                             ("half_depth_width", "full width at half depth (A)", ".2f"),
                             ("core_wave", "core wavelength (A, vac)", ".2f")):
        a, b = m_real[key], m_syn[key]
        rows.append([label, _fmt(a, spec), _fmt(b, spec), _fmt(b - a, "+" + spec),
                     _fmt(b / a, ".2f") if key != "core_wave" else ""])
    _table(["quantity", "real Vega", "synthetic", "syn - real", "syn / real"], rows)
    return {"real": m_real, "synthetic": m_syn, "synthetic_labels": VEGA,
            "plot": (w, f, sw, norm[0])}


# ------------------------------------------------------------------------------ section 3
def line_list_heads() -> dict[str, float]:
    """Band heads of the generator's own CO lines (shortest wavelength of each band)."""
    try:
        from starlearn.synth import linelist as ll

        co = ll._STATES["CO X"]
        out = {}
        for name in CO_GUESSES:
            vu, vl = (int(x) for x in name.split("-"))
            nu, _, _ = ll._band_lines(co, co, vu, vl, 95, False, 0.0)
            out[name] = float(1e8 / nu.max())
        return out
    except Exception:                     # internals changed: the column stays empty
        return {}


def apogee(fs: Path) -> dict[str, Any] | None:
    print("\n== 3. APOGEE CO second-overtone band heads: real apStar vs 'apogee' synthetic ==")
    files = sorted((fs / "apogee").glob("apStar*.fits"))
    if not files:
        print("  no apStar files: skipped")
        return None
    giants = []
    for path in files:
        h = fits.getheader(path, 0)
        teff, logg, feh = (float(h.get(k, np.nan)) for k in ("RV_TEFF", "RV_LOGG", "RV_FEH"))
        desc = (f"apogee/{path.name} (star {h.get('OBJID', '?')}, field {h.get('FIELD', '?')}"
                f", S/N {float(h.get('SNR', np.nan)):.0f}, {h.get('NVISITS', '?')} visits); "
                f"header RV_TEFF {teff:.0f} K, RV_LOGG {logg:.2f}, RV_FEH {feh:+.2f} (Doppler "
                "template fit, no ASPCAP labels in apStar)")
        if np.isfinite(logg) and logg < 3.5:
            giants.append((path, desc, teff, logg, feh))
            print("  giant: " + desc)
        else:
            print("  not used (dwarf, CO heads weak): " + desc)
    if not giants:
        return None
    path, desc, teff, logg, feh = giants[0]
    real = _read(path)
    w = _row_wave(real)
    good = _good(real)
    f = np.asarray(real.flux[0], dtype=np.float64)
    env = upper_envelope(w, f, good)
    fr = np.where(good, f / env, np.nan)
    matched = {"teff": float(np.clip(teff, 3000, 8000)), "logg": float(np.clip(logg, 0, 5)),
               "fe_h": float(np.clip(feh, -2.5, 0.5)) if np.isfinite(feh) else 0.0}
    syn, _ = _synthetic("apogee", [REFERENCE_GIANT, matched])
    sw = np.asarray(syn.wave, dtype=np.float64)
    sgood = ~np.asarray(syn.mask[0])
    syn_n = []
    for i in range(2):
        sf = np.asarray(syn.flux[i], dtype=np.float64)
        syn_n.append(np.where(sgood, sf / upper_envelope(sw, sf, sgood), np.nan))
    h_real = co_band_heads(w, fr, CO_GUESSES)
    h_ref = co_band_heads(sw, syn_n[0], CO_GUESSES)
    h_mat = co_band_heads(sw, syn_n[1], CO_GUESSES)
    h_ll = line_list_heads()
    print("Head = steepest descent of the 1-A-smoothed derivative within +-10 A of the "
          "guess (flux normalised by the envelope; same function on all spectra). "
          f"Synthetic A: Teff {REFERENCE_GIANT['teff']:.0f}, log g {REFERENCE_GIANT['logg']}, "
          f"[Fe/H] {REFERENCE_GIANT['fe_h']:+.1f}; synthetic B (header labels): Teff "
          f"{matched['teff']:.0f}, log g {matched['logg']:.2f}, [Fe/H] {matched['fe_h']:+.2f};"
          " both noiseless. '*' = not detected (see note).")
    rows = []
    for r, a, b in zip(h_real, h_ref, h_mat, strict=True):
        def val(x: dict) -> str:
            return _fmt(x["wave"], ".2f") + ("" if x["detected"] else "*")
        rows.append([r["name"], f"{r['guess']:.0f}", _fmt(h_ll.get(r["name"], np.nan), ".2f"),
                     val(r), _fmt(r["depth"], ".2f"), val(a), _fmt(a["wave"] - r["wave"], "+.2f"),
                     val(b), _fmt(b["wave"] - r["wave"], "+.2f"),
                     "; ".join(x for x in (r["note"] and "real: " + r["note"],
                                           a["note"] and "A: " + a["note"],
                                           b["note"] and "B: " + b["note"]) if x)])
    _table(["head", "guess", "line-list head", "real (A)", "real depth", "syn A (A)",
            "A - real", "syn B (A)", "B - real", "note"], rows)
    d_a = np.array([a["wave"] - r["wave"] for r, a in zip(h_real, h_ref, strict=True)
                    if r["detected"] and a["detected"]])
    d_b = np.array([b["wave"] - r["wave"] for r, b in zip(h_real, h_mat, strict=True)
                    if r["detected"] and b["detected"]])
    for tag, d in (("A", d_a), ("B", d_b)):
        if d.size:
            print(f"synthetic {tag} - real over {d.size} heads detected in both: mean "
                  f"{d.mean():+.2f} A, rms {np.sqrt(np.mean(d**2)):.2f} A, max |d| "
                  f"{np.abs(d).max():.2f} A")
    return {"real_file": desc, "real": h_real, "synthetic_reference": h_ref,
            "synthetic_matched": h_mat, "line_list_heads": h_ll,
            "reference_labels": REFERENCE_GIANT, "matched_labels": matched,
            "plot": (w, fr, sw, syn_n[0], path.name, h_real, h_ref)}


# ------------------------------------------------------------------------------ section 4
def _degrade(survey_from: str, survey_to: str, flux: np.ndarray) -> np.ndarray:
    """Gaussian-convolve a spectrum on survey_from's log-uniform grid to survey_to's R."""
    g_from, g_to = PRESETS[survey_from], PRESETS[survey_to]
    fwhm2 = (C_KMS / g_to.resolution) ** 2 - (C_KMS / g_from.resolution) ** 2
    sigma_px = np.sqrt(max(fwhm2, 0.0)) / (2 * np.sqrt(2 * np.log(2))) / g_from.velocity_step
    return gaussian_filter1d(flux, sigma_px, mode="nearest")


def _cat(w: np.ndarray, norm: np.ndarray, good: np.ndarray) -> dict[str, Any]:
    return {"ew": [_ew(w, np.where(good, norm, np.nan), c, CAT_HALF) for c in CAT],
            "depth": [_core(w, np.where(good, norm, np.nan), c)[0] for c in CAT],
            "B": band_blanketing(w, norm, good, (PFS_BAND,))[0]}


def pfs(fs: Path, stars: list[dict[str, Any]]) -> dict[str, Any]:
    print("\n== 4. 'pfs-mr' (7100-8850 A): Ca II triplet ==")
    notes = []
    ga = fs / "pfs-gaobject" / "pfsGAObject.fits"
    if ga.exists():
        try:
            _read(ga)
            notes.append(f"{ga.name}: readable (not expected)")
        except Exception as err:
            reason = getattr(err, "reason", str(err))
            with fits.open(ga) as h:
                stp = h["STPARAM"].data if "STPARAM" in h else None
                labels = ({str(r["param"]).strip(): float(r["value"]) for r in stp}
                          if stp is not None else {})
            notes.append(f"pfs-gaobject/{ga.name}: {reason}; STPARAM {labels}")
    else:
        notes.append("pfs-gaobject/pfsGAObject.fits: absent")
    for sub in ("pfs-object", "pfs-arm"):
        for p in sorted((fs / sub).glob("*.fits")):
            what = ("fibre configuration table, no spectrum" if p.name.startswith("pfsConfig")
                    else "simulated datamodel example (2016), not a real star")
            notes.append(f"{sub}/{p.name}: {what}")
    print("No real PFS spectrum is suitable:")
    for n in notes:
        print("  " + n)
    cand = [s for s in stars if s["survey"] == "lamost" and s["letter"] in "GK"
            and np.isfinite(s["snr_i"]) and s["snr_i"] >= 20]
    cand = sorted(cand, key=lambda s: -s["snr_i"])[:6]
    out: dict[str, Any] = {"real_pfs": notes, "stars": []}
    if not cand:
        print("  no LAMOST G/K star with S/N i >= 20 for the substitute comparison")
        return out
    print("Substitute: real LAMOST G/K spectra (S/N i >= 20, best 6) vs 'pfs-mr' synthetic "
          "of the same labels, (a) degraded to LAMOST's R = "
          f"{PRESETS['lamost'].resolution:.0f} and interpolated onto the real rest-frame "
          "pixels, (b) native R = "
          f"{PRESETS['pfs-mr'].resolution:.0f}. All normalised by the envelope computed over "
          f"{PFS_RANGE[0]:.0f}-{PFS_RANGE[1]:.0f} A. EW over +-{CAT_HALF:g} A of 8500.36, "
          f"8544.44, 8664.52 A; depth = 1 - min of 3-px mean within +-3 A; B over "
          f"{PFS_BAND[0]:.0f}-{PFS_BAND[1]:.0f} A. Telluric lines are not corrected in LAMOST.")
    labels = [{"teff": s["teff"], "logg": s["logg"], "fe_h": s["fe_h"]} for s in cand]
    syn, _ = _synthetic("pfs-mr", labels)
    sw = np.asarray(syn.wave, dtype=np.float64)
    rows = []
    for k, s in enumerate(cand):
        w, f, good = s["rest_wave"], s["rest_flux"], s["good"]
        inr = (w >= PFS_RANGE[0]) & (w <= PFS_RANGE[1])
        rg = good & inr
        renv = upper_envelope(w, f, rg)
        m_real = _cat(w, f / renv, rg)
        native = np.asarray(syn.flux[k], dtype=np.float64)
        low = np.interp(w, sw, _degrade("pfs-mr", "lamost", native), left=np.nan,
                        right=np.nan)
        lg = rg & np.isfinite(low)
        lenv = upper_envelope(w, low, lg)
        m_low = _cat(w, low / lenv, lg)
        ng = np.ones(sw.size, dtype=bool)
        nenv = upper_envelope(sw, native, ng)
        m_nat = _cat(sw, native / nenv, ng)
        s["pfs_plot"] = (w, np.where(rg, f / renv, np.nan), np.where(lg, low / lenv, np.nan),
                         sw, native / nenv)
        out["stars"].append({"file": s["file"], "type": s["type"], "teff": s["teff"],
                             "logg": s["logg"], "fe_h": s["fe_h"], "snr_i": s["snr_i"],
                             "real": m_real, "synthetic_R1800": m_low,
                             "synthetic_native": m_nat})
        for tag, m in (("real", m_real), ("syn R1800", m_low), ("syn native", m_nat)):
            first = tag == "real"
            rows.append([s["file"] if first else "", s["type"] if first else "",
                         f"{s['snr_i']:.0f}" if first else "", tag,
                         *[_fmt(x, ".2f") for x in m["ew"]],
                         *[_fmt(x, ".3f") for x in m["depth"]], _fmt(m["B"])])
    _table(["file", "SpT", "S/N i", "spectrum", "EW 8500", "EW 8544", "EW 8665",
            "depth 8500", "depth 8544", "depth 8665", f"B {PFS_BAND[0]:.0f}-{PFS_BAND[1]:.0f}"],
           rows)
    ratio = np.array([[r / s_ for r, s_ in zip(x["real"]["ew"], x["synthetic_R1800"]["ew"],
                                               strict=True)] for x in out["stars"]])
    med = np.nanmedian(ratio, axis=0)
    out["median_ew_ratio_real_over_syn_R1800"] = med
    print("median EW ratio real / synthetic (R1800): "
          + ", ".join(f"{c:.0f}: {m:.2f}" for c, m in zip(CAT, med, strict=True)))
    return out


# ------------------------------------------------------------------------------ figure
def figure(path: Path, optical: list[dict[str, Any]], ap: dict | None, vg: dict | None
           ) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(16, 20), dpi=100)
    gs = fig.add_gridspec(6, 2, hspace=0.45, wspace=0.15)
    kw_r = {"color": "k", "lw": 0.7}
    kw_s = {"color": "tab:red", "lw": 0.7, "alpha": 0.85}

    def finish(ax: Any, title: str, xlim: tuple[float, float] | None = None,
               xlabel: str = "vacuum wavelength, rest frame (A)") -> None:
        ax.set_title(title, fontsize=11, loc="left")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("normalised flux")
        if xlim:
            ax.set_xlim(*xlim)
        ax.legend(fontsize=9, loc="lower right")

    if ap is not None:
        w, fr, sw, sn, name, h_real, h_ref = ap["plot"]
        lab = ap["reference_labels"]
        slab = f"synthetic 'apogee': Teff {lab['teff']:.0f}, log g {lab['logg']}, [Fe/H] " \
               f"{lab['fe_h']:+.1f}"
        ax = fig.add_subplot(gs[0, :])
        ax.plot(w, fr, label=f"real {name}", **kw_r)
        ax.plot(sw, sn, label=slab, **kw_s)
        ax.set_ylim(0.3, 1.15)
        finish(ax, "apogee (both divided by the same 95th-percentile envelope)")
        for col, head in ((0, "3-0"), (1, "6-3")):
            ax = fig.add_subplot(gs[1, col])
            g = CO_GUESSES[head]
            ax.plot(w, fr, label="real", **kw_r)
            ax.plot(sw, sn, label="synthetic", **kw_s)
            for hh, c in ((h_real, "k"), (h_ref, "tab:red")):
                x = next(d["wave"] for d in hh if d["name"] == head)
                if np.isfinite(x):
                    ax.axvline(x, color=c, ls="--", lw=0.8)
            ax.set_ylim(0.3, 1.15)
            finish(ax, f"apogee: CO {head} band head (dashed: measured heads)",
                   (g - 20, g + 40))
    lamost = [s for s in optical if s["survey"] == "lamost" and s["letter"] in "GK"]
    segue = [s for s in optical if s["survey"] == "segue"]
    for row, group, preset in ((2, lamost, "lamost"), (3, segue, "segue")):
        ax = fig.add_subplot(gs[row, :])
        if not group:
            ax.text(0.5, 0.5, f"no real star for '{preset}'", ha="center",
                    transform=ax.transAxes)
            continue
        s = max(group, key=lambda x: x["snr_g"])
        w = s["rest_wave"]
        ax.plot(w, np.where(s["good"], s["rest_flux"] / s["env"], np.nan),
                label=f"real {s['file']} ({s['subclass'] or s['type']}, S/N g "
                      f"{s['snr_g']:.0f})", **kw_r)
        ax.plot(w, s["syn_flux"] / s["syn_env"],
                label=f"synthetic '{preset}': Teff {s['teff']:.0f}, log g {s['logg']:.2f}, "
                      f"[Fe/H] {s['fe_h']:+.1f}", **kw_s)
        ax.set_ylim(0.0, 1.35)
        finish(ax, f"{preset} (both divided by the same 95th-percentile envelope)",
               (3800, 9000))
    ax = fig.add_subplot(gs[4, :])
    pf = [s for s in optical if "pfs_plot" in s]
    if pf:
        s = max(pf, key=lambda x: x["snr_i"])
        w, rn, ln, sw, nn = s["pfs_plot"]
        ax.plot(w, rn, label=f"real LAMOST {s['file']} ({s['subclass']}) - no real PFS "
                              "spectrum available", **kw_r)
        ax.plot(w, ln, label=f"synthetic 'pfs-mr' degraded to R 1800: Teff {s['teff']:.0f}, "
                             f"log g {s['logg']:.2f}, [Fe/H] {s['fe_h']:+.1f}", **kw_s)
        ax.plot(sw, nn, color="tab:blue", lw=0.5, alpha=0.6,
                label="synthetic 'pfs-mr' native R 5000")
        for c in CAT:
            ax.axvline(c, color="grey", ls=":", lw=0.8)
        ax.set_ylim(0.2, 1.2)
    finish(ax, "pfs-mr: Ca II triplet region (envelope over 7100-8850 A on each spectrum)",
           PFS_RANGE)
    if vg is not None:
        w, f, sw, sn = vg["plot"]
        lab = vg["synthetic_labels"]
        slab = (f"synthetic 'ondrejov-halpha' / Planck: Teff {lab['teff']:.0f}, log g "
                f"{lab['logg']}, [Fe/H] {lab['fe_h']:+.1f}, vsini {lab['vsini']:.0f}")
        for col, xlim in ((0, (6280.0, 6740.0)), (1, (HALPHA - 45, HALPHA + 45))):
            ax = fig.add_subplot(gs[5, col])
            ax.plot(w, f, label="real alpha Lyr (Ondrejov, archive-normalised)", **kw_r)
            ax.plot(sw, sn, label=slab, **kw_s)
            if col:
                for off in HALPHA_OFFSETS:
                    for sgn in (-1, 1):
                        ax.axvline(HALPHA + sgn * off, color="grey", ls=":", lw=0.8)
            ax.set_ylim(0.2, 1.05)
            finish(ax, "ondrejov-halpha: Vega" + (" (H-alpha, dotted: +-10, +-20 A)"
                                                  if col else ""), xlim,
                   "vacuum wavelength (A); real: observer's frame, synthetic: rest")
            if not col:
                ax.get_legend().remove()
    fig.subplots_adjust(top=0.965, bottom=0.035, left=0.06, right=0.985)
    fig.suptitle("starlearn.synth against real survey spectra (benchmarks/"
                 "synthetic_vs_real.py)", fontsize=14, y=0.99)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ------------------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="the shared data folder (with fits-samples/)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/synthetic_vs_real.json"),
                        help="JSON file for the results")
    parser.add_argument("--figure", type=Path, default=DEFAULT_FIGURE, help="PNG to write")
    args = parser.parse_args()
    fs = args.data / "fits-samples"
    if not fs.is_dir():
        sys.exit(f"synthetic_vs_real: no real data: {fs} is not a folder (pass --data, the "
                 "folder holding fits-samples/)")
    t0 = time.perf_counter()
    optical, skipped = collect_optical(fs)
    measure_optical(optical)
    results: dict[str, Any] = {"definitions": {
        "envelope": {"percentile": ENV_PERCENTILE, "window_A": ENV_WINDOW,
                     "step_A": ENV_STEP, "passes": 2},
        "bands_A": BANDS, "noise_draws": N_NOISE, "halpha_vacuum_A": HALPHA,
        "dwarf_sequence": "Pecaut & Mamajek (2013) Table 5"}}
    results["optical"] = {
        "skipped": skipped,
        "stars": [{k: v for k, v in s.items() if k in (
            "file", "survey", "class", "subclass", "type", "teff", "logg", "fe_h",
            "fe_h_source", "teff_source", "snr_g", "snr_r", "rv", "flags", "B_real",
            "B_syn_env_noise", "B_syn_env_noiseless", "B_syn_true", "ratio",
            "B_syn_env_noise_feh_shift", "B_syn_true_feh_shift", "ratio_feh_shift")}
            for s in optical]}
    results["optical"]["summary"] = print_optical(optical, skipped)
    vg = vega(fs)
    ap = apogee(fs)
    results["pfs"] = pfs(fs, optical)
    if vg is not None:
        results["vega"] = {k: v for k, v in vg.items() if k != "plot"}
    if ap is not None:
        results["apogee"] = {k: v for k, v in ap.items() if k != "plot"}
    figure(args.figure, optical, ap, vg)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(_jsonable(results), indent=1))
    print(f"\nfigure: {args.figure}\nresults: {args.out}\n"
          f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
