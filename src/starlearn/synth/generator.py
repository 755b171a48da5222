"""Render stars into survey spectra: the fast synthesis engine and the public entry points.

Per preset a :class:`_Model` is built once (cached per process): a fine log-uniform
model grid with constant velocity step ``h`` (about 1/6 of the LSF sigma, at least 1 km/s,
at most 8 km/s) and margins against FFT wrap-around, the lines that can matter in the
range, interpolation weights for the continuum opacity, and the sparse flux-conserving
rebinning matrix to the survey grid.

Per batch of stars (vectorised over the batch):

1. the atmosphere layer and every line's integrated optical depth ``S`` (physics.py);
2. each metal or molecular line is split into a Gaussian core and a Lorentzian wing: the
   wing carries ``S * gamma / v_s`` with the profile ``gamma / pi / (v^2 + v_s^2)``
   (exact far wings, ``gamma`` from radiative, quadratic-Stark and van der Waals damping
   at the layer's electron and hydrogen densities), the core the rest. The core strength
   is rescaled on the Doppler curve of growth so that its equivalent width with the
   shared kernel width ``sigma_c`` (the Doppler width of the preset's lightest species, at
   least 0.75 fine pixels) equals the one with the line's own thermal plus microturbulent
   width (exact for isolated lines, whatever the grid step);
3. cores and wings are deposited as sticks (linear interpolation between neighbouring
   pixels, ``np.bincount``), and convolved in Fourier space with ``exp(-2 pi^2 sigma^2 f^2)``
   and ``exp(-2 pi v_s |f|)`` (``v_s = max(sigma_c, 1.5 h)``) to give the optical depth;
4. hydrogen lines are evaluated directly (Doppler core, Holtsmark-like Stark wings
   ``|v|^-5/2`` with width ~ n^2 N_e^(2/3), resonance/self broadening ~ N_H) on a coarse
   sub-grid (~4 km/s) and added to the low frequencies (band-limited interpolation);
5. normalised flux ``F = r0 + (1 - r0) exp(-tau)``; rotation (analytic transform of the
   limb-darkened rotation kernel), Gaussian macroturbulence, the Gaussian instrumental
   LSF (FWHM = lambda / R), the radial-velocity Doppler shift (a phase ramp) and Be-star
   emission (Gaussians added above the continuum) are applied in Fourier space, the
   result is sampled on a grid of ~half a survey pixel and rebinned, flux conserving,
   onto the survey grid;
6. relative-flux presets are multiplied by a Planck continuum of Teff (median 1); photon
   noise at the requested S/N (the median S/N per pixel over the good pixels, the
   convention of :mod:`starlearn.noise`, with the S/N of a pixel going as the square root
   of its photon count) is drawn from a per-spectrum random stream, so that results do
   not depend on batch size or on the number of processes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.fft as sfft
from astropy.table import Table
from scipy import sparse
from scipy.special import j1

from starlearn.grid import C_KMS, PRESETS, Grid
from starlearn.noise import draw_noise, noise_sigma, snr_from_unit
from starlearn.preprocess._rebin import pixel_edges, rebin_matrix
from starlearn.spectra import SpectrumSet
from starlearn.synth import labels as lab
from starlearn.synth import linelist as ll
from starlearn.synth import physics as ph

if TYPE_CHECKING:
    from starlearn.synth.priors import LabelPrior

__all__ = ["generate", "render"]

RV_MAX = 1000.0
"""Largest |radial velocity| (km/s) the model-grid margins allow."""
VSINI_MAX = 600.0
"""Largest projected rotation velocity (km/s)."""
R0 = 0.08
"""Residual flux in the cores of saturated lines of cool stars (chromospheric/NLTE floor);
it rises in hot stars (see :func:`_core_floor`)."""
LIMB_DARKENING = 0.6
"""Linear limb-darkening coefficient of the rotation kernel."""
K_STARK = 6.0e-14
"""Hydrogen Stark half-width (km/s) per (n_u^2 - n_l^2) * lambda(A) * N_e^(2/3) at the
hydrogen layer's electron density, for stars up to 6,500 K."""
STARK_HOT = ((6500.0, 8500.0), (1.0, 5.0))
"""Teff (K) -> factor on K_STARK: A-star Balmer wings form deeper, at higher electron
densities, than the one hydrogen layer has, so the Stark width rises five-fold from 6,500
to 8,500 K (calibrated on Vega's H-alpha, flux at +-10 A and equivalent width, and on the
H-beta / H-gamma wings of LAMOST A1 IV and A5 V stars; F9 and G5 dwarfs keep the factor 1
with which their H-alpha equivalent widths match)."""
ALPHA_STARK = 0.4
"""Stark width of the alpha lines (H-alpha, P-alpha ...) relative to the n^2 scaling (their
unshifted central components make them narrower)."""
TAU_MOLECULES = 0.67
"""Continuum optical depth of the layer used for molecular lines (with the metal-line
layer at tau = 0.2, carbon would be locked in CO in K dwarfs and their G band would vanish,
unlike observed)."""
TAU_HYDROGEN = 1.0
"""Continuum optical depth of the layer where hydrogen lines form (deeper and hotter than
the metal-line layer: Balmer wings are a photospheric-temperature indicator)."""
C_SELF = 3.0e-8
"""Hydrogen resonance/self-broadening width (s^-1 per neutral H atom per cm^3)."""
VDW_SCALE = 0.35
"""Scale of the van der Waals widths of linelist.csv in this one-layer model (calibrated on
solar equivalent widths together with physics.TAU_REF)."""
TEFF_MIN = 3500.0
"""Coolest giant (K) the physics supports: no TiO, VO, H2O or FeH lines are modelled."""
TEFF_MIN_DWARF = 3800.0
"""Coolest star (K) with log g >= LOGG_DWARF: M dwarfs need TiO, H2O and FeH, which the
generator does not have (their spectra would be nonsense, not stars)."""
LOGG_DWARF = 3.5
TEFF_MAX = 40_000.0
"""Hottest star (K) the renderer accepts."""
LOGG_LIMITS = (-0.5, 6.0)
"""Range of log g (dex, cgs) the renderer accepts."""
CHUNK = 16
"""Stars per batch (fixed, so that results never depend on the number of processes)."""

