"""The archive run: predict with a saved model over many files, resumably, locally or on Dask.

The inputs (spectrum files found in folders, globs or list files, and HDF5 data sets) are
split into *parts*: a fixed number of files, or a fixed range of rows of a data set. Each
part is read, preprocessed with the model's saved pipeline and predicted by one worker,
which writes ``part-NNNNN.parquet`` (and ``rejects-NNNNN.csv`` for files it could not use)
atomically (temporary file, then rename). The driver appends a line to ``manifest.jsonl``
when a part is finished. The plan (which inputs go in which part) is written first, so that
``resume=True`` after a crash or ``kill -9`` redoes exactly the parts without a manifest
line, and the merged catalogue holds every input exactly once.

Workers are local processes (``concurrent.futures``) or the workers of a
``dask.distributed`` cluster (``scheduler="local"`` starts a LocalCluster, an address such
as ``tcp://host:8786`` connects to a running one). Each worker loads the model once and
runs its engine with ``cores / workers`` threads, so reading, preprocessing and inference
of different parts overlap.

The catalogue (``docs/catalogue-format.md``) holds, per spectrum, its ``id``, the
identifiers and observing metadata its reader gave (:data:`METADATA_COLUMNS`: ra, dec,
obsid, mjd, snr, file ...), then the predictions; every physical column carries its unit
(FITS ``TUNITn``, the Parquet and ECSV metadata), and the file carries its provenance
(model, the SHA-256 of its weights and config, starlearn version, command line, date) and
the meaning of each flag bit (:data:`FLAG_MEANINGS`). Spectra on another wavelength grid
than the model's are resampled onto it when the ``resample`` policy allows (see
:meth:`starlearn.estimators.base.ArtifactEstimator.prepare_inputs`). A run that fails
leaves no catalogue and, unless it finished a part worth resuming, no parts folder.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from starlearn._atomic import atomic_write, check_writable
from starlearn._extras import require
from starlearn.errors import NothingPredictedError, ResampledWarning

__all__ = ["FLAG_MEANINGS", "METADATA_COLUMNS", "RESAMPLE_POLICIES", "ArchiveSummary",
           "NothingPredictedError", "Part", "model_identity", "plan_parts", "read_catalogue",
           "run_archive"]

PLAN_VERSION = 2

FLAG_NOT_PREDICTED = 4
"""The estimators' flag bit of a spectrum with too few usable pixels (NaN outputs)."""

FLAG_MEANINGS = {
    1: "label outside the range of the training labels (value written)",
    2: "spectrum far from the training spectra (network features or chi-square)",
    4: "too few usable pixels (fewer than min_usable): not predicted, NaN",
    8: "label outside its physical range (starlearn.units.physical_range): NaN",
    16: "label more than half the training range's width beyond it: NaN (with bit 1)",
    32: "no radial velocity: the classifier's line window was placed at rest",
}
"""What each bit of a catalogue's ``flags`` and ``<label>_flag`` columns means (the
estimators' ``FLAG_*`` constants; label models set bits 1-16, a classifier 2, 4, 32)."""

RESAMPLE_POLICIES = ("auto", "never", "always")
"""Policies for inputs on another wavelength grid than the model's (see
:meth:`~starlearn.estimators.base.ArtifactEstimator.prepare_inputs`)."""

_RESAMPLED = "resampled onto the model's grid"
"""The phrase of the run's warning about the inputs it resampled (as the estimators' own
:class:`~starlearn.errors.ResampledWarning` says it)."""

METADATA_COLUMNS: dict[str, tuple[str, str]] = {
    # identifiers (written as text: 64-bit ids stay exact, and every part agrees)
    "obsid": ("str", ""), "designation": ("str", ""), "objname": ("str", ""),
    "object": ("str", ""), "targetid": ("str", ""), "source_id": ("str", ""),
    "apogee_id": ("str", ""), "sobject_id": ("str", ""), "plate": ("str", ""),
    "fiberid": ("str", ""), "fiber": ("str", ""), "tileid": ("str", ""),
    "expid": ("str", ""), "night": ("str", ""), "survey": ("str", ""),
    "class": ("str", ""), "subclass": ("str", ""),
    # observing metadata
    "ra": ("float", "deg"), "dec": ("float", "deg"), "mjd": ("float", "d"),
    "snr": ("float", ""), "sn_u": ("float", ""), "sn_g": ("float", ""),
    "sn_r": ("float", ""), "sn_i": ("float", ""), "sn_z": ("float", ""),
    "z": ("float", ""), "rv": ("float", "km / s"), "helio_rv": ("float", "km / s"),
    "vhelio": ("float", "km / s"),
    # where the spectrum came from
    "file": ("str", ""), "filename": ("str", ""), "format": ("str", ""),
}
"""Meta columns of the input spectra (as the readers of :mod:`starlearn.io` name them)
that pass through to the catalogue, after ``id`` and before the predictions: name ->
(kind, unit). A name a prediction column already has is written ``input_<name>``."""

