"""Stellar labels from realistic joint distributions, per survey preset.

Populations (fractions per survey in ``_MIX``):

* ``rgb``: red giants on an isochrone-like Teff-log g relation (cooler at lower log g,
  hotter when metal-poor), log g from 0.6 to 3.7;
* ``rc``: red clump (log g ~ 2.4, Teff ~ 4,750 K, only for [Fe/H] > -1);
* ``subgiant``: log g 3.5-4.1 with Teff rising along the branch;
* ``dwarf``: main sequence (log g from Teff, plus evolution off the zero-age MS);
* ``hot``: A/F stars (7,000-9,500 K, optical surveys only);
* ``ob``: hot B/A/F stars (6,500-25,000 K) of the Ondřejov H-alpha archive, with the
  classes ``absorption``, ``emission`` (single-peaked Be-star H-alpha emission) and
  ``double-peak`` (Be-star disc emission with two peaks 100-400 km/s apart); a third of
  the absorption-line stars are F, G and K dwarfs and giants (4,000-6,500 K,
  ``fgk-star``), as an emission-line search of a survey meets them.

Chemistry: [Fe/H] from a thin disc, thick disc and halo mixture (-2.5 to +0.5, metal-poor
tail); [alpha/Fe] anticorrelated with [Fe/H] (a low-alpha thin-disc sequence, a high-alpha
thick-disc sequence falling from +0.3 below [Fe/H] = -0.8, +0.3 in the halo with a low-alpha
minority); each alpha element's [X/Fe] = [alpha/Fe] plus scatter, other elements 0 plus
scatter, [Mn/Fe] falling at low metallicity, first-dredge-up [C/Fe] < 0 and [N/Fe] > 0 in
giants. Microturbulence from log g, rotation mostly slow except hot stars.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from astropy.table import Table

if TYPE_CHECKING:
    from starlearn.synth.priors import LabelPrior

__all__ = ["ALPHA_ELEMENTS", "CLASS_NAMES", "SURVEYS", "class_counts", "default_alpha",
           "default_vmicro", "draw_labels", "draw_population", "is_giant", "label_names",
           "xfe_base"]

SURVEYS: tuple[str, ...] = ("apogee", "lamost", "segue", "pfs-mr", "ondrejov-halpha")
"""Names of the presets the generator supports (keys of :data:`starlearn.grid.PRESETS`)."""

CLASS_NAMES: tuple[str, ...] = ("absorption", "emission", "double-peak")
"""Classes of the ``ondrejov-halpha`` preset."""

ALPHA_ELEMENTS = ("o", "mg", "si", "s", "ca", "ti")
"""Elements whose [X/Fe] follows [alpha/Fe] (sulphur has no label: it follows alpha_fe)."""

_ELEMENT_LABELS = {
    "apogee": ("c", "n", "o", "na", "mg", "al", "si", "k", "ca", "ti", "v", "cr", "mn", "co",
               "ni"),
    "lamost": ("c", "n", "o", "na", "mg", "al", "si", "k", "ca", "ti", "cr", "mn", "ni",
               "ba"),
    "segue": ("c", "n", "o", "na", "mg", "al", "si", "k", "ca", "ti", "cr", "mn", "ni",
              "ba"),
    "pfs-mr": ("c", "n", "o", "na", "mg", "al", "si", "k", "ca", "ti", "ni"),
}

# population fractions and disc/halo mixture weights
_MIX = {
    "apogee": ({"rgb": 0.55, "rc": 0.17, "subgiant": 0.08, "dwarf": 0.20}, (0.68, 0.22, 0.10)),
    "lamost": ({"rgb": 0.16, "rc": 0.08, "subgiant": 0.12, "dwarf": 0.59, "hot": 0.05},
               (0.78, 0.17, 0.05)),
    "segue": ({"rgb": 0.15, "rc": 0.03, "subgiant": 0.12, "dwarf": 0.65, "hot": 0.05},
              (0.40, 0.25, 0.35)),
    "pfs-mr": ({"rgb": 0.55, "rc": 0.05, "subgiant": 0.05, "dwarf": 0.35}, (0.25, 0.30, 0.45)),
}

_XFE_SCATTER = {"c": 0.08, "n": 0.10, "o": 0.07, "na": 0.08, "mg": 0.03, "al": 0.07,
                "si": 0.04, "s": 0.06, "k": 0.08, "ca": 0.04, "ti": 0.06, "v": 0.10,
                "cr": 0.05, "mn": 0.05, "co": 0.08, "ni": 0.04, "sr": 0.15, "ba": 0.15}
ALL_XFE: tuple[str, ...] = tuple(_XFE_SCATTER)
"""Every element with an [X/Fe] parameter in the generator (lower-case symbols)."""

EMISSION_COLUMNS = ("em_amp", "em_sep", "em_sigma", "em_vr", "em_shift")
"""Per-star H-alpha emission parameters: mean peak height above the continuum (continuum
units), peak separation (km/s, 0 = single peak), Gaussian sigma of each peak (km/s),
violet-to-red peak height ratio, and velocity shift (km/s)."""


def survey_key(survey: str) -> int:
    """A stable integer for seeding per-survey random streams."""
    return zlib.crc32(survey.encode())


def _check_survey(survey: str) -> str:
    if survey not in SURVEYS:
        raise ValueError(f"unknown survey preset '{survey}'; synth presets are {list(SURVEYS)}")
    return survey


def label_names(survey: str) -> list[str]:
    """The label names of a preset, in order.

    ``teff`` (K), ``logg`` (dex, cgs), ``fe_h`` (dex), ``alpha_fe`` and ``<x>_fe`` (dex) for
    the elements with lines in the preset's range, ``vmicro`` (km/s) and, where the
    resolution makes it measurable, ``vsini`` (km/s).

    Examples
    --------
    >>> label_names("ondrejov-halpha")
    ['teff', 'logg', 'fe_h', 'vsini']
    """
    survey = _check_survey(survey)
    if survey == "ondrejov-halpha":
        return ["teff", "logg", "fe_h", "vsini"]
    names = ["teff", "logg", "fe_h", "alpha_fe"] + [f"{x}_fe" for x in _ELEMENT_LABELS[survey]]
    names.append("vmicro")
    if survey == "apogee":
        names.append("vsini")
    return names


def default_alpha(fe_h: np.ndarray) -> np.ndarray:
    """Mean [alpha/Fe] of the Galactic sequences at a given [Fe/H] (used when missing)."""
    return np.clip(-0.3 * np.asarray(fe_h, dtype=np.float64), 0.0, 0.3)


def default_vmicro(logg: np.ndarray, teff: np.ndarray | None = None) -> np.ndarray:
    """Microturbulence (km/s) from log g (an APOGEE-like calibration), 2 km/s for hot stars."""
    v = np.clip(2.478 - 0.325 * np.asarray(logg, dtype=np.float64), 0.6, 3.0)
    if teff is not None:
        v = np.where(np.asarray(teff) > 7500.0, 2.0, v)
    return v


def _logg_ms(teff: np.ndarray) -> np.ndarray:
    """Zero-age main-sequence log g as a function of Teff (solar metallicity)."""
    t = np.asarray(teff, dtype=np.float64)
    return np.where(t < 5800.0, 4.44 + 0.25 * (5800.0 - t) / 2000.0,
                    4.44 - 0.25 * (t - 5800.0) / 1000.0)


def _chemistry(rng: np.random.Generator, n: int, weights: Sequence[float]
               ) -> tuple[np.ndarray, np.ndarray]:
    comp = rng.choice(3, size=n, p=np.asarray(weights) / np.sum(weights))
    feh = np.where(comp == 0, rng.normal(-0.05, 0.20, n),
                   np.where(comp == 1, rng.normal(-0.50, 0.25, n), rng.normal(-1.45, 0.50, n)))
    feh = np.clip(feh, -2.5, 0.5)
    thin = np.clip(-0.08 * feh, -0.05, 0.10)
    thick = np.clip(0.30 - 0.25 * (feh + 0.8), 0.08, 0.32)
    halo = np.where(rng.uniform(size=n) < 0.2, 0.10, 0.30)
    alpha = np.where(comp == 0, thin, np.where(comp == 1, thick, halo))
    scatter = np.where(comp == 2, 0.06, 0.03)
    alpha = alpha + rng.normal(0.0, 1.0, n) * scatter
    return feh, np.clip(alpha, -0.2, 0.5)


def _populations(rng: np.random.Generator, survey: str, n: int) -> Table:
    fractions, mix = _MIX[survey]
    names = list(fractions)
    pop = np.asarray(names, dtype=object)[
        rng.choice(len(names), size=n, p=np.array([fractions[k] for k in names]))]
    feh, alpha = _chemistry(rng, n, mix)
    # the red clump exists for [Fe/H] > -1 (metal-poor core-helium burners are bluer)
    pop = np.where((pop == "rc") & (feh < -1.0), "rgb", pop).astype(object)
    teff = np.empty(n)
    logg = np.empty(n)
    vsini = np.empty(n)
    z = rng.normal(size=(4, n))
    u = rng.uniform(size=(4, n))
    for kind in ("rgb", "rc", "subgiant", "dwarf", "hot"):
        s = pop == kind
        if not s.any():
            continue
        f = feh[s]
        if kind == "rgb":
            g = np.clip(2.5 + 0.65 * z[0, s], 0.6, 3.7)
            t = 4600.0 + 290.0 * (g - 2.5) - 40.0 * (g - 2.5) ** 2 - 200.0 * f + 70 * z[1, s]
            t = np.clip(t, 3600.0, 5400.0)
            v = 1.5 + np.abs(2.5 * z[2, s])
            v = np.where(u[0, s] < 0.02, 10.0 + 20.0 * u[1, s], v)
        elif kind == "rc":
            g = 2.40 + 0.08 * z[0, s]
            t = 4750.0 - 150.0 * f + 60.0 * z[1, s]
            v = 2.0 + np.abs(2.5 * z[2, s])
        elif kind == "subgiant":
            g = 3.5 + 0.6 * u[0, s]
            t = 5000.0 + (g - 3.5) * 2000.0 - 150.0 * f + 200.0 * z[1, s]
            v = 2.0 + np.abs(3.0 * z[2, s])
        elif kind == "dwarf":
            mean_t = 5400.0 if survey == "apogee" else 5600.0
            t = np.clip(mean_t + 700.0 * z[0, s], 3900.0, 7000.0)
            evolved = np.where(t > 5500.0, 0.25 * u[0, s], 0.0)
            g = np.clip(_logg_ms(t) + 0.08 * z[1, s] - evolved, 3.8, 4.9)
            v = np.where(t < 6000.0, 1.5 + np.abs(3.0 * z[2, s]),
                         np.where(t < 6500.0, 3.0 + 17.0 * u[1, s],
                                  np.exp(np.log(5.0) + u[1, s] * np.log(16.0))))
        else:   # hot A/F stars
            t = 7000.0 + 2500.0 * u[0, s]
            g = 3.7 + 0.6 * u[1, s]
            v = 10.0 + 190.0 * u[2, s]
        teff[s], logg[s], vsini[s] = t, g, v
    return Table({"population": pop.astype(str), "teff": teff, "logg": logg, "fe_h": feh,
                  "alpha_fe": alpha, "vsini": vsini})


def xfe_base(x: str, alpha_fe: np.ndarray, fe_h: np.ndarray, giant: np.ndarray
             ) -> np.ndarray:
    """Mean [X/Fe] (dex) of element ``x`` given [alpha/Fe], [Fe/H] and whether the star is
    a red giant (first dredge-up); the drawn ratio is this plus a Gaussian scatter."""
    if x in ALPHA_ELEMENTS:
        return alpha_fe
    if x == "al":
        return 0.5 * alpha_fe
    if x == "mn":
        return np.clip(0.25 * fe_h, -0.35, 0.05)
    if x == "c":
        return np.where(giant, -0.15, 0.0)
    if x == "n":
        return np.where(giant, 0.25, 0.0)
    return np.zeros(np.shape(fe_h))


def is_giant(population: np.ndarray) -> np.ndarray:
    """True for the red-giant populations (``rgb``, ``rc``)."""
    return np.isin(np.asarray(population), ["rgb", "rc"])


def _element_ratios(rng: np.random.Generator, tab: Table) -> None:
    n = len(tab)
    alpha = np.asarray(tab["alpha_fe"])
    feh = np.asarray(tab["fe_h"])
    giant = is_giant(tab["population"])
    for x in ALL_XFE:
        noise = rng.normal(0.0, _XFE_SCATTER[x], n)
        tab[f"{x}_fe"] = xfe_base(x, alpha, feh, giant) + noise


def _normalise_fractions(class_fractions: Sequence[float] | Mapping[str, float] | None
                         ) -> np.ndarray:
    if class_fractions is None:
        return np.array([0.45, 0.45, 0.10])
    if isinstance(class_fractions, Mapping):
        unknown = set(class_fractions) - set(CLASS_NAMES)
        if unknown:
            raise ValueError(f"class_fractions: unknown classes {sorted(unknown)}; "
                             f"classes are {list(CLASS_NAMES)}")
        fr = np.array([float(class_fractions.get(c, 0.0)) for c in CLASS_NAMES])
    else:
        fr = np.asarray(class_fractions, dtype=np.float64)
        if fr.shape != (len(CLASS_NAMES),):
            raise ValueError(f"class_fractions: need {len(CLASS_NAMES)} fractions for "
                             f"{list(CLASS_NAMES)}, got {list(fr)}")
    if np.any(fr < 0) or fr.sum() <= 0:
        raise ValueError(f"class_fractions must be non-negative with a positive sum, got "
                         f"{list(fr)}")
    return fr / fr.sum()


def class_counts(class_fractions: Sequence[float] | Mapping[str, float] | None, n: int
                 ) -> np.ndarray:
    """Exact number of stars per class of :data:`CLASS_NAMES` among ``n`` (largest
    remainders of ``fractions * n``)."""
    fr = _normalise_fractions(class_fractions)
    counts = np.floor(fr * n).astype(int)
    rest = n - counts.sum()
    if rest:   # largest remainders
        counts[np.argsort(-(fr * n - counts), kind="stable")[:rest]] += 1
    return counts


COOL_ABSORPTION_FRACTION = 1.0 / 3.0
"""Share of the ``ondrejov-halpha`` absorption-line stars that are F, G and K stars
(4,000-6,500 K); the others are A and B stars (6,500-25,000 K)."""


def _ondrejov(rng: np.random.Generator, n: int, class_fractions) -> Table:
    counts = class_counts(class_fractions, n)
    cls = rng.permutation(np.repeat(np.arange(len(CLASS_NAMES)), counts))
    u = rng.uniform(size=(8, n))
    z = rng.normal(size=(2, n))
    be = cls > 0
    teff = np.where(be, np.exp(np.log(10_000.0) + u[0] * np.log(2.5)),
                    np.exp(np.log(6_500.0) + u[0] * np.log(25_000.0 / 6_500.0)))
    logg = np.where(be, 3.3 + 0.9 * u[1], 3.6 + 0.8 * u[1])
    vsini = np.where(be, 120.0 + 280.0 * u[2], 10.0 + 250.0 * rng.beta(1.2, 2.5, n))
    feh = np.clip(0.15 * z[0], -0.6, 0.4)
    em_amp = np.zeros(n)
    em_sep = np.zeros(n)
    em_sigma = np.zeros(n)
    em_vr = np.ones(n)
    em_shift = np.zeros(n)
    single = cls == 1
    double = cls == 2
    em_amp[single] = np.exp(np.log(0.6) + u[3, single] * np.log(4.0 / 0.6))
    em_sigma[single] = 40.0 + 80.0 * u[4, single]
    em_shift[single] = 15.0 * z[1, single]
    em_amp[double] = np.exp(np.log(0.4) + u[3, double] * np.log(2.5 / 0.4))
    em_sep[double] = 100.0 + 300.0 * u[5, double]
    em_sigma[double] = em_sep[double] * (0.15 + 0.13 * u[4, double])
    em_vr[double] = np.exp(0.2 * rng.normal(size=int(double.sum())))
    em_shift[double] = 10.0 * z[1, double]
    pop = np.where(teff > 10_000.0, "b-star", "af-star").astype(object)
    pop[be] = "be-star"
    # a third of the absorption-line stars are F, G and K stars (4,000-6,500 K; dwarfs and,
    # below 5,300 K, also giants): the stars a survey's emission-line search meets most,
    # whose H-alpha is narrower and shallower than an A star's (without them a classifier
    # took real G and K stars for emission-line stars); slow rotators
    w = rng.uniform(size=(4, n))
    cool = (cls == 0) & (w[0] < COOL_ABSORPTION_FRACTION)
    teff = np.where(cool, np.exp(np.log(4_000.0) + w[1] * np.log(6_500.0 / 4_000.0)), teff)
    giant = cool & (teff < 5_300.0) & (w[2] < 0.4)
    logg = np.where(cool, np.where(giant, 2.2 + 1.2 * w[3], 3.9 + 0.7 * w[3]), logg)
    vsini = np.where(cool, 2.0 + 12.0 * rng.beta(1.2, 3.0, n), vsini)
    feh = np.where(cool, np.clip(0.25 * rng.normal(size=n) - 0.1, -1.0, 0.4), feh)
    pop[cool] = "fgk-star"
    return Table({"population": pop.astype(str), "teff": teff, "logg": logg, "fe_h": feh,
                  "vsini": vsini, "vmicro": np.clip(2.0 + 0.3 * rng.normal(size=n), 1.0, 3.0),
                  "class": cls.astype(np.int64), "em_amp": em_amp, "em_sep": em_sep,
                  "em_sigma": em_sigma, "em_vr": em_vr, "em_shift": em_shift})


def draw_population(rng: np.random.Generator, survey: str, n: int,
                    class_fractions: Sequence[float] | Mapping[str, float] | None = None
                    ) -> Table:
    """``n`` stars of a preset's population from ``rng`` (no ``id`` column, no meta): the
    columns of :func:`draw_labels` but ``id``."""
    if survey == "ondrejov-halpha":
        return _ondrejov(rng, n, class_fractions)
    tab = _populations(rng, survey, n)
    _element_ratios(rng, tab)
    vmicro = default_vmicro(tab["logg"], tab["teff"]) + 0.1 * rng.normal(size=n)
    tab["vmicro"] = np.clip(vmicro, 0.5, 3.0)
    return tab


def draw_labels(survey: str, n: int, *, seed: int = 0,
                class_fractions: Sequence[float] | Mapping[str, float] | None = None,
                prior: LabelPrior | Mapping[str, float | tuple[float, float]] | None = None,
                labels_from: Table | str | os.PathLike | None = None) -> Table:
    """Draw ``n`` stars' labels and physical parameters for a survey preset.

    Parameters
    ----------
    survey : str
        One of :data:`SURVEYS`.
    n : int
        Number of stars.
    seed : int
        Seed; the same (survey, n, seed) always gives the same table.
    class_fractions : sequence of 3 floats or dict, optional
        Only for ``ondrejov-halpha``: fractions of the classes ``absorption``, ``emission``
        and ``double-peak`` (normalised to sum 1; default 0.45 / 0.45 / 0.10). Counts are
        exact (largest remainders), order random.
    prior : LabelPrior or dict, optional
        Restrict the population to a box of labels: ``{"teff": (4000, 5500), "fe_h": -0.5}``
        (Teff in K, log g in dex (cgs), abundances in dex, velocities in km/s; a single
        number fixes the label). The stars are the population restricted to the box, drawn
        by rejection, so they keep its Teff-log g sequences and chemistry; see
        :class:`~starlearn.synth.priors.LabelPrior`. A box with no stars of the
        population, or outside the generator's Teff and log g limits, raises ValueError.
    labels_from : astropy.table.Table or path, optional
        A table of real labels (FITS, ECSV, CSV ... anything ``Table.read`` reads): each
        star takes the labels of a row drawn with replacement (seeded), columns matched
        case-insensitively with the usual survey spellings (``TEFF``, ``LOGG``, ``FE_H`` or
        ``[Fe/H]`` or ``M_H``, ``ALPHA_FE``, ``MG_FE`` ...); labels it has not come from
        the population star nearest in (Teff, log g, [Fe/H]). Combined with ``prior``,
        rows outside the box are dropped. The table needs Teff, log g and [Fe/H]; see
        :mod:`starlearn.synth.priors`.

    Returns
    -------
    astropy.table.Table
        One row per star: ``id``, ``population``, the labels of :func:`label_names` and
        every other parameter the renderer uses (all ``<x>_fe``, ``vmicro``, ``vsini``; for
        ``ondrejov-halpha`` ``class`` and the emission columns of
        :data:`EMISSION_COLUMNS`). ``meta`` holds ``survey``, ``seed`` and, with classes,
        ``class_names`` (with a prior, also ``prior``; with ``labels_from``, also
        ``labels_from`` and a ``catalog_row`` column: the table row of each star). Pass it
        to :func:`starlearn.synth.render` to make spectra, through this or any other preset.

    Examples
    --------
    >>> t = draw_labels("apogee", 3, seed=1)
    >>> [str(i) for i in t["id"]]
    ['apogee-s1-000001', 'apogee-s1-000002', 'apogee-s1-000003']
    >>> t = draw_labels("apogee", 50, seed=1, prior={"teff": (4000, 4500), "feh": -0.5})
    >>> bool(t["teff"].min() >= 4000 and t["teff"].max() <= 4500), set(t["fe_h"].tolist())
    (True, {-0.5})
    """
    survey = _check_survey(survey)
    n = int(n)
    if n < 0:
        raise ValueError(f"draw_labels: n must be >= 0, got {n}")
    if class_fractions is not None and survey != "ondrejov-halpha":
        raise ValueError(f"class_fractions is only used by the 'ondrejov-halpha' preset, "
                         f"not '{survey}'")
    if labels_from is not None or (prior is not None and len(prior)):
        from starlearn.synth import priors  # priors builds on this module

        tab = priors.draw_with_prior(survey, n, seed=seed, class_fractions=class_fractions,
                                     prior=prior, labels_from=labels_from)
    else:   # no prior: the population as it always was (same seeds, same stars)
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), survey_key(survey), 1]))
        tab = draw_population(rng, survey, n, class_fractions)
    if survey == "ondrejov-halpha":
        tab.meta["class_names"] = list(CLASS_NAMES)
    width = max(6, len(str(n)))
    tab.add_column([f"{survey}-s{seed}-{i + 1:0{width}d}" for i in range(n)], name="id",
                   index=0)
    tab.meta["survey"] = survey
    tab.meta["seed"] = int(seed)
    return tab