_SQRT2PI = np.sqrt(2.0 * np.pi)
_HOLTS_NORM = 2.0 * (np.pi / 2.5) / np.sin(np.pi / 2.5)   # integral of 1/(1+|x|^2.5)
_NORMALISED = {"apogee": True, "lamost": False, "segue": False, "pfs-mr": True,
               "ondrejov-halpha": False}
_THROUGHPUT = {   # relative throughput: centre (A), width (A), floor
    "apogee": (16_100.0, 1_400.0, 0.5),
    "lamost": (6_300.0, 1_700.0, 0.08),
    "segue": (6_000.0, 1_800.0, 0.08),
    "pfs-mr": (7_700.0, 1_300.0, 0.4),
    "ondrejov-halpha": (6_500.0, 3_000.0, 0.8),
}
_EMISSION_LINES = ((3, 1.0), (4, 0.35), (5, 0.15), (6, 0.08))   # Balmer upper level, amp


# ------------------------------------------------------------------------------ model
@dataclass
class _Model:
    survey: str
    grid: Grid
    h: float                      # fine-grid step, km/s
    n: int                        # fine-grid size
    m: int                        # sampled (intermediate) grid size, n = k_out * m
    ln0: float                    # ln(lambda) of fine pixel 0
    sigma_lsf: float              # km/s
    lines: ll.LineList
    masses: np.ndarray            # distinct species masses (u)
    mass_index: np.ndarray        # (n_lines,) index into masses
    molecular: np.ndarray         # indices of molecular lines
    line_gamma: tuple[np.ndarray, np.ndarray, np.ndarray]   # rad, stark, vdw * lambda fac
    dep_index: np.ndarray         # (2 n_lines,) fine pixel of each stick half
    dep_weight: np.ndarray        # (2 n_lines,) linear-interpolation weight
    k_cut: int                    # frequencies beyond it are killed by the LSF (< 1e-12)
    kappa_wave: np.ndarray        # (K,)
    kappa_w: _NodeInterp          # nodes -> lines
    hyd: ll.HydrogenLines
    hyd_kappa_w: _NodeInterp      # nodes -> hydrogen lines
    hyd_windows: list[tuple[int, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
    coarse: int                   # fine pixels per coarse hydrogen pixel
    hyd_taper: np.ndarray         # (n_coarse,) 0 at the model-grid ends, 1 inside
    n_coarse: int
    emission: list[tuple[float, float]]  # (fine-pixel position, relative amplitude)
    rebin: sparse.csr_matrix      # (n_pix, m)
    throughput: np.ndarray        # (n_pix,)
    normalised: bool

    @property
    def wave_fine(self) -> np.ndarray:
        return np.exp(self.ln0 + np.arange(self.n) * self.h / C_KMS)


_REFERENCE_STARS = np.array([   # teff, logg, [M/H], [CNO/M] for the line-strength filter
    (3600.0, 0.8, 0.4, 0.4), (4000.0, 4.7, 0.4, 0.3), (4600.0, 2.0, 0.4, 0.4),
    (5000.0, 2.5, 0.0, 0.0), (5800.0, 4.4, 0.4, 0.3), (6500.0, 4.0, 0.4, 0.3),
    (8000.0, 4.0, 0.4, 0.3), (12_000.0, 4.0, 0.4, 0.3), (20_000.0, 4.0, 0.4, 0.3),
    (25_000.0, 3.5, 0.4, 0.3)])
_KEEP_LOG_TAU = -2.0


def _abundance_matrix(fe_h: np.ndarray, xfe: Mapping[str, np.ndarray]) -> np.ndarray:
    """log eps (n_stars, n_elements) from [Fe/H] and [X/Fe] (missing X: 0)."""
    fe_h = np.asarray(fe_h, dtype=np.float64)
    out = np.repeat(ph.A_SUN[None, :], fe_h.size, axis=0)
    for i, el in enumerate(ph.ELEMENT_NAMES):
        if el in ("H", "He"):
            continue
        out[:, i] += fe_h
        if el != "Fe" and el.lower() in xfe:
            out[:, i] += np.asarray(xfe[el.lower()], dtype=np.float64)
    return out


@dataclass(frozen=True)
class _NodeInterp:
    """Linear interpolation in ln(lambda) from K opacity nodes to n wavelengths."""

    j: np.ndarray        # (n,) left node
    frac: np.ndarray     # (n,) weight of the right node

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """(n_stars, K) node values -> (n_stars, n) (exact per row, no BLAS)."""
        left = values[:, self.j]
        return left + (values[:, self.j + 1] - left) * self.frac

    def subset(self, index: np.ndarray) -> _NodeInterp:
        return _NodeInterp(self.j[index], self.frac[index])


def _interp_weights(nodes: np.ndarray, wave: np.ndarray) -> _NodeInterp:
    ln_nodes = np.log(nodes)
    lw = np.clip(np.log(wave), ln_nodes[0], ln_nodes[-1])
    j = np.clip(np.searchsorted(ln_nodes, lw) - 1, 0, len(nodes) - 2)
    return _NodeInterp(j, (lw - ln_nodes[j]) / (ln_nodes[j + 1] - ln_nodes[j]))


def _molecular(lines: ll.LineList) -> np.ndarray:
    return np.nonzero(lines.species >= ph.SPECIES_INDEX[ph.MOLECULE_NAMES[0]])[0]


def _line_strengths(lines: ll.LineList, molecular: np.ndarray, atm: ph.Atmosphere,
                    atm_m: ph.Atmosphere, kappa_wave: np.ndarray, kappa_w: _NodeInterp
                    ) -> np.ndarray:
    """log10 S (km/s) of every line: atoms in the metal layer, molecules in their layer."""
    lk = kappa_w(ph.effective_log_kappa(atm, kappa_wave))
    log_s = ph.line_log_strength(atm, lk, lines.species, lines.chi, lines.log_gf, lines.wave)
    if molecular.size:
        sel = lines.select(molecular)
        lk_m = kappa_w.subset(molecular)(ph.effective_log_kappa(atm_m, kappa_wave))
        log_s[:, molecular] = ph.line_log_strength(atm_m, lk_m, sel.species, sel.chi,
                                                   sel.log_gf, sel.wave)
    return log_s


@cache
def _model(survey: str) -> _Model:
    grid = PRESETS[survey]
    sigma_lsf = C_KMS / grid.resolution / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    h = float(min(max(sigma_lsf / 6.0, 1.0), 8.0))
    k_out = max(1, int(min(sigma_lsf / 2.5, grid.velocity_step / 2.0) / h))
    # margins: Doppler shift + rotation + LSF/macroturbulence reach, plus 1,000 km/s of
    # which the outer 500 km/s hold the hydrogen taper (no FFT wrap-around in the survey
    # range for any allowed rv and vsini)
    margin = RV_MAX + VSINI_MAX + 6.0 * np.hypot(sigma_lsf, 10.0) + 1000.0
    ln_lo = np.log(grid.start) - margin / C_KMS
    ln_hi = np.log(grid.stop) + margin / C_KMS
    n_min = int(np.ceil((ln_hi - ln_lo) * C_KMS / h)) + 1
    m = sfft.next_fast_len(-(-n_min // k_out), real=True)
    while (m * k_out) % 2:
        m = sfft.next_fast_len(m + 1, real=True)
    n = m * k_out
    dln = h / C_KMS
    wave_fine = np.exp(ln_lo + np.arange(n) * dln)
    lo, hi = wave_fine[0], wave_fine[-1]

    # ---- continuum-opacity nodes
    k_nodes = max(4, int(np.log(hi / lo) / 0.04) + 2)
    kappa_wave = np.exp(np.linspace(np.log(lo), np.log(hi), k_nodes))

    # ---- metal and molecular lines that can matter in this range
    lines = ll.full_linelist()
    pos = (np.log(lines.wave) - ln_lo) / dln
    lines = lines.select((pos >= 1.0) & (pos < n - 2.0))
    ref = _REFERENCE_STARS
    xfe = {x: ref[:, 3] if x in ("c", "n", "o") else np.zeros(len(ref)) for x in lab.ALL_XFE}
    log_eps = _abundance_matrix(ref[:, 2], xfe)
    atm, atm_m = (ph.atmosphere(ref[:, 0], ref[:, 1], log_eps, tau=t)
                  for t in (ph.TAU_LAYER, TAU_MOLECULES))
    log_s = _line_strengths(lines, _molecular(lines), atm, atm_m, kappa_wave,
                            _interp_weights(kappa_wave, lines.wave))
    sig = ph.doppler_sigma(atm, lines.mass, np.full(len(ref), 1.0))
    log_tau = log_s - np.log10(sig * _SQRT2PI)
    lines = lines.select((log_tau.max(axis=0) > _KEEP_LOG_TAU) | lines.strong)
    pos = (np.log(lines.wave) - ln_lo) / dln
    i0 = np.floor(pos).astype(int)
    frac = pos - i0
    lam_fac = lines.wave * 1e-8 / (4.0 * np.pi) / 1e5     # Gamma (s^-1) -> HWHM (km/s)
    gamma = (10.0**lines.log_gamma_rad * lam_fac, 10.0**lines.log_gamma_stark * lam_fac,
             VDW_SCALE * 10.0**lines.log_gamma_vdw * lam_fac)

    # ---- hydrogen
    hyd = ll.hydrogen_lines()
    coarse = max(1, int(4.5 / h))
    while coarse > 1 and (n % coarse or (n // coarse) % 2):
        coarse -= 1
    n_coarse = n // coarse
    v_coarse = np.arange(n_coarse) * coarse * h          # km/s from fine pixel 0
    windows = []
    keep_h = []
    for k in range(len(hyd)):
        half = (10_000.0 if hyd.lower[k] == 2 and hyd.upper[k] <= 6 else
                4_000.0 if hyd.lower[k] == 4 else 6_000.0)
        v0 = (np.log(hyd.wave[k]) - ln_lo) * C_KMS
        a = max(int(np.ceil((v0 - half) / (coarse * h))), 0)
        b = min(int(np.floor((v0 + half) / (coarse * h))) + 1, n_coarse)
        if b - a < 3:
            continue
        v = v_coarse[a:b] - v0
        taper = np.clip((half - np.abs(v)) / (0.25 * half), 0.0, 1.0) ** 2
        core = np.nonzero(np.abs(v) < 160.0)[0]
        windows.append((a, b, v.astype(np.float32), (np.abs(v) ** 2.5).astype(np.float32),
                        taper.astype(np.float32), core))
        keep_h.append(k)
    hyd = hyd.select(np.array(keep_h, dtype=int))
    edge = np.minimum(v_coarse, v_coarse[-1] + coarse * h - v_coarse)
    hyd_taper = np.clip(edge / 500.0, 0.0, 1.0) ** 2

    # ---- emission lines (Balmer), positions in fine pixels
    emission = []
    for upper, amp in _EMISSION_LINES:
        lam = ll.hydrogen_wavelength(2, upper)
        x = (np.log(lam) - ln_lo) / dln
        if 0 < x < n:
            emission.append((float(x), amp))

    # ---- sampled grid -> survey grid
    wave_mid = np.exp(ln_lo + np.arange(m) * k_out * dln)
    rebin = rebin_matrix(pixel_edges(wave_mid), pixel_edges(grid.wave)).tocsr()
    _rotation_table()                                   # built before any worker forks
    centre, width, floor = _THROUGHPUT[survey]
    thr = floor + (1 - floor) * np.exp(-0.5 * ((grid.wave - centre) / width) ** 2)
    return _Model(
        survey=survey, grid=grid, h=h, n=n, m=m, ln0=float(ln_lo), sigma_lsf=float(sigma_lsf),
        lines=lines, masses=np.unique(lines.mass),
        mass_index=np.searchsorted(np.unique(lines.mass), lines.mass),
        molecular=_molecular(lines),
        line_gamma=gamma, dep_index=np.concatenate([i0, i0 + 1]),
        dep_weight=np.concatenate([1.0 - frac, frac]),
        k_cut=min(m // 2 + 1, int(np.ceil(np.sqrt(np.log(1e12) / (2 * np.pi**2))
                                          / sigma_lsf * n * h)) + 1),
        kappa_wave=kappa_wave, kappa_w=_interp_weights(kappa_wave, lines.wave),
        hyd=hyd, hyd_kappa_w=_interp_weights(kappa_wave, hyd.wave), hyd_windows=windows,
        coarse=coarse, hyd_taper=hyd_taper, n_coarse=n_coarse, emission=emission,
        rebin=rebin, throughput=thr, normalised=_NORMALISED[survey])


# ------------------------------------------------------------------------------ physics
def _core_floor(teff: np.ndarray) -> np.ndarray:
    """Residual flux of saturated line cores: R0 below 6,500 K, 0.35 at 10,500 K, 0.55 at
    16,000 K and 0.70 at 25,000 K (shallower source-function gradients and NLTE filling of
    hot stars' cores). The B-star nodes give H-alpha central depths of about 0.45 (B5 V)
    and 0.3 (B1 V) at R 13,000, as observed (HD 208905, B1 V: 0.23 with its rotation);
    they were 0.55 and 0.45 deep before, which left the synthetic absorption class without
    the shallow lines of real B stars and of FGK stars. Stars up to 10,500 K (every other
    preset's population) are unchanged."""
    return np.interp(np.asarray(teff, dtype=np.float64),
                     [6500.0, 10_500.0, 16_000.0, 25_000.0], [R0, 0.35, 0.55, 0.70])


def _rotation_transfer(u: np.ndarray) -> np.ndarray:
    """Fourier transform of the linearly limb-darkened rotation kernel at u = 2 pi f vsini
    (tabulated; linear interpolation error < 1e-6)."""
    table_u, table_t = _rotation_table()
    return np.interp(u, table_u, table_t)


@cache
def _rotation_table() -> tuple[np.ndarray, np.ndarray]:
    u = np.linspace(0.0, 2.0 * np.pi * 0.5 * VSINI_MAX, 2_000_001)
    return u, _rotation_transfer_exact(u)


def _rotation_transfer_exact(u: np.ndarray) -> np.ndarray:
    eps = LIMB_DARKENING
    c1 = (1.0 - eps) / (1.0 - eps / 3.0)
    c2 = (2.0 * eps / 3.0) / (1.0 - eps / 3.0)
    small = u < 1e-3
    us = np.where(small, 1.0, u)
    ell = np.where(small, 1.0 - u**2 / 8.0, 2.0 * j1(us) / us)
    par = np.where(small, 1.0 - u**2 / 10.0, 3.0 * (np.sin(us) - us * np.cos(us)) / us**3)
    return c1 * ell + c2 * par


def hydrogen_profile_parameters(hyd: ll.HydrogenLines, atm: ph.Atmosphere,
                                log_kappa: np.ndarray, vmicro: np.ndarray
                                ) -> tuple[np.ndarray, ...]:
    """Hydrogen-line optical-depth profile parameters, each (n_stars, n_lines) or (n, 1).

    ``tau(v) = c_g exp(-v^2 / 2 sig^2) + c_r / (ws^2.5 + |v|^2.5) + c_l / (gs^2 + v^2)``
    (v in km/s): a Doppler core, a Holtsmark-like linear-Stark wing of half-width
    ``w = K_STARK f(Teff) (n_u^2 - n_l^2) lambda N_e^(2/3)`` (:data:`STARK_HOT`; smoothed
    to ``ws`` >= 1.5 sig, far wing exact) and a Lorentzian resonance/self-broadening wing
    ``~ C_SELF N_H``; the three areas add up to the line's integrated optical depth S.
    """
    sp = np.full(len(hyd), ph.SPECIES_INDEX["H I"])
    s = 10.0 ** ph.line_log_strength(atm, log_kappa, sp, hyd.chi, hyd.log_gf, hyd.wave)
    sig = np.sqrt(8.31446e-3 * atm.t / 1.008 + 0.5 * vmicro**2)[:, None]
    n_e23 = 10.0 ** (atm.log_n_e * (2.0 / 3.0))[:, None]
    stark = np.where(hyd.upper - hyd.lower == 1, ALPHA_STARK, 1.0)
    hot = np.interp(atm.t / atm.t_scale, *STARK_HOT)[:, None]
    w = K_STARK * hot * stark * (hyd.upper**2 - hyd.lower**2) * hyd.wave * n_e23
    ws = np.sqrt(w**2 + (1.5 * sig) ** 2)
    a_r = (w / ws) ** 1.5
    gam = C_SELF * 10.0 ** atm.log_n_h0[:, None] * hyd.wave * 1e-8 / (4 * np.pi) / 1e5
    gs = np.sqrt(gam**2 + (1.5 * sig) ** 2)
    a_l = gam / gs
    tot = a_r + a_l
    scale = np.where(tot > 1.0, 1.0 / tot, 1.0)
    a_r, a_l = a_r * scale, a_l * scale
    a_g = np.clip(1.0 - a_r - a_l, 0.0, None)
    return (s * a_g / (sig * _SQRT2PI), sig, s * a_r * ws**1.5 / _HOLTS_NORM, ws,
            s * a_l * gs / np.pi, gs)


def _phase_ramp(shift: np.ndarray, n: int, mm: int) -> np.ndarray:
    """exp(-2 pi i k shift / n) for k < mm, (n_stars, mm), by blocks of 256 (fast)."""
    blk = 256
    nblk = -(-mm // blk)
    a = -2.0 * np.pi * shift / n
    inner = np.exp(1j * a[:, None] * np.arange(blk)[None, :])
    outer = np.exp(1j * a[:, None] * (blk * np.arange(nblk))[None, :])
    return (outer[:, :, None] * inner[:, None, :]).reshape(shift.size, -1)[:, :mm]


def _hydrogen_tau(mod: _Model, atm: ph.Atmosphere, lk_nodes: np.ndarray,
                  vmicro: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hydrogen-line opacity ratio on the coarse grid, all of it and its Doppler cores
    alone, each (n_stars, n_coarse), tapered to 0 at the model-grid ends."""
    nb = atm.t.size
    out = np.zeros((nb, mod.n_coarse))
    cores = np.zeros((nb, mod.n_coarse))
    if len(mod.hyd) == 0:
        return out, cores
    c_g, sig, c_r, ws, c_l, gs = hydrogen_profile_parameters(mod.hyd, atm,
                                                             mod.hyd_kappa_w(lk_nodes), vmicro)
    # (atm and lk_nodes are those of the hydrogen layer, see _synthesize)
    c_g, c_r, c_l = (x.astype(np.float32) for x in (c_g, c_r, c_l))
    ws25 = (ws**2.5).astype(np.float32)
    gs2 = (gs**2).astype(np.float32)
    inv2s2 = (0.5 / sig**2).astype(np.float32)
    for k, (a, b, v, v25, taper, core) in enumerate(mod.hyd_windows):
        prof = (c_r[:, k:k + 1] / (ws25[:, k:k + 1] + v25)
                + c_l[:, k:k + 1] / (gs2[:, k:k + 1] + v * v)) * taper
        vc = v[core]
        gauss = c_g[:, k:k + 1] * np.exp(-(vc * vc) * inv2s2)
        prof[:, core] += gauss
        out[:, a:b] += prof
        cores[:, a + core] += gauss
    return out * mod.hyd_taper, cores * mod.hyd_taper


def hydrogen_residual(eta: np.ndarray, eta_core: np.ndarray, teff: np.ndarray,
                      wave: np.ndarray) -> np.ndarray:
    """Residual flux of the hydrogen lines, (n_stars, n_wave).

    The wings follow the Eddington-Barbier relation in the grey atmosphere: the line is
    seen at continuum optical depth ``(2/3) / (1 + eta)`` (``eta`` the line-to-continuum
    opacity ratio), where ``T^4 = 3/4 Teff^4 (tau + 2/3)`` and the Planck function goes
    as ``T^x``, ``x = u / (1 - exp(-u))``, ``u = h c / (lambda k Teff)``, so
    ``r = ((1 + 1 / (1 + eta)) / 2)^(x / 4)``. That saturates slowly (0.64 for Vega at
    H-alpha), which gives the broad, shallow wings of A-star Balmer lines; the Doppler
    cores (``eta_core``) go on down to the empirical core floor (:func:`_core_floor`,
    NLTE and the chromosphere) as ``1 - exp(-eta_core)``.
    """
    u = ph.HC_EV_A / (np.asarray(wave)[None, :] * ph.K_EV * np.asarray(teff)[:, None])
    k = 0.25 * u / -np.expm1(-u)
    r_wing = np.exp(k * np.log(0.5 * (1.0 + 1.0 / (1.0 + eta))))
    limit = np.exp(k * np.log(0.5))
    floor = _core_floor(teff)[:, None]
    extra = np.clip(1.0 - floor / limit, 0.0, 1.0)
    return r_wing * (1.0 - extra * -np.expm1(-eta_core))


def _synthesize(mod: _Model, teff: np.ndarray, logg: np.ndarray, log_eps: np.ndarray,
                vmicro: np.ndarray, vsini: np.ndarray, vmacro: np.ndarray, rv: np.ndarray,
                emission: Mapping[str, np.ndarray] | None) -> np.ndarray:
    """Continuum-normalised noiseless spectra on the survey grid, (n_stars, n_pix)."""
    h, n, m = mod.h, mod.n, mod.m
    nb = teff.size
    lines = mod.lines
    atm = ph.atmosphere(teff, logg, log_eps)
    atm_m = ph.atmosphere(teff, logg, log_eps, tau=TAU_MOLECULES)
    atm_h = ph.atmosphere(teff, logg, log_eps, tau=TAU_HYDROGEN)
    log_s = _line_strengths(lines, mod.molecular, atm, atm_m, mod.kappa_wave, mod.kappa_w)
    # Doppler widths per distinct species mass (a handful), gathered per line
    log_sig_d = np.log10(ph.doppler_sigma(atm, mod.masses, vmicro))[:, mod.mass_index]
    # shared core kernel: the Doppler width of the lightest species, so that the
    # curve-of-growth rescaling below only ever lowers a line's central optical depth
    sig_c = np.maximum(np.sqrt(8.31446e-3 * atm.t / mod.masses[0] + 0.5 * vmicro**2),
                       0.75 * h)
    v_s = np.maximum(sig_c, 1.5 * h)                    # smoothing scale of the wings
    g_rad, g_stark, g_vdw = mod.line_gamma
    n_e = 10.0 ** atm.log_n_e
    n_h = 10.0 ** atm.log_n_h0 * (atm.t / 1e4) ** 0.3
    gamma = g_rad[None, :] + g_stark[None, :] * n_e[:, None] + g_vdw[None, :] * n_h[:, None]
    a_w = np.minimum(gamma / v_s[:, None], 0.9)
    s_wing = 10.0**log_s
    s_wing *= a_w
    # Doppler curve-of-growth rescaling of the core (area S (1 - a_w)) from the line's own
    # width sig_d to the shared kernel width sig_c: same equivalent width
    log_sig_c = np.log10(sig_c)[:, None]
    log_t = log_s + np.log1p(-a_w) / np.log(10.0) - log_sig_d - np.log10(_SQRT2PI)
    log_f = ph.doppler_cog(log_t) + log_sig_d - log_sig_c
    log_tc = np.minimum(ph.inverse_doppler_cog(log_f), log_t)
    s_core = 10.0 ** (log_tc + log_sig_c + np.log10(_SQRT2PI))

    # cores and wings: sticks on the fine grid (rows 0..nb-1 cores, nb..2nb-1 wings);
    # kernels in Fourier space: Gaussian sig_c (cores), Gaussian times Lorentzian v_s (wings)
    f = np.arange(n // 2 + 1) / n                       # cycles per fine pixel
    var_c = (sig_c / h) ** 2 - 1.0 / 6.0                # minus the linear-deposit smoothing
    nl = s_core.shape[1]
    sticks = np.empty((2 * nb, n))
    for r, amp in enumerate((*s_core, *s_wing)):
        weights = np.concatenate([amp * mod.dep_weight[:nl], amp * mod.dep_weight[nl:]]) / h
        sticks[r] = np.bincount(mod.dep_index, weights=weights, minlength=n)
    spec = sfft.rfft(sticks, axis=-1)
    tau_hat = spec[:nb]
    tau_hat += spec[nb:] * np.exp(-2.0 * np.pi * (v_s / h)[:, None] * f[None, :])
    tau_hat *= np.exp(-2.0 * np.pi**2 * var_c[:, None] * f[None, :] ** 2)
    tau = sfft.irfft(tau_hat, n=n, axis=-1)
    np.maximum(tau, 0.0, out=tau)
    depth = (1.0 - _core_floor(teff))[:, None] * -np.expm1(-tau)
    # hydrogen: residual flux on the coarse grid (its own saturation law), interpolated
    # to the fine grid and multiplied in (metal lines in the Balmer wings are weakened)
    c = mod.coarse
    eta, eta_core = _hydrogen_tau(mod, atm_h, ph.effective_log_kappa(atm_h, mod.kappa_wave),
                                  vmicro)
    wave_coarse = np.exp(mod.ln0 + np.arange(mod.n_coarse) * c * h / C_KMS)
    r_h = hydrogen_residual(eta, eta_core, teff, wave_coarse)
    x_fine = np.arange(n) / c
    for i in range(nb):
        depth[i] = 1.0 - (1.0 - depth[i]) * np.interp(x_fine, np.arange(mod.n_coarse),
                                                      r_h[i])

    mm = mod.k_cut      # higher frequencies are set to zero (LSF transfer < 1e-12)
    d_hat = sfft.rfft(depth, axis=-1)[:, :mm]
    fk = np.arange(mm) / (n * h)                        # cycles per km/s
    var = mod.sigma_lsf**2 + (vmacro / (2.0 * np.sqrt(2.0 * np.log(2.0)))) ** 2
    transfer = np.exp(-2.0 * np.pi**2 * var[:, None] * fk[None, :] ** 2)
    transfer = transfer * _rotation_transfer(2.0 * np.pi * fk[None, :] * vsini[:, None])
    d_hat = d_hat * transfer
    if emission is not None and mod.emission:
        d_hat = d_hat - _emission_hat(mod, emission, mm) * _transfer_lsf(mod, fk)
    if np.any(rv != 0):
        shift = np.log1p(rv / C_KMS) * C_KMS / h        # fine pixels
        d_hat = d_hat * _phase_ramp(shift, n, mm)
    full = np.zeros((nb, m // 2 + 1), dtype=np.complex128)
    full[:, :mm] = d_hat
    sampled = 1.0 - sfft.irfft(full, n=m, axis=-1) * (m / n)
    return (mod.rebin @ sampled.T).T


def _transfer_lsf(mod: _Model, fk: np.ndarray) -> np.ndarray:
    """Fourier transfer function of the instrumental LSF alone at frequencies fk (1/km/s)."""
    return np.exp(-2.0 * np.pi**2 * mod.sigma_lsf**2 * fk**2)[None, :]


def _emission_hat(mod: _Model, em: Mapping[str, np.ndarray], mm: int) -> np.ndarray:
    """DFT of the Be-star emission Gaussians (normalised-flux units), (n_stars, mm)."""
    amp = np.asarray(em["em_amp"], dtype=np.float64)
    out = np.zeros((amp.size, mm), dtype=np.complex128)
    rows = np.nonzero(amp > 0)[0]
    if rows.size == 0:
        return out
    f = np.arange(mm) / mod.n
    sep = np.asarray(em["em_sep"], dtype=np.float64)[rows]
    sigma = np.maximum(np.asarray(em["em_sigma"], dtype=np.float64)[rows], 5.0) / mod.h
    vr = np.asarray(em["em_vr"], dtype=np.float64)[rows]
    shift = np.asarray(em["em_shift"], dtype=np.float64)[rows]
    a = amp[rows]
    double = sep > 0
    peaks = [(np.where(double, shift - sep / 2, shift), np.where(double, 2 * vr / (1 + vr), 1.0)),
             (shift + sep / 2, np.where(double, 2 / (1 + vr), 0.0))]
    env = (sigma * _SQRT2PI)[:, None] * np.exp(-2.0 * np.pi**2 * sigma[:, None] ** 2
                                               * f[None, :] ** 2)
    acc = np.zeros((rows.size, mm), dtype=np.complex128)
    for x_line, rel in mod.emission:
        for v, w in peaks:
            x = x_line + np.log1p(v / C_KMS) * C_KMS / mod.h
            acc += (a * w * rel)[:, None] * np.exp(-2j * np.pi * f[None, :] * x[:, None])
    out[rows] = acc * env
    return out


# ------------------------------------------------------------------------------ stars
def _vmacro(teff: np.ndarray, logg: np.ndarray) -> np.ndarray:
    """Macroturbulence FWHM (km/s), a smooth function of Teff and log g."""
    return np.clip(3.5 + 1.5 * (teff - 5500.0) / 1000.0 + 0.6 * (4.4 - logg), 1.5, 10.0)


def _column(stars: Table, name: str) -> np.ndarray | None:
    if name not in stars.colnames:
        return None
    col = stars[name]
    data = col.filled(np.nan) if hasattr(col, "filled") else col
    return np.asarray(data, dtype=np.float64)


def _star_parameters(stars: Table) -> dict[str, np.ndarray]:
    """All rendering parameters, with defaults where the table lacks a column."""
    n = len(stars)
    if "teff" not in stars.colnames or "logg" not in stars.colnames:
        raise ValueError(f"render: the stars table needs columns 'teff' and 'logg'; "
                         f"got {stars.colnames}")
    p: dict[str, np.ndarray] = {}
    p["teff"] = _column(stars, "teff")
    p["logg"] = _column(stars, "logg")
    for name, lo, hi in (("teff", 3000.0, TEFF_MAX), ("logg", *LOGG_LIMITS)):
        bad = ~np.isfinite(p[name]) | (p[name] < lo) | (p[name] > hi)
        if bad.any():
            raise ValueError(f"render: column '{name}' must be finite and within "
                             f"[{lo}, {hi}]; row {int(np.argmax(bad))} has "
                             f"{p[name][np.argmax(bad)]}")
    floor = np.where(p["logg"] >= LOGG_DWARF, TEFF_MIN_DWARF, TEFF_MIN)
    cool = p["teff"] < floor
    if cool.any():
        i = int(np.argmax(cool))
        raise ValueError(
            f"render: row {i} (teff {p['teff'][i]:.0f} K, logg {p['logg'][i]:.2f}) is cooler "
            f"than the generator supports: {TEFF_MIN_DWARF:.0f} K for log g >= {LOGG_DWARF} "
            f"and {TEFF_MIN:.0f} K for giants (its physics has no TiO, VO, H2O or FeH, "
            "which dominate M-star spectra)")

    def get(name: str, default: np.ndarray) -> np.ndarray:
        col = _column(stars, name)
        if col is None:
            return np.asarray(default, dtype=np.float64) * np.ones(n)
        return np.where(np.isfinite(col), col, default)

    p["fe_h"] = get("fe_h", np.zeros(n))
    p["alpha_fe"] = get("alpha_fe", lab.default_alpha(p["fe_h"]))
    for x in lab.ALL_XFE:
        p[f"{x}_fe"] = get(f"{x}_fe", p["alpha_fe"] if x in lab.ALPHA_ELEMENTS else np.zeros(n))
    p["vmicro"] = np.clip(get("vmicro", lab.default_vmicro(p["logg"], p["teff"])), 0.0, 10.0)
    p["vsini"] = np.clip(get("vsini", np.where(p["teff"] < 6200.0, 3.0, 30.0)), 0.0, VSINI_MAX)
    p["vmacro"] = get("vmacro", _vmacro(p["teff"], p["logg"]))
    for c in lab.EMISSION_COLUMNS:
        p[c] = get(c, np.ones(n) if c == "em_vr" else np.zeros(n))
    return p


def _planck(wave: np.ndarray, teff: np.ndarray) -> np.ndarray:
    """Planck B_lambda(Teff) on ``wave``, scaled to median 1 per star, (n_stars, n_pix)."""
    x = ph.HC_EV_A / (wave[None, :] * ph.K_EV * teff[:, None])
    b = 1.0 / (wave[None, :] ** 5 * np.expm1(x))
    return b / np.median(b, axis=1, keepdims=True)


def _star_key(star_id: str) -> list[int]:
    """Two 32-bit integers identifying a star id in the random streams."""
    h = int.from_bytes(hashlib.blake2b(star_id.encode(), digest_size=8).digest(), "little")
    return [h & 0xFFFFFFFF, h >> 32]


def _draw(spec: Any, u: float) -> float:
    """A number, or ``lo + u * (hi - lo)`` for a (lo, hi) pair (S/N: noise.snr_from_unit)."""
    if np.ndim(spec) == 0:
        return float(spec)
    lo, hi = float(spec[0]), float(spec[1])
    return lo + u * (hi - lo)


def _render_chunk(survey: str, p: dict[str, np.ndarray], ids: Sequence[str], seed: int,
                  snr_spec: Any, rv_spec: Any
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Flux, ivar (float32, (n_stars, n_pix)), S/N and RV of one batch of stars.

    Each star's S/N, RV and noise come from its own random stream, seeded by (seed,
    survey, star id): independent of the batch, of n_jobs and of the other stars.
    """
    mod = _model(survey)
    key = lab.survey_key(survey)
    rngs = [np.random.default_rng(np.random.SeedSequence([int(seed), key, 2, *_star_key(i)]))
            for i in ids]
    u = np.array([r.uniform(size=2) for r in rngs]).reshape(len(ids), 2)
    snr = (snr_from_unit(snr_spec, u[:, 0]) if snr_spec is not None
           else np.full(len(ids), np.nan))
    rv = (np.array([_draw(rv_spec, x) for x in u[:, 1]]) if rv_spec is not None
          else np.zeros(len(ids)))
    xfe = {x: p[f"{x}_fe"] for x in lab.ALL_XFE}
    log_eps = _abundance_matrix(p["fe_h"], xfe)
    em = {c: p[c] for c in lab.EMISSION_COLUMNS}
    flux = _synthesize(mod, p["teff"], p["logg"], log_eps, p["vmicro"], p["vsini"],
                       p["vmacro"], rv, em)
    wave = mod.grid.wave
    cont = _planck(wave, p["teff"])
    if not mod.normalised:
        flux = flux * cont
    if snr_spec is None:
        return flux.astype(np.float32), np.ones_like(flux, dtype=np.float32), snr, rv
    # photon noise: the S/N of a pixel goes as sqrt(photons), normalised to the median
    # S/N per pixel over the good pixels (the convention of starlearn.noise)
    photons = np.maximum(flux, 1e-3) * mod.throughput[None, :]
    if mod.normalised:
        photons = photons * cont
    sigma = noise_sigma(np.maximum(flux, 1e-3), snr[:, None], snr_curve=np.sqrt(photons),
                        good=~mod.grid.gap_mask)
    out, ivar = draw_noise(flux, sigma, rngs)
    return out.astype(np.float32), ivar.astype(np.float32), snr, rv


# ------------------------------------------------------------------------------ public
def _check_obs(value: Any, name: str, lo: float, hi: float) -> Any:
    """Validate an snr / rv argument: None, a number, or a (low, high) pair."""
    if value is None:
        return None
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape not in ((), (2,)) or (arr.shape == (2,) and not arr[0] <= arr[1]):
        raise ValueError(f"{name} must be None, a number or a (low, high) pair, got {value!r}")
    if not np.all(np.isfinite(arr)) or np.any(arr < lo) or np.any(arr > hi):
        raise ValueError(f"{name} must lie within [{lo}, {hi}], got {value!r}")
    return float(arr) if arr.shape == () else (float(arr[0]), float(arr[1]))


def render(survey: str, stars: Table, *, seed: int = 0,
           snr: float | tuple[float, float] | None = (20.0, 200.0),
           rv: float | tuple[float, float] | None = None, n_jobs: int = 1,
           progress: bool = False) -> SpectrumSet:
    """Render a table of stars into spectra on a survey preset's grid.

    The stars may come from :func:`draw_labels` for any preset (e.g. Ondřejov H-alpha
    stars observed through ``lamost``) or from the user; only ``teff`` and ``logg`` are
    required, other parameters take defaults (``fe_h`` 0, ``alpha_fe`` from [Fe/H],
    alpha elements follow ``alpha_fe``, other ``<x>_fe`` 0, ``vmicro`` from log g,
    emission off).

    Parameters
    ----------
    survey : str
        Preset name (:data:`SURVEYS`); the spectra are on ``starlearn.grid.PRESETS[survey]``.
    stars : astropy.table.Table
        One row per star, columns as returned by :func:`draw_labels`. Teff from 3,500 K
        (giants) or 3,800 K (log g >= 3.5) to 40,000 K; cooler stars raise ValueError
        (:data:`TEFF_MIN`, :data:`TEFF_MIN_DWARF`).
    seed : int
        Seed of the S/N, radial-velocity and noise draws. Each spectrum has its own random
        stream keyed by (seed, survey, star id), so a star gets the same draws whether it
        is rendered alone or with others, in any batch and with any ``n_jobs``.
    snr : float, (low, high) or None
        Median S/N per pixel; a pair draws it log-uniformly per spectrum; None gives
        noiseless spectra with ivar = 1.
    rv : float, (low, high) or None
        Heliocentric radial velocity in km/s (positive = redshift); a pair draws it
        uniformly per spectrum; None = 0. |rv| <= 1,000 km/s.
    n_jobs : int
        Number of processes (results do not depend on it).
    progress : bool
        Show a progress bar.

    Returns
    -------
    SpectrumSet
        Flux (normalised for apogee and pfs-mr, relative flux with a Planck continuum of
        median ~1 otherwise), ivar, mask (APOGEE chip gaps), labels named by
        ``label_names(survey)``, classes when the table has a ``class`` column, ids from
        the table's ``id`` column (or ``<survey>-s<seed>-000001``...), and meta with
        ``survey``, ``snr`` (NaN when noiseless), ``rv`` (km/s), ``vmacro`` and the other
        non-label parameters of the stars.
    """
    survey = lab._check_survey(survey)
    if not isinstance(stars, Table):
        stars = Table(stars)
    n = len(stars)
    n_jobs = int(n_jobs)
    if n_jobs < 1:
        n_jobs = max(1, os.cpu_count() or 1)
    p = _star_parameters(stars)
    snr = _check_obs(snr, "snr", 1e-3, 1e6)
    rv = _check_obs(rv, "rv", -RV_MAX, RV_MAX)
    ids = (np.asarray(stars["id"]).astype(str) if "id" in stars.colnames else
           np.array([f"{survey}-s{seed}-{i + 1:0{max(6, len(str(n)))}d}" for i in range(n)]))
    mod = _model(survey)
    flux = np.empty((n, mod.grid.n_pix), dtype=np.float32)
    ivar = np.empty_like(flux)
    snr_v = np.empty(n)
    rv_v = np.empty(n)
    chunks = [np.arange(s, min(s + CHUNK, n)) for s in range(0, n, CHUNK)]
    args = [(survey, {k: v[c] for k, v in p.items()}, list(ids[c]), int(seed), snr, rv)
            for c in chunks]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc=f"synth {survey}", unit="spec")
    try:
        if n_jobs == 1 or len(chunks) <= 1:
            results = (_render_chunk(*a) for a in args)
            for c, res in zip(chunks, results, strict=True):
                flux[c], ivar[c], snr_v[c], rv_v[c] = res
                if bar is not None:
                    bar.update(len(c))
        else:
            with ProcessPoolExecutor(max_workers=min(n_jobs, len(chunks))) as pool:
                futures = [pool.submit(_render_chunk, *a) for a in args]
                for c, fut in zip(chunks, futures, strict=True):
                    flux[c], ivar[c], snr_v[c], rv_v[c] = fut.result()
                    if bar is not None:
                        bar.update(len(c))
    finally:
        if bar is not None:
            bar.close()

    names = lab.label_names(survey)
    labels = np.stack([p[k] for k in names], axis=1) if n else np.zeros((0, len(names)))
    meta = Table({"survey": np.full(n, survey), "snr": snr_v, "rv": rv_v,
                  "vmacro": p["vmacro"]})
    for col in stars.colnames:
        if col in ("id", "class") or col in names or col in meta.colnames:
            continue
        meta[col] = stars[col]
    classes, class_names = None, []
    if "class" in stars.colnames:
        class_names = list(stars.meta.get("class_names", lab.CLASS_NAMES))
        classes = np.asarray(stars["class"], dtype=np.int64)
    mask = np.broadcast_to(mod.grid.gap_mask, flux.shape)
    return SpectrumSet(wave=mod.grid.wave, flux=flux, ivar=ivar, mask=mask, labels=labels,
                       label_names=names, classes=classes, class_names=class_names, ids=ids,
                       meta=meta)


def generate(survey: str, n: int, *, seed: int = 0,
             snr: float | tuple[float, float] | None = (20.0, 200.0),
             rv: float | tuple[float, float] | None = None, n_jobs: int = 1,
             class_fractions: Sequence[float] | Mapping[str, float] | None = None,
             prior: LabelPrior | Mapping[str, float | tuple[float, float]] | None = None,
             labels_from: Table | str | os.PathLike | None = None,
             progress: bool = False) -> SpectrumSet:
    """Generate a synthetic survey: ``n`` stars drawn for ``survey`` and rendered on its grid.

    Equivalent to ``render(survey, draw_labels(survey, n, seed=seed,
    class_fractions=class_fractions, prior=prior, labels_from=labels_from), seed=seed,
    snr=snr, rv=rv, n_jobs=n_jobs)``.

    Parameters
    ----------
    survey : str
        One of ``apogee``, ``lamost``, ``segue``, ``pfs-mr``, ``ondrejov-halpha``.
    n : int
        Number of spectra.
    seed : int
        Seed; the same arguments always give identical spectra, whatever ``n_jobs``.
    snr, rv, n_jobs, progress
        See :func:`render`.
    class_fractions : sequence of 3 floats or dict, optional
        ``ondrejov-halpha`` only: fractions of ``absorption``, ``emission``, ``double-peak``.
    prior : LabelPrior or dict, optional
        Draw the stars from the population restricted to a box of labels, e.g.
        ``{"teff": (4000, 5500), "logg": (1, 3.5), "feh": -0.5}`` (Teff in K, log g in
        dex (cgs), abundances in dex, vmicro and vsini in km/s; a number fixes the label).
        See :func:`~starlearn.synth.draw_labels` and :mod:`starlearn.synth.priors`.
    labels_from : astropy.table.Table or path, optional
        A catalogue of real labels (FITS, ECSV, CSV ...) whose rows the stars take, drawn
        with replacement, so that the synthetic set covers that population; see
        :func:`~starlearn.synth.draw_labels`.

    Returns
    -------
    SpectrumSet
        ``n`` spectra with ids ``<survey>-s<seed>-000001``..., labels, meta (survey, snr,
        rv, population, emission parameters ...; ``catalog_row`` with ``labels_from``)
        and, for ``ondrejov-halpha``, classes.

    Examples
    --------
    >>> from starlearn.synth import generate
    >>> s = generate("apogee", 4, seed=1, snr=100)
    >>> s.n_pix, s.ids[0], s.label_names[:3]
    (8575, 'apogee-s1-000001', ['teff', 'logg', 'fe_h'])
    """
    stars = lab.draw_labels(survey, n, seed=seed, class_fractions=class_fractions, prior=prior,
                            labels_from=labels_from)
    return render(survey, stars, seed=seed, snr=snr, rv=rv, n_jobs=n_jobs, progress=progress)