_DESCRIPTIONS = {
    "id": "spectrum identifier (the reader's: LAMOST obsid, APOGEE id ...)",
    "obsid": "observation id", "designation": "object designation", "objname": "object name",
    "object": "object name", "targetid": "target id", "source_id": "source id",
    "apogee_id": "APOGEE id", "sobject_id": "GALAH sobject_id", "plate": "plate",
    "fiberid": "fibre", "fiber": "fibre", "tileid": "tile", "expid": "exposure",
    "night": "night of observation", "survey": "survey",
    "class": "the survey's class", "subclass": "the survey's subclass",
    "ra": "right ascension (as the survey gives it)",
    "dec": "declination (as the survey gives it)",
    "mjd": "modified Julian date of the observation",
    "snr": "signal-to-noise ratio the input gives (per pixel)", "z": "the survey's redshift",
    "rv": "the survey's radial velocity", "helio_rv": "heliocentric radial velocity",
    "vhelio": "heliocentric radial velocity", "file": "input file",
    "filename": "file name in the input's header", "format": "reader format",
    "probability": "probability of the most probable class",
    "flags": "OR of every flag bit of the row",
}


@dataclass
class Part:
    """One unit of work: files, or rows ``[start, stop)`` of one data set."""

    index: int
    files: list[str] = field(default_factory=list)
    dataset: str | None = None
    start: int = 0
    stop: int = 0

    @property
    def n_inputs(self) -> int:
        return len(self.files) if self.dataset is None else self.stop - self.start


@dataclass
class ArchiveSummary:
    """What a run produced."""

    output: Path
    rejects: Path | None
    parts: int
    parts_skipped: int
    spectra: int
    rejected: int
    flagged: int
    seconds: float
    not_predicted: int = 0
    resampled: dict[str, int] = field(default_factory=dict)
    """Spectra resampled onto the model's grid, by their own grid ("3899 pixels,
    3700.0-9078.2 A")."""

    def __str__(self) -> str:
        resumed = f", {self.parts_skipped} parts already done" if self.parts_skipped else ""
        unseen = (f", {self.not_predicted} of them not predicted (too few usable pixels: "
                  "NaN, flag 4)" if self.not_predicted else "")
        moved = (f", {sum(self.resampled.values())} resampled onto the model's grid"
                 if self.resampled else "")
        return (f"{self.spectra} spectra in the catalogue ({self.flagged} flagged{unseen}"
                f"{moved}), {self.rejected} inputs rejected, {self.parts} parts{resumed}, "
                f"{self.seconds:.0f} s -> {self.output}")


def plan_parts(inputs: Sequence[str], *, files_per_part: int = 500,
               rows_per_part: int = 20_000) -> list[Part]:
    """Split expanded inputs into parts (files in order; data sets by row ranges)."""
    from starlearn.io.dataset import open_dataset

    parts: list[Part] = []
    files: list[str] = []

    def flush() -> None:
        if files:
            parts.append(Part(len(parts), files=list(files)))
            files.clear()

    for path in inputs:
        if path.lower().endswith((".h5", ".hdf5")):
            flush()
            with open_dataset(path) as store:
                n = len(store)
            for start in range(0, n, rows_per_part):
                parts.append(Part(len(parts), dataset=path, start=start,
                                  stop=min(n, start + rows_per_part)))
        else:
            files.append(path)
            if len(files) >= files_per_part:
                flush()
    flush()
    return parts


