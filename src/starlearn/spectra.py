"""SpectrumSet: the one in-memory container for a set of spectra.

A SpectrumSet holds ``n`` spectra sampled on ``n_pix`` pixels:

* ``wave``: wavelength in Angstrom, **vacuum**; shape ``(n_pix,)`` when all spectra share one
  grid, or ``(n_spectra, n_pixels)`` when each spectrum has its own;
* ``flux``: flux, shape ``(n_spectra, n_pixels)``, float32, in the unit ``flux_unit``
  (default dimensionless: relative flux or continuum-normalised);
* ``ivar``: inverse variance of ``flux`` (1 / sigma**2, in ``flux_unit**-2``); ``0`` means
  "no information";
* ``mask``: boolean, ``True`` marks a bad pixel;
* ``labels``: float32 ``(n_spectra, n_labels)`` with NaN for a missing label, named by
  ``label_names`` (``teff`` in K, ``logg`` in dex, ``fe_h`` ... in dex);
* ``classes``: optional integer class index per spectrum, named by ``class_names``
  (``-1`` = unknown);
* ``ids``: one string per spectrum;
* ``meta``: an :class:`astropy.table.Table` with one row per spectrum (survey, snr, rv in
  km/s, file, ...);
* ``flux_unit``: the astropy unit of ``flux``, one for the whole set.

Units at the door: ``wave`` may be an astropy Quantity of any length unit (converted to
Angstrom; a velocity, frequency or energy axis is refused), and ``flux`` and ``ivar`` may be
Quantities (their unit becomes ``flux_unit``, or they are converted to the ``flux_unit``
given). A plain array is taken as Angstrom, or as flux in ``flux_unit``: the unit is never
guessed from the magnitude of the numbers.

Invariants (enforced on construction): non-finite flux or ivar, and negative ivar, become
masked pixels with ``ivar = 0`` and ``flux = 0``; masked pixels have ``ivar = 0`` and pixels
with ``ivar = 0`` are masked. NaN therefore never propagates out of a SpectrumSet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import astropy.units as u
import numpy as np
from astropy.table import Column, Table

from starlearn._extras import require
from starlearn.units import UnitProblem, flux_unit, label_unit, quantity_to_angstrom

__all__ = ["SpectrumSet"]

IndexLike = int | slice | Sequence[int] | np.ndarray


def _as_2d(name: str, array: Any, dtype: Any) -> np.ndarray:
    out = np.array(array, dtype=dtype, copy=True)
    if out.ndim == 1:
        out = out[None, :]
    if out.ndim != 2:
        raise ValueError(f"SpectrumSet: '{name}' must have shape (n_spectra, n_pixels), "
                         f"got shape {out.shape}")
    return out


def _missing_values(dtype: np.dtype, n: int) -> np.ndarray:
    if dtype.kind == "f":
        return np.full(n, np.nan, dtype=dtype)
    if dtype.kind in "iub":
        return np.full(n, np.nan)  # the column becomes float with NaN for missing
    return np.full(n, "", dtype=object)


def _concat_meta(metas: list[Table], lengths: list[int]) -> Table | None:
    """Stack metadata tables column by column (missing columns: NaN or empty string).

    Much faster than astropy's vstack for many small tables; units and descriptions of
    the first table that has a column are kept.
    """
    names: list[str] = []
    for m in metas:
        names += [c for c in m.colnames if c not in names]
    if not names:
        return None
    out = Table()
    for name in names:
        parts = [np.asarray(m[name]) for m in metas if name in m.colnames]
        dtype = np.result_type(*[p.dtype for p in parts]) if all(
            p.dtype.kind not in "USO" for p in parts) else np.dtype(object)
        pieces = []
        for m, n in zip(metas, lengths, strict=True):
            if name in m.colnames:
                value = np.asarray(m[name])
                pieces.append(value.astype(object) if dtype.kind == "O" else value)
            else:
                pieces.append(_missing_values(dtype, n))
        values = np.concatenate(pieces)
        if values.dtype.kind == "O" and all(isinstance(v, str) for v in values):
            values = values.astype(str)
        first = next(m[name] for m in metas if name in m.colnames)
        out[name] = values
        out[name].unit = getattr(first, "unit", None)
        out[name].description = getattr(first, "description", None)
    return out


def _wave_angstrom(wave: Any) -> np.ndarray:
    """``wave`` as a float64 array in Angstrom: a Quantity of length is converted, a
    plain array is taken as Angstrom."""
    if isinstance(wave, u.Quantity):
        try:
            return quantity_to_angstrom(wave, "wave")
        except UnitProblem as err:
            raise UnitProblem(f"SpectrumSet: {err}") from None
    return np.array(wave, dtype=np.float64, copy=True)


def _flux_factor(given: u.UnitBase, unit: u.UnitBase, wave: np.ndarray,
                 what: str = "flux") -> Any:
    """The factor taking flux in ``given`` to ``unit``: a number, or an array over the
    pixels (broadcasting like ``wave``) between flux densities per wavelength and per
    frequency (:func:`astropy.units.spectral_density` at ``wave`` Angstrom)."""
    if given == unit:
        return 1.0
    try:
        return float(given.to(unit))
    except u.UnitConversionError:
        pass
    try:
        return (1.0 * given).to_value(unit, equivalencies=u.spectral_density(wave * u.AA))
    except u.UnitConversionError:
        raise u.UnitConversionError(
            f"SpectrumSet: '{what}' is in {_unit_name(given)}, which does not convert to "
            f"the flux unit {_unit_name(unit)}") from None


def _unit_name(unit: u.UnitBase) -> str:
    return str(unit) or "dimensionless"


def check_wave(wave: np.ndarray, shape: tuple[int, int]) -> None:
    """Raise ValueError unless ``wave`` (Å) fits flux of ``shape`` (n, n_pix): shape
    (n_pix,) or (n, n_pix), finite, strictly increasing along the pixels. The one check
    every spectrum passes, whichever door (SpectrumSet, a batch reader) it comes in by."""
    n, n_pix = shape
    if wave.shape not in ((n_pix,), (n, n_pix)):
        raise ValueError(f"SpectrumSet: 'wave' must have shape ({n_pix},) or ({n}, {n_pix}) "
                         f"to match flux {shape}, got {wave.shape}")
    if not np.all(np.isfinite(wave)):
        raise ValueError("SpectrumSet: 'wave' contains non-finite values")
    if n_pix > 1 and not np.all(np.diff(wave, axis=-1) > 0):
        raise ValueError("SpectrumSet: 'wave' must be strictly increasing along the pixels")


@dataclass(eq=False)
class SpectrumSet:
    """A set of spectra with their uncertainties, masks, labels and metadata.

    Parameters
    ----------
    wave : array, shape (n_pixels,) or (n_spectra, n_pixels)
        Vacuum wavelength in Angstrom, increasing along the pixel axis.
    flux : array, shape (n_spectra, n_pixels)
        Flux (any consistent unit). A 1-D array is read as one spectrum.
    ivar : array, shape (n_spectra, n_pixels), optional
        Inverse variance of ``flux``; 0 = no information. Defaults to 1 for finite
        pixels (unit weights) when no error spectrum is known.
    mask : bool array, shape (n_spectra, n_pixels), optional
        ``True`` marks a bad pixel.
    labels : array, shape (n_spectra, n_labels), optional
        Stellar labels; NaN = missing.
    label_names : sequence of str, optional
        One name per label column (``teff``, ``logg``, ``fe_h``, ...).
    classes : int array, shape (n_spectra,), optional
        Class index per spectrum into ``class_names``; -1 = unknown.
    class_names : sequence of str, optional
    ids : sequence of str, optional
        Identifier per spectrum; defaults to ``"0", "1", ...``.
    meta : astropy.table.Table or dict of columns, optional
        Per-spectrum metadata, one row per spectrum.
    flux_unit : astropy unit or str, optional
        The unit of ``flux`` (``ivar`` is in ``flux_unit**-2``). By default the unit of a
        Quantity ``flux``, else dimensionless (relative or continuum-normalised flux).
        Given with a Quantity ``flux`` (or ``ivar``), that is converted to it, between
        per-wavelength and per-frequency flux densities too.

    Raises
    ------
    ValueError
        A shape, label or class that does not fit; a ``wave`` Quantity that is not a
        length (:class:`starlearn.units.UnitProblem`); a flux or ivar unit that does not
        convert to ``flux_unit`` (:class:`astropy.units.UnitConversionError`).

    Examples
    --------
    >>> import numpy as np
    >>> s = SpectrumSet(wave=np.linspace(5000, 5100, 50), flux=np.ones((3, 50)),
    ...                 labels=[[5000.0], [np.nan], [5500.0]], label_names=["teff"])
    >>> len(s), s.n_pix, s[1:].labels[:, 0].tolist()
    (3, 50, [nan, 5500.0])

    Quantities are converted at the door:

    >>> import astropy.units as u
    >>> s = SpectrumSet(wave=[1.5, 1.6] * u.um, flux=[[1.0, 2.0]] * u.Jy)
    >>> s.wave.tolist(), s.flux_unit
    ([15000.0, 16000.0], Unit("Jy"))
    """

    wave: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray | None = None
    mask: np.ndarray | None = None
    labels: np.ndarray | None = None
    label_names: list[str] = field(default_factory=list)
    classes: np.ndarray | None = None
    class_names: list[str] = field(default_factory=list)
    ids: np.ndarray | None = None
    meta: Table | None = None
    flux_unit: Any = None

    def __post_init__(self) -> None:
        unit = None if self.flux_unit is None else flux_unit(self.flux_unit)
        flux_in, ivar_in = self.flux, self.ivar
        if isinstance(flux_in, u.Quantity):
            unit = flux_in.unit if unit is None else unit
        unit = u.dimensionless_unscaled if unit is None else unit
        flux = _as_2d("flux", flux_in.value if isinstance(flux_in, u.Quantity) else flux_in,
                      np.float32)
        n = flux.shape[0]
        wave = _wave_angstrom(self.wave)
        if wave.ndim == 2 and wave.shape[0] == 1 and n == 1:
            wave = wave[0]
        check_wave(wave, flux.shape)
        scale: Any = 1.0  # flux as given -> flux_unit; a plain ivar is in (given)**-2
        if isinstance(flux_in, u.Quantity):
            scale = _flux_factor(flux_in.unit, unit, wave)
            flux = (flux * scale).astype(np.float32)
        if isinstance(ivar_in, u.Quantity):
            scale = _flux_factor(ivar_in.unit ** -0.5, unit, wave, "ivar")
            ivar_in = ivar_in.value
        ivar = np.ones_like(flux) if ivar_in is None else _as_2d("ivar", ivar_in, np.float32)
        if ivar_in is not None and not (np.isscalar(scale) and scale == 1.0):
            with np.errstate(divide="ignore", invalid="ignore"):
                ivar = (ivar / np.square(scale)).astype(np.float32)
        mask = (np.zeros(flux.shape, dtype=bool) if self.mask is None
                else _as_2d("mask", self.mask, bool))
        for name, arr in (("ivar", ivar), ("mask", mask)):
            if arr.shape != flux.shape:
                raise ValueError(f"SpectrumSet: '{name}' has shape {arr.shape}, "
                                 f"expected {flux.shape} like flux")
        bad = mask | ~np.isfinite(flux) | ~np.isfinite(ivar) | (ivar <= 0)
        flux[bad] = 0.0
        ivar[bad] = 0.0
        self.wave, self.flux, self.ivar, self.mask = wave, flux, ivar, bad
        self.flux_unit = unit

        if self.labels is None:
            if self.label_names:
                raise ValueError("SpectrumSet: 'label_names' given without 'labels'")
            self.labels = np.zeros((n, 0), dtype=np.float32)
        else:
            labels = np.array(self.labels, dtype=np.float32, copy=True)
            if labels.ndim == 1:
                labels = labels[:, None]
            if labels.shape[0] != n:
                raise ValueError(f"SpectrumSet: 'labels' has {labels.shape[0]} rows for "
                                 f"{n} spectra")
            labels[~np.isfinite(labels)] = np.nan
            self.labels = labels
        self.label_names = [str(x) for x in self.label_names]
        if len(self.label_names) != self.labels.shape[1]:
            raise ValueError(f"SpectrumSet: {len(self.label_names)} label_names for "
                             f"{self.labels.shape[1]} label columns")
        if len(set(self.label_names)) != len(self.label_names):
            raise ValueError(f"SpectrumSet: duplicate label names {self.label_names}")

        self.class_names = [str(x) for x in self.class_names]
        if self.classes is not None:
            classes = np.asarray(self.classes)
            if classes.shape != (n,) or not np.issubdtype(classes.dtype, np.integer):
                raise ValueError(f"SpectrumSet: 'classes' must be integers of shape ({n},), "
                                 f"got {classes.dtype} {classes.shape}")
            if classes.size and (classes.max() >= len(self.class_names) or classes.min() < -1):
                raise ValueError(f"SpectrumSet: class index out of range for "
                                 f"class_names {self.class_names}")
            self.classes = classes.astype(np.int64)

        ids = (np.arange(n).astype(str) if self.ids is None
               else np.asarray([str(i) for i in self.ids], dtype=str))
        if ids.shape != (n,):
            raise ValueError(f"SpectrumSet: {ids.shape[0]} ids for {n} spectra")
        self.ids = ids.astype(object)

        # A Table given by the caller is not copied (columns are shared, adding or removing
        # columns on either side does not affect the other); a dict becomes a new Table.
        meta = self.meta
        if isinstance(meta, dict):  # lists of one type as arrays: Table builds those faster
            meta = {k: np.asarray(v) if isinstance(v, list) and v
                    and len({type(x) for x in v}) == 1 else v for k, v in meta.items()}
        meta = Table() if meta is None else Table(meta, copy=False)
        if len(meta.colnames) and len(meta) != n:
            raise ValueError(f"SpectrumSet: meta table has {len(meta)} rows for {n} spectra")
        self.meta = meta

    # ------------------------------------------------------------------ basic properties
    def __len__(self) -> int:
        return self.flux.shape[0]

    @property
    def n_pix(self) -> int:
        """Number of pixels per spectrum."""
        return self.flux.shape[1]

    @property
    def shared_wave(self) -> bool:
        """True when all spectra share one wavelength array of shape (n_pixels,)."""
        return self.wave.ndim == 1

    def wave_of(self, i: int) -> np.ndarray:
        """Vacuum wavelength (Angstrom) of spectrum ``i``, shape (n_pixels,)."""
        return self.wave if self.shared_wave else self.wave[i]

    @property
    def sigma(self) -> np.ndarray:
        """Flux uncertainty 1/sqrt(ivar), ``inf`` where ivar is 0; (n_spectra, n_pixels)."""
        with np.errstate(divide="ignore"):
            return 1.0 / np.sqrt(self.ivar)

    def mean_flux(self) -> np.ndarray:
        """Mean flux of the good pixels at each pixel, (n_pixels,); NaN where every
        spectrum is masked."""
        good = (~self.mask).sum(axis=0)
        total = np.where(self.mask, 0.0, self.flux).sum(axis=0, dtype=np.float64)
        return np.where(good > 0, total / np.maximum(good, 1), np.nan)

    def label(self, name: str) -> np.ndarray:
        """The column of label ``name`` (NaN = missing), shape (n_spectra,)."""
        try:
            return self.labels[:, self.label_names.index(name)]
        except ValueError:
            raise KeyError(f"no label '{name}'; labels are {self.label_names}") from None

    def replace(self, **changes: Any) -> SpectrumSet:
        """A new SpectrumSet with some fields replaced (the others are copied).

        ``flux_unit`` is kept, except that a Quantity ``flux`` given without ``flux_unit``
        brings its own unit; a Quantity ``ivar`` is converted to the flux unit.

        Examples
        --------
        >>> import numpy as np
        >>> s = SpectrumSet(wave=[1.0, 2.0], flux=[[1.0, 1.0]])
        >>> s.replace(ivar=[[4.0, 0.0]]).mask  # ivar 0: a bad pixel
        array([[False,  True]])
        >>> s.mask
        array([[False, False]])
        """
        fields = {"wave": self.wave, "flux": self.flux, "ivar": self.ivar, "mask": self.mask,
                  "labels": self.labels, "label_names": self.label_names,
                  "classes": self.classes, "class_names": self.class_names, "ids": self.ids,
                  "meta": self.meta, "flux_unit": self.flux_unit}
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"SpectrumSet.replace: unknown fields {sorted(unknown)}")
        if isinstance(changes.get("flux"), u.Quantity) and "flux_unit" not in changes:
            fields["flux_unit"] = None
        fields.update(changes)
        return SpectrumSet(**fields)

    def to_flux_unit(self, unit: Any) -> SpectrumSet:
        """A new SpectrumSet with flux (and ivar) converted to ``unit``.

        Parameters
        ----------
        unit : astropy unit or str
            A unit the current ``flux_unit`` converts to: by a scale (``Jy`` to ``mJy``),
            or between flux densities per wavelength and per frequency at each pixel's
            wavelength. Dimensionless (normalised) flux converts to no physical unit.

        Raises
        ------
        astropy.units.UnitConversionError
            The units do not convert.

        Examples
        --------
        >>> import astropy.units as u
        >>> import numpy as np
        >>> s = SpectrumSet(wave=[5000.0, 5001.0], flux=[[1.0, 2.0]] * u.Jy, ivar=[[4.0, 1.0]])
        >>> m = s.to_flux_unit("mJy")
        >>> m.flux.tolist(), np.allclose(m.ivar, [[4e-6, 1e-6]]), m.flux_unit
        ([[1000.0, 2000.0]], True, Unit("mJy"))
        """
        target = flux_unit(unit)
        if target == self.flux_unit:
            return self.replace()
        return self.replace(flux=u.Quantity(self.flux, self.flux_unit),
                            ivar=u.Quantity(self.ivar, self.flux_unit ** -2),
                            flux_unit=target)

    # ------------------------------------------------------------------ selection
    def __getitem__(self, index: IndexLike) -> SpectrumSet:
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        idx = np.arange(len(self))[index]
        idx = np.atleast_1d(idx)
        return SpectrumSet(
            wave=self.wave if self.shared_wave else self.wave[idx],
            flux=self.flux[idx], ivar=self.ivar[idx], mask=self.mask[idx],
            labels=self.labels[idx], label_names=self.label_names,
            classes=None if self.classes is None else self.classes[idx],
            class_names=self.class_names, ids=self.ids[idx],
            meta=self.meta[idx] if len(self.meta.colnames) else None,
            flux_unit=self.flux_unit,
        )

    def split(self, fractions: Sequence[float] = (0.8, 0.1, 0.1), *,
              seed: int = 0) -> tuple[SpectrumSet, ...]:
        """Random disjoint split, e.g. into train/valid/test.

        Parameters
        ----------
        fractions : sequence of float
            Fraction of spectra in each part; must sum to 1 (within 1e-6).
        seed : int
            Seed of the permutation; the same seed gives the same split.

        Returns
        -------
        tuple of SpectrumSet, one per fraction.

        Examples
        --------
        >>> import numpy as np
        >>> s = SpectrumSet(wave=[1.0, 2.0], flux=np.ones((10, 2)))
        >>> train, valid, test = s.split((0.6, 0.2, 0.2), seed=1)
        >>> len(train), len(valid), len(test)
        (6, 2, 2)
        >>> sorted([*train.ids, *valid.ids, *test.ids], key=int) == list(s.ids)
        True
        """
        fr = np.asarray(fractions, dtype=float)
        if fr.ndim != 1 or np.any(fr < 0) or abs(fr.sum() - 1) > 1e-6:
            raise ValueError(f"split: fractions must be non-negative and sum to 1, got {fractions}")
        perm = np.random.default_rng(seed).permutation(len(self))
        edges = np.round(np.cumsum(fr) * len(self)).astype(int)
        edges[-1] = len(self)
        parts = np.split(perm, edges[:-1])
        return tuple(self[np.sort(p)] for p in parts)

    @classmethod
    def concat(cls, sets: Sequence[SpectrumSet]) -> SpectrumSet:
        """Concatenate SpectrumSets along the spectrum axis.

        Spectra must have the same number of pixels. When all share the same wavelength
        array it stays shared; otherwise wavelengths become per-spectrum. Label columns are
        the union of the inputs' label names (missing ones become NaN); class names must
        agree. Flux is in the first set's ``flux_unit``; the other sets are converted to
        it (:meth:`to_flux_unit`), and refused when their unit does not convert.

        Examples
        --------
        >>> import numpy as np
        >>> a = SpectrumSet(wave=[1.0, 2.0], flux=np.ones((2, 2)), labels=[[5000.0], [5200.0]],
        ...                 label_names=["teff"])
        >>> b = SpectrumSet(wave=[1.0, 2.0], flux=np.ones((1, 2)), labels=[[4.5]],
        ...                 label_names=["logg"])
        >>> both = SpectrumSet.concat([a, b])
        >>> both.label_names, both.labels.tolist()
        (['teff', 'logg'], [[5000.0, nan], [5200.0, nan], [nan, 4.5]])
        """
        sets = list(sets)
        if not sets:
            raise ValueError("concat: nothing to concatenate")
        n_pix = {s.n_pix for s in sets}
        if len(n_pix) > 1:
            raise ValueError(f"concat: spectra have different numbers of pixels {sorted(n_pix)}; "
                             "resample them onto one Grid first")
        first = sets[0]
        try:
            sets = [s if s.flux_unit == first.flux_unit else s.to_flux_unit(first.flux_unit)
                    for s in sets]
        except u.UnitConversionError:
            units = sorted({_unit_name(s.flux_unit) for s in sets})
            raise u.UnitConversionError(f"concat: the sets have flux units {units} that do "
                                        "not convert to one another") from None
        if all(s.shared_wave and np.array_equal(s.wave, first.wave) for s in sets):
            wave = first.wave
        else:
            wave = np.concatenate([np.broadcast_to(s.wave, s.flux.shape) for s in sets])
        names: list[str] = []
        for s in sets:
            names += [x for x in s.label_names if x not in names]
        labels = np.full((sum(len(s) for s in sets), len(names)), np.nan, dtype=np.float32)
        row = 0
        for s in sets:
            for j, name in enumerate(s.label_names):
                labels[row:row + len(s), names.index(name)] = s.labels[:, j]
            row += len(s)
        with_classes = [s.classes is not None for s in sets]
        classes = None
        if any(with_classes):
            if not all(with_classes) or any(s.class_names != first.class_names for s in sets):
                raise ValueError("concat: all sets must have classes with the same class_names")
            classes = np.concatenate([s.classes for s in sets])
        meta = _concat_meta([s.meta for s in sets], [len(s) for s in sets])
        return cls(wave=wave, flux=np.concatenate([s.flux for s in sets]),
                   ivar=np.concatenate([s.ivar for s in sets]),
                   mask=np.concatenate([s.mask for s in sets]), labels=labels,
                   label_names=names, classes=classes, class_names=first.class_names,
                   ids=np.concatenate([s.ids for s in sets]), meta=meta,
                   flux_unit=first.flux_unit)

    # ------------------------------------------------------------------ persistence
    def write(self, path: str | PathLike, format: str | None = None, *,
              overwrite: bool = False, provenance: dict[str, Any] | None = None,
              **options: Any) -> None:
        """Write the spectra to a file through the reader registry.

        Parameters
        ----------
        path : path-like
        format : str, optional
            A format with a registered writer; default ``"starlearn-h5"``, the starlearn
            HDF5 data set (docs/dataset-format.md), whatever the file name.
        overwrite : bool
            Replace an existing file (whole: a reader of the old file keeps it); otherwise
            an existing file raises FileExistsError.
        provenance : dict, optional
            How the file was made (command, config, versions), stored as JSON in the file.
        **options
            Passed to the writer.

        Examples
        --------
        >>> import tempfile
        >>> from pathlib import Path
        >>> s = SpectrumSet(wave=[5000.0, 5001.0], flux=[[1.0, 2.0]], labels=[[4800.0]],
        ...                 label_names=["teff"])
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     s.write(Path(tmp) / "set.h5")
        ...     back = SpectrumSet.read(Path(tmp) / "set.h5")
        >>> back, back.flux.tolist()
        (SpectrumSet(n=1, n_pix=2, wave=5000.0-5001.0 A, labels=['teff']), [[1.0, 2.0]])
        """
        from starlearn.io.registry import write

        write(self, path, format, overwrite=overwrite, provenance=provenance, **options)

    @classmethod
    def read(cls, path: Any, format: str | None = None, **options: Any) -> SpectrumSet:
        """Read a file of any registered format: the same door as :func:`starlearn.read`.

        Parameters
        ----------
        path : path, file object, HDUList, or a specutils Spectrum or SpectrumList
            A starlearn data set (HDF5) or any survey file ``starlearn.read`` reads; a
            specutils object is converted by :meth:`from_specutils`.
        format : str, optional
            A registered format name (``starlearn.io.formats()``); by default identified
            from the content.
        **options
            Passed to the reader (e.g. ``rows=`` to read only some spectra of a data set).

        Returns
        -------
        SpectrumSet
            A data set comes back as stored; a survey file's spectra carry meta ``file``
            and ``format``.

        Raises
        ------
        starlearn.io.ReadError
            A ValueError naming the file and the problem (also a FileNotFoundError when
            the file does not exist).

        Notes
        -----
        For data sets larger than memory use :func:`starlearn.io.open_dataset`, which
        reads batches lazily.
        """
        from starlearn.io.registry import read

        return read(path, format, **options)

    # ------------------------------------------------------------------ the Python ecosystem
    def to_specutils(self, *, as_list: bool = False) -> Any:
        """The spectra as a specutils ``Spectrum`` (or ``SpectrumList``).

        Parameters
        ----------
        as_list : bool
            Return a ``SpectrumList`` with one ``Spectrum`` per spectrum (needed when the
            spectra have their own wavelengths).

        Returns
        -------
        specutils.Spectrum or specutils.SpectrumList
            ``spectral_axis`` in Angstrom (vacuum), ``flux`` in ``flux_unit`` (float32, 1-D
            for one spectrum, ``(n_spectra, n_pixels)`` for several), ``uncertainty`` an
            :class:`~astropy.nddata.InverseVariance` in ``flux_unit**-2``, ``mask`` boolean
            (True = bad). ``meta["starlearn"]`` holds what :meth:`from_specutils` needs to
            give this set back: ``ids``, ``labels`` (name -> values), ``classes`` and
            ``class_names``, ``medium`` and the meta columns by name.

        Raises
        ------
        ValueError
            The spectra have their own wavelengths and ``as_list`` is False.
        MissingExtraError
            specutils is not installed (``pip install 'starlearn[specutils]'``).

        Examples
        --------
        >>> s = SpectrumSet(wave=[5000.0, 5001.0], flux=[[1.0, 2.0], [3.0, 4.0]])
        >>> spec = s.to_specutils()
        >>> spec.flux.shape, spec.spectral_axis.unit, type(spec.uncertainty).__name__
        ((2, 2), Unit("Angstrom"), 'InverseVariance')
        >>> SpectrumSet.from_specutils(spec).flux.tolist()
        [[1.0, 2.0], [3.0, 4.0]]
        """
        from astropy.nddata import InverseVariance

        require("specutils", extra="specutils", what="SpectrumSet.to_specutils")
        from specutils import Spectrum, SpectrumList

        if as_list:
            return SpectrumList([self[i].to_specutils() for i in range(len(self))])
        if not self.shared_wave:
            raise ValueError("to_specutils: the spectra have their own wavelengths and a "
                             "Spectrum holds one spectral axis; pass as_list=True for a "
                             "SpectrumList, or resample them onto one Grid")
        row = 0 if len(self) == 1 else slice(None)
        flux = self.flux[row]
        info: dict[str, Any] = {
            "ids": [str(x) for x in self.ids], "medium": "vacuum",
            "labels": {name: self.labels[:, j].copy()
                       for j, name in enumerate(self.label_names)}}
        if self.classes is not None:
            info["classes"] = self.classes.copy()
            info["class_names"] = list(self.class_names)
        for name in self.meta.colnames:
            if name not in _RESERVED_SPECUTILS_KEYS:
                info[name] = self.meta[name].copy()
        return Spectrum(flux=u.Quantity(flux, self.flux_unit, copy=True),
                        spectral_axis=u.Quantity(self.wave, u.AA, copy=True),
                        spectral_axis_index=flux.ndim - 1,
                        uncertainty=InverseVariance(
                            u.Quantity(self.ivar[row], self.flux_unit ** -2, copy=True)),
                        mask=self.mask[row].copy(), meta={"starlearn": info})

    @classmethod
    def from_specutils(cls, spectra: Any) -> SpectrumSet:
        """A SpectrumSet of a specutils ``Spectrum``, or of a ``SpectrumList`` (or list)
        of them, concatenated.

        Parameters
        ----------
        spectra : specutils.Spectrum, specutils.SpectrumList or sequence of Spectrum
            A Spectrum with 1-D flux is one spectrum; with 2-D flux, one per row (the
            spectral axis last). The spectral axis must be a length (any unit: converted
            to Angstrom, and taken as **vacuum**, as specutils records no medium); the
            flux unit becomes ``flux_unit``. The uncertainty (inverse variance, standard
            deviation or variance) becomes ``ivar``; none gives unit weights. The mask
            (True or non-zero = bad) is kept. ``meta["starlearn"]`` as written by
            :meth:`to_specutils` (or by starlearn's specutils loaders) restores ids,
            labels, classes and meta columns.

        Raises
        ------
        ValueError
            Not specutils objects, flux of more than two dimensions, a spectral axis that
            is not a length, spectra of a list with different numbers of pixels.
        MissingExtraError
            specutils is not installed (``pip install 'starlearn[specutils]'``).
        """
        require("specutils", extra="specutils", what="SpectrumSet.from_specutils")
        from specutils import Spectrum

        if isinstance(spectra, Spectrum):
            return cls._from_one_spectrum(spectra)
        if isinstance(spectra, (str, bytes)) or not isinstance(spectra, Sequence):
            raise ValueError(f"from_specutils: expected a specutils Spectrum or SpectrumList, "
                             f"got {type(spectra).__name__}")
        items = list(spectra)
        if not items:
            raise ValueError("from_specutils: the SpectrumList is empty")
        bad = [type(x).__name__ for x in items if not isinstance(x, Spectrum)]
        if bad:
            raise ValueError(f"from_specutils: expected Spectrum objects in the list, got "
                             f"{', '.join(sorted(set(bad)))}")
        return cls.concat([cls._from_one_spectrum(x) for x in items])

    @classmethod
    def _from_one_spectrum(cls, spectrum: Any) -> SpectrumSet:
        from astropy.nddata import InverseVariance

        flux = spectrum.flux
        if flux.ndim > 2:
            raise ValueError(f"from_specutils: flux of shape {flux.shape}: only 1-D or 2-D "
                             "(n_spectra, n_pixels) flux is read")
        axis = getattr(spectrum, "spectral_axis_index", None)
        if flux.ndim == 2 and axis not in (None, 1, -1):
            flux = np.moveaxis(flux, axis, -1)
        else:
            axis = None
        n = 1 if flux.ndim == 1 else flux.shape[0]

        def along(array: Any) -> Any:
            return array if axis is None else np.moveaxis(array, axis, -1)

        ivar = None
        unc = spectrum.uncertainty
        if unc is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                iv = unc if isinstance(unc, InverseVariance) else unc.represent_as(
                    InverseVariance)
            ivar = along(iv.quantity if iv.unit is not None else np.asarray(iv.array))
        mask = None if spectrum.mask is None else along(np.asarray(spectrum.mask) != 0)
        info = dict((spectrum.meta or {}).get("starlearn") or {})
        ids = info.get("ids")
        ids = list(ids) if ids is not None and len(ids) == n else None
        label_info = info.get("labels") or {}
        label_names = [str(k) for k in label_info]
        labels = (np.column_stack([np.asarray(label_info[k], np.float32).reshape(n)
                                   for k in label_info]) if label_names else None)
        classes, class_names = info.get("classes"), list(info.get("class_names") or [])
        if classes is not None:
            classes = np.asarray(classes).reshape(n)
        meta = {key: value for key, value in info.items()
                if key not in _RESERVED_SPECUTILS_KEYS and not isinstance(value, (str, bytes))
                and hasattr(value, "__len__") and len(value) == n}
        return cls(wave=spectrum.spectral_axis, flux=flux, ivar=ivar, mask=mask,
                   labels=labels, label_names=label_names, classes=classes,
                   class_names=class_names if classes is not None else [], ids=ids,
                   meta=Table({k: v if isinstance(v, Column) else np.asarray(v)
                               for k, v in meta.items()}) if meta else None)

    def to_table(self) -> Table:
        """An astropy Table with one row per spectrum.

        Returns
        -------
        astropy.table.Table
            Columns, in order: ``id``; one per label, named by the label, NaN = missing,
            with its unit (:func:`starlearn.units.label_unit`: ``teff`` K, ``logg`` and
            abundances dex, velocities km/s; none for a label starlearn does not know);
            ``class`` (the class name, ``""`` unknown) when the set has classes; the meta
            columns (with their units; a name taken by one of the other columns gets the
            prefix ``meta_``); ``wave`` (Angstrom, vacuum, ``(n_pixels,)`` per row) only
            when the spectra have their own wavelengths; then ``flux`` (``flux_unit``),
            ``ivar`` (``flux_unit**-2``) and ``mask`` (True = bad) as array columns of
            ``(n_pixels,)`` per row. ``table.meta`` holds ``wave`` (a Quantity in
            Angstrom) for a shared grid, ``medium`` (``"vacuum"``), ``flux_unit`` (its
            string, ``""`` dimensionless), ``label_names`` and ``class_names``.

        Examples
        --------
        >>> s = SpectrumSet(wave=[5000.0, 5001.0], flux=[[1.0, 2.0]], labels=[[4800.0]],
        ...                 label_names=["teff"], ids=["a"])
        >>> t = s.to_table()
        >>> t.colnames, str(t["teff"].unit), t.meta["wave"]
        (['id', 'teff', 'flux', 'ivar', 'mask'], 'K', <Quantity [5000., 5001.] Angstrom>)
        """
        from starlearn.units import unit_text

        table = Table()
        table["id"] = np.asarray(self.ids, dtype=str)
        for j, name in enumerate(self.label_names):
            table[name] = Column(self.labels[:, j].copy(), unit=label_unit(name))
        if self.classes is not None:
            names = np.asarray([*self.class_names, ""], dtype=str)
            table["class"] = names[self.classes]  # -1 picks the last: ""
        taken = {"id", "class", "wave", "flux", "ivar", "mask", *self.label_names}
        for name in self.meta.colnames:
            out = f"meta_{name}" if name in taken else name
            table[out] = self.meta[name].copy()
        if not self.shared_wave:
            table["wave"] = Column(self.wave.copy(), unit=u.AA)
        table["flux"] = Column(self.flux.copy(), unit=self.flux_unit)
        table["ivar"] = Column(self.ivar.copy(), unit=self.flux_unit ** -2)
        table["mask"] = self.mask.copy()
        if self.shared_wave:
            table.meta["wave"] = u.Quantity(self.wave, u.AA, copy=True)
        table.meta["medium"] = "vacuum"
        table.meta["flux_unit"] = unit_text(self.flux_unit)
        table.meta["label_names"] = list(self.label_names)
        table.meta["class_names"] = list(self.class_names)
        return table

    def _wave_range(self) -> tuple[float, float] | None:
        if self.wave.size == 0:
            return None
        return float(np.min(self.wave)), float(np.max(self.wave))

    def __repr__(self) -> str:
        span = self._wave_range()
        wave = "-" if span is None else f"{span[0]:.1f}-{span[1]:.1f} A"
        extra = f", labels={self.label_names}" if self.label_names else ""
        if self.classes is not None:
            extra += f", classes={self.class_names}"
        if self.flux_unit != u.dimensionless_unscaled:
            extra += f", flux_unit='{self.flux_unit}'"
        return f"SpectrumSet(n={len(self)}, n_pix={self.n_pix}, wave={wave}{extra})"

    def _repr_html_(self) -> str:
        """A summary for notebooks: size, wavelength range, flux unit, labels with their
        units and ranges, class counts, meta columns."""
        from html import escape

        span = self._wave_range()
        grid = "shared grid" if self.shared_wave else "per-spectrum wavelengths"
        wave = ("no pixels" if span is None else
                f"{span[0]:.2f} &ndash; {span[1]:.2f} &#8491; (vacuum, {grid})")
        unit = str(self.flux_unit) or "dimensionless (relative or normalised)"
        parts = [f"<div class='starlearn-spectrumset'><strong>SpectrumSet</strong>: "
                 f"{len(self)} spectra &times; {self.n_pix} pixels<br>wavelength {wave}<br>"
                 f"flux unit: {escape(unit)}; masked pixels: {int(self.mask.sum())}"]
        if self.label_names:
            rows = []
            for j, name in enumerate(self.label_names):
                col = self.labels[:, j]
                ok = col[np.isfinite(col)]
                lo, hi = (f"{ok.min():.4g}", f"{ok.max():.4g}") if ok.size else ("", "")
                lu = label_unit(name)
                rows.append(f"<tr><td>{escape(name)}</td><td>{escape(str(lu or ''))}</td>"
                            f"<td>{lo}</td><td>{hi}</td><td>{col.size - ok.size}</td></tr>")
            parts.append("<table><tr><th>label</th><th>unit</th><th>min</th><th>max</th>"
                         f"<th>missing</th></tr>{''.join(rows)}</table>")
        if self.classes is not None:
            counts = np.bincount(self.classes + 1, minlength=len(self.class_names) + 1)
            rows = [f"<tr><td>{escape(c)}</td><td>{counts[i + 1]}</td></tr>"
                    for i, c in enumerate(self.class_names)]
            rows.append(f"<tr><td><em>unknown</em></td><td>{counts[0]}</td></tr>")
            parts.append(f"<table><tr><th>class</th><th>count</th></tr>{''.join(rows)}"
                         "</table>")
        if self.meta.colnames:
            parts.append(f"meta: {escape(', '.join(self.meta.colnames))}")
        return "".join(parts) + "</div>"


_RESERVED_SPECUTILS_KEYS = frozenset({"ids", "labels", "classes", "class_names", "medium"})
"""Keys of a Spectrum's ``meta["starlearn"]`` that are not meta columns."""
