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
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from starlearn._atomic import atomic_write, check_writable
from starlearn._extras import require
from starlearn.errors import NothingPredictedError

__all__ = ["ArchiveSummary", "NothingPredictedError", "Part", "model_identity", "plan_parts",
           "read_catalogue", "run_archive"]

PLAN_VERSION = 2

FLAG_NOT_PREDICTED = 4
"""The estimators' flag bit of a spectrum with too few usable pixels (NaN outputs)."""


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

    def __str__(self) -> str:
        resumed = f", {self.parts_skipped} parts already done" if self.parts_skipped else ""
        unseen = (f", {self.not_predicted} of them not predicted (too few usable pixels: "
                  "NaN, flag 4)" if self.not_predicted else "")
        return (f"{self.spectra} spectra in the catalogue ({self.flagged} flagged{unseen}), "
                f"{self.rejected} inputs rejected, {self.parts} parts{resumed}, "
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


def _loaded(model_dir: str, engine: str, min_usable: float | None = None) -> Any:
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
    return model


_THREADS: list[int] = []


def _model(model_dir: str, engine: str, threads: int, min_usable: float | None = None) -> Any:
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
    return _loaded(model_dir, engine, min_usable)


def _read_part(part: Part, fmt: str | None) -> tuple[list[Any], list[tuple[str, str]]]:
    from starlearn.io.batch import read_many
    from starlearn.io.dataset import open_dataset

    if part.dataset is not None:
        with open_dataset(part.dataset) as store:
            return [store.read(slice(part.start, part.stop))], []
    return read_many(part.files, format=fmt)


def _predict_sets(model: Any, sets: list[Any]) -> tuple[list[Any], list[tuple[str, str]]]:
    """Predict groups of spectra; a group that fails is retried spectrum by spectrum so that
    one bad input is rejected with its reason and the others go through."""
    from starlearn.spectra import SpectrumSet

    tables, rejects = [], []
    groups: dict[tuple[int, bool], list[Any]] = {}
    for s in sets:
        groups.setdefault((s.n_pix, s.shared_wave), []).append(s)
    def predict(spectra: Any) -> Any:
        table = model.predict(spectra)
        if "file" in spectra.meta.colnames and "file" not in table.colnames:
            table["file"] = np.asarray(spectra.meta["file"], dtype=str)
        return table

    for group in groups.values():
        try:
            tables.append(predict(SpectrumSet.concat(group)))
            continue
        except (ValueError, FloatingPointError):
            pass
        for s in group:
            try:
                tables.append(predict(s))
            except (ValueError, FloatingPointError) as err:
                source = s.meta["file"][0] if "file" in s.meta.colnames else s.ids[0]
                rejects.append((str(source), str(err)))
    return tables, rejects


def run_part(model_dir: str, part: Part, parts_dir: str, engine: str, threads: int,
             fmt: str | None, min_usable: float | None = None) -> dict[str, Any]:
    """Worker task: read, preprocess and predict one part; write its files atomically;
    return its manifest record."""
    from astropy.table import Table, vstack

    t0 = time.perf_counter()
    model = _model(model_dir, engine, threads, min_usable)
    sets, rejects = _read_part(part, fmt)
    if part.dataset is not None:
        # one data set shares one grid: a failure concerns all its rows
        try:
            tables, more = [model.predict(sets[0])], []
        except (ValueError, FloatingPointError) as err:
            tables, more = [], [(f"{part.dataset}[{part.start}:{part.stop}]", str(err))]
    else:
        tables, more = _predict_sets(model, sets) if sets else ([], [])
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
            "file": name if len(table) else None, "seconds": time.perf_counter() - t0}


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
        if not (same_model and plan.get("options") == options and plan.get(
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
                 fmt: str | None, min_usable: float | None = None) -> None:
        self.args = (model_dir, parts_dir, engine, threads, fmt, min_usable)

    @property
    def threads(self) -> int:
        return self.args[3]

    def preload(self) -> None:
        """Load the model in this process (before forking the workers)."""
        _loaded(self.args[0], self.args[2], self.args[5])

    def __call__(self, part: Part) -> dict[str, Any]:
        model_dir, parts_dir, engine, threads, fmt, min_usable = self.args
        return run_part(model_dir, part, parts_dir, engine, threads, fmt, min_usable)


def read_catalogue(path: str | os.PathLike) -> Any:
    """A catalogue (or part file) as an astropy Table; Parquet is read with pyarrow
    (astropy's Parquet reader needs pandas, which starlearn does not depend on)."""
    from astropy.table import Table

    if str(path).lower().endswith(".parquet"):
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        columns = {}
        for name in table.column_names:
            values = table.column(name).to_numpy()
            columns[name] = values.astype(str) if values.dtype == object else values
        return Table(columns)
    return Table.read(path)


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


def _merge(folder: Path, parts: list[Part], output: Path, fmt: str,
           done: dict[int, dict[str, Any]]) -> tuple[int, Path | None]:
    """Write the catalogue from the finished parts (``done``: their manifest records;
    nothing when no part has a row) and the merged rejects table."""
    from astropy.table import Table, vstack

    files = [folder / done[p.index]["file"] for p in parts if done[p.index]["file"] is not None]
    n_rows = 0
    if fmt == "parquet" and files:
        # Parquet parts to a Parquet catalogue: concatenated in Arrow, no conversion
        import pyarrow as pa
        import pyarrow.parquet as pq

        merged_parts = pa.concat_tables([pq.read_table(f) for f in files],
                                        promote_options="default")
        n_rows = merged_parts.num_rows
        atomic_write(output, lambda p: pq.write_table(merged_parts, p))
    elif files:
        table = vstack([read_catalogue(f) for f in files])
        n_rows = len(table)
        atomic_write(output, lambda p: table.write(p, format=fmt, overwrite=True))
    rejects = [Table.read(f, format="ascii.csv") for f in sorted(folder.glob("rejects-*.csv"))
               if int(f.stem.split("-")[1]) in done]
    rejects_path = None
    if rejects:
        rejects_path = output.with_name(output.stem + ".rejects.csv")
        merged = vstack(rejects)
        atomic_write(rejects_path, lambda p: merged.write(p, format="ascii.csv",
                                                           overwrite=True))
    return n_rows, rejects_path


def run_archive(model_dir: str | os.PathLike, inputs: Sequence[str | os.PathLike],
                output: str | os.PathLike, *, engine: str = "auto", workers: int = 1,
                scheduler: str | None = None, resume: bool = False, fmt: str | None = None,
                files_per_part: int = 500, rows_per_part: int = 20_000,
                min_usable: float | None = None, overwrite: bool = False,
                keep_parts: bool = True, progress: bool = True) -> ArchiveSummary:
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
    overwrite : replace an existing ``output`` and start again over an interrupted run's
        parts folder (without it, either is refused with FileExistsError, unless
        ``resume``).
    keep_parts : keep the parts folder (plan, manifest, parts) after the merge.

    The output is locked for the whole run (a second run on it stops at once with
    :class:`starlearn._lock.LockedError`).

    The output is checked first (suffix, a writable folder, free space); a file that
    cannot be read becomes a row of the rejects table and the run goes on; a part that
    fails otherwise stops the run at once (its finished parts stay for ``resume``); when
    nothing could be predicted no catalogue is written and
    :class:`~starlearn.errors.NothingPredictedError` names the first reason.
    """
    from starlearn._lock import output_lock

    output = Path(output)
    with output_lock(output):
        summary = _run(model_dir, inputs, output, engine=engine, workers=workers,
                       scheduler=scheduler, resume=resume, fmt=fmt,
                       files_per_part=files_per_part, rows_per_part=rows_per_part,
                       min_usable=min_usable, overwrite=overwrite, progress=progress)
        if not keep_parts:
            shutil.rmtree(_parts_dir(output), ignore_errors=True)
    return summary


def _run(model_dir: str | os.PathLike, inputs: Sequence[str | os.PathLike], output: Path, *,
         engine: str, workers: int, scheduler: str | None, resume: bool, fmt: str | None,
         files_per_part: int, rows_per_part: int, min_usable: float | None, overwrite: bool,
         progress: bool) -> ArchiveSummary:
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
               "min_usable": "model" if min_usable is None else float(min_usable)}
    _load_or_write_plan(folder, parts, os.fspath(model_dir), resume, options)
    done = _done_parts(folder)
    todo = [p for p in parts if p.index not in done]
    threads = max(1, (os.cpu_count() or 1) // max(1, workers))
    task = _Task(os.path.abspath(model_dir), str(folder), engine, threads, fmt, min_usable)
    bar = tqdm(total=sum(p.n_inputs for p in parts), initial=sum(
        p.n_inputs for p in parts if p.index in done), disable=not progress, unit="input",
        desc="predict", smoothing=0.1)

    def on_done(record: dict[str, Any]) -> None:
        _append_manifest(folder, record)
        bar.update(record["inputs"])

    try:
        _execute(todo, task, workers, scheduler, on_done)
    finally:
        bar.close()
    done = _done_parts(folder)
    records = done.values()
    rows, unseen = (sum(r["rows"] for r in records),
                    sum(r.get("not_predicted", 0) for r in records))
    if rows and unseen == rows:
        share = ("the model's min_usable (0.5 unless set)" if min_usable is None
                 else f"{min_usable:.0%}")
        raise NothingPredictedError(
            f"none of the {rows} spectra could be predicted: each has usable flux in fewer "
            f"than {share} of the model's pixels (not covered by the spectrum, or masked); "
            "are the inputs from the survey the model was trained for? No catalogue "
            f"written; the run is in {folder}")
    n_rows, rejects_path = _merge(folder, parts, output, out_fmt, done)
    if n_rows == 0:
        from astropy.table import Table

        reason = "no input found"
        if rejects_path is not None:
            first = Table.read(rejects_path, format="ascii.csv")[0]
            reason = f"{first['input']}: {first['reason']}"
        raise NothingPredictedError(f"no input could be predicted ({reason}); all rejects "
                                    f"are listed in {rejects_path}")
    return ArchiveSummary(output=output, rejects=rejects_path, parts=len(parts),
                          parts_skipped=len(parts) - len(todo), spectra=n_rows,
                          rejected=sum(r["rejected"] for r in records),
                          flagged=sum(r["flagged"] for r in records),
                          not_predicted=unseen,
                          seconds=time.perf_counter() - t0)