def _digest(parts: Iterable[Part]) -> str:
    text = json.dumps([asdict(p) for p in parts], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------------- worker side
_MODELS: dict[tuple[str, str], Any] = {}


def _loaded(model_dir: str, engine: str, min_usable: float | None = None,
            resample: str = "never") -> Any:
    """The model of ``model_dir``, loaded once per process (its engine is built at its
    first prediction, so a model loaded before a fork builds it in each worker)."""
    key = (model_dir, engine)
    if key not in _MODELS:
        from starlearn.estimators import load

        model = load(model_dir)
        model.engine = engine
        model.progress = False
        _MODELS[key] = model
    model = _MODELS[key]
    if min_usable is not None and hasattr(model, "min_usable"):
        model.min_usable = min_usable
    model.resample = resample
    return model


_THREADS: list[int] = []


def _model(model_dir: str, engine: str, threads: int, min_usable: float | None = None,
           resample: str = "never") -> Any:
    """The worker's model, with torch and the native thread pools (numpy's BLAS, OpenMP)
    set to ``threads`` threads: an idle BLAS pool of all cores keeps spinning after each
    matrix product and, with two workers on two cores, slowed their reading by a third."""
    import torch
    from threadpoolctl import threadpool_limits

    threads = max(1, threads)
    if _THREADS != [threads]:
        torch.set_num_threads(threads)
        threadpool_limits(threads)
        _THREADS[:] = [threads]
    return _loaded(model_dir, engine, min_usable, resample)


def _read_part(part: Part, fmt: str | None) -> tuple[list[Any], list[tuple[str, str]]]:
    from starlearn.io.batch import read_many
    from starlearn.io.dataset import open_dataset

    if part.dataset is not None:
        with open_dataset(part.dataset) as store:
            return [store.read(slice(part.start, part.stop))], []
    return read_many(part.files, format=fmt)


def _with_metadata(table: Any, spectra: Any) -> Any:
    """The prediction table with ``id`` first, then the spectra's identifiers and
    observing metadata (:data:`METADATA_COLUMNS`), then the predictions."""
    from astropy.table import Column, Table

    taken = set(table.colnames)
    columns = [table["id"]]
    for name, (kind, _) in METADATA_COLUMNS.items():
        if name not in spectra.meta.colnames or spectra.meta[name].ndim != 1:
            continue
        column = spectra.meta[name]
        missing = np.asarray(np.ma.getmaskarray(column))
        if kind == "str":
            values = np.where(missing, "", np.asarray(column).astype(str))
        else:
            try:
                values = np.where(missing, np.nan, np.asarray(column, dtype=np.float64))
            except (TypeError, ValueError):  # not numbers: left out
                continue
        columns.append(Column(values, name=f"input_{name}" if name in taken else name))
    return Table([*columns, *(table[c] for c in table.colnames if c != "id")])


def _predict_one(model: Any, spectra: Any, seen: dict[str, int]) -> Any:
    """``model.predict`` with the metadata columns; a resampling the estimator warns of is
    counted in ``seen`` (input grid -> spectra) instead of printed by every worker."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = model.predict(spectra)
    for w in caught:
        if isinstance(w.message, ResampledWarning):
            seen[w.message.grid] = seen.get(w.message.grid, 0) + len(spectra)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return _with_metadata(table, spectra)


def _predict_sets(model: Any, sets: list[Any], seen: dict[str, int]
                  ) -> tuple[list[Any], list[tuple[str, str]]]:
    """Predict groups of spectra; a group that fails is retried spectrum by spectrum so that
    one bad input is rejected with its reason and the others go through."""
    from starlearn.spectra import SpectrumSet

    tables, rejects = [], []
    groups: dict[tuple[int, bool], list[Any]] = {}
    for s in sets:
        groups.setdefault((s.n_pix, s.shared_wave), []).append(s)
    for group in groups.values():
        try:
            tables.append(_predict_one(model, SpectrumSet.concat(group), seen))
            continue
        except (ValueError, FloatingPointError):
            pass
        for s in group:  # a set read by read_many may hold the spectra of many files
            for row in range(len(s)):
                one = s[np.array([row])]
                try:
                    tables.append(_predict_one(model, one, seen))
                except (ValueError, FloatingPointError) as err:
                    source = (one.meta["file"][0] if "file" in one.meta.colnames
                              else one.ids[0])
                    rejects.append((str(source), str(err)))
    return tables, rejects


def run_part(model_dir: str, part: Part, parts_dir: str, engine: str, threads: int,
             fmt: str | None, min_usable: float | None = None,
             resample: str = "never") -> dict[str, Any]:
    """Worker task: read, preprocess and predict one part; write its files atomically;
    return its manifest record."""
    from astropy.table import Table, vstack

    t0 = time.perf_counter()
    model = _model(model_dir, engine, threads, min_usable, resample)
    sets, rejects = _read_part(part, fmt)
    seen: dict[str, int] = {}
    if part.dataset is not None:
        # one data set shares one grid: a failure concerns all its rows
        try:
            tables, more = [_predict_one(model, sets[0], seen)], []
        except (ValueError, FloatingPointError) as err:
            tables, more = [], [(f"{part.dataset}[{part.start}:{part.stop}]", str(err))]
    else:
        tables, more = _predict_sets(model, sets, seen) if sets else ([], [])
    rejects += more
    table = vstack(tables) if tables else Table()
    folder = Path(parts_dir)
    name = f"part-{part.index:05d}.parquet"
    if len(table):
        table.meta.clear()
        atomic_write(folder / name, lambda p: table.write(p, format="parquet"))
    if rejects:
        rej = Table(rows=rejects, names=("input", "reason"), dtype=(str, str))
        atomic_write(folder / f"rejects-{part.index:05d}.csv",
                      lambda p: rej.write(p, format="ascii.csv"))
    flags = np.asarray(table["flags"]) if "flags" in table.colnames else np.zeros(0, int)
    return {"part": part.index, "inputs": part.n_inputs, "rows": len(table),
            "rejected": len(rejects), "flagged": int(np.sum(flags > 0)),
            "not_predicted": int(np.sum((flags & FLAG_NOT_PREDICTED) > 0)),
            "resampled": seen, "file": name if len(table) else None,
            "seconds": time.perf_counter() - t0}


# ---------------------------------------------------------------------- driver side
def _parts_dir(output: Path) -> Path:
    return output.with_name(output.name + ".parts")


def model_identity(model_dir: str | os.PathLike) -> dict[str, str]:
    """What makes a model's numbers: SHA-256 of its ``config.json`` and
    ``weights.safetensors``, and the starlearn version that runs it."""
    from importlib.metadata import version

    from starlearn.artifact import sha256_file

    folder = Path(model_dir)
    identity = {f"{name.split('.')[0]}_sha256": sha256_file(folder / name)
                for name in ("config.json", "weights.safetensors") if (folder / name).exists()}
    identity["starlearn"] = version("starlearn")
    return identity


def _describe_run(record: dict[str, Any]) -> str:
    ident, opts = record.get("model_identity", {}), record.get("options", {})
    weights = str(ident.get("weights_sha256", "?"))[:12]
    config = str(ident.get("config_sha256", "?"))[:12]
    return (f"model {record.get('model', '?')} (weights {weights}, config {config}, "
            f"starlearn {ident.get('starlearn', '?')}), options "
            + ", ".join(f"{k}={v}" for k, v in sorted(opts.items())))


def _load_or_write_plan(folder: Path, parts: list[Part], model_dir: str, resume: bool,
                        options: dict[str, Any]) -> None:
    """Write the run's plan (parts, the model's identity, the options that change the
    numbers) or, on resume, check that the run is the same: same inputs and parts, same
    model (by content, not path), same options; anything else is refused with both named."""
    plan_file = folder / "plan.json"
    digest = _digest(parts)
    record = {"version": PLAN_VERSION, "model": str(model_dir),
              "model_identity": model_identity(model_dir), "options": options,
              "digest": digest, "parts": [asdict(p) for p in parts]}
    if plan_file.exists():
        if not resume:
            raise FileExistsError(f"{folder} holds an earlier run; pass resume=True "
                                  "(--resume) to continue it, or remove the folder")
        plan = json.loads(plan_file.read_text())
        if plan.get("digest") != digest:
            raise ValueError(f"{folder}: the earlier run had other inputs or part sizes; "
                             "resume needs the same inputs (or remove the folder)")
        if "model_identity" not in plan:
            raise ValueError(f"{folder}: the earlier run's plan (version "
                             f"{plan.get('version')}) does not record which model made its "
                             "parts, so it cannot be resumed safely; start again with "
                             "--overwrite")
        same_model = {k: v for k, v in plan.get("model_identity", {}).items()
                      if k != "starlearn"} == {k: v for k, v in
                                                record["model_identity"].items()
                                                if k != "starlearn"}
        earlier = {"resample": "never", **plan.get("options", {})}  # before 'resample'
        plan["options"] = earlier
        if not (same_model and earlier == options and plan.get(
                "model_identity", {}).get("starlearn") == record["model_identity"][
                "starlearn"]):
            raise ValueError(f"{folder}: cannot resume with another model or other options: "
                             f"the earlier run used {_describe_run(plan)}; this one "
                             f"{_describe_run(record)}. Resume with the same model and "
                             "options, or start again with --overwrite")
        return
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(plan_file, lambda p: p.write_text(json.dumps(record)))


def _done_parts(folder: Path) -> dict[int, dict[str, Any]]:
    done: dict[int, dict[str, Any]] = {}
    manifest = folder / "manifest.jsonl"
    if not manifest.exists():
        return done
    for line in manifest.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a kill: that part is redone
        if record.get("file") is None or (folder / record["file"]).exists():
            done[int(record["part"])] = record
    return done


def _append_manifest(folder: Path, record: dict[str, Any]) -> None:
    with open(folder / "manifest.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _execute(todo: list[Part], task: _Task, workers: int,
             scheduler: str | None,
             on_done: Callable[[dict[str, Any]], None]) -> None:
    if scheduler is not None:
        require("dask.distributed", extra="dask",
                what="predict on a Dask cluster (--scheduler)")
        from dask.distributed import Client, LocalCluster, as_completed

        cluster = (LocalCluster(n_workers=workers, threads_per_worker=1,
                                processes=True, dashboard_address=None)
                   if scheduler == "local" else None)
        try:
            with Client(cluster if cluster is not None else scheduler) as client:
                futures = [client.submit(task, part, pure=False) for part in todo]
                try:
                    for future in as_completed(futures):
                        on_done(future.result())
                except BaseException:
                    client.cancel(futures)  # a failed part stops the run at once
                    raise
        finally:
            if cluster is not None:
                cluster.close()
        return
    if workers <= 1:
        for part in todo:
            on_done(task(part))
        return
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    method = _start_method(task.threads)
    if method == "fork":
        task.preload()  # the forked workers inherit the loaded model
    pool = ProcessPoolExecutor(workers, mp_context=get_context(method))
    try:
        futures = [pool.submit(task, part) for part in todo]
        for future in as_completed(futures):
            on_done(future.result())
    except BaseException:
        # a failed part (or Ctrl-C) stops the run at once: the parts not started are
        # dropped, the running ones are not waited for (their files are temporary
        # until renamed, and a part without a manifest line is redone on --resume)
        pool.shutdown(wait=False, cancel_futures=True)
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        raise
    pool.shutdown(wait=True)


def _start_method(threads: int) -> str:
    """"fork" on Linux when each worker runs torch on one thread (the workers start without
    importing torch and starlearn again, which costs seconds per worker), "spawn" otherwise:
    torch's OpenMP pool cannot be used with several threads in a child forked from a
    parent that used it."""
    import multiprocessing
    import sys

    if (threads <= 1 and sys.platform == "linux"
            and "fork" in multiprocessing.get_all_start_methods()):
        return "fork"
    return "spawn"


class _Task:
    """A picklable ``run_part`` with its fixed arguments."""

    def __init__(self, model_dir: str, parts_dir: str, engine: str, threads: int,
                 fmt: str | None, min_usable: float | None = None,
                 resample: str = "never") -> None:
        self.args = (model_dir, parts_dir, engine, threads, fmt, min_usable, resample)

    @property
    def threads(self) -> int:
        return self.args[3]

    def preload(self) -> None:
        """Load the model in this process (before forking the workers)."""
        _loaded(self.args[0], self.args[2], self.args[5], self.args[6])

    def __call__(self, part: Part) -> dict[str, Any]:
        model_dir, parts_dir, engine, threads, fmt, min_usable, resample = self.args
        return run_part(model_dir, part, parts_dir, engine, threads, fmt, min_usable,
                        resample)


def read_catalogue(path: str | os.PathLike) -> Any:
    """A catalogue (or part file) as an astropy Table, with the units and metadata the
    catalogue records; Parquet is read with pyarrow (astropy's Parquet reader needs
    pandas, which starlearn does not depend on), FITS text columns as str (not bytes) and
    ``TUNITn = 'dex'`` (not a FITS standard unit) as dex."""
    import astropy.units as u
    from astropy.table import Table

    if str(path).lower().endswith(".parquet"):
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        columns = {}
        for name in table.column_names:
            values = table.column(name).to_numpy()
            columns[name] = values.astype(str) if values.dtype == object else values
        out = Table(columns)
        for name, field_ in zip(table.column_names, table.schema, strict=True):
            unit = (field_.metadata or {}).get(b"unit")
            if unit:
                out[name].unit = u.Unit(unit.decode(), parse_strict="silent")
        record = (table.schema.metadata or {}).get(_PARQUET_KEY)
        if record:
            out.meta.update(json.loads(record))
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", u.UnitsWarning)
        table = Table.read(path)
    table.convert_bytestring_to_unicode()  # FITS text columns: str, as from Parquet
    for column in table.itercols():
        if isinstance(column.unit, u.UnrecognizedUnit) and str(column.unit) == "dex":
            column.unit = u.dex
    return table


OUTPUT_FORMATS = {".parquet": "parquet", ".fits": "fits", ".csv": "ascii.csv",
                  ".ecsv": "ascii.ecsv"}
"""Catalogue suffixes and the astropy formats they are written in."""

BYTES_PER_ROW = 2048
"""Room a catalogue row may take, counted twice (part files and the merged catalogue)
when the free space is checked before a run."""


def check_output(output: Path, n_inputs: int) -> str:
    """Refuse, before any work, an output the run could not write: an unknown suffix, a
    folder that cannot be written, too little free space for ``n_inputs`` rows. Returns
    the astropy format of the catalogue."""
    fmt = OUTPUT_FORMATS.get(output.suffix.lower())
    if fmt is None:
        raise ValueError(f"{output}: the catalogue must end in "
                         f"{', '.join(OUTPUT_FORMATS)} (got '{output.suffix or 'no suffix'}')")
    check_writable(output, 2 * BYTES_PER_ROW * max(1, n_inputs))
    return fmt


_PARQUET_KEY = b"starlearn.catalogue"
"""Schema metadata key of a Parquet catalogue's provenance and flag meanings (JSON)."""


