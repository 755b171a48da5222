"""Ingest many survey files into one HDF5 data set, in parallel, listing what was rejected.

Each input file (inputs expanded by :func:`starlearn.io.batch.expand_inputs`, which this
module re-exports) is read with the reader registry (format identified from its content or
given), optionally moved to the rest frame and resampled onto one Grid, joined with labels
from a catalogue (:func:`starlearn.io.catalogue.read_label_catalogue`: lazy column reading,
``where`` row selection, duplicate identifiers refused or resolved, label uncertainties
stored as meta ``<label>_err``), and appended to a data-set file. A file that cannot be
read goes to the rejects list with the reason; the run goes on.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Column, Table

from starlearn.grid import Grid, get_grid
from starlearn.io.batch import expand_inputs
from starlearn.io.catalogue import DUPLICATE_RULES, LabelCatalogue, read_label_catalogue
from starlearn.io.dataset import DatasetWriter
from starlearn.io.fitsutil import ReadError
from starlearn.io.registry import read
from starlearn.spectra import SpectrumSet

__all__ = ["IngestReport", "expand_inputs", "ingest", "load_label_catalog"]

_BLOCK = 256


@dataclass
class IngestReport:
    """What an ingest did: files read, spectra written, files rejected and why."""

    output: Path
    n_files: int = 0
    n_read: int = 0
    n_spectra: int = 0
    rejects: list[tuple[str, str]] = field(default_factory=list)
    n_labelled: int = 0
    catalogue: LabelCatalogue | None = None
    """The label catalogue joined (what was read, selected and how duplicates went)."""
    n_labelled_duplicated: int = 0
    """Spectra whose catalogue identifier was on several rows (resolved by the rule)."""

    def summary(self) -> str:
        lines = [f"ingest: {self.n_files} files, {self.n_read} read, {len(self.rejects)} "
                 f"rejected; {self.n_spectra} spectra written to {self.output}"]
        if self.catalogue is not None:
            lines += [f"  {line}" for line in self.catalogue.summary_lines()]
        if self.n_labelled:
            lines.append(f"  {self.n_labelled} spectra matched a catalogue row")
            if self.n_labelled_duplicated and self.catalogue is not None:
                lines.append(f"  {self.n_labelled_duplicated} of them by an identifier on "
                             f"several rows (rule '{self.catalogue.duplicates}')")
        elif self.catalogue is not None:
            lines.append("  no spectrum matched a catalogue row")
        reasons = Counter(_reason_kind(r) for _, r in self.rejects)
        for reason, count in reasons.most_common():
            lines.append(f"  rejected {count}: {reason}")
        return "\n".join(lines)


def _reason_kind(reason: str) -> str:
    return reason.split(" (")[0]


def load_label_catalog(path: str | os.PathLike, *, id_column: str,
                       label_columns: Sequence[str] | Mapping[str, str],
                       where: str | None = None,
                       duplicates: str = "best") -> dict[str, np.ndarray]:
    """Labels by identifier from a FITS, CSV, ECSV or Parquet catalogue.

    A thin wrapper of :func:`starlearn.io.catalogue.read_label_catalogue` (which also gives
    the uncertainties and what was read): values of -9999 or below (survey "no value"
    markers), masked and non-finite entries become NaN; identifiers are compared as
    stripped strings; column names are matched case-insensitively; duplicated
    identifiers are resolved by ``duplicates`` (default ``"best"``).

    Returns
    -------
    dict id -> float array (n_labels,) in the order of ``label_columns``.
    """
    return read_label_catalogue(path, id_column=id_column, label_columns=label_columns,
                                where=where, duplicates=duplicates, errors=False).as_dict()


def _read_one(path: str, format: str | None, grid: dict[str, Any] | None, rest_frame: bool,
              options: dict[str, Any]) -> SpectrumSet | tuple[str, str]:
    """Worker: read, shift, resample one file; a (path, reason) tuple on failure."""
    try:
        spectra = read(path, format=format, **options)
        if "file" not in spectra.meta.colnames:  # a data set read as an input
            spectra.meta["file"] = [path] * len(spectra)
        if rest_frame or grid is not None:
            from starlearn.preprocess import DopplerShift, Resample
        if rest_frame:
            if "rv" not in spectra.meta.colnames or not np.all(np.isfinite(spectra.meta["rv"])):
                return path, "no radial velocity for the rest frame (meta 'rv' missing or NaN)"
            spectra = DopplerShift().transform(spectra)
        if grid is not None:
            target = get_grid(grid)
            spectra = Resample(grid=target).transform(spectra)
            usable = (~spectra.mask).mean(axis=1)
            if np.all(usable == 0):
                lo, hi = spectra.wave[0], spectra.wave[-1]
                return path, (f"wrong wavelength coverage (no good pixel on the {lo:.0f}-"
                              f"{hi:.0f} A grid)")
        return spectra
    except ReadError as err:
        return path, err.reason
    except Exception as err:  # one bad file must not stop an archive run
        return path, f"unexpected error ({type(err).__name__}: {err})"


def _results(paths: Sequence[str], workers: int, task: Callable[..., Any],
             args: tuple[Any, ...]) -> Iterator[SpectrumSet | tuple[str, str]]:
    if workers <= 1:
        for p in paths:
            yield task(p, *args)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        chunk = max(1, min(64, len(paths) // (workers * 8) or 1))
        yield from pool.map(task, paths, *[[a] * len(paths) for a in args], chunksize=chunk)


def ingest(inputs: Iterable[str | os.PathLike], output: str | os.PathLike, *,
           format: str | None = None, grid: str | Grid | dict[str, Any] | None = None,
           rest_frame: bool = False, labels: str | os.PathLike | None = None,
           id_column: str | None = None,
           label_columns: Sequence[str] | Mapping[str, str] | None = None,
           where: str | None = None, duplicates: str = "best", label_errors: bool = True,
           workers: int = 1, overwrite: bool = False, progress: bool = True,
           read_options: dict[str, Any] | None = None,
           provenance: dict[str, Any] | None = None) -> IngestReport:
    """Read many spectrum files into one data-set file.

    Parameters
    ----------
    inputs : paths, folders, glob patterns or list files
    output : path
        The data set to write (HDF5 data-set format).
    format : str, optional
        Reader format for every file; None identifies each file from its content.
    grid : preset name, Grid or Grid dict, optional
        Resample every spectrum onto this grid (flux-conserving). Without a grid, all
        spectra must have the same number of pixels (stored with per-spectrum wavelengths).
    rest_frame : bool
        Shift each spectrum to the rest frame by its meta ``rv`` (km/s) before resampling.
    labels, id_column, label_columns
        A label catalogue (FITS/CSV/ECSV/Parquet) joined on ``id_column`` against each
        spectrum's id (or its file name without extension); its ``label_columns`` become
        the labels (-9999 and missing values become NaN). Column names are matched
        case-insensitively and labels are named in lower case (``TEFF`` -> ``teff``,
        ``[Fe/H]`` -> ``fe_h``); ``"teff=TEFF"`` items or a ``{"teff": "TEFF"}`` mapping
        name them explicitly. Only the needed columns are read. Without a catalogue, the
        labels the readers provide (e.g. ASPCAP parameters) are kept.
    where : str, optional
        Keep only the catalogue rows this expression selects, e.g.
        ``"ASPCAPFLAG == 0 and SNR > 50"`` (:func:`starlearn.io.catalogue.parse_where`);
        spectra of the other stars get NaN labels.
    duplicates : {"best", "first", "refuse"}
        An identifier on several catalogue rows (after ``where``): ``"best"`` keeps the
        row the survey marks primary (APOGEE EXTRATARG bit 4 unset, SDSS SPECPRIMARY,
        DESI ZCAT_PRIMARY, GALAH flag_repeat = 0), then the one of highest S/N, and
        refuses when the catalogue has neither; ``"first"`` keeps the first row;
        ``"refuse"`` raises :class:`starlearn.io.catalogue.DuplicateIdError` listing them.
    label_errors : bool
        Store each label's catalogue uncertainty (``TEFF_ERR``, ``e_teff`` ...) as meta
        column ``<label>_err`` (NaN where unknown).
    workers : int
        Reader processes (1 = in this process).
    overwrite : bool
    progress : bool
        Show a progress bar.
    read_options : dict
        Options passed to the reader (e.g. ``{"rows": "visits"}``).

    Returns
    -------
    IngestReport; the rejects are also written to ``<output>.rejects.csv`` when any.
    """
    paths = expand_inputs(inputs)
    output = Path(output)
    if output.exists() and not overwrite:
        raise FileExistsError(f"{output}: file exists (pass overwrite=True to replace it)")
    if labels is not None and (id_column is None or not label_columns):
        raise ValueError("ingest: a label catalogue needs id_column and label_columns")
    if labels is None and where is not None:
        raise ValueError("ingest: where selects catalogue rows; it needs a label catalogue")
    if duplicates not in DUPLICATE_RULES:
        raise ValueError(f"ingest: duplicates must be one of {', '.join(DUPLICATE_RULES)}; "
                         f"got {duplicates!r}")
    catalog = (read_label_catalogue(labels, id_column=id_column, label_columns=label_columns,
                                    where=where, duplicates=duplicates, errors=label_errors)
               if labels is not None else None)
    grid_dict = get_grid(grid).to_dict() if grid is not None else None
    report = IngestReport(output=output, n_files=len(paths), catalogue=catalog)
    writer: DatasetWriter | None = None
    buffer: list[SpectrumSet] = []

    def flush() -> None:
        nonlocal writer
        if not buffer:
            return
        block = SpectrumSet.concat(buffer)
        buffer.clear()
        if writer is None:
            names = catalog.label_names if catalog is not None else block.label_names
            meta_cols = {c: _column_dtype(block.meta[c]) for c in block.meta.colnames}
            writer = DatasetWriter(output, n_pix=block.n_pix,
                                   wave=block.wave if grid is not None else None,
                                   label_names=names, meta_columns=meta_cols,
                                   provenance=provenance, overwrite=overwrite)
        writer.append(_conform(block, writer.label_names))

    from tqdm import tqdm

    results = _results(paths, workers, _read_one,
                       (format, grid_dict, rest_frame, dict(read_options or {})))
    try:
        for result in tqdm(results, total=len(paths), disable=not progress, unit="file",
                           desc="ingest"):
            if isinstance(result, tuple):
                report.rejects.append(result)
                continue
            if catalog is not None:
                result, matched, duplicated = _join(result, catalog)
                report.n_labelled += matched
                report.n_labelled_duplicated += duplicated
            first = writer.n_pix if writer is not None else (buffer[0].n_pix if buffer
                                                            else result.n_pix)
            if result.n_pix != first:
                report.rejects.append((str(result.meta["file"][0]),
                                       f"has {result.n_pix} pixels, the data set {first} "
                                       "(pass a grid to resample)"))
                continue
            report.n_read += 1
            report.n_spectra += len(result)
            buffer.append(result)
            if sum(len(b) for b in buffer) >= _BLOCK:
                flush()
        flush()
    except BaseException:
        if writer is not None:
            writer.discard()
        raise
    if writer is None:
        _write_rejects(output, report)
        raise ReadError(str(output), f"no input could be read ({len(report.rejects)} "
                                     "rejected); nothing written")
    writer.close()  # moves the finished file into place
    _write_rejects(output, report)
    return report


def _column_dtype(column: Any) -> np.dtype:
    arr = np.asarray(column)
    return np.dtype(object) if arr.dtype.kind in "USO" else arr.dtype


def _conform(block: SpectrumSet, names: list[str]) -> SpectrumSet:
    """Re-order/extend the block's labels to ``names`` (missing ones NaN)."""
    if block.label_names == names:
        return block
    labels = np.full((len(block), len(names)), np.nan, dtype=np.float32)
    for j, name in enumerate(names):
        if name in block.label_names:
            labels[:, j] = block.label(name)
    return block.replace(labels=labels, label_names=names)


