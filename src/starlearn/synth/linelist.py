"""Line data for the synthetic spectra: real atomic lines, hydrogen, molecules, and a forest.

Four sources, all returned in **vacuum** Angstrom:

* ``data/linelist.csv``: strong and diagnostic atomic lines with literature wavelengths
  (air, converted with :func:`starlearn.grid.air_to_vacuum`), excitation potentials, log gf
  and damping constants (see the file header for sources);
* hydrogen: Balmer, Paschen and Brackett series at measured wavelengths (NIST vacuum
  values, as in the SDSS line list, for H-alpha to H8) and elsewhere at the centroid of the
  fine-structure levels (Rydberg formula with the reduced-mass R_H = 109,677.583 cm^-1 plus
  the Dirac fine-structure term, weighted by statistical weight: within 0.014 A of the
  measured Balmer lines, where the Bohr formula is 0.04-0.08 A, 3-3.8 km/s, too red);
  oscillator strengths from NIST (Wiese & Fuhr 2009, JPCRD 38,
  565) for the lowest Balmer lines and Kramers' formula times a Gaunt factor 0.87 above;
* molecules: every rotational line of the main bands of CO (second overtone, H band), OH
  (first overtone, H band), CN (red A-X and violet B-X systems), CH (A-X, the G band) and
  MgH (A-X), computed from Dunham term values with Hill-Van Vleck spin-orbit splitting.
  CO uses the laboratory Dunham coefficients of Guelachvili et al. (1983) and OH the full
  vibrational series of Huber & Herzberg (1979) (with omega_e y_e and omega_e z_e; D_v
  from the Pekeris relation): CO band heads land within 0.2 A of those of a real APOGEE
  giant. CN, CH and MgH keep Huber & Herzberg's omega_e, omega_e x_e, B_e, alpha_e, D_e
  (positions to a few Angstrom). Band strengths are scaled to give realistic depths;
* a forest of metal lines drawn once with a fixed internal seed (identical on every
  call and in every process), with species drawn from the elements of each range and
  log gf set so that, in the Sun, their central optical depths follow a fixed
  distribution (:data:`FOREST_LOG_TAU`). In the optical their density falls as
  lambda^-4 (4.5 lines per A at 5,000 A); with them the Sun's line blanketing is 0.28,
  0.14, 0.10, 0.07 and 0.04 in 3,900-4,400, 4,400-5,000, 5,000-5,600, 5,600-6,800 and
  6,800-8,000 A (solar-atlas values are about 0.27, 0.14, 0.10, 0.055, 0.03), and
  LAMOST G/K dwarfs measured like the synthetic ones give real / synthetic blanketing
  0.94, 1.02, 1.12, 0.81 in the first four (benchmarks/synthetic_vs_real.py; with the
  former 1.1 lines per A of weak lines it was 1.09, 1.59, 1.67, 1.21 and the Sun's
  blanketing 0.02 at 4,400-5,600 A).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from starlearn.grid import air_to_vacuum
from starlearn.synth import physics as ph

__all__ = ["HydrogenLines", "LineList", "atomic_lines", "full_linelist", "hydrogen_lines",
           "hydrogen_wavelength", "molecular_lines"]

FOREST_SEED = 20_240_521
"""Fixed seed of the weak-line forest (never changes with the user's seed)."""
FOREST_LOG_TAU = {"optical": (-1.5, 3.2), "infrared": (-2.3, 2.9)}
"""Solar central optical depths of the forest lines per region: log10 tau = a + b *
Beta(1.3, 2.4) (optical: 0.03 to 50, median 0.34, calibrated on the solar blanketing and
on real LAMOST G/K dwarfs; infrared: 0.005 to 4)."""

R_HYDROGEN = 109_677.583  # cm^-1


@dataclass(frozen=True)
class LineList:
    """Metal and molecular lines, one entry per line (all arrays of shape (n_lines,)).

    Attributes
    ----------
    wave : vacuum wavelength, Angstrom.
    species : index into :data:`starlearn.synth.physics.SPECIES`.
    chi : lower-level excitation energy, eV.
    log_gf : log10 of the weighted oscillator strength.
    log_gamma_rad, log_gamma_stark, log_gamma_vdw : damping constants (see linelist.csv).
    strong : flag of lines with visible pressure-broadened wings.
    element : element (or, for molecules, elements joined by '+') that the line traces.
    source : 'csv', 'forest' or the molecule name.
    """

    wave: np.ndarray
    species: np.ndarray
    chi: np.ndarray
    log_gf: np.ndarray
    log_gamma_rad: np.ndarray
    log_gamma_stark: np.ndarray
    log_gamma_vdw: np.ndarray
    strong: np.ndarray
    element: np.ndarray
    source: np.ndarray

    def __len__(self) -> int:
        return int(self.wave.size)

    def select(self, keep: np.ndarray) -> LineList:
        return LineList(**{k: getattr(self, k)[keep] for k in self.__dataclass_fields__})

    @staticmethod
    def concat(parts: list[LineList]) -> LineList:
        return LineList(**{k: np.concatenate([getattr(p, k) for p in parts])
                           for k in LineList.__dataclass_fields__})

    @property
    def mass(self) -> np.ndarray:
        """Mass (u) of each line's species."""
        masses = np.array([ph.species_mass(s) for s in ph.SPECIES])
        return masses[self.species]


def _default_damping(ion: np.ndarray, molecular: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ion = np.asarray(ion)
    rad = np.full(ion.shape, 8.0)
    stark = np.where(ion > 0, -6.0, -5.5)
    vdw = np.where(ion > 0, -7.8, -7.5)
    if molecular is not None:
        rad = np.where(molecular, 7.0, rad)
        stark = np.where(molecular, -9.0, stark)
        vdw = np.where(molecular, -7.8, vdw)
    return rad, stark, vdw


@lru_cache(maxsize=1)
def atomic_lines() -> LineList:
    """The real atomic lines of ``data/linelist.csv`` (vacuum wavelengths)."""
    text = resources.files("starlearn.synth").joinpath("data/linelist.csv").read_text()
    rows = [r for r in csv.DictReader(line for line in text.splitlines()
                                      if line and not line.startswith("#"))]
    ion = np.array([int(r["ion"]) for r in rows])
    rad, stark, vdw = _default_damping(ion)

    def col(name: str, default: np.ndarray) -> np.ndarray:
        return np.array([float(r[name]) if r[name].strip() else d
                         for r, d in zip(rows, default, strict=True)])

    species = np.array([ph.SPECIES_INDEX[r["species"]] for r in rows])
    return LineList(
        wave=air_to_vacuum(np.array([float(r["wave_air"]) for r in rows])),
        species=species,
        chi=np.array([float(r["chi"]) for r in rows]),
        log_gf=np.array([float(r["log_gf"]) for r in rows]),
        log_gamma_rad=col("log_gamma_rad", rad),
        log_gamma_stark=col("log_gamma_stark", stark),
        log_gamma_vdw=col("log_gamma_vdw", vdw),
        strong=np.array([r["strong"].strip() == "1" for r in rows]),
        element=np.array([r["element"] for r in rows], dtype=object),
        source=np.array(["csv"] * len(rows), dtype=object),
    )


# ------------------------------------------------------------------------------ hydrogen
@dataclass(frozen=True)
class HydrogenLines:
    """Hydrogen lines: lower and upper principal quantum numbers, vacuum wavelength
    (Angstrom), log gf and lower-level excitation (eV); arrays of shape (n_lines,)."""

    lower: np.ndarray
    upper: np.ndarray
    wave: np.ndarray
    log_gf: np.ndarray
    chi: np.ndarray

    def __len__(self) -> int:
        return int(self.wave.size)

    def select(self, keep: np.ndarray) -> HydrogenLines:
        return HydrogenLines(**{k: getattr(self, k)[keep] for k in self.__dataclass_fields__})


# f values of the lowest Balmer lines (NIST ASD).
_BALMER_F = {3: 0.64108, 4: 0.11938, 5: 0.044694, 6: 0.022105, 7: 0.012711, 8: 0.0080466,
             9: 0.0054428, 10: 0.0038543}


def _kramers_f(lower: int, upper: int) -> float:
    return (0.87 * 32.0 / (3.0 * np.sqrt(3.0) * np.pi) / (lower**5 * upper**3)
            / (1.0 / lower**2 - 1.0 / upper**2) ** 3)


FINE_STRUCTURE = 7.2973525693e-3
"""Fine-structure constant alpha (CODATA 2018)."""

MEASURED_HYDROGEN = {(2, 3): 6564.614, (2, 4): 4862.683, (2, 5): 4341.684, (2, 6): 4102.892,
                     (2, 7): 3971.195, (2, 8): 3890.151}
"""Measured vacuum wavelengths (A) of H-alpha to H8 (NIST ASD, gf-weighted over the
fine-structure components; the values of the SDSS line list)."""


def hydrogen_level(n: int) -> float:
    """Term value (cm^-1, negative = bound) of hydrogen level ``n``: the statistical-weight
    centroid of its fine-structure levels, ``-R_H / n^2 - R_H alpha^2 / n^3 (1 / (j + 1/2)
    - 3 / (4 n))`` (Dirac, to order alpha^2; the Lamb shift is < 0.01 cm^-1)."""
    j = np.arange(0.5, n, 1.0)
    # states of given j: the l = j - 1/2 and l = j + 1/2 (< n) levels, 2j + 1 each
    g = (2 * j + 1) * ((j - 0.5 < n).astype(float) + (j + 0.5 < n))
    term = -R_HYDROGEN / n**2 - R_HYDROGEN * FINE_STRUCTURE**2 / n**3 * (1 / (j + 0.5)
                                                                        - 0.75 / n)
    return float((g * term).sum() / g.sum())


def hydrogen_wavelength(lower: int, upper: int) -> float:
    """Vacuum wavelength (A) of the hydrogen line ``upper -> lower``: measured where
    :data:`MEASURED_HYDROGEN` has it, else from :func:`hydrogen_level`."""
    if (lower, upper) in MEASURED_HYDROGEN:
        return MEASURED_HYDROGEN[(lower, upper)]
    return 1e8 / (hydrogen_level(upper) - hydrogen_level(lower))


@lru_cache(maxsize=1)
def hydrogen_lines() -> HydrogenLines:
    """Balmer (n = 3-22 -> 2), Paschen (7-26 -> 3) and Brackett (10-30 -> 4) lines."""
    rows = []
    for lower, uppers in ((2, range(3, 23)), (3, range(7, 27)), (4, range(10, 31))):
        for upper in uppers:
            f = _BALMER_F[upper] if lower == 2 and upper in _BALMER_F else _kramers_f(lower,
                                                                                        upper)
            rows.append((lower, upper, hydrogen_wavelength(lower, upper),
                         np.log10(2 * lower**2 * f), 13.598 * (1.0 - 1.0 / lower**2)))
    arr = np.array(rows)
    return HydrogenLines(lower=arr[:, 0].astype(int), upper=arr[:, 1].astype(int),
                         wave=arr[:, 2], log_gf=arr[:, 3], chi=arr[:, 4])


# ------------------------------------------------------------------------------ molecules
@dataclass(frozen=True)
class _State:
    """An electronic state: term energy ``t_e`` (cm^-1), Dunham coefficients
    ``E(v, J) = sum Y_kl (v + 1/2)^k [J (J + 1)]^l`` (cm^-1, keyed by (k, l)), spin-orbit
    constant ``a_so`` (cm^-1) and Lambda."""

    t_e: float
    dunham: dict
    a_so: float = 0.0
    lam: int = 0

    def _series(self, l_power: int, v: int) -> float:
        return float(sum(c * (v + 0.5) ** k for (k, ll_), c in self.dunham.items()
                         if ll_ == l_power))

    def g(self, v: int) -> float:
        """Vibrational term G(v) (cm^-1)."""
        return self._series(0, v)

    def b(self, v: int) -> float:
        """Rotational constant B_v (cm^-1)."""
        return self._series(1, v)

    def d(self, v: int) -> float:
        """Centrifugal distortion D_v (cm^-1, positive)."""
        return -self._series(2, v)

    def h(self, v: int) -> float:
        """Sextic distortion H_v (cm^-1)."""
        return self._series(3, v)


def _simple(t_e: float, w_e: float, wx_e: float, b_e: float, alpha_e: float, d_e: float,
            a_so: float = 0.0, lam: int = 0) -> _State:
    """A state from the usual omega_e, omega_e x_e, B_e, alpha_e, D_e (Huber & Herzberg)."""
    return _State(t_e, {(1, 0): w_e, (2, 0): -wx_e, (0, 1): b_e, (1, 1): -alpha_e,
                        (0, 2): -d_e}, a_so, lam)


# CO X 1Sigma+: the Dunham coefficients of Guelachvili et al. (1983, J. Mol. Spectrosc. 98,
# 64), from laboratory lines up to v = 40; they give the measured band origins (3-0:
# 6350.440 cm^-1) and the band heads of the second overtone that APOGEE sees (6-3 at
# 16,188.9 A vacuum). OH X 2Pi: omega_e y_e, omega_e z_e, gamma_e and the higher terms of
# Huber & Herzberg (1979) / the NIST diatomic tables, with them the first-overtone band
# origins agree with the measured ones (1-0: 3569.6 cm^-1). Without the omega_e y_e term
# (as before) OH lines landed 15-136 A and CO heads 1-17 A too red. The other states keep
# Huber & Herzberg's omega_e, omega_e x_e, B_e, alpha_e and D_e (band positions to a few A).
_STATES = {
    "CO X": _State(0.0, {
        (1, 0): 2169.813079, (2, 0): -13.28790587, (3, 0): 1.041444739e-2,
        (4, 0): 6.921598529e-5, (5, 0): 1.657890319e-7, (6, 0): 2.466226718e-9,
        (7, 0): -8.630071431e-10, (8, 0): 1.261536024e-11,
        (0, 1): 1.931280862, (1, 1): -1.750410135e-2, (2, 1): 5.422101371e-7,
        (3, 1): 1.311844382e-8, (4, 1): 1.401093703e-9,
        (0, 2): -6.120747566e-6, (1, 2): 9.449843093e-10, (2, 2): -1.430768382e-10,
        (0, 3): 5.335386989e-12}),
    "OH X": _State(0.0, {
        (1, 0): 3737.761, (2, 0): -84.8813, (3, 0): 0.540, (4, 0): -0.028,
        (0, 1): 18.910, (1, 1): -0.7242, (2, 1): 0.0171, (3, 1): -0.0008,
        (0, 2): -1.938e-3, (1, 2): 4.25e-5}, -139.21, 1),
    "CN X": _simple(0.0, 2068.59, 13.087, 1.8997, 0.01736, 6.4e-6),
    "CN A": _simple(9245.28, 1812.56, 12.60, 1.7151, 0.01708, 6.0e-6, -52.6, 1),
    "CN B": _simple(25752.0, 2163.9, 20.2, 1.9730, 0.023, 6.6e-6),
    "CH X": _simple(0.0, 2858.5, 63.02, 14.457, 0.534, 1.45e-3, 28.0, 1),
    "CH A": _simple(23189.8, 2930.7, 96.65, 14.934, 0.697, 1.55e-3, -1.1, 2),
    "MgH X": _simple(0.0, 1495.20, 31.889, 5.8257, 0.1859, 3.5e-4),
    "MgH A": _simple(19286.4, 1598.0, 32.0, 6.1913, 0.2634, 3.6e-4, 35.0, 1),
}

# Bands: molecule, upper state, lower state, list of (v', v''), log10 band f value,
# spin doublet (two sub-bands) and Lambda doubling (cm^-1 per J) for OH. Every band runs
# up to the J where the lower level's rotational energy reaches E_ROT_MAX or the
# molecule's dissociation energy (a band cut off at a fixed J where its lines are still
# visible would end in an artificial step, as the CH G band did at 4,420 A).
_BANDS = [
    ("CO", "CO X", "CO X", [(v + 3, v) for v in range(0, 8)], -8.4, False, 0.0),
    ("OH", "OH X", "OH X", [(v + 2, v) for v in range(0, 5)], -5.05, True, 0.08),
    ("CN", "CN A", "CN X", [(v - 1, v) for v in range(1, 7)], -3.05, True, 0.0),
    ("CN", "CN A", "CN X", [(v + 1, v) for v in range(0, 5)], -2.75, True, 0.0),
    ("CN", "CN A", "CN X", [(v + 2, v) for v in range(0, 5)], -3.2, True, 0.0),
    ("CN", "CN A", "CN X", [(v + 3, v) for v in range(0, 4)], -3.8, True, 0.0),
    ("CN", "CN B", "CN X", [(v, v) for v in range(0, 4)], -1.55, False, 0.0),
    ("CN", "CN B", "CN X", [(v, v + 1) for v in range(0, 4)], -2.25, False, 0.0),
    ("CH", "CH A", "CH X", [(0, 0), (1, 1), (2, 2)], -1.75, True, 0.0),
    ("MgH", "MgH A", "MgH X", [(0, 0), (1, 1), (0, 1)], -1.55, True, 0.0),
]

E_ROT_MAX = 40_000.0
"""Largest lower-level rotational energy (cm^-1) of the molecular lines: 10 kT at 5,750 K,
where the Boltzmann factor (4.5e-5) leaves even the strongest bands' lines invisible."""


def _j_max(state: _State, v: int, molecule: str) -> int:
    """Highest J of the lower level (v, J) below E_ROT_MAX and the dissociation energy."""
    cap = min(E_ROT_MAX, ph.MOLECULES[molecule][0] * ph.EV_CM - state.g(v) + state.g(0))
    j = np.arange(0, 400) + (0.5 if state.lam else 0.0)
    e = _rot(state, v, j, 1 if state.lam else 0) - _rot(state, v, j[:1], 1 if state.lam else 0)
    rising = np.concatenate([[True], np.diff(e) > 0])
    return int(np.nonzero((e < cap) & np.cumprod(rising).astype(bool))[0][-1])


def _g(state: _State, v: int) -> float:
    return state.g(v)


def _rot(state: _State, v: int, j: np.ndarray, component: int) -> np.ndarray:
    """Rotational term values (cm^-1) of a vibrational level, J array, spin component."""
    b, d, lam = state.b(v), state.d(v), state.lam
    if lam == 0:   # 1Sigma: N = J; 2Sigma: N = J -/+ 1/2 for the F1 / F2 components
        n = j if component == 0 else (j - 0.5 if component == 1 else j + 0.5)
        nn = n * (n + 1)
        return b * nn - d * nn**2 + state.h(v) * nn**3
    y = state.a_so / b
    x = (j + 0.5) ** 2
    root = np.sqrt(np.maximum(4 * x + y * (y - 4) * lam**2, 0.0))
    sign = -1.0 if component == 1 else 1.0
    return b * (x - lam**2 + sign * 0.5 * root) - d * x**2


def _band_lines(upper: _State, lower: _State, vu: int, vl: int, jmax: int, doublet: bool,
                lambda_doubling: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wavenumbers (cm^-1), lower-level energies (cm^-1) and Hoenl-London factors."""
    lam_u, lam_l = upper.lam, lower.lam
    half = 0.5 if (doublet or lam_u or lam_l) else 0.0
    components = (1, 2) if doublet else (0,)
    branches = [(-1, "P"), (1, "R")]
    if lam_u != lam_l:
        branches.append((0, "Q"))
    nu, elow, hl = [], [], []
    e0 = _g(lower, 0) + np.min(_rot(lower, 0, np.array([max(lam_l, 0) + half]),
                                    components[0]))
    for comp in components:
        jl = np.arange(0, jmax + 1) + half
        jl = jl[jl >= lam_l + half]
        f_l = _g(lower, vl) + _rot(lower, vl, jl, comp)
        for dj, name in branches:
            ju = jl + dj
            ok = ju >= lam_u + half
            f_u = upper.t_e + _g(upper, vu) + _rot(upper, vu, ju[ok], comp)
            s = {"P": jl[ok], "R": jl[ok] + 1, "Q": 2 * jl[ok] + 1}[name]
            if lam_u != lam_l:
                s = s / 2.0
            nu.append(f_u - f_l[ok])
            elow.append(f_l[ok] - e0)
            hl.append(s / len(components))
            if lambda_doubling:
                split = lambda_doubling * jl[ok]
                nu[-1] = np.concatenate([nu[-1] - split / 2, nu[-1] + split / 2])
                elow[-1] = np.concatenate([elow[-1], elow[-1]])
                hl[-1] = np.concatenate([hl[-1], hl[-1]]) / 2
    return np.concatenate(nu), np.concatenate(elow), np.concatenate(hl)


@lru_cache(maxsize=1)
def molecular_lines() -> LineList:
    """Rotational lines of the CO, OH, CN, CH and MgH bands (vacuum wavelengths)."""
    parts = []
    for mol, up, lo, bands, log_f, doublet, ld in _BANDS:
        for vu, vl in bands:
            jmax = _j_max(_STATES[lo], vl, mol)
            nu, elow, hl = _band_lines(_STATES[up], _STATES[lo], vu, vl, jmax, doublet, ld)
            if mol == "CO":   # second-overtone matrix elements grow with v
                log_fb = log_f + np.log10((vl + 1) * (vl + 2) * (vl + 3) / 6.0)
            elif mol == "OH":
                log_fb = log_f + np.log10((vl + 1) * (vl + 2) / 2.0)
            else:
                log_fb = log_f
            good = (nu > 0) & (hl > 0)
            n = int(good.sum())
            rad, stark, vdw = _default_damping(np.zeros(n), np.ones(n, dtype=bool))
            a, b = ph.MOLECULES[mol][6:8]
            parts.append(LineList(
                wave=1e8 / nu[good], species=np.full(n, ph.SPECIES_INDEX[mol]),
                chi=elow[good] / ph.EV_CM, log_gf=log_fb + np.log10(hl[good]),
                log_gamma_rad=rad, log_gamma_stark=stark, log_gamma_vdw=vdw,
                strong=np.zeros(n, dtype=bool),
                element=np.array([f"{a}+{b}"] * n, dtype=object),
                source=np.array([mol] * n, dtype=object)))
    return LineList.concat(parts)


# ------------------------------------------------------------------------------ forest
_FOREST_REGIONS = {
    # name: (lo, hi, lines per Angstrom at 5000 A, power p of the density ~ lambda^-p
    # (p = 0: flat),
    # species weights (neutral unless 'II')); excitation ranges by species group below.
    "optical": (3450.0, 10150.0, 4.5, 4.0, {
        "Fe I": 0.40, "Ti I": 0.07, "Cr I": 0.06, "Ni I": 0.07, "Ca I": 0.04, "V I": 0.03,
        "Mn I": 0.03, "Co I": 0.03, "Si I": 0.03, "Mg I": 0.02, "Na I": 0.01, "Al I": 0.01,
        "Fe II": 0.09, "Ti II": 0.05, "Cr II": 0.02}),
    "infrared": (14400.0, 17900.0, 0.55, 0.0, {
        "Fe I": 0.45, "Si I": 0.10, "Mg I": 0.05, "Ti I": 0.05, "Ni I": 0.07, "Ca I": 0.04,
        "Cr I": 0.03, "Mn I": 0.02, "Co I": 0.02, "V I": 0.02, "C I": 0.04, "Al I": 0.01,
        "Na I": 0.01, "K I": 0.01, "S I": 0.02, "Fe II": 0.01}),
}


def _forest_chi(rng: np.random.Generator, species: list[str], infrared: bool) -> np.ndarray:
    chi = np.empty(len(species))
    for i, s in enumerate(species):
        el, stage = s.split()
        if el == "C":
            chi[i] = rng.uniform(7.5, 10.0)
        elif el == "S":
            chi[i] = rng.uniform(6.5, 8.5)
        elif stage == "II":
            chi[i] = rng.uniform(2.0, 6.0)
        elif el in ("Ti", "V", "Cr") and infrared:
            chi[i] = rng.uniform(1.5, 5.0)
        elif infrared:
            chi[i] = rng.uniform(3.0, 7.0)
        else:
            u = rng.uniform()
            chi[i] = (rng.uniform(0.0, 1.5) if u < 0.25 else
                      rng.uniform(1.5, 3.5) if u < 0.7 else rng.uniform(3.5, 5.5))
    return chi


@lru_cache(maxsize=1)
def forest_lines() -> LineList:
    """The seeded weak-line forest over 3,450-10,150 A and 14,400-17,900 A."""
    rng = np.random.default_rng(FOREST_SEED)
    sun = ph.atmosphere(np.array([5772.0]), np.array([4.438]), ph.A_SUN[None, :].copy())
    parts = []
    for name, (lo, hi, density, power, weights) in _FOREST_REGIONS.items():
        infrared = name == "infrared"
        if power == 0.0:
            n = rng.poisson(density * (hi - lo))
            wave = rng.uniform(lo, hi, n)
        else:   # density ~ lambda^-p: inverse-CDF sampling
            q = 1.0 - power
            n = rng.poisson(density * 5000.0**power * (lo**q - hi**q) / -q)
            u = rng.uniform(size=n)
            wave = (lo**q - u * (lo**q - hi**q)) ** (1.0 / q)
        names = list(weights)
        p = np.array([weights[k] for k in names])
        species = [names[i] for i in rng.choice(len(names), size=n, p=p / p.sum())]
        chi = _forest_chi(rng, species, infrared)
        # central optical depth in the Sun: many weak lines, few saturated ones
        a, b = FOREST_LOG_TAU[name]
        log_tau_sun = a + b * rng.beta(1.3, 2.4, size=n)
        sp_idx = np.array([ph.SPECIES_INDEX[s] for s in species])
        ion = np.array([1 if s.endswith("II") else 0 for s in species])
        rad, stark, vdw = _default_damping(ion)
        base = LineList(wave=np.sort(wave), species=sp_idx, chi=chi, log_gf=np.zeros(n),
                        log_gamma_rad=rad, log_gamma_stark=stark, log_gamma_vdw=vdw,
                        strong=np.zeros(n, dtype=bool),
                        element=np.array([s.split()[0] for s in species], dtype=object),
                        source=np.array(["forest"] * n, dtype=object))
        log_s0 = ph.line_log_strength_single(sun, base, vmicro=1.0)
        parts.append(LineList(**{**base.__dict__, "log_gf": log_tau_sun - log_s0}))
    return LineList.concat(parts)


def full_linelist() -> LineList:
    """Atomic, molecular and forest lines together (vacuum wavelengths)."""
    return LineList.concat([atomic_lines(), molecular_lines(), forest_lines()])