def _catalogue_header(model_dir: str | os.PathLike, options: dict[str, Any],
                      command: Sequence[str]) -> dict[str, Any]:
    """The catalogue's provenance and flag meanings, as FITS-style keywords (at most 8
    characters; long values are written with CONTINUE cards)."""
    from importlib.metadata import version

    folder = Path(model_dir)
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        config = {}
    ident = model_identity(folder)
    header: dict[str, Any] = {
        "ORIGIN": "starlearn", "SLVERS": version("starlearn"),
        "DATE": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
        "MODEL": str(folder.resolve()), "MODELCLS": str(config.get("class", "")),
        "MODELNET": str((config.get("network") or {}).get("name", config.get(
            "params", {}).get("model", ""))),
        "TASK": str(config.get("task", "")),
        "WTSHA256": ident.get("weights_sha256", ""),
        "CFSHA256": ident.get("config_sha256", ""),
        "MODELSLV": str(config.get("versions", {}).get("starlearn", "")),
        "CMDLINE": " ".join(str(a) for a in command),
        "ENGINE": str(options.get("engine", "")), "RESAMPLE": str(options.get("resample", "")),
        "MINUSABL": str(options.get("min_usable", "")),
    }
    bits = (2, 4, 32) if config.get("task") == "classify" else (1, 2, 4, 8, 16)
    for bit in bits:
        header[f"FLAG{bit}"] = FLAG_MEANINGS[bit]
    return header


