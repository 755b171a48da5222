"""Stellar-atmosphere physics for the synthetic spectra (one representative layer per star).

The model is a single "line-forming layer" per star: a grey Eddington atmosphere gives its
temperature ``T = T_LAYER * Teff`` (optical depth ``TAU_LAYER``), hydrostatic equilibrium with
the continuum opacity gives its gas pressure, and charge conservation over all elements
gives its electron pressure (solved by bisection). In that layer:

* ionisation of every element follows Saha (three stages), level populations Boltzmann;
* the continuum opacity is H- bound-free and free-free, neutral hydrogen bound-free and
  free-free and Thomson scattering (formulae of Gray, *The Observation and Analysis of
  Stellar Photospheres*, 3rd ed., ch. 8), so that H- dominates cool stars and hydrogen
  and electron scattering dominate hot ones;
* molecules follow dissociation equilibrium with ``K_p = P_A P_B / P_AB`` from
  rigid-rotor / harmonic-oscillator partition functions: hydrogen with H2 (solved together
  with the electron pressure and the hydrostatic pressure: H2 takes H atoms from the H-
  opacity and particles from the gas), then C, N, O and Mg with CO, CN, CH, OH, MgH, N2
  and H2O by Newton iteration, so that every nucleus is counted once (atoms, ions and
  molecules add up to the element's abundance). Stars cooler than the generator's
  ``TEFF_MIN`` / ``TEFF_MIN_DWARF`` are refused: their TiO, VO, H2O and FeH bands are not
  modelled;
* a line's integrated optical depth in velocity units (km/s) is
  ``S = TAU_REF * (pi e^2 / m_e c) gf lambda (n_lower / N_H) (1 - exp(-h nu / kT)) / kappa_c``
  with ``kappa_c`` the continuum opacity per hydrogen nucleus at the line's wavelength.

This reproduces the textbook behaviour that survey labels rely on: neutral lines of mostly
ionised elements are nearly gravity independent, lines of ions and pressure-broadened
wings depend on log g, hydrogen lines peak near 9,500 K, molecules disappear in hot stars.

Units: temperature K, pressure dyn cm^-2, wavelength Angstrom, velocity km/s, energies eV.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ELEMENTS",
    "MOLECULES",
    "Atmosphere",
    "atmosphere",
    "continuum_opacity",
    "doppler_cog",
]

# -------------------------------------------------------------------------- constants
K_EV = 8.617333262e-5          # Boltzmann constant, eV / K
K_CGS = 1.380649e-16           # erg / K
M_U = 1.66053907e-24           # atomic mass unit, g
H_CGS = 6.62607015e-27         # erg s
C_CMS = 2.99792458e10          # cm / s
HC_EV_A = 12398.4198           # h c in eV Angstrom
HC_K_CM = 1.438777             # h c / k in cm K (second radiation constant)
SIGMA_T = 6.6524587e-25        # Thomson cross-section, cm^2
PI_E2_MC = 0.0265400           # pi e^2 / (m_e c), cm^2 s^-1
EV_CM = 8065.544               # cm^-1 per eV
LOG_E = np.log10(np.e)

TAU_LAYER = 0.2
"""Continuum optical depth (at 5,000 A) of the representative line-forming layer."""
T_LAYER = (0.75 * (TAU_LAYER + 2.0 / 3.0)) ** 0.25
"""Grey Eddington temperature of that layer in units of Teff (about 0.90)."""

# Element data: mass (u), solar log eps (Asplund et al. 2009, ARA&A 47, 481), first and
# second ionisation energies (eV, NIST ASD), log10 partition functions of stages I, II, III
# near 5,000-6,000 K (Gray 2005, appendix D; rounded, held constant with temperature).
ELEMENTS: dict[str, tuple[float, float, float, float, float, float, float]] = {
    #      mass    A_sun  chi1    chi2    logU1  logU2  logU3
    "H":  (1.008, 12.00, 13.598, 0.0, 0.30, 0.00, 0.00),
    "He": (4.003, 10.93, 24.587, 54.418, 0.00, 0.30, 0.00),
    "C":  (12.011, 8.43, 11.260, 24.383, 0.97, 0.78, 0.00),
    "N":  (14.007, 7.83, 14.534, 29.601, 0.61, 0.95, 0.78),
    "O":  (15.999, 8.69, 13.618, 35.121, 0.94, 0.60, 0.95),
    "Na": (22.990, 6.24, 5.139, 47.286, 0.31, 0.00, 0.78),
    "Mg": (24.305, 7.60, 7.646, 15.035, 0.01, 0.31, 0.00),
    "Al": (26.982, 6.45, 5.986, 18.829, 0.77, 0.00, 0.30),
    "Si": (28.086, 7.51, 8.152, 16.346, 0.98, 0.76, 0.00),
    "S":  (32.065, 7.12, 10.360, 23.338, 0.95, 0.60, 0.95),
    "K":  (39.098, 5.03, 4.341, 31.625, 0.34, 0.00, 0.78),
    "Ca": (40.078, 6.34, 6.113, 11.872, 0.07, 0.34, 0.00),
    "Ti": (47.867, 4.95, 6.828, 13.576, 1.50, 1.75, 1.47),
    "V":  (50.942, 3.93, 6.746, 14.618, 1.55, 1.50, 1.40),
    "Cr": (51.996, 5.64, 6.767, 16.486, 1.03, 0.86, 1.40),
    "Mn": (54.938, 5.43, 7.434, 15.640, 0.81, 0.89, 0.78),
    "Fe": (55.845, 7.50, 7.902, 16.199, 1.40, 1.60, 1.40),
    "Co": (58.933, 4.99, 7.881, 17.084, 1.52, 1.46, 1.45),
    "Ni": (58.693, 6.22, 7.640, 18.169, 1.47, 1.02, 1.45),
    "Sr": (87.620, 2.87, 5.695, 11.030, 0.00, 0.30, 0.00),
    "Ba": (137.327, 2.18, 5.212, 10.004, 0.36, 0.62, 0.00),
}
ELEMENT_NAMES: tuple[str, ...] = tuple(ELEMENTS)
EL_INDEX = {name: i for i, name in enumerate(ELEMENT_NAMES)}
_EL = np.array(list(ELEMENTS.values()), dtype=np.float64)
MASS = _EL[:, 0]
A_SUN = _EL[:, 1]
CHI1 = _EL[:, 2]
CHI2 = _EL[:, 3]
LOGU = _EL[:, 4:7]

# Diatomic molecules: dissociation energy D0 (eV), reduced mass (u), ground-state B_e and
# omega_e (cm^-1), electronic degeneracy, symmetry number, constituent atoms
# (Huber & Herzberg 1979, NIST Chemistry WebBook).
MOLECULES: dict[str, tuple[float, float, float, float, float, float, str, str]] = {
    "CO":  (11.092, 6.8562, 1.9313, 2169.81, 1.0, 1.0, "C", "O"),
    "CN":  (7.72, 6.4643, 1.8997, 2068.59, 2.0, 1.0, "C", "N"),
    "OH":  (4.392, 0.9481, 18.911, 3737.76, 4.0, 1.0, "O", "H"),
    "CH":  (3.465, 0.9298, 14.457, 2858.50, 4.0, 1.0, "C", "H"),
    "MgH": (1.34, 0.9667, 5.8257, 1495.20, 2.0, 1.0, "Mg", "H"),
    "N2":  (9.759, 7.0034, 1.9982, 2358.57, 1.0, 2.0, "N", "N"),
    "H2":  (4.478, 0.50397, 60.853, 4401.21, 1.0, 2.0, "H", "H"),
}
NETWORK = ("C", "N", "O", "Mg")
"""Elements whose free-atom pressures the molecular equilibrium solves for (hydrogen is
solved first, with H2; every other element is taken as atoms and ions only)."""

# H2O (as a sink of oxygen; it has no lines here): atomisation energy D0(H-OH) + D0(OH)
# (eV), rotational constants A, B, C and the three fundamentals (cm^-1), symmetry number
# (NIST Chemistry WebBook / CCCBDB).
_H2O = (9.511, (27.881, 14.509, 9.278), (3657.05, 1594.75, 3755.93), 2.0)
MOLECULE_NAMES: tuple[str, ...] = tuple(MOLECULES)

# Species = (element, ionisation stage) or molecule; lines refer to them by index.
SPECIES: tuple[str, ...] = tuple(
    [f"{el} {stage}" for el in ELEMENT_NAMES for stage in ("I", "II", "III")]
    + list(MOLECULE_NAMES))
SPECIES_INDEX = {name: i for i, name in enumerate(SPECIES)}
_N_ATOMIC_SPECIES = 3 * len(ELEMENT_NAMES)


def species_mass(name: str) -> float:
    """Mass (u) of a species, for thermal broadening."""
    if name in MOLECULES:
        a, b = MOLECULES[name][6:8]
        return float(ELEMENTS[a][0] + ELEMENTS[b][0])
    return float(ELEMENTS[name.split()[0]][0])


# -------------------------------------------------------------------------- continuum
_HM_BF = (1.99654, -1.18267e-5, 2.64243e-6, -4.40524e-10, 3.23992e-14, -1.39568e-18,
          2.78701e-23)   # Gray eq. 8.11, alpha_bf(H-) in 1e-18 cm^2, lambda in Angstrom


def _hminus_bf_cross(wave: np.ndarray) -> np.ndarray:
    w = np.asarray(wave, dtype=np.float64)
    alpha = np.zeros_like(w)
    for k, a in enumerate(_HM_BF):
        alpha = alpha + a * w ** k
    return np.where(w < 16_419.0, np.clip(alpha, 0.0, None), 0.0) * 1e-18


def _hminus_ff_coeffs(wave: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lw = np.log10(np.asarray(wave, dtype=np.float64))
    f0 = -2.2763 - 1.6850 * lw + 0.76661 * lw**2 - 0.053346 * lw**3
    f1 = 15.2827 - 9.2846 * lw + 1.99381 * lw**2 - 0.142631 * lw**3
    f2 = (-197.789 + 190.266 * lw - 67.9775 * lw**2 + 10.6913 * lw**3
          - 0.625151 * lw**4)
    return f0, f1, f2


def continuum_opacity(theta: np.ndarray, log_pe: np.ndarray, frac_h0: np.ndarray,
                      ne_per_h: np.ndarray, wave: np.ndarray) -> np.ndarray:
    """Continuum opacity per hydrogen nucleus (cm^2), shape (n_stars, n_wave).

    Parameters
    ----------
    theta : (n_stars,) 5040 / T.
    log_pe : (n_stars,) log10 electron pressure (dyn cm^-2).
    frac_h0 : (n_stars,) neutral fraction of hydrogen.
    ne_per_h : (n_stars,) free electrons per hydrogen nucleus.
    wave : (n_wave,) wavelength in Angstrom (vacuum).
    """
    th = np.asarray(theta, dtype=np.float64)[:, None]
    pe = 10.0 ** np.asarray(log_pe, dtype=np.float64)[:, None]
    w = np.asarray(wave, dtype=np.float64)[None, :]
    chi_lam = HC_EV_A / w
    stim = 1.0 - 10.0 ** (-th * chi_lam)
    # H- bound-free and free-free (Gray eqs. 8.12, 8.13), per neutral H atom.
    k_hbf = 4.158e-10 * _hminus_bf_cross(w) * pe * th**2.5 * 10.0 ** (0.754 * th) * stim
    f0, f1, f2 = _hminus_ff_coeffs(w)
    lth = np.log10(th)
    k_hff = 1e-26 * pe * 10.0 ** (f0 + f1 * lth + f2 * lth**2)
    # Neutral hydrogen bound-free from levels n0..n0+2 plus an integral for the rest, and
    # free-free (Gray eq. 8.8 and 8.10 with Gaunt factors 1), per neutral H atom.
    alpha0 = 1.0449e-26 * w**3
    n0 = np.floor(np.sqrt(w / 911.75)).astype(int) + 1
    k_h = np.zeros(np.broadcast_shapes(th.shape, w.shape))
    for dn in range(3):
        n = n0 + dn
        chi_n = 13.598 * (1.0 - 1.0 / n**2)
        k_h = k_h + alpha0 / n**3 * 10.0 ** (-th * chi_n)
    chi_n3 = 13.598 * (1.0 - 1.0 / (n0 + 3) ** 2)
    k_h = k_h + alpha0 * LOG_E / (2 * th * 13.598) * (10.0 ** (-th * chi_n3)
                                                      - 10.0 ** (-th * 13.598))
    k_h = k_h * stim + alpha0 * LOG_E / (2 * th * 13.598) * 10.0 ** (-th * 13.598)
    h0 = np.asarray(frac_h0, dtype=np.float64)[:, None]
    return h0 * (k_hbf + k_hff + k_h) + SIGMA_T * np.asarray(ne_per_h)[:, None]


# -------------------------------------------------------------------------- atmosphere
class Atmosphere:
    """The line-forming layer of a batch of stars (arrays of shape (n_stars, ...))."""

    __slots__ = (
        "frac",
        "log_kappa_5000",
        "log_n_e",
        "log_n_h0",
        "log_pe",
        "log_ph",
        "log_species",
        "ne_per_h",
        "t",
        "t_scale",
        "theta",
    )

    def __init__(self, **kw: np.ndarray) -> None:
        for k, v in kw.items():
            setattr(self, k, v)


def _saha_log_phi(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log10 Saha Phi (dyn cm^-2) for I->II and II->III, shape (n_stars, n_elements)."""
    lt = np.log10(t)[:, None]
    th = (5039.77 / t)[:, None]
    phi1 = LOGU[:, 1] - LOGU[:, 0] - 0.1762 + 2.5 * lt - th * CHI1
    phi2 = np.where(CHI2 > 0, LOGU[:, 2] - LOGU[:, 1] - 0.1762 + 2.5 * lt - th * CHI2, -99.0)
    return phi1, phi2


