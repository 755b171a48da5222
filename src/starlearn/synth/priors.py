"""Label priors: draw the synthetic stars from part of a population, or from real labels.

Two ways to choose which stars :func:`~starlearn.synth.draw_labels` (and so
:func:`~starlearn.synth.generate` and ``starlearn synth``) makes:

* A :class:`LabelPrior` restricts the preset's population to a box: per label a range
  ``(lo, hi)`` (inclusive) or a single value. The stars are drawn from the population
  itself and kept when they fall in the box (rejection sampling), so a box keeps every
  relation of the population: giants on their Teff-log g sequences, [alpha/Fe] following
  [Fe/H], element ratios following [alpha/Fe], microturbulence following log g, rotation
  following the kind of star. A single value is the population within a narrow window
  around it (:func:`fixed_tolerance`: 25 K, 0.05 dex in log g, 0.03 dex in [Fe/H] ...),
  then set to the value exactly; the labels that follow it by a fixed relation (the [X/Fe]
  of the alpha elements and Al follow [alpha/Fe], [Mn/Fe] follows [Fe/H], vmicro follows
  log g) move with it, unless the prior sets them too.
* ``labels_from`` takes the labels of real stars: rows of a catalogue drawn with
  replacement (seeded), columns matched to the preset's labels by their usual survey
  spellings (:func:`match_label_columns`). Labels the catalogue lacks (or has as NaN or
  -9999 for a row) come from a star of the population near the row in (Teff, log g,
  [Fe/H]) (one of its 8 nearest among 5,000 or more): its [alpha/Fe], vsini, class ...;
  the ratios that follow [alpha/Fe] or [Fe/H], and vmicro, move to the row's values.

Units: Teff in K, log g in dex (cgs), [Fe/H], [alpha/Fe] and [X/Fe] in dex, vmicro and vsini
in km/s. The generator's physics limits apply to both: Teff from 3,500 K (3,800 K for log g
>= 3.5) to 40,000 K, log g from -0.5 to 6.

>>> from starlearn.synth import draw_labels
>>> t = draw_labels("lamost", 200, seed=0, prior={"teff": (5000, 6000), "logg": (4.0, 5.0)})
>>> bool((t["teff"] >= 5000).all() and (t["teff"] <= 6000).all() and (t["logg"] >= 4).all())
True
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
from astropy.table import Table, vstack

from starlearn.synth import labels as lab
from starlearn.synth.generator import LOGG_DWARF, LOGG_LIMITS, TEFF_MAX, TEFF_MIN, TEFF_MIN_DWARF

__all__ = ["MAX_DRAWS", "PILOT_DRAWS", "LabelPrior", "canonical_label", "fixed_tolerance",
           "match_label_columns"]

PILOT_DRAWS = 20_000
"""Stars drawn first from the population; none of them in the box is an error."""
MAX_DRAWS = 2_000_000
"""Most stars drawn from the population for one box (a few seconds); a box too rare to give
the asked number of stars within it is an error."""
_BATCH_MAX = 100_000
_POOL_MIN = 5_000          # population stars among which catalogue rows find their donors
_NEIGHBOURS = 8            # a row's donor is one of its nearest population stars
_MATCH_SCALE = {"teff": 150.0, "logg": 0.15, "fe_h": 0.05}   # distance units of the match
_CORE = ("teff", "logg", "fe_h")
_MISSING = -9000.0         # catalogue values at or below it (-9999) are missing

_TOLERANCE = {"teff": 25.0, "logg": 0.05, "fe_h": 0.03, "alpha_fe": 0.02, "vmicro": 0.05,
              "vsini": 1.0}
_UNITS = {"teff": "K", "vmicro": "km/s", "vsini": "km/s"}
_TARGET_UNITS = {"teff": u.K, "vmicro": u.km / u.s, "vsini": u.km / u.s}
_ALIASES: dict[str, tuple[str, ...]] = {   # normalised spellings, in order of preference
    "teff": ("teff", "t_eff"),
    "logg": ("logg", "log_g"),
    "fe_h": ("fe_h", "feh", "m_h", "mh"),
    "alpha_fe": ("alpha_fe", "alphafe", "alpha_m", "alpham"),
    "vmicro": ("vmicro", "vmic", "vturb", "v_micro"),
    "vsini": ("vsini", "v_sini", "vsin_i", "v_sin_i", "vrot"),
}
_PRETTY = {"teff": "Teff", "logg": "log g", "fe_h": "[Fe/H]"}


def _normalise(name: str) -> str:
    """``"[Fe/H]"`` -> ``"fe_h"``, ``"log g"`` -> ``"log_g"``, ``"alpha-fe"`` -> ``"alpha_fe"``."""
    key = str(name).strip().lower().replace("[", "").replace("]", "")
    return re.sub(r"[\s/\-.]+", "_", key).strip("_")


def _aliases(label: str) -> tuple[str, ...]:
    if label in _ALIASES:
        return _ALIASES[label]
    if label.endswith("_fe"):
        x = label[:-3]
        return (label, f"{x}fe")
    return (label,)


def canonical_label(name: str) -> str:
    """The generator's label name for a usual spelling of it (case-insensitive).

    Examples
    --------
    >>> [canonical_label(s) for s in ("Teff", "LOGG", "[Fe/H]", "feh", "alpha-fe", "MG_FE")]
    ['teff', 'logg', 'fe_h', 'fe_h', 'alpha_fe', 'mg_fe']
    """
    key = _normalise(name)
    for label, spellings in _ALIASES.items():
        if key in spellings:
            return label
    match = re.fullmatch(r"([a-z]{1,2})_?fe", key)
    if match and match.group(1) in lab.ALL_XFE:
        return f"{match.group(1)}_fe"
    return key


def fixed_tolerance(label: str) -> float:
    """Half-width of the window within which the population is drawn for a label fixed at
    one value (then set to it exactly): 25 K in Teff, 0.05 dex in log g, 0.03 dex in [Fe/H],
    0.02 dex in [alpha/Fe] and each [X/Fe], 0.05 km/s in vmicro, 1 km/s in vsini."""
    return _TOLERANCE.get(label, 0.02)


def match_label_columns(colnames: Iterable[str], labels: Sequence[str]) -> dict[str, str]:
    """Which column of a catalogue holds each label, matched case-insensitively by the usual
    survey spellings: ``TEFF``/``Teff``/``teff``, ``LOGG``/``log_g``, ``FE_H``/``[Fe/H]``/
    ``feh`` (else ``M_H``/``[M/H]``), ``ALPHA_FE``/``[alpha/Fe]`` (else ``ALPHA_M``),
    ``MG_FE``/``[Mg/Fe]``, ``VMICRO``/``vmic``, ``VSINI``/``vsin_i``.

    Parameters
    ----------
    colnames : iterable of str
        The catalogue's column names.
    labels : sequence of str
        The labels to find (e.g. ``label_names("apogee")``).

    Returns
    -------
    dict
        Label -> column name, for the labels found (the first column in the order of
        preference above, then in the catalogue's order).

    Examples
    --------
    >>> match_label_columns(["APOGEE_ID", "TEFF", "LOGG", "M_H", "FE_H", "MG_FE"],
    ...                     ["teff", "logg", "fe_h", "mg_fe", "vmicro"])
    {'teff': 'TEFF', 'logg': 'LOGG', 'fe_h': 'FE_H', 'mg_fe': 'MG_FE'}
    """
    by_key: dict[str, str] = {}
    for name in colnames:
        by_key.setdefault(_normalise(name), name)
    out = {}
    for label in labels:
        for spelling in _aliases(label):
            if spelling in by_key:
                out[label] = by_key[spelling]
                break
    return out


def _fmt(value: float) -> str:
    return f"{value:g}"


class LabelPrior:
    """A box of stellar labels from which to draw synthetic stars.

    Parameters
    ----------
    bounds : dict, optional
        Label -> ``(lo, hi)`` (inclusive; ``-inf``/``inf`` leave a side open) or a number
        (fixes the label). Names are the preset's labels (:func:`label_names`) or a usual
        spelling of them (``Teff``, ``feh``, ``[Fe/H]``, ``alpha-fe`` ...). Units: Teff in
        K, log g in dex (cgs), [Fe/H], [alpha/Fe] and [X/Fe] in dex, vmicro and vsini in km/s.
    **labels
        The same as keywords: ``LabelPrior(teff=(4000, 5500), fe_h=-0.5)``.

    Attributes
    ----------
    ranges : dict of str -> (float, float)
        The labels restricted to a range.
    fixed : dict of str -> float
        The labels fixed at one value (a range ``(x, x)`` is a fixed value).

    Raises
    ------
    ValueError
        A value that is not a number or a ``(lo, hi)`` pair with lo <= hi, or a label given
        twice (``feh`` and ``fe_h``). Whether the labels exist in a preset is checked when
        drawing (:meth:`check`).

    Examples
    --------
    >>> p = LabelPrior({"Teff": (4000, 5500), "feh": -0.5})
    >>> p
    LabelPrior(teff=(4000.0, 5500.0), fe_h=-0.5)
    >>> p.describe()
    'teff 4000:5500 K, fe_h -0.5 dex'
    """

    def __init__(self, bounds: Mapping[str, Any] | None = None, /, **labels: Any) -> None:
        self.ranges: dict[str, tuple[float, float]] = {}
        self.fixed: dict[str, float] = {}
        given: dict[str, str] = {}
        for key, value in [*dict(bounds or {}).items(), *labels.items()]:
            name = canonical_label(key)
            if name in given:
                raise ValueError(f"prior: '{given[name]}' and '{key}' both set {name}")
            given[name] = str(key)
            bound = _bound(name, value)
            if isinstance(bound, tuple):
                self.ranges[name] = bound
            else:
                self.fixed[name] = bound
        self._order = list(given)

    @property
    def names(self) -> tuple[str, ...]:
        """The labels the prior sets, in the order given."""
        return tuple(self._order)

    def __len__(self) -> int:
        return len(self._order)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelPrior) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        items = [f"{k}={self.ranges[k]!r}" if k in self.ranges else f"{k}={self.fixed[k]!r}"
                 for k in self.names]
        return f"LabelPrior({', '.join(items)})"

    def to_dict(self) -> dict[str, float | list[float]]:
        """Label -> ``[lo, hi]`` or value (JSON-ready, for provenance records)."""
        return {k: list(self.ranges[k]) if k in self.ranges else self.fixed[k]
                for k in self.names}

    def describe(self) -> str:
        """``"teff 4000:5500 K, fe_h -0.5 dex"`` (for messages)."""
        parts = []
        for k in self.names:
            value = (":".join(_fmt(v) for v in self.ranges[k]) if k in self.ranges
                     else _fmt(self.fixed[k]))
            parts.append(f"{k} {value} {_UNITS.get(k, 'dex')}")
        return ", ".join(parts) if parts else "(no prior)"

    def interval(self, name: str) -> tuple[float, float]:
        """``(lo, hi)`` of a label, ``(x, x)`` if fixed, ``(-inf, inf)`` if not set."""
        if name in self.ranges:
            return self.ranges[name]
        if name in self.fixed:
            return (self.fixed[name], self.fixed[name])
        return (-np.inf, np.inf)

    def subset(self, names: Iterable[str]) -> LabelPrior:
        """The prior on some of its labels only."""
        keep = set(names)
        return LabelPrior({k: v for k, v in self.to_dict().items() if k in keep})

    def contains(self, columns: Table | Mapping[str, np.ndarray], *,
                 names: Iterable[str] | None = None, missing_ok: bool = False) -> np.ndarray:
        """Which rows are in the box (a fixed label: within :func:`fixed_tolerance`).

        Parameters
        ----------
        columns : Table or dict of label -> array
            The labels of the rows.
        names : iterable of str, optional
            Check only these labels of the prior (default all).
        missing_ok : bool
            A NaN value counts as inside.

        Returns
        -------
        numpy.ndarray of bool, (n_rows,)
        """
        names = list(self.names if names is None else names)
        n = len(columns) if isinstance(columns, Table) else (
            len(next(iter(columns.values()))) if columns else 0)
        inside = np.ones(n, dtype=bool)
        for name in names:
            v = np.asarray(columns[name], dtype=np.float64)
            if name in self.ranges:
                lo, hi = self.ranges[name]
                ok = (v >= lo) & (v <= hi)
            else:
                ok = np.abs(v - self.fixed[name]) <= fixed_tolerance(name)
            if missing_ok:
                ok |= ~np.isfinite(v)
            inside &= ok
        return inside

    def check(self, survey: str) -> None:
        """Refuse labels the preset does not have and boxes outside the generator's physics.

        Raises
        ------
        ValueError
            Naming the preset and its labels, or the limits.
        """
        names = lab.label_names(survey)
        bad = [k for k in self.names if k not in names]
        if bad:
            note = (" (vmacro is no label of any preset: the renderer sets it from Teff and "
                    "log g)" if "vmacro" in bad else "")
            raise ValueError(f"prior: the {survey} preset has no label "
                             f"{', '.join(repr(k) for k in bad)}; its labels are "
                             f"{', '.join(names)}{note}")
        t_lo, t_hi = self.interval("teff")
        g_lo, g_hi = self.interval("logg")
        limits = (f"the generator's Teff limits ({TEFF_MIN:,.0f}-{TEFF_MAX:,.0f} K, from "
                  f"{TEFF_MIN_DWARF:,.0f} K for log g >= {LOGG_DWARF})")
        if t_hi < TEFF_MIN or t_lo > TEFF_MAX:
            raise ValueError(f"prior: teff {self.describe_one('teff')} is outside {limits}")
        if g_lo >= LOGG_DWARF and t_hi < TEFF_MIN_DWARF:
            raise ValueError(f"prior: teff {self.describe_one('teff')} with logg "
                             f"{self.describe_one('logg')} is outside {limits}")
        if g_hi < LOGG_LIMITS[0] or g_lo > LOGG_LIMITS[1]:
            raise ValueError(f"prior: logg {self.describe_one('logg')} is outside the "
                             f"generator's log g limits ({LOGG_LIMITS[0]} to "
                             f"{LOGG_LIMITS[1]} dex)")

    def describe_one(self, name: str) -> str:
        """``"4000:5500 K"`` for one label of the prior."""
        lo, hi = self.interval(name)
        value = _fmt(lo) if lo == hi else f"{_fmt(lo)}:{_fmt(hi)}"
        return f"{value} {_UNITS.get(name, 'dex')}"


def _bound(name: str, value: Any) -> float | tuple[float, float]:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        arr = np.array([np.nan, np.nan, np.nan])
    if arr.shape == () and np.isfinite(arr):
        return float(arr)
    if arr.shape == (2,) and not np.isnan(arr).any() and arr[0] <= arr[1]:
        if arr[0] == arr[1]:
            return float(arr[0])
        return (float(arr[0]), float(arr[1]))
    raise ValueError(f"prior: {name} must be a finite number or a (lo, hi) pair with "
                     f"lo <= hi, got {value!r}")


def as_prior(prior: LabelPrior | Mapping[str, Any] | None) -> LabelPrior:
    """A :class:`LabelPrior` from one, from a dict, or an empty one from None."""
    if prior is None:
        return LabelPrior()
    if isinstance(prior, LabelPrior):
        return prior
    if isinstance(prior, Mapping):
        return LabelPrior(prior)
    raise TypeError(f"prior must be a LabelPrior or a dict of label -> (lo, hi) or value, "
                    f"got {type(prior).__name__}")


# ------------------------------------------------------------------------------ drawing
def draw_with_prior(survey: str, n: int, *, seed: int = 0,
                    class_fractions: Sequence[float] | Mapping[str, float] | None = None,
                    prior: LabelPrior | Mapping[str, Any] | None = None,
                    labels_from: Table | str | os.PathLike | None = None) -> Table:
    """The stars of :func:`~starlearn.synth.draw_labels` with a prior and/or a catalogue
    (the table without its ``id`` column, which ``draw_labels`` adds)."""
    box = as_prior(prior)
    box.check(survey)
    if labels_from is not None:
        if class_fractions is not None:
            raise ValueError("class_fractions cannot be combined with labels_from: the "
                             "classes come from the population stars nearest to the "
                             "catalogue's labels")
        tab = _from_catalog(survey, n, seed, labels_from, box)
    else:
        tab = _restricted(survey, n, seed, class_fractions, box, stream=3)
        if box.fixed:
            _fix(tab, box, {}, _core_copy(tab))
    if len(box):
        tab.meta["prior"] = box.to_dict()
    return tab


def _stream_rng(seed: int, survey: str, *stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(
        [int(seed), lab.survey_key(survey), *stream]))


def _restricted(survey: str, n: int, seed: int, class_fractions: Any, box: LabelPrior,
                stream: int) -> Table:
    """``n`` stars of the population in the box; for ondrejov-halpha the exact class counts
    of ``class_fractions``, each class drawn within the box, in random order."""
    if survey != "ondrejov-halpha":
        return _accept(survey, n, box, None, _stream_rng(seed, survey, stream, 0), "stars")
    counts = lab.class_counts(class_fractions, n)
    parts = []
    for c, k in enumerate(counts):
        if k:
            one = np.zeros(len(lab.CLASS_NAMES))
            one[c] = 1.0
            parts.append(_accept(survey, int(k), box, one, _stream_rng(seed, survey, stream, c + 1),
                                 f"'{lab.CLASS_NAMES[c]}' stars"))
    if not parts:
        return lab.draw_population(_stream_rng(seed, survey, stream, 0), survey, 0)
    tab = vstack(parts, metadata_conflicts="silent")
    return tab[_stream_rng(seed, survey, stream, 9).permutation(len(tab))]


def _accept(survey: str, n: int, box: LabelPrior, fractions: np.ndarray | None,
            rng: np.random.Generator, what: str) -> Table:
    """Rejection sampling: population stars in the box, in the order drawn."""
    if n == 0 or not len(box):
        return lab.draw_population(rng, survey, n, fractions)
    parts: list[Table] = []
    got = drawn = 0
    size = PILOT_DRAWS
    while True:
        cand = lab.draw_population(rng, survey, size, fractions)
        drawn += size
        keep = np.nonzero(box.contains(cand))[0][: n - got]
        if keep.size:
            parts.append(cand[keep])
            got += keep.size
        if got >= n:
            break
        if got == 0:
            raise ValueError(
                f"no {what} of the {survey} population in the box {box.describe()}: none of "
                f"{drawn:,} drawn (they span {_span(cand, box.names)}); widen or move the "
                "box" + (" or change class_fractions" if fractions is not None else ""))
        rate = got / drawn
        need = (n - got) / rate
        if drawn + need > MAX_DRAWS:
            windows = ", ".join(f"{k} ±{_fmt(fixed_tolerance(k))} {_UNITS.get(k, 'dex')}"
                                for k in box.fixed)
            hint = f" (a single value is drawn within a window: {windows})" if windows else ""
            raise ValueError(
                f"the box {box.describe()} holds about {rate:.3%} of the {survey} population"
                f"'s {what}: {n:,} of them would take about {drawn + need:,.0f} draws, more "
                f"than {MAX_DRAWS:,}; widen the box{hint} or ask for fewer stars")
        size = int(min(_BATCH_MAX, max(1_000, 1.2 * need)))
    return vstack(parts, metadata_conflicts="silent") if len(parts) > 1 else parts[0]


def _span(tab: Table, names: Iterable[str]) -> str:
    out = []
    for k in dict.fromkeys(["teff", "logg", *names]):
        if k in tab.colnames and len(tab):
            v = np.asarray(tab[k], dtype=np.float64)
            fmt = ",.0f" if k == "teff" else ".1f" if k == "vsini" else ".2f"
            out.append(f"{k} {v.min():{fmt}} to {v.max():{fmt}} {_UNITS.get(k, 'dex')}")
    return ", ".join(out)


def _core_copy(tab: Table) -> dict[str, np.ndarray]:
    return {k: np.array(tab[k], dtype=np.float64) for k in ("teff", "logg", "fe_h", "alpha_fe")
            if k in tab.colnames}


def _fix(tab: Table, box: LabelPrior, frozen: Mapping[str, np.ndarray],
         old: Mapping[str, np.ndarray]) -> None:
    """Set the fixed labels, then move the labels that follow the changed ones."""
    n = len(tab)
    for name, value in box.fixed.items():
        tab[name] = np.full(n, value)
    frozen = {**frozen, **{k: np.ones(n, dtype=bool) for k in box.names}}
    _rebase(tab, old, frozen)


def _rebase(tab: Table, old: Mapping[str, np.ndarray], frozen: Mapping[str, np.ndarray]
            ) -> None:
    """Move [X/Fe] and vmicro with the changes of [alpha/Fe], [Fe/H], Teff and log g from
    ``old`` (keeping each star's scatter about the relation), except in ``frozen`` rows."""
    if "alpha_fe" not in tab.colnames:   # ondrejov-halpha: nothing follows the labels
        return
    n = len(tab)
    new = _core_copy(tab)
    giant = lab.is_giant(tab["population"])
    for x in lab.ALL_XFE:
        name = f"{x}_fe"
        move = ~frozen.get(name, np.zeros(n, dtype=bool))
        if name not in tab.colnames or not move.any():
            continue
        delta = (lab.xfe_base(x, new["alpha_fe"], new["fe_h"], giant)
                 - lab.xfe_base(x, old["alpha_fe"], old["fe_h"], giant))
        tab[name] = np.where(move, np.asarray(tab[name]) + delta, tab[name])
    move = ~frozen.get("vmicro", np.zeros(n, dtype=bool))
    if "vmicro" in tab.colnames and move.any():
        delta = (lab.default_vmicro(new["logg"], new["teff"])
                 - lab.default_vmicro(old["logg"], old["teff"]))
        tab["vmicro"] = np.where(move, np.clip(np.asarray(tab["vmicro"]) + delta, 0.5, 3.0),
                                 tab["vmicro"])


# ------------------------------------------------------------------------------ catalogues
def _read_catalog(catalog: Table | Mapping | str | os.PathLike) -> tuple[str, Table]:
    if isinstance(catalog, Table):
        return "the labels_from table", catalog
    if isinstance(catalog, Mapping):
        return "the labels_from table", Table(dict(catalog))
    path = Path(catalog)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such label catalogue")
    try:
        table = Table.read(path)
    except Exception as err:   # astropy raises many kinds for a file it cannot read
        raise ValueError(f"{path}: cannot read it as a table of labels (FITS, ECSV, CSV ...): "
                         f"{err}") from err
    return str(path), table


def _column_values(table: Table, col: str, label: str, source: str) -> np.ndarray:
    column = table[col]
    unit = getattr(column, "unit", None)
    data = column.value if isinstance(column, u.Quantity) else column
    try:
        values = np.ma.asarray(data).astype(np.float64).filled(np.nan)
    except (TypeError, ValueError):
        raise ValueError(f"{source}: column '{col}' ({label}) is not numeric") from None
    values = np.where(values <= _MISSING, np.nan, values)
    target = _TARGET_UNITS.get(label)
    if unit is not None and target is not None and unit != u.dimensionless_unscaled:
        try:
            values = (values * u.Unit(unit)).to_value(target)
        except (u.UnitsError, ValueError, TypeError):
            raise ValueError(f"{source}: column '{col}' ({label}) is in {unit}, which does "
                             f"not convert to {target}") from None
    return values


def _physical(teff: np.ndarray, logg: np.ndarray) -> np.ndarray:
    floor = np.where(logg >= LOGG_DWARF, TEFF_MIN_DWARF, TEFF_MIN)
    return ((teff >= floor) & (teff <= TEFF_MAX) & (logg >= LOGG_LIMITS[0])
            & (logg <= LOGG_LIMITS[1]))


def _from_catalog(survey: str, n: int, seed: int, catalog: Any, box: LabelPrior) -> Table:
    source, table = _read_catalog(catalog)
    names = lab.label_names(survey)
    flat = [c for c in table.colnames if getattr(table[c], "ndim", 1) == 1]
    columns = match_label_columns(flat, names)
    missing = [k for k in _CORE if k not in columns]
    if missing:
        looked = "; ".join(f"{_PRETTY[k]}: {', '.join(_aliases(k))}" for k in missing)
        shown = ", ".join(table.colnames[:40]) + (" ..." if len(table.colnames) > 40 else "")
        raise ValueError(f"{source}: no {', '.join(_PRETTY[k] for k in missing)} column "
                         f"(looked for, case-insensitively, {looked}); its columns are "
                         f"{shown or '(none)'}")
    values = {label: _column_values(table, col, label, source) for label, col in columns.items()}
    total = len(table)
    finite = np.ones(total, dtype=bool)
    for k in _CORE:
        finite &= np.isfinite(values[k])
    physical = finite & _physical(values["teff"], values["logg"])
    inside = box.contains(values, names=[k for k in box.names if k in values], missing_ok=True)
    use = physical & inside
    n_unphysical = int((finite & ~physical).sum())
    if not use.any():
        raise ValueError(
            f"{source}: no usable rows of labels for the {survey} preset: of {total:,} rows, "
            f"{total - int(finite.sum()):,} lack a finite Teff, log g or [Fe/H] (columns "
            f"{', '.join(columns[k] for k in _CORE)}), {n_unphysical:,} are outside the "
            f"generator's physics (Teff {TEFF_MIN:,.0f}-{TEFF_MAX:,.0f} K, from "
            f"{TEFF_MIN_DWARF:,.0f} K for log g >= {LOGG_DWARF}; log g {LOGG_LIMITS[0]} to "
            f"{LOGG_LIMITS[1]}) and {int((physical & ~inside).sum()):,} outside the box "
            f"{box.describe()}")
    if n_unphysical:
        warnings.warn(f"{source}: {n_unphysical:,} of {total:,} rows are outside the "
                      f"generator's physics (Teff {TEFF_MIN:,.0f}-{TEFF_MAX:,.0f} K, from "
                      f"{TEFF_MIN_DWARF:,.0f} K for log g >= {LOGG_DWARF}; log g "
                      f"{LOGG_LIMITS[0]} to {LOGG_LIMITS[1]}) and are not used", UserWarning,
                      stacklevel=4)
    rows = np.nonzero(use)[0]
    rng = _stream_rng(seed, survey, 4)
    pick = rows[rng.integers(rows.size, size=n)]

    # donors: population stars (in the box for the labels not taken from the catalogue)
    # nearest to each row in (teff, logg, fe_h) give the labels the row lacks
    from scipy.spatial import cKDTree

    pool = _restricted(survey, max(_POOL_MIN, 4 * n), seed, None,
                       box.subset(k for k in box.names if k not in _CORE), stream=5)
    scale = np.array([_MATCH_SCALE[k] for k in _CORE])
    tree = cKDTree(np.column_stack([np.asarray(pool[k], dtype=np.float64) for k in _CORE])
                   / scale)
    k_near = min(_NEIGHBOURS, len(pool))
    point = np.column_stack([values[k][pick] for k in _CORE]) / scale
    _, near = tree.query(point, k=k_near)
    near = np.asarray(near).reshape(n, k_near)
    donor = near[np.arange(n), rng.integers(k_near, size=n)]
    tab = pool[donor]
    old = _core_copy(tab)
    frozen = {}
    for label, v in values.items():
        v = v[pick]
        have = np.isfinite(v)
        tab[label] = np.where(have, v, np.asarray(tab[label], dtype=np.float64))
        frozen[label] = have
    _fix(tab, box, frozen, old)
    tab["catalog_row"] = pick.astype(np.int64)
    tab.meta["labels_from"] = source
    return tab