def _column_unit(name: str, labels: Sequence[str]) -> str:
    """The unit of catalogue column ``name`` (astropy spelling, "" for none)."""
    from starlearn.units import label_unit, unit_text

    if name in METADATA_COLUMNS:
        return METADATA_COLUMNS[name][1]
    base = name.removesuffix("_err")
    if base in labels and name != f"{base}_flag":
        return unit_text(label_unit(base))
    return ""


def _describe(name: str, labels: Sequence[str]) -> str:
    base = name.removeprefix("input_")
    if base in _DESCRIPTIONS:
        return ("input's " if name != base else "") + _DESCRIPTIONS[base]
    if name in labels:
        return f"predicted {name}"
    if name.endswith("_err") and name[:-4] in labels:
        return f"1-sigma error of {name[:-4]} (calibrated total)"
    if name.endswith("_flag") and name[:-5] in labels:
        return f"flag bits of {name[:-5]}"
    if name == "class":
        return "most probable class (empty: not predicted)"
    if name.startswith("prob_"):
        return f"probability of class {name[5:]}"
    return name


def _labels_of(names: Sequence[str]) -> list[str]:
    """The predicted labels among the columns (those with ``_err`` and ``_flag`` twins)."""
    return [n for n in names if f"{n}_err" in names and f"{n}_flag" in names]