def log_molecule_partition(name: str, t: np.ndarray) -> np.ndarray:
    """log10 of the rigid-rotor, harmonic-oscillator partition function of a molecule."""
    _, _, b_e, w_e, g_el, sym, _, _ = MOLECULES[name]
    u_rot = t / (HC_K_CM * b_e) / sym
    u_vib = 1.0 / (1.0 - np.exp(-HC_K_CM * w_e / t))
    return np.log10(g_el * u_rot * u_vib)


def _log_kp(name: str, t: np.ndarray) -> np.ndarray:
    """log10 dissociation constant K_p = P_A P_B / P_AB (dyn cm^-2) of a molecule."""
    d0, mu, _, _, _, _, a, b = MOLECULES[name]
    kt = K_CGS * t
    trans = 1.5 * np.log10(2 * np.pi * mu * M_U * kt / H_CGS**2) + np.log10(kt)
    log_ua = LOGU[EL_INDEX[a], 0]
    log_ub = LOGU[EL_INDEX[b], 0]
    return trans + log_ua + log_ub - log_molecule_partition(name, t) - 5039.77 * d0 / t


def _log_kp_h2o(t: np.ndarray) -> np.ndarray:
    """log10 K_p = P_H^2 P_O / P_H2O (dyn^2 cm^-4) of water (rigid asymmetric top,
    harmonic vibrations)."""
    d0, (a, b, c), freqs, sym = _H2O
    kt = K_CGS * t
    m_h, m_o = ELEMENTS["H"][0] * M_U, ELEMENTS["O"][0] * M_U
    trans = 1.5 * np.log10((2 * np.pi * kt / H_CGS**2) ** 2 * (m_h * m_h * m_o
                                                                 / (2 * m_h + m_o)))
    u_rot = np.sqrt(np.pi) / sym * (t / HC_K_CM) ** 1.5 / np.sqrt(a * b * c)
    u_vib = np.prod([1.0 / (1.0 - np.exp(-HC_K_CM * w / t)) for w in freqs], axis=0)
    return (trans + 2 * np.log10(kt) + 2 * LOGU[EL_INDEX["H"], 0] + LOGU[EL_INDEX["O"], 0]
            - np.log10(u_rot * u_vib) - 5039.77 * d0 / t)