def _join(spectra: SpectrumSet, catalog: LabelCatalogue) -> tuple[SpectrumSet, int, int]:
    """The spectra with the catalogue's labels (NaN where no row matched) and, for the
    labels with an uncertainty column, meta ``<label>_err``; the number matched and how
    many of those matched an identifier that was on several catalogue rows.

    A reader's own ``<label>_err`` meta for a label taken from the catalogue is replaced
    (NaN where the catalogue gives none), so the errors always belong to the labels."""
    n = len(spectra)
    index = np.full(n, -1, dtype=np.int64)
    duplicated = 0
    files = spectra.meta["file"] if "file" in spectra.meta.colnames else [""] * n
    for i, (ident, path) in enumerate(zip(spectra.ids, files, strict=True)):
        stem = os.path.basename(str(path))
        for suffix in (".gz", ".fits", ".fit", ".fts"):
            stem = stem.removesuffix(suffix)
        for key in (str(ident).strip(), stem):
            row = catalog.index(key)
            if row is not None:
                index[i] = row
                duplicated += catalog.was_duplicated(key)
                break
    hit = index >= 0
    labels = np.full((n, len(catalog.label_names)), np.nan, dtype=np.float32)
    labels[hit] = catalog.values[index[hit]]
    meta = Table(spectra.meta, copy=False)
    for j, (label, name) in enumerate(zip(catalog.label_names, catalog.error_names,
                                          strict=True)):
        if label not in catalog.error_columns and name not in meta.colnames:
            continue
        errors = np.full(n, np.nan, dtype=np.float32)
        errors[hit] = catalog.errors[index[hit], j]
        if name in meta.colnames:
            meta.replace_column(name, Column(errors, name=name))
        else:
            meta[name] = errors
    return (spectra.replace(labels=labels, label_names=list(catalog.label_names), meta=meta),
            int(hit.sum()), duplicated)


def _write_rejects(output: Path, report: IngestReport) -> None:
    path = output.with_name(output.name + ".rejects.csv")
    if not report.rejects:
        path.unlink(missing_ok=True)
        return
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "reason"])
        writer.writerows(report.rejects)