def _fits_columns(path: Path, units: dict[str, str], labels: Sequence[str]) -> None:
    """Set ``TUNITn`` of every column with a unit, in the FITS spelling where there is one
    (``km s-1``) and as written otherwise (``dex``, which astropy cannot save), and
    ``TCOMMn``, what the column holds."""
    import astropy.units as u
    from astropy.io import fits

    with fits.open(path, mode="update") as hdus:
        header = hdus[1].header
        for i in range(1, header["TFIELDS"] + 1):
            name = header[f"TTYPE{i}"]
            unit = units.get(name, "")
            if unit:
                try:
                    text = u.Unit(unit).to_string("fits")
                except ValueError:
                    text = unit
                header.insert(f"TFORM{i}", (f"TUNIT{i}", text), after=True)
            header.insert(f"TTYPE{i}", (f"TCOMM{i}", _describe(name, labels)[:68]),
                          after=True)


def _write_catalogue(table: Any, path: Path, fmt: str, header: dict[str, Any]) -> None:
    """Write the merged astropy table with units and header (FITS, ECSV, CSV)."""
    import astropy.units as u

    labels = _labels_of(table.colnames)
    units = {name: _column_unit(name, labels) for name in table.colnames}
    table.meta.clear()
    if fmt == "fits":  # units and descriptions as TUNITn and TCOMMn cards, set after
        for name in table.colnames:
            table[name].unit = None
        table.meta.update(header)
        table.meta["COMMENT"] = [
            "starlearn catalogue, see docs/catalogue-format.md. TCOMMn: what",
            "column n holds; TUNITn: its unit; FLAGn: what bit n of the flags",
            "and <label>_flag columns means. NaN: not predicted, or masked",
            "(bits 4, 8, 16)."]
        table.write(path, format="fits", overwrite=True)
        _fits_columns(path, units, labels)
    else:
        for name, unit in units.items():
            table[name].unit = u.Unit(unit) if unit else None
            table[name].description = _describe(name, labels)
        if fmt == "ascii.ecsv":
            table.meta.update({**header, "FLAGS": {
                bit: FLAG_MEANINGS[bit] for bit in FLAG_MEANINGS if f"FLAG{bit}" in header}})
        table.write(path, format=fmt, overwrite=True)