def _free_hydrogen(p_h: np.ndarray, ion_h: np.ndarray, kp_h2: np.ndarray) -> np.ndarray:
    """Pressure of free neutral H atoms (dyn cm^-2) given the pressure of all hydrogen
    nuclei ``p_h``: the root of ``p (1 + ion_h) + 2 p^2 / K_H2 = p_h`` (ion_h = H+ / H)."""
    a = 2.0 / kp_h2
    b = 1.0 + ion_h
    return 2.0 * p_h / (b + np.sqrt(b * b + 4.0 * a * p_h))


# molecule -> atoms of NETWORK it contains (stoichiometry) and its H atoms
_NETWORK_MOLECULES = {"CO": {"C": 1, "O": 1}, "CN": {"C": 1, "N": 1}, "CH": {"C": 1},
                      "OH": {"O": 1}, "MgH": {"Mg": 1}, "N2": {"N": 2}, "H2O": {"O": 1}}
_N_HYDROGENS = {"CO": 0, "CN": 0, "CH": 1, "OH": 1, "MgH": 1, "N2": 0, "H2O": 2}


def molecular_equilibrium(p_total: np.ndarray, ion: np.ndarray, p_hfree: np.ndarray,
                          log_kp: dict[str, np.ndarray], n_iter: int = 60
                          ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Free neutral-atom pressures of C, N, O, Mg and the molecules' partial pressures.

    Solves, for every star, the conservation of each element of :data:`NETWORK`:
    ``p_X (1 + ion_X) + sum_m nu_Xm p_m = p_total_X``, with ``p_m = prod p_atoms / K_m``
    (free H atoms ``p_hfree`` given), by Newton iteration in log pressure (damped, from
    all atoms free). Converges to 1e-10 relative in the conservation sums.

    Parameters
    ----------
    p_total : (n_stars, 4) pressure of all nuclei of C, N, O, Mg (dyn cm^-2).
    ion : (n_stars, 4) ions per neutral atom (Saha, both stages).
    p_hfree : (n_stars,) free neutral H atoms (dyn cm^-2).
    log_kp : log10 K_p per molecule of ``_NETWORK_MOLECULES``.

    Returns
    -------
    p_free : (n_stars, 4) free neutral-atom pressures; p_mol : molecule -> (n_stars,).
    """
    names = list(_NETWORK_MOLECULES)
    nu = np.array([[_NETWORK_MOLECULES[m].get(el, 0) for m in names] for el in NETWORK],
                  dtype=float)                                   # (4, n_mol)
    log_h = np.log(p_hfree)
    # ln p_m = nu . y + const_m with const = n_H ln p_H - ln K
    const = np.stack([_N_HYDROGENS[m] * log_h - np.log(10.0) * log_kp[m] for m in names],
                     axis=1)                                     # (n, n_mol)
    a = 1.0 + ion
    y = np.log(p_total / a)
    for _ in range(n_iter):
        p = np.exp(y)
        pm = np.exp(np.clip(y @ nu + const, -700.0, 700.0))       # (n, n_mol)
        resid = p * a + pm @ nu.T - p_total
        jac = (np.einsum("jm,km,nm->njk", nu, nu, pm)
               + np.einsum("jk,nj->njk", np.eye(len(NETWORK)), p * a))
        step = np.linalg.solve(jac, -resid[..., None])[..., 0]
        y = y + np.clip(step, -2.0, 2.0)
        if np.all(np.abs(resid) <= 1e-10 * p_total):
            break
    p = np.exp(y)
    pm = np.exp(y @ nu + const)
    return p, {m: pm[:, i] for i, m in enumerate(names)}


def atmosphere(teff: np.ndarray, logg: np.ndarray, log_eps: np.ndarray, *,
               tau: float = TAU_LAYER) -> Atmosphere:
    """Solve the line-forming layer of each star.

    Parameters
    ----------
    teff, logg : (n_stars,) effective temperature (K) and log10 surface gravity (cgs).
    log_eps : (n_stars, n_elements) abundances log10(N_X / N_H) + 12 in ELEMENT_NAMES order.
    tau : float
        Continuum optical depth (5,000 A) of the layer; its temperature is the grey
        Eddington ``T = Teff (3/4 (tau + 2/3))^(1/4)``.

    Returns
    -------
    Atmosphere with ``t`` (K), ``theta`` (5040/T), ``log_pe``, ``log_ph`` (hydrogen-nuclei
    pressure), ``frac`` ((n, n_el, 3) share of each element's nuclei that are free atoms
    in stage I, II, III: the rest is in molecules), ``ne_per_h``, ``log_n_e``,
    ``log_n_h0`` (number densities, cm^-3), ``log_species`` ((n, n_species)
    log10 of number per hydrogen nucleus minus log10 of the partition function).
    """
    teff = np.asarray(teff, dtype=np.float64)
    g = 10.0 ** np.asarray(logg, dtype=np.float64)
    t = (0.75 * (tau + 2.0 / 3.0)) ** 0.25 * teff
    theta = 5039.77 / t
    abund = 10.0 ** (np.asarray(log_eps, dtype=np.float64) - 12.0)
    abund[:, EL_INDEX["H"]] = 1.0
    mu = abund @ MASS * M_U                       # mass per H nucleus, g
    nuclei = abund.sum(axis=1)
    phi1, phi2 = _saha_log_phi(t)
    p1, p2 = 10.0**phi1, 10.0**phi2
    # continuum opacity at 5,000 A per neutral H atom = k_pe * Pe + k_0 (T only), plus
    # Thomson scattering: evaluated once, outside the iteration
    w5000 = np.array([5000.0])
    zero = np.zeros_like(t)
    k_0 = continuum_opacity(theta, np.full_like(t, -np.inf), np.ones_like(t), zero, w5000)[:, 0]
    k_pe = continuum_opacity(theta, zero, np.ones_like(t), zero, w5000)[:, 0] - k_0
    # only elements that can matter for the electron budget (abundance > 1e-9 of H)
    donors = np.nonzero((abund > 1e-9).any(axis=0))[0]
    ab_d, p1_d, p2_d = abund[:, donors], p1[:, donors], p2[:, donors]

    h_col = int(np.nonzero(donors == EL_INDEX["H"])[0][0])
    kp_h2 = 10.0 ** _log_kp("H2", t)

    def implied(log_pe: np.ndarray, h2: np.ndarray) -> tuple[np.ndarray, ...]:
        """Electron pressure implied by hydrostatic equilibrium at a trial log Pe, with
        a fraction ``h2`` of the hydrogen nuclei in H2 (fewer particles, fewer H atoms)."""
        pe = 10.0**log_pe
        r1 = p1_d / pe[:, None]
        r2 = r1 * p2_d / pe[:, None]
        f0 = 1.0 / (1.0 + r1 + r2)
        atomic = np.ones_like(f0)
        atomic[:, h_col] = 1.0 - h2
        ne = (ab_d * atomic * (r1 + 2 * r2) * f0).sum(axis=1)
        kappa = (1.0 - h2) * f0[:, h_col] * (k_pe * pe + k_0) + SIGMA_T * ne
        p_h = tau * g * mu / kappa / (nuclei - 0.5 * h2 + ne)
        return np.log10(ne * p_h), p_h, ne, kappa, r1[:, h_col]

    # the electron pressure, alternated with the H2 fraction it implies: each root of
    # log Pe = implied(log Pe) by bisection to 0.01 dex, then the Illinois variant of regula
    # falsi (bracketing, superlinear); the H2 fixed point is accelerated by secant steps
    def root(lo: np.ndarray, hi: np.ndarray, h2: np.ndarray) -> np.ndarray:
        for _ in range(int(np.ceil(np.log2(np.max(hi - lo) / 1e-2)))):
            mid = 0.5 * (lo + hi)
            too_high = mid > implied(mid, h2)[0]
            hi = np.where(too_high, mid, hi)
            lo = np.where(too_high, lo, mid)
        f_lo, f_hi = lo - implied(lo, h2)[0], hi - implied(hi, h2)[0]
        side = np.zeros(lo.shape, dtype=int)
        for _ in range(10):
            x = hi - f_hi * (hi - lo) / np.where(f_hi != f_lo, f_hi - f_lo, 1.0)
            x = np.clip(x, lo, hi)
            f_x = x - implied(x, h2)[0]
            left = f_x < 0                                   # the root is above x
            f_hi = np.where(left & (side == 1), 0.5 * f_hi, f_hi)
            f_lo = np.where(~left & (side == -1), 0.5 * f_lo, f_lo)
            lo, f_lo = np.where(left, x, lo), np.where(left, f_x, f_lo)
            hi, f_hi = np.where(left, hi, x), np.where(left, f_hi, f_x)
            side = np.where(left, 1, -1)
            if np.all(np.abs(f_x) < 1e-12):
                break
        return np.where(np.abs(f_lo) < np.abs(f_hi), lo, hi)

    h2 = np.zeros_like(t)
    log_pe = root(np.full_like(t, -6.0), np.full_like(t, 7.0), h2)
    last_h2 = last_g = None
    for _ in range(20):
        _, p_h, ne, kappa, ion_h = implied(log_pe, h2)
        p_hfree = _free_hydrogen(p_h, ion_h, kp_h2)
        g_h2 = 2.0 * p_hfree**2 / kp_h2 / p_h            # the H2 fraction this Pe implies
        if np.all(np.abs(g_h2 - h2) < 1e-8):
            break
        step = g_h2 - h2
        if last_h2 is not None:
            dh = h2 - last_h2
            slope = np.where(np.abs(dh) > 1e-14, (g_h2 - last_g) / np.where(dh == 0, 1, dh),
                             0.0)
            step = step / (1.0 - np.clip(slope, -0.9, 0.9))
        last_h2, last_g = h2, g_h2
        h2 = np.clip(h2 + step, 0.0, 1.0 - 1e-12)
        lo, hi = log_pe - 0.1, log_pe + 0.1
        outside = (lo > implied(lo, h2)[0]) | (hi < implied(hi, h2)[0])
        log_pe = root(np.where(outside, -6.0, lo), np.where(outside, 7.0, hi), h2)
    p_hfree = _free_hydrogen(p_h, ion_h, kp_h2)
    h2 = 2.0 * p_hfree**2 / kp_h2 / p_h
    pe = 10.0**log_pe[:, None]
    r1 = p1 / pe
    r2 = r1 * p2 / pe
    f0 = 1.0 / (1.0 + r1 + r2)
    frac = np.stack([f0, r1 * f0, r2 * f0], axis=-1)
    log_ph = np.log10(p_h)
    kt = K_CGS * t

    # ---- molecules: every H, C, N, O and Mg nucleus counted once
    kp = {m: _log_kp(m, t) for m in MOLECULE_NAMES}
    kp["H2O"] = _log_kp_h2o(t)
    net = [EL_INDEX[el] for el in NETWORK]
    p_free, pmol = molecular_equilibrium(abund[:, net] * p_h[:, None],
                                         r1[:, net] * (1.0 + r2[:, net]), p_hfree, kp)
    pmol["H2"] = p_hfree**2 / 10.0 ** kp["H2"]
    # atomic fractions: the share of each element's nuclei in each stage as atoms
    atomic = np.ones((len(t), len(ELEMENT_NAMES)))
    atomic[:, EL_INDEX["H"]] = 1.0 - h2
    atomic[:, net] = p_free * (1.0 + r1[:, net] * (1.0 + r2[:, net])) / (abund[:, net]
                                                                         * p_h[:, None])
    frac = frac * atomic[:, :, None]

    # ---- species: log10(N_species / N_H nuclei) - log10 U
    tiny = 1e-300
    log_ab = np.log10(abund)
    log_atoms = (log_ab[:, :, None] + np.log10(np.maximum(frac, tiny)) - LOGU[None])
    n = len(t)
    log_sp = np.full((n, len(SPECIES)), -99.0)
    log_sp[:, :_N_ATOMIC_SPECIES] = log_atoms.reshape(n, -1)
    pn = {"H": p_hfree}
    for m in MOLECULE_NAMES:
        log_sp[:, SPECIES_INDEX[m]] = (np.log10(np.maximum(pmol[m], tiny)) - log_ph
                                       - log_molecule_partition(m, t))
    return Atmosphere(
        t=t, t_scale=(0.75 * (tau + 2.0 / 3.0)) ** 0.25, theta=theta, log_pe=log_pe,
        log_ph=log_ph, frac=frac, ne_per_h=ne,
        log_n_e=log_pe - np.log10(kt),
        log_n_h0=np.log10(np.maximum(pn["H"], tiny) / kt),
        log_species=log_sp, log_kappa_5000=np.log10(kappa),
    )


# -------------------------------------------------------------------------- curve of growth
def _doppler_cog_table() -> tuple[np.ndarray, np.ndarray]:
    """log10 of F(t) = integral of (1 - exp(-t exp(-x^2/2))) dx on a grid of log10 t."""
    log_t = np.arange(-8.0, 16.0001, 0.02)
    x = np.linspace(0.0, 9.0, 3601)
    dx = x[1] - x[0]
    prof = np.exp(-0.5 * x**2)
    out = np.empty_like(log_t)
    for i, lt in enumerate(log_t):
        y = -np.expm1(-(10.0**lt) * prof)
        out[i] = 2 * dx * (y.sum() - 0.5 * y[0] - 0.5 * y[-1])
    return log_t, np.log10(out)


_COG_LOG_T, _COG_LOG_F = _doppler_cog_table()
# the inverse on a uniform grid of log F, so that both directions are direct lookups
_INV_LOG_F = np.linspace(_COG_LOG_F[0], _COG_LOG_F[-1], 4001)
_INV_LOG_T = np.interp(_INV_LOG_F, _COG_LOG_F, _COG_LOG_T)
_HALF_LOG_2PI = 0.5 * np.log10(2 * np.pi)


def _uniform_interp(x: np.ndarray, x0: float, dx: float, y: np.ndarray) -> np.ndarray:
    """Linear interpolation in a table on the uniform grid x0 + dx * k (clamped)."""
    u = np.clip((x - x0) / dx, 0.0, y.size - 1.000001)
    k = u.astype(np.intp)
    frac = u - k
    return y[k] + frac * (y[k + 1] - y[k])


def doppler_cog(log_t: np.ndarray) -> np.ndarray:
    """log10 equivalent width / sigma of a Gaussian line of central optical depth 10**log_t."""
    lt = np.asarray(log_t)
    out = _uniform_interp(lt, _COG_LOG_T[0], _COG_LOG_T[1] - _COG_LOG_T[0], _COG_LOG_F)
    return np.where(lt < _COG_LOG_T[0], lt + _HALF_LOG_2PI, out)


def inverse_doppler_cog(log_f: np.ndarray) -> np.ndarray:
    """Inverse of :func:`doppler_cog`: log10 central optical depth from log10 EW / sigma."""
    lf = np.asarray(log_f)
    out = _uniform_interp(lf, _INV_LOG_F[0], _INV_LOG_F[1] - _INV_LOG_F[0], _INV_LOG_T)
    return np.where(lf < _INV_LOG_F[0], lf - _HALF_LOG_2PI, out)


# -------------------------------------------------------------------------- line strengths
TAU_REF = 0.8
"""Scale from the line-to-continuum opacity ratio to the line's optical depth, calibrated
(with :data:`starlearn.synth.generator.VDW_SCALE`) on 21 solar equivalent widths (Moore et
al. 1966) of Fe I, Ca I, Ca II, Mg I, Na I, K I, O I, Si I, Ni I and Ba II lines: rms 0.07 dex."""

_LOG_PI_E2_MC_KMS = np.log10(PI_E2_MC * 1e-8 / 1e5)   # wave in Angstrom -> cm, cm/s -> km/s


def effective_log_kappa(atm: Atmosphere, wave: np.ndarray) -> np.ndarray:
    """log10 of the continuum opacity per H nucleus divided by the source-function factor
    and by the stimulated-emission factor of the lines, shape (n_stars, n_wave).

    Weak-line depths scale as ``beta / (1 + beta)`` times the line-to-continuum opacity
    ratio (Milne-Eddington), with ``beta`` the logarithmic Planck-function gradient in the
    grey atmosphere at tau = 2/3: ``beta = (3 / 16) x / (1 - exp(-x))``, ``x = h c / (lambda
    k Teff)``. It weakens infrared lines relative to optical ones. The line opacity's
    stimulated-emission factor ``1 - exp(-h nu / k T)`` is smooth in wavelength and folded
    in here.
    """
    w = np.asarray(wave, dtype=np.float64)
    kc = continuum_opacity(atm.theta, atm.log_pe, atm.frac[:, 0, 0], atm.ne_per_h, w)
    teff = atm.t / atm.t_scale
    x = HC_EV_A / (w[None, :] * K_EV * teff[:, None])
    beta = 0.1875 * x / -np.expm1(-x)
    stim = -np.expm1(-HC_EV_A / (w[None, :] * K_EV * atm.t[:, None]))
    return np.log10(kc) - np.log10(beta / (1.0 + beta) * stim)


def line_log_strength(atm: Atmosphere, log_kappa: np.ndarray, species: np.ndarray,
                      chi: np.ndarray, log_gf: np.ndarray, wave: np.ndarray) -> np.ndarray:
    """log10 of each line's integrated optical depth S (km/s), shape (n_stars, n_lines).

    ``log_kappa`` is :func:`effective_log_kappa` at the lines, shape (n_stars, n_lines).
    """
    const = log_gf + np.log10(wave) + _LOG_PI_E2_MC_KMS + np.log10(TAU_REF)
    out = atm.log_species[:, species]
    out -= atm.theta[:, None] * chi[None, :]
    out -= log_kappa
    out += const[None, :]
    return out


def doppler_sigma(atm: Atmosphere, mass: np.ndarray, vmicro: np.ndarray) -> np.ndarray:
    """Gaussian sigma (km/s) of thermal plus microturbulent broadening, (n_stars, n_lines).

    Microturbulence ``vmicro`` is the usual most-probable speed xi, i.e. sigma = xi / sqrt 2.
    """
    return np.sqrt(8.31446e-3 * atm.t[:, None] / np.asarray(mass)[None, :]
                   + 0.5 * np.asarray(vmicro, dtype=np.float64)[:, None] ** 2)


def line_log_strength_single(atm: Atmosphere, lines, vmicro: float) -> np.ndarray:
    """log10 central optical depth of ``lines`` in the first star of ``atm``, (n_lines,)."""
    lk = effective_log_kappa(atm, lines.wave)
    log_s = line_log_strength(atm, lk, lines.species, lines.chi, lines.log_gf, lines.wave)
    sig = doppler_sigma(atm, lines.mass, np.array([vmicro]))
    return (log_s - np.log10(sig * np.sqrt(2 * np.pi)))[0]
