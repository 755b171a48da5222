"""SpectrumSet: the one in-memory container for a set of spectra.

A SpectrumSet holds ``n`` spectra sampled on ``n_pix`` pixels:

* ``wave``: wavelength in Angstrom, **vacuum**; shape ``(n_pix,)`` when all spectra share one
  grid, or ``(n_spectra, n_pixels)`` when each spectrum has its own;
* ``flux``: flux, shape ``(n_spectra, n_pixels)``, float32, in any consistent unit
  (relative flux or continuum-normalised);
* ``ivar``: inverse variance of ``flux`` (1 / sigma**2, in flux units**-2); ``0`` means
  "no information";
* ``mask``: boolean, ``True`` marks a bad pixel;
* ``labels``: float32 ``(n_spectra, n_labels)`` with NaN for a missing label, named by
  ``label_names`` (``teff`` in K, ``logg`` in dex, ``fe_h`` ... in dex);
* ``classes``: optional integer class index per spectrum, named by ``class_names``
  (``-1`` = unknown);
* ``ids``: one string per spectrum;
* ``meta``: an :class:`astropy.table.Table` with one row per spectrum (survey, snr, rv in
  km/s, file, ...).

Invariants (enforced on construction): non-finite flux or ivar, and negative ivar, become
masked pixels with ``ivar = 0`` and ``flux = 0``; masked pixels have ``ivar = 0`` and pixels
with ``ivar = 0`` are masked. NaN therefore never propagates out of a SpectrumSet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import numpy as np
from astropy.table import Table

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

    Examples
    --------
    >>> import numpy as np
    >>> s = SpectrumSet(wave=np.linspace(5000, 5100, 50), flux=np.ones((3, 50)),
    ...                 labels=[[5000.0], [np.nan], [5500.0]], label_names=["teff"])
    >>> len(s), s.n_pix, s[1:].labels[:, 0].tolist()
    (3, 50, [nan, 5500.0])
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

    def __post_init__(self) -> None:
        flux = _as_2d("flux", self.flux, np.float32)
        n = flux.shape[0]
        wave = np.array(self.wave, dtype=np.float64, copy=True)
        if wave.ndim == 2 and wave.shape[0] == 1 and n == 1:
            wave = wave[0]
        check_wave(wave, flux.shape)
        ivar = np.ones_like(flux) if self.ivar is None else _as_2d("ivar", self.ivar, np.float32)
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
                  "meta": self.meta}
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"SpectrumSet.replace: unknown fields {sorted(unknown)}")
        fields.update(changes)
        return SpectrumSet(**fields)

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
        agree.

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
                   ids=np.concatenate([s.ids for s in sets]), meta=meta)

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
        path : path, file object or HDUList
            A starlearn data set (HDF5) or any survey file ``starlearn.read`` reads.
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

    def __repr__(self) -> str:
        lo, hi = float(np.min(self.wave)), float(np.max(self.wave))
        extra = f", labels={self.label_names}" if self.label_names else ""
        if self.classes is not None:
            extra += f", classes={self.class_names}"
        return (f"SpectrumSet(n={len(self)}, n_pix={self.n_pix}, wave={lo:.1f}-{hi:.1f} A"
                f"{extra})")