def _parquet_metadata(merged: Any, header: dict[str, Any]) -> Any:
    """The Arrow table with per-column units (field metadata ``unit``), the astropy table
    metadata (units, header, string lengths: astropy's own Parquet reader restores them)
    and ``starlearn.catalogue`` (the header as JSON)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from astropy.table import Table
    from astropy.table.meta import get_yaml_from_table

    labels = _labels_of(merged.column_names)
    fields, empty = [], Table()
    for name, field_ in zip(merged.column_names, merged.schema, strict=True):
        unit = _column_unit(name, labels)
        meta = {"unit": unit, "description": _describe(name, labels)}
        fields.append(field_.with_metadata({k: v for k, v in meta.items() if v}))
        numeric = not (pa.types.is_string(field_.type) or pa.types.is_large_string(
            field_.type) or pa.types.is_null(field_.type))
        dtype = field_.type.to_pandas_dtype() if numeric else "U1"
        empty[name] = np.zeros(0, dtype=dtype)
        empty[name].unit = unit or None
        empty[name].description = meta["description"]
    empty.meta.update(header)
    meta = {b"table_meta_yaml": "\n".join(get_yaml_from_table(empty)).encode(),
            _PARQUET_KEY: json.dumps({**header, "FLAGS": {
                str(bit): FLAG_MEANINGS[bit] for bit in FLAG_MEANINGS
                if f"FLAG{bit}" in header}}).encode()}
    for name, field_ in zip(merged.column_names, merged.schema, strict=True):
        if pa.types.is_string(field_.type) or pa.types.is_large_string(field_.type):
            longest = pc.max(pc.utf8_length(merged.column(name))).as_py()
            meta[f"table::len::{name}".encode()] = str(max(1, longest or 0)).encode()
    return pa.Table.from_arrays(list(merged.columns), schema=pa.schema(fields, metadata=meta))


def _merge(folder: Path, parts: list[Part], output: Path, fmt: str,
           done: dict[int, dict[str, Any]], header: dict[str, Any]) -> int:
    """Write the catalogue from the finished parts (``done``: their manifest records;
    nothing when no part has a row); returns its rows."""
    from astropy.table import vstack

    files = [folder / done[p.index]["file"] for p in parts if done[p.index]["file"] is not None]
    if not files:
        return 0
    if fmt == "parquet":
        # Parquet parts to a Parquet catalogue: concatenated in Arrow, no conversion
        import pyarrow as pa
        import pyarrow.parquet as pq

        merged_parts = _parquet_metadata(pa.concat_tables(
            [pq.read_table(f) for f in files], promote_options="default"), header)
        atomic_write(output, lambda p: pq.write_table(merged_parts, p))
        return merged_parts.num_rows
    table = vstack([read_catalogue(f) for f in files])
    atomic_write(output, lambda p: _write_catalogue(table, p, fmt, header))
    return len(table)


def _merge_rejects(folder: Path, output: Path, done: dict[int, dict[str, Any]]
                   ) -> Path | None:
    """Write ``<output stem>.rejects.csv`` from the finished parts' rejects, or remove one
    an earlier run on this output left (it would describe other inputs)."""
    from astropy.table import Table, vstack

    rejects = [Table.read(f, format="ascii.csv") for f in sorted(folder.glob("rejects-*.csv"))
               if int(f.stem.split("-")[1]) in done]
    rejects_path = output.with_name(output.stem + ".rejects.csv")
    if not rejects:
        rejects_path.unlink(missing_ok=True)
        return None
    merged = vstack(rejects)
    atomic_write(rejects_path, lambda p: merged.write(p, format="ascii.csv", overwrite=True))
    return rejects_path


def run_archive(model_dir: str | os.PathLike, inputs: Sequence[str | os.PathLike],
                output: str | os.PathLike, *, engine: str = "auto", workers: int = 1,
                scheduler: str | None = None, resume: bool = False, fmt: str | None = None,
                files_per_part: int = 500, rows_per_part: int = 20_000,
                min_usable: float | None = None, resample: str = "auto",
                overwrite: bool = False, keep_parts: bool = True, progress: bool = True,
                command: Sequence[str] | None = None) -> ArchiveSummary:
    """Predict with the model in ``model_dir`` for every input; write the merged catalogue
    ``output`` (.parquet, .fits, .csv, .ecsv) and ``<output stem>.rejects.csv``.

    Parameters
    ----------
    inputs : paths, folders, glob patterns, list files (.lst) or HDF5 data sets.
    engine : "auto", "torch" or "onnx" (see :mod:`starlearn.infer.engine`).
    workers : local worker processes (or Dask workers for ``scheduler="local"``).
    scheduler : None (local processes), "local" (a Dask LocalCluster) or a Dask scheduler
        address ("tcp://host:8786").
    resume : continue the run whose parts folder (``<output>.parts``) exists; refused
        when the model (by the SHA-256 of its weights and config), the starlearn version,
        the inputs or the options differ from the earlier run's.
    fmt : reader format for spectrum files (None = identify from content).
    min_usable : least usable fraction of the model's pixels for a spectrum to be
        predicted (None: the model's own, 0.5 by default); fewer gives NaN and flag 4.
    resample : "auto", "never" or "always": inputs on another wavelength grid than the
        model's are resampled onto it (flux-conserving, ivar propagated, pixels outside
        their coverage masked) when they cover enough of it ("auto"), never, or always
        (:meth:`~starlearn.estimators.base.ArtifactEstimator.prepare_inputs`); inputs
        not resampled are rejected with the reason. One UserWarning at the end names the
        grids resampled from and how many spectra (``ArchiveSummary.resampled``).
    overwrite : replace an existing ``output`` and start again over an interrupted run's
        parts folder (without it, either is refused with FileExistsError, unless
        ``resume``).
    keep_parts : keep the parts folder (plan, manifest, parts) after the merge.
    command : the command line recorded in the catalogue's header (default
        ``sys.argv``).

    The output is locked for the whole run (a second run on it stops at once with
    :class:`starlearn._lock.LockedError`).

    The output is checked first (suffix, a writable folder, free space); a file that
    cannot be read becomes a row of the rejects table and the run goes on; a part that
    fails otherwise stops the run at once (its finished parts stay for ``resume``; a
    run stopped before finishing any part leaves no parts folder); when nothing could be
    predicted no catalogue and no parts folder are left (only the rejects table) and
    :class:`~starlearn.errors.NothingPredictedError` names the first reason. The
    catalogue is written whole (temporary file, then rename) or not at all.
    """
    from starlearn._lock import output_lock

    if resample not in RESAMPLE_POLICIES:
        raise ValueError(f"resample must be one of {', '.join(RESAMPLE_POLICIES)}, "
                         f"got {resample!r}")
    output = Path(output)
    with output_lock(output):
        summary = _run(model_dir, inputs, output, engine=engine, workers=workers,
                       scheduler=scheduler, resume=resume, fmt=fmt,
                       files_per_part=files_per_part, rows_per_part=rows_per_part,
                       min_usable=min_usable, resample=resample, overwrite=overwrite,
                       progress=progress,
                       command=list(sys.argv if command is None else command))
        if not keep_parts:
            shutil.rmtree(_parts_dir(output), ignore_errors=True)
    if summary.resampled:
        grids = "; ".join(f"{n} from {grid}" for grid, n in summary.resampled.items())
        warnings.warn(f"{sum(summary.resampled.values())} spectra on another wavelength grid "
                      f"were {_RESAMPLED} (flux-conserving; pixels outside their coverage "
                      f"masked): {grids}", UserWarning, stacklevel=2)
    return summary


def _run(model_dir: str | os.PathLike, inputs: Sequence[str | os.PathLike], output: Path, *,
         engine: str, workers: int, scheduler: str | None, resume: bool, fmt: str | None,
         files_per_part: int, rows_per_part: int, min_usable: float | None, resample: str,
         overwrite: bool, progress: bool, command: list[str]) -> ArchiveSummary:
    from tqdm import tqdm

    from starlearn.io import expand_inputs

    t0 = time.perf_counter()
    if files_per_part < 1 or rows_per_part < 1 or workers < 1:
        raise ValueError("the part sizes and the number of workers must be at least 1")
    if scheduler is not None:  # a missing extra is said before any work
        require("dask.distributed", extra="dask",
                what="predict on a Dask cluster (--scheduler)")
    if engine in ("onnx", "onnx-int8"):
        require("onnxruntime", extra="onnx", what=f"engine={engine!r}")
    if output.suffix.lower() not in OUTPUT_FORMATS:
        check_output(output, 0)  # the suffix first, before looking at any input
    folder = _parts_dir(output)
    if folder.exists() and not resume:
        if not overwrite:
            raise FileExistsError(f"{folder} holds an earlier run: pass --resume "
                                  "(resume=True) to continue it, or --overwrite "
                                  "(overwrite=True) to start again")
        shutil.rmtree(folder)
    if output.exists() and not (overwrite or resume):
        raise FileExistsError(f"{output} exists; pass --overwrite (overwrite=True) to "
                              "replace it")
    paths = expand_inputs([os.fspath(i) for i in inputs])
    if not paths:
        raise FileNotFoundError(f"no input found in {[os.fspath(i) for i in inputs]}")
    parts = plan_parts(paths, files_per_part=files_per_part, rows_per_part=rows_per_part)
    out_fmt = check_output(output, sum(p.n_inputs for p in parts))
    options = {"engine": engine, "format": fmt or "auto",
               "min_usable": "model" if min_usable is None else float(min_usable),
               "resample": resample}
    new_run = not folder.exists()
    _load_or_write_plan(folder, parts, os.fspath(model_dir), resume, options)
    done = _done_parts(folder)
    todo = [p for p in parts if p.index not in done]
    threads = max(1, (os.cpu_count() or 1) // max(1, workers))
    task = _Task(os.path.abspath(model_dir), str(folder), engine, threads, fmt, min_usable,
                 resample)
    bar = tqdm(total=sum(p.n_inputs for p in parts), initial=sum(
        p.n_inputs for p in parts if p.index in done), disable=not progress, unit="input",
        desc="predict", smoothing=0.1)

    def on_done(record: dict[str, Any]) -> None:
        _append_manifest(folder, record)
        bar.update(record["inputs"])

    try:
        _execute(todo, task, workers, scheduler, on_done)
    except BaseException:
        if new_run and not _done_parts(folder):
            shutil.rmtree(folder, ignore_errors=True)  # nothing in it worth resuming
        raise
    finally:
        bar.close()
    done = _done_parts(folder)
    records = done.values()
    rows, unseen = (sum(r["rows"] for r in records),
                    sum(r.get("not_predicted", 0) for r in records))
    rejects_path = _merge_rejects(folder, output, done)
    if rows and unseen == rows:
        shutil.rmtree(folder, ignore_errors=True)  # resuming would give the same
        share = ("the model's min_usable (0.5 unless set)" if min_usable is None
                 else f"{min_usable:.0%}")
        raise NothingPredictedError(
            f"none of the {rows} spectra could be predicted: each has usable flux in fewer "
            f"than {share} of the model's pixels (not covered by the spectrum, or masked); "
            "are the inputs from the survey the model was trained for? No catalogue "
            "written" + (f"; rejected inputs are listed in {rejects_path}"
                         if rejects_path is not None else ""))
    if rows == 0:
        from astropy.table import Table

        shutil.rmtree(folder, ignore_errors=True)
        reason = "no input found"
        if rejects_path is not None:
            first = Table.read(rejects_path, format="ascii.csv")[0]
            reason = f"{first['input']}: {first['reason']}"
        raise NothingPredictedError(f"no input could be predicted ({reason}); all rejects "
                                    f"are listed in {rejects_path}")
    header = _catalogue_header(model_dir, options, command)
    n_rows = _merge(folder, parts, output, out_fmt, done, header)
    resampled: dict[str, int] = {}
    for record in records:
        for grid, n in (record.get("resampled") or {}).items():
            resampled[grid] = resampled.get(grid, 0) + int(n)
    return ArchiveSummary(output=output, rejects=rejects_path, parts=len(parts),
                          parts_skipped=len(parts) - len(todo), spectra=n_rows,
                          rejected=sum(r["rejected"] for r in records),
                          flagged=sum(r["flagged"] for r in records),
                          not_predicted=unseen, resampled=resampled,
                          seconds=time.perf_counter() - t0)
