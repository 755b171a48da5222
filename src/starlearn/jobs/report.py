"""``starlearn report``: one self-contained HTML page for a training or prediction run.

The page is made from what a run left on disk, without loading a model or a network:

* a **model folder** (``starlearn train``, :func:`starlearn.jobs.save_model`):
  ``config.json``, ``metrics.json`` (held-out metrics), ``history.csv`` (per epoch);
* an **evaluation folder** (``starlearn evaluate MODEL TEST --plots DIR [--json FILE]``):
  ``metrics.json`` or the ``--json`` file, and PNG plots;
* a **prediction run** (``starlearn predict MODEL INPUTS -o CATALOGUE``): the catalogue
  (.fits, .parquet, .csv, .ecsv), its ``CATALOGUE.parts`` folder (``plan.json``,
  ``manifest.jsonl``) when kept, and ``CATALOGUE_STEM.rejects.csv``; the catalogue, its
  parts folder or the folder holding them may be given;
* a **demo folder** (``starlearn demo``): ``results.json``, PNG plots and the model and
  evaluation folders inside it.

It shows the configuration and provenance (whatever the folder records), the metrics
tables, the training curve (drawn from ``history.csv``), every PNG plot found in the
folder, the calibration and flag summary, and what data the run saw. Images are embedded
as base64 ``data:`` URIs, the CSS is inline, there is no script and no external URL (a
Content-Security-Policy in the page forbids loading anything), and every string taken
from the files is escaped.

>>> from starlearn.jobs.report import write_report
>>> write_report("model", "model-report.html")  # doctest: +SKIP
PosixPath('model-report.html')
"""

from __future__ import annotations

import base64
import csv
import datetime as _dt
import html
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from starlearn._atomic import atomic_write, check_writable
from starlearn.jobs.archive import FLAG_MEANINGS

__all__ = ["FLAG_BITS", "Section", "calibration_table", "classification_table",
           "collect_sections", "figure_html", "flag_counts", "flags_table", "grid_summary",
           "identify", "key_value_table", "read_history", "regression_table",
           "render_page", "snr_bin_table", "table_html", "training_curve", "write_report"]

FLAG_BITS = FLAG_MEANINGS
"""What each bit of a catalogue's ``flags`` and ``<label>_flag`` columns means: the
catalogue's own definitions (:data:`starlearn.jobs.archive.FLAG_MEANINGS`, the bits the
estimators set)."""

CATALOGUE_SUFFIXES = (".parquet", ".fits", ".csv", ".ecsv")
"""Suffixes of the catalogues ``starlearn predict`` writes."""

EVALUATION_PLOTS = ("residuals.png", "kiel.png", "confusion.png", "reconstruction.png")
"""Plot files the evaluation writes (a folder holding only these is an evaluation)."""

EXPECTED = ("a model folder (config.json, from starlearn train), an evaluation folder "
            "(metrics.json or the --json file, PNG plots, from starlearn evaluate), a "
            "prediction run (a catalogue .fits/.parquet/.csv/.ecsv or its .parts folder "
            "with plan.json, from starlearn predict) or a demo folder (results.json, from "
            "starlearn demo)")
"""What a report can be made from (the error message for anything else)."""

MAX_PLOTS = 100
"""At most this many PNG files are embedded (the page says when more were found)."""

MAX_REJECTS = 50
"""At most this many rejected inputs are listed (the page gives the total)."""


@dataclass
class Section:
    """One section of the page: its anchor, title and body (HTML, already escaped)."""

    key: str
    title: str
    body: str


# ---------------------------------------------------------------------- small HTML pieces
def _text(value: Any) -> str:
    """``value`` as escaped text: numbers to 4 significant digits, None as a dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return "NaN" if math.isnan(value) else html.escape(f"{value:.4g}")
    if isinstance(value, (dict, list, tuple)):
        return html.escape(json.dumps(value, default=str))
    return html.escape(str(value))


def table_html(header: Sequence[Any], rows: Iterable[Sequence[Any]], *,
               caption: str | None = None) -> str:
    """A table: ``header`` cells, then ``rows`` (the first cell of each is a row header).
    Every cell is escaped; numbers are right-aligned."""
    head = "".join(f"<th scope=\"col\">{_text(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = [f"<th scope=\"row\">{_text(row[0])}</th>"] if row else []
        for value in row[1:]:
            number = isinstance(value, (int, float, np.integer, np.floating)) \
                and not isinstance(value, bool)
            cells.append(f"<td class=\"num\">{_text(value)}</td>" if number
                         else f"<td>{_text(value)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    cap = f"<caption>{_text(caption)}</caption>" if caption else ""
    return (f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody>"
            "</table>")


def key_value_table(items: Iterable[tuple[str, Any]], *, caption: str | None = None) -> str:
    """A two-column table of ``(name, value)`` pairs; pairs whose value is None are left
    out (the folder does not record them)."""
    rows = [(name, value) for name, value in items if value is not None]
    head = f"<caption>{_text(caption)}</caption>" if caption else ""
    body = "".join(f"<tr><th scope=\"row\">{_text(k)}</th><td>{_text(v)}</td></tr>"
                   for k, v in rows)
    return f"<table class=\"kv\">{head}<tbody>{body}</tbody></table>"


def _note(text: str) -> str:
    return f"<p class=\"note\">{html.escape(text)}</p>"


def figure_html(png: bytes, caption: str, key: str) -> str:
    """A ``<figure>`` holding ``png`` as a base64 ``data:image/png`` URI, with ``caption``
    (escaped) and the anchor ``key``."""
    data = base64.b64encode(png).decode("ascii")
    return (f"<figure id=\"{html.escape(key)}\"><img src=\"data:image/png;base64,{data}\" "
            f"alt=\"{html.escape(caption)}\"><figcaption>{html.escape(caption)}"
            "</figcaption></figure>")


# ---------------------------------------------------------------------- tables of numbers
_METRIC_COLUMNS = (("n", "n"), ("bias", "bias"), ("median_offset", "median offset"),
                   ("sigma", "σ"), ("robust_sigma", "robust σ"), ("rmse", "RMSE"),
                   ("r2", "r²"))
_CALIBRATION_COLUMNS = (("frac_within_1sigma", "|z| < 1"), ("z_spread", "z spread"),
                        ("z_mean", "z mean"))


def regression_table(metrics: Mapping[str, Any], calibration: Mapping[str, Any] | None = None,
                     labels: Sequence[str] | None = None, *, caption: str | None = None
                     ) -> str:
    """Per label: n, bias, median offset, σ, robust σ (1.4826 MAD), RMSE, r² (label
    units; predicted minus true) and, from ``calibration``, the share of |z| < 1 (0.68
    when calibrated) and the z spread (1 when calibrated), z = residual / error."""
    calibration = calibration or {}
    labels = list(labels) if labels is not None else [k for k in metrics if k != "snr_bins"]
    header = ["label", *(name for _, name in _METRIC_COLUMNS),
              *(name for _, name in _CALIBRATION_COLUMNS)]
    rows = []
    for label in labels:
        m, c = metrics.get(label) or {}, calibration.get(label) or {}
        rows.append([label, *(m.get(k) for k, _ in _METRIC_COLUMNS),
                     *(c.get(k) for k, _ in _CALIBRATION_COLUMNS)])
    return table_html(header, rows, caption=caption)


def snr_bin_table(bins: Sequence[Mapping[str, Any]], labels: Sequence[str], *,
                  caption: str | None = None) -> str:
    """One row per S/N bin (its edges and number of spectra), with bias, σ and robust σ
    of each label."""
    header = ["S/N", "n"]
    for label in labels:
        header += [f"{label} bias", f"{label} σ", f"{label} robust σ"]
    rows = []
    for b in bins:
        row: list[Any] = [f"{_text(b.get('lo'))} – {_text(b.get('hi'))}", b.get("n")]
        for label in labels:
            m = b.get(label) or {}
            row += [m.get("bias"), m.get("sigma"), m.get("robust_sigma")]
        rows.append(row)
    return table_html(header, rows, caption=caption)


def calibration_table(calibration: Mapping[str, Mapping[str, Any]], *,
                      caption: str | None = None) -> str:
    """Per label: number of z values, share of |z| < 1 (0.683 for calibrated Gaussian
    errors), z spread (biweight scale, 1 when calibrated) and mean z."""
    rows = [[label, c.get("n"), *(c.get(k) for k, _ in _CALIBRATION_COLUMNS)]
            for label, c in calibration.items()]
    return table_html(["label", "n", *(name for _, name in _CALIBRATION_COLUMNS)], rows,
                      caption=caption)


def classification_table(metrics: Mapping[str, Any], *, caption: str | None = None) -> str:
    """Per class precision, recall, F1 and support; accuracy, macro-F1, expected
    calibration error; the confusion matrix (rows true, columns predicted)."""
    per_class = metrics.get("per_class") or {}
    rows = [[name, m.get("precision"), m.get("recall"), m.get("f1"), m.get("support")]
            for name, m in per_class.items()]
    out = [table_html(["class", "precision", "recall", "F1", "support"], rows,
                      caption=caption),
           key_value_table([("spectra", metrics.get("n")),
                            ("accuracy", metrics.get("accuracy")),
                            ("macro-F1", metrics.get("macro_f1")),
                            ("expected calibration error", metrics.get("ece"))])]
    classes, confusion = metrics.get("classes"), metrics.get("confusion")
    if classes and confusion:
        out.append(table_html(["true \\ predicted", *classes],
                              [[c, *row] for c, row in zip(classes, confusion, strict=False)],
                              caption="confusion matrix (rows: true class, columns: "
                                      "predicted)"))
    return "".join(out)


def _autoencoder_table(metrics: Mapping[str, Any]) -> str:
    names = {"n_valid": "held-out spectra", "n_test": "test spectra", "mode": "mode",
             "model": "model", "latent": "latent size",
             "recon_rms_median": "median reconstruction RMS",
             "reconstruction_rms": "reconstruction RMS",
             "mean_spectrum_rms": "RMS of the mean spectrum (baseline)",
             "chi2_median": "median reduced χ²", "median_chi2": "median reduced χ²",
             "odd_fraction": "share flagged odd"}
    out = [key_value_table([(names[k], metrics[k]) for k in names if k in metrics])]
    denoising = metrics.get("denoising") or []
    if denoising:
        out.append(table_html(["added S/N", "gain (RMS noisy / RMS denoised)"],
                              [[d.get("snr"), d.get("gain")] for d in denoising]))
    return "".join(out)


def _metrics_kind(result: Mapping[str, Any]) -> str | None:
    """"regress", "classify", "autoencode" or None: what a metrics dictionary holds."""
    if isinstance(result.get("metrics"), Mapping):
        return "regress"
    if isinstance(result.get("per_class"), Mapping):
        return "classify"
    if any(k in result for k in ("recon_rms_median", "reconstruction_rms")):
        return "autoencode"
    return None


def _metrics_html(result: Mapping[str, Any], caption: str) -> str:
    kind = _metrics_kind(result)
    if kind == "regress":
        labels = result.get("labels") or [k for k in result["metrics"] if k != "snr_bins"]
        out = [regression_table(result["metrics"], result.get("calibration"), labels,
                                caption=caption)]
        bins = result["metrics"].get("snr_bins") or []
        if bins:
            out.append(snr_bin_table(bins, labels, caption="the same in bins of S/N"))
        return "".join(out)
    if kind == "classify":
        return classification_table(result, caption=caption)
    if kind == "autoencode":
        return _autoencoder_table(result)
    return _note("no metrics this page knows how to show")


# ---------------------------------------------------------------------- the training curve
def read_history(path: str | PathLike) -> list[dict[str, float]]:
    """The rows of a ``history.csv`` (one per epoch: ``epoch``, ``train_loss``,
    ``valid_loss``, ...) as floats; [] for an empty file (The Cannon)."""
    text = Path(path).read_text(encoding="utf-8")
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        try:
            rows.append({k: float(v) for k, v in row.items() if k})
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: not a training history (row {len(rows) + 1}: "
                             f"{err})") from None
    return rows


def training_curve(history: Sequence[Mapping[str, float]], *, title: str = "") -> bytes:
    """The training curve as PNG bytes: the losses per epoch (log scale when they span
    more than a factor 20), the best validation epoch marked, and one panel for each other
    column (validation score, learning rate); drawn with :class:`matplotlib.figure.Figure`
    (no pyplot, no backend change)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    if not history:
        raise ValueError("no epoch in the training history")
    columns = [k for k in history[0] if k not in ("epoch", "seconds")]
    losses = [k for k in columns if "loss" in k]
    others = [k for k in columns if k not in losses][:2]
    epoch = np.array([h.get("epoch", i) for i, h in enumerate(history)], dtype=float)
    fig = Figure(figsize=(4.0 + 3.0 * len(others), 3.2), dpi=100, layout="constrained")
    axes = fig.subplots(1, 1 + len(others), squeeze=False)[0]
    ax = axes[0]
    for name in losses:
        ax.plot(epoch, [h[name] for h in history], marker="o", ms=3, label=name)
    values = np.array([h[n] for h in history for n in losses], dtype=float)
    finite = values[np.isfinite(values)]
    if finite.size and finite.min() > 0 and finite.max() / finite.min() > 20:
        ax.set_yscale("log")
    if "valid_loss" in history[0]:
        valid = np.array([h["valid_loss"] for h in history], dtype=float)
        if np.isfinite(valid).any():
            best = epoch[int(np.nanargmin(valid))]
            ax.axvline(best, color="0.5", ls=":", lw=1, label=f"best epoch {best:.0f}")
    ax.set_ylabel("loss")
    ax.legend(fontsize=8)
    ax.set_title(title or "training curve", fontsize=10)
    for ax, name in zip(axes[1:], others, strict=True):
        ax.plot(epoch, [h[name] for h in history], marker="o", ms=3, color="C2")
        if name == "lr":
            ax.set_yscale("log")
        ax.set_title(name.replace("_", " "), fontsize=10)
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


# ---------------------------------------------------------------------- grids, flags, files
def grid_summary(wave: Sequence[float] | np.ndarray) -> list[tuple[str, Any]]:
    """The wavelength grid (vacuum Å) in words: pixels, range, spacing (log-uniform with
    its resolution λ/Δλ, linear with its step, or irregular)."""
    wave = np.asarray(wave, dtype=float)
    if wave.size < 2:
        return [("pixels", int(wave.size))]
    items: list[tuple[str, Any]] = [("pixels", int(wave.size)),
                                    ("wavelength (vacuum Å)",
                                     f"{wave[0]:.2f} – {wave[-1]:.2f}")]
    step, log_step = np.diff(wave), np.diff(np.log(wave))
    if np.allclose(log_step, log_step.mean(), rtol=1e-3):
        items.append(("spacing", f"log-uniform, λ/Δλ = {1 / log_step.mean():.0f} per "
                                 "pixel"))
    elif np.allclose(step, step.mean(), rtol=1e-3):
        items.append(("spacing", f"linear, Δλ = {step.mean():.4g} Å"))
    else:
        items.append(("spacing", f"irregular, Δλ {step.min():.4g} – {step.max():.4g} Å"))
    return items


def flag_counts(table: Any) -> dict[str, dict[int, int]]:
    """For the ``flags`` column and each ``<label>_flag`` column of a catalogue: the
    number of rows with each bit set (the bits of :data:`FLAG_BITS`, and any other bit
    found); key 0 counts the rows with no bit set."""
    out: dict[str, dict[int, int]] = {}
    names = [n for n in table.colnames if n == "flags" or n.endswith("_flag")]
    for name in names:
        values = np.asarray(table[name]).astype(np.int64)
        bits = set(FLAG_BITS)
        for bit in range(int(values.max()).bit_length() if values.size else 0):
            if np.any(values & (1 << bit)):
                bits.add(1 << bit)
        counts = {0: int(np.sum(values == 0))}
        counts.update({b: int(np.sum((values & b) > 0)) for b in sorted(bits)})
        out[name] = counts
    return out


def flags_table(counts: Mapping[str, Mapping[int, int]], n_rows: int) -> str:
    """One row per flag bit (with its meaning), one column per flag column of the
    catalogue: how many of ``n_rows`` have it set."""
    columns = sorted(counts, key=lambda c: c != "flags")
    bits = sorted({b for c in counts.values() for b in c if b})
    rows = []
    for bit in bits:
        meaning = FLAG_BITS.get(bit, "a bit starlearn's estimators do not set")
        rows.append([f"{bit}: {meaning}", *(counts[c].get(bit, 0) for c in columns)])
    rows.append(["no flag", *(counts[c].get(0, 0) for c in columns)])
    return table_html(["bit", *columns], rows,
                      caption=f"rows with each flag bit set, of {n_rows}")


def _mtime(path: Path) -> str:
    stamp = _dt.datetime.fromtimestamp(path.stat().st_mtime, tz=_dt.timezone.utc)
    return stamp.isoformat(timespec="seconds")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot be read as JSON ({err})") from None


def _find_pngs(folder: Path) -> list[Path]:
    """PNG files in ``folder`` and its sub-folders (hidden ones and run parts left out),
    in path order."""
    found = []
    for path in sorted(folder.rglob("*.png")):
        parts = path.relative_to(folder).parts
        if any(p.startswith(".") or p.endswith(".parts") for p in parts):
            continue
        if path.is_file():
            found.append(path)
    return found


def _plots_section(folder: Path) -> Section | None:
    """Every PNG plot under ``folder`` as a figure; files that are not PNG images are
    named instead."""
    pngs = _find_pngs(folder)
    if not pngs:
        return None
    figures, skipped = [], []
    for i, path in enumerate(pngs[:MAX_PLOTS]):
        data = path.read_bytes()
        name = path.relative_to(folder).as_posix()
        if not data.startswith(b"\x89PNG\r\n\x1a\n"):
            skipped.append(name)
            continue
        figures.append(figure_html(data, name, f"plot-{i + 1}"))
    notes = []
    if skipped:
        notes.append(_note("not PNG images, left out: " + ", ".join(skipped)))
    if len(pngs) > MAX_PLOTS:
        notes.append(_note(f"{len(pngs)} PNG files found; the first {MAX_PLOTS} are shown"))
    return Section("plots", "Plots", "".join(figures) + "".join(notes))


def _versions_table(versions: Mapping[str, Any] | None, caption: str) -> str:
    if not versions:
        return ""
    return key_value_table(list(versions.items()), caption=caption)


def _dataset_table(path: Path) -> str:
    """A data set's size, grid, labels and the command that made it (read from its
    header: no spectrum is read); a note when it cannot be opened."""
    from starlearn.io import open_dataset

    try:
        with open_dataset(path) as store:
            items: list[tuple[str, Any]] = [("spectra", len(store)),
                                            ("pixels", store.n_pix)]
            if store.wave is not None and len(store.wave):
                items.append(("wavelength (vacuum Å)",
                              f"{store.wave[0]:.2f} – {store.wave[-1]:.2f}"))
            items += [("labels", ", ".join(store.label_names) or None),
                      ("classes", ", ".join(store.class_names) or None),
                      ("per-spectrum columns", ", ".join(store.meta_columns) or None),
                      ("made by", " ".join(store.provenance.get("command") or []) or None)]
    except Exception as err:  # a damaged file is named, not fatal to the report
        return _note(f"{path.name}: cannot be read ({err})")
    return key_value_table(items, caption=f"data set {path.name}")


# ---------------------------------------------------------------------- model folders
def _labels_names(config: Mapping[str, Any]) -> list[str] | None:
    labels = config.get("labels")
    if isinstance(labels, Mapping):
        return list(labels.get("names") or [])
    return None


def _model_provenance(folder: Path, config: Mapping[str, Any]) -> str:
    params = config.get("params") or {}
    network = config.get("network") or {}
    training = config.get("training") or {}
    classes = config.get("classes") or {}
    preprocess = params.get("preprocess")
    if isinstance(preprocess, Mapping):
        preprocess = preprocess.get("type") or preprocess  # in full under "all parameters"
    onnx = folder / "model.onnx.json"
    items = [("folder", str(folder)),
             ("estimator", config.get("class")),
             ("task", config.get("task")),
             ("model", params.get("model") or network.get("name")),
             ("labels", ", ".join(_labels_names(config) or []) or None),
             ("classes", ", ".join(classes.get("names") or []) or None),
             ("latent size", params.get("latent")),
             ("preprocessing", preprocess),
             ("seed", params.get("seed")),
             ("epochs run", training.get("epochs_run")),
             ("best validation loss", training.get("best_valid_loss")),
             ("training seconds", training.get("seconds")),
             ("training mode", training.get("mode")),
             ("ONNX export", "model.onnx (checked against the weights by SHA-256)"
              if onnx.exists() else None),
             ("saved (config.json file time, UTC)", _mtime(folder / "config.json")),
             ("model folder schema version", config.get("schema_version"))]
    out = [key_value_table(items),
           _versions_table(config.get("versions"), "versions that saved the model")]
    flat = [(k, v) for k, v in sorted(params.items())]
    if network:
        flat += [(f"network.{k}", v) for k, v in network.items()]
    out.append("<details><summary>all parameters</summary>"
               + key_value_table([(k, "None" if v is None else v) for k, v in flat])
               + "</details>")
    return "".join(out)


def _model_data(config: Mapping[str, Any], metrics: Mapping[str, Any]) -> str:
    out = []
    wave = (config.get("grid") or {}).get("wave")
    if wave is not None:
        out.append(key_value_table(grid_summary(wave), caption="the model's wavelength grid"))
    labels = config.get("labels")
    if isinstance(labels, Mapping) and labels.get("names"):
        keys = [k for k in ("min", "max", "mean", "std") if labels.get(k) is not None]
        rows = [[name, *(labels[k][j] for k in keys)]
                for j, name in enumerate(labels["names"])]
        out.append(table_html(["label", *(f"training {k}" for k in keys)], rows,
                              caption="the training labels (flag 1 marks predictions "
                                      "outside their range)"))
    classes = config.get("classes")
    if isinstance(classes, Mapping) and classes.get("names"):
        counts = classes.get("counts") or []
        balanced = classes.get("balanced_counts") or []
        rows = [[name, counts[j] if j < len(counts) else None,
                 balanced[j] if j < len(balanced) else None]
                for j, name in enumerate(classes["names"])]
        out.append(table_html(["class", "training spectra", "after balancing"], rows))
    held_out = metrics.get("n") or metrics.get("n_valid")
    if held_out is None and isinstance(metrics.get("metrics"), Mapping):
        held_out = max((m.get("n", 0) for k, m in metrics["metrics"].items()
                        if k != "snr_bins" and isinstance(m, Mapping)), default=None)
    if held_out is not None:
        out.append(key_value_table([("held-out spectra in metrics.json", held_out)]))
    return "".join(out)


def _model_calibration(config: Mapping[str, Any], metrics: Mapping[str, Any]) -> str:
    out = []
    if isinstance(metrics.get("calibration"), Mapping):
        out.append(calibration_table(metrics["calibration"],
                                     caption="error calibration on the held-out split"))
    note = metrics.get("calibration_note")
    if note:
        out.append(_note(str(note)))
    labels = config.get("labels")
    if isinstance(labels, Mapping) and labels.get("names"):
        keys = [k for k in ("error_scale", "scatter", "noise_scale")
                if isinstance(labels.get(k), list)]
        if keys:
            rows = [[name, *(labels[k][j] for k in keys)]
                    for j, name in enumerate(labels["names"])]
            out.append(table_html(["label", *(k.replace("_", " ") for k in keys)], rows,
                                  caption="the fitted error model"))
    if "ece" in metrics:
        out.append(key_value_table([("expected calibration error", metrics["ece"])]))
    params = config.get("params") or {}
    odd = config.get("odd") or {}
    items = [("far-from-training threshold", (config.get("novelty") or {}).get("threshold")),
             ("least usable share of pixels (min_usable)", params.get("min_usable")),
             ("odd: χ² threshold", odd.get("chi2_threshold")),
             ("odd: density threshold", odd.get("density_threshold"))]
    if any(v is not None for _, v in items):
        out.append(key_value_table(items, caption="flags the model sets when predicting"))
    bits = {"regress": (1, 2, 4), "classify": (2, 4)}.get(str(config.get("task")), ())
    if bits:
        out.append(table_html(["bit", "meaning"], [[b, FLAG_BITS[b]] for b in bits],
                              caption="the flag bits of its predictions"))
    return "".join(out)


def _training_section(folder: Path, title: str = "") -> Section | None:
    path = folder / "history.csv"
    if not path.exists():
        return None
    history = read_history(path)
    if not history:
        return Section("training", "Training curve",
                       _note("history.csv is empty: the model is not trained by epochs "
                             "(The Cannon fits in closed form)"))
    png = training_curve(history, title=title)
    last = history[-1]
    return Section("training", "Training curve",
                   figure_html(png, f"{title or folder.name}: history.csv "
                                    f"({len(history)} epochs)", "training-curve")
                   + key_value_table([("epochs", len(history)),
                                      ("last train loss", last.get("train_loss")),
                                      ("last validation loss", last.get("valid_loss")),
                                      ("seconds", last.get("seconds"))]))


def _model_sections(folder: Path) -> list[Section]:
    """The sections of a model folder's page."""
    config = _read_json(folder / "config.json")
    if not isinstance(config, Mapping):
        raise ValueError(f"{folder / 'config.json'}: not a model configuration (a JSON "
                         f"{type(config).__name__}, not an object)")
    metrics_path = folder / "metrics.json"
    metrics = _read_json(metrics_path) if metrics_path.exists() else {}
    metrics = metrics if isinstance(metrics, Mapping) else {}
    sections = [Section("provenance", "Configuration and provenance",
                        _model_provenance(folder, config)),
                Section("data", "Data", _model_data(config, metrics))]
    if _metrics_kind(metrics):
        sections.append(Section("metrics", "Held-out metrics",
                                _metrics_html(metrics, "metrics.json: the held-out split")))
    calibration = _model_calibration(config, metrics)
    if calibration:
        sections.append(Section("calibration", "Calibration and flags", calibration))
    evaluation = _kept_evaluations(folder)
    if evaluation:
        sections.append(Section("evaluation", "Evaluations kept in the folder", evaluation))
    sections += [s for s in (_training_section(folder, str(
        (config.get("params") or {}).get("model") or "")), _plots_section(folder)) if s]
    return sections


def _kept_evaluations(folder: Path) -> str:
    """The metrics and calibration of the evaluation JSON files in the sub-folders of a
    model folder (``starlearn evaluate MODEL TEST --plots MODEL/eval``)."""
    out = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path, result in _evaluation_results(sub):
            name = path.relative_to(folder).as_posix()
            _, data, metrics, calibration = _evaluation_parts(path, result, "")
            out.append(f"<h3>{html.escape(name)}</h3>" + key_value_table(data)
                       + metrics + calibration)
    return "".join(out)


# ---------------------------------------------------------------------- evaluation folders
def _evaluation_results(folder: Path) -> list[tuple[Path, Mapping[str, Any]]]:
    """The evaluation JSON files of ``folder`` (one of each distinct result: the
    evaluation's metrics.json and a --json copy of it count once; the one naming its task
    is kept)."""
    found: dict[str, tuple[Path, Mapping[str, Any]]] = {}
    for path in sorted(folder.glob("*.json")):
        try:
            data = _read_json(path)
        except ValueError:
            continue
        if not isinstance(data, Mapping) or _metrics_kind(data) is None:
            continue
        core = {k: v for k, v in data.items() if k != "task"}
        key = json.dumps(core, sort_keys=True, default=str)
        if key not in found or "task" in data:
            found[key] = (path, data)
    return sorted(found.values(), key=lambda item: item[0].name)


def _snr_coverage(bins: Sequence[Mapping[str, Any]]) -> str | None:
    """"49 at S/N 20–50, 77 at 50–100": how many test spectra each S/N bin holds."""
    if not bins:
        return None
    return ", ".join(f"{b.get('n')} at {b.get('lo'):g}–{b.get('hi'):g}" for b in bins)


def _evaluation_parts(path: Path, result: Mapping[str, Any], where: str
                      ) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]], str, str]:
    """(provenance items, data items, metrics HTML, calibration HTML) of one result."""
    kind = _metrics_kind(result)
    metrics = result.get("metrics") if kind == "regress" else None
    bins = (metrics or {}).get("snr_bins") or []
    provenance = [(f"{where}file", path.name), ("written (file time, UTC)", _mtime(path)),
                  ("task", result.get("task") or kind), ("model", result.get("model")),
                  ("labels", ", ".join(result.get("labels") or []) or None),
                  ("classes", ", ".join(result.get("classes") or []) or None)]
    data = [("test spectra", result.get("n_test") or result.get("n")),
            ("test spectra per S/N bin", _snr_coverage(bins)),
            ("flagged test spectra", result.get("n_flagged"))]
    calibration = ""
    if isinstance(result.get("calibration"), Mapping):
        calibration = calibration_table(result["calibration"],
                                        caption=f"error calibration on the test spectra "
                                                f"({path.name})")
    elif "ece" in result:
        calibration = key_value_table([("expected calibration error", result["ece"])])
    if result.get("n_flagged") is not None:
        calibration += key_value_table([("test spectra with a flag", result["n_flagged"])])
    return provenance, data, _metrics_html(result, f"{path.name}: the test spectra"), \
        calibration


def _evaluation_sections(folder: Path, results: Sequence[tuple[Path, Mapping[str, Any]]], *,
                        plots: bool = True) -> list[Section]:
    """The sections of an evaluation folder's page (``results``: its JSON results; with
    ``plots``, the PNG files of ``folder``)."""
    provenance: list[str] = [key_value_table([("folder", str(folder)),
                                              ("made by", "starlearn evaluate")])]
    data, metrics, calibration = [], [], []
    for path, result in results:
        where = "" if len(results) == 1 else f"{path.name}: "
        p, d, m, c = _evaluation_parts(path, result, where)
        provenance.append(key_value_table(p))
        data.append(key_value_table(d, caption=path.name if where else None))
        metrics.append(m)
        if c:
            calibration.append(c)
    if not results:
        provenance.append(_note("no JSON results in the folder (classifiers write none "
                                "without --json): only the plots are shown"))
    sections = [Section("provenance", "Configuration and provenance", "".join(provenance))]
    if results:
        sections += [Section("data", "Data", "".join(data)),
                     Section("metrics", "Metrics on the test spectra", "".join(metrics))]
    if calibration:
        sections.append(Section("calibration", "Calibration and flags", "".join(calibration)))
    figures = _plots_section(folder) if plots else None
    return sections + ([figures] if figures else [])


# ---------------------------------------------------------------------- demo folders
def _demo_sections(folder: Path) -> list[Section]:
    """The sections of a ``starlearn demo`` folder's page: the comparison of its models
    and, per model, its evaluation and training curve."""
    summary = _read_json(folder / "results.json")
    results = summary.get("results") or {}
    labels = summary.get("labels") or []
    seconds = summary.get("seconds") or {}
    items = [("folder", str(folder)), ("made by", "starlearn demo"),
             ("written (results.json file time, UTC)", _mtime(folder / "results.json")),
             ("models", ", ".join(results)), ("labels", ", ".join(labels)),
             ("seconds generating spectra", seconds.get("generate")),
             ("seconds in all", seconds.get("total"))]
    items += [(f"{name}: training seconds", r.get("train_seconds"))
              for name, r in results.items()]
    configs = {name: _read_json(folder / f"model-{name}" / "config.json") for name in results
               if (folder / f"model-{name}" / "config.json").exists()}
    provenance = [key_value_table(items)]
    by_versions: dict[str, list[str]] = {}
    for name, config in configs.items():
        key = json.dumps(config.get("versions") or {}, sort_keys=True)
        by_versions.setdefault(key, []).append(f"model-{name}")
    provenance += [_versions_table(json.loads(key), f"versions that saved {', '.join(names)}")
                   for key, names in by_versions.items()]
    data = [("training spectra", summary.get("n_train")),
            ("test spectra", summary.get("n_test"))]
    first = next(iter(results.values()), {})
    data.append(("test spectra per S/N bin",
                 _snr_coverage((first.get("metrics") or {}).get("snr_bins") or [])))
    waves = [(c.get("grid") or {}).get("wave") for c in configs.values()]
    wave = next((w for w in waves if w is not None), None)
    grid_html = "" if wave is None else key_value_table(
        grid_summary(wave), caption="the models' wavelength grid")
    grid_html += "".join(_dataset_table(path) for path in sorted(folder.glob("*.h5")))
    header = ["model"]
    for label in labels:
        header += [f"{label} bias", f"{label} σ", f"{label} robust σ", f"{label} z spread"]
    rows = []
    for name, r in results.items():
        row: list[Any] = [name]
        for label in labels:
            m = (r.get("metrics") or {}).get(label) or {}
            c = (r.get("calibration") or {}).get(label) or {}
            row += [m.get("bias"), m.get("sigma"), m.get("robust_sigma"), c.get("z_spread")]
        rows.append(row)
    metrics = [table_html(header, rows, caption=f"{summary.get('n_test')} held-out test "
                                                "spectra, per model")]
    calibration = []
    for name, r in results.items():
        metrics.append(f"<h3>{html.escape(name)}</h3>"
                       + _metrics_html({**r, "labels": r.get("labels") or labels},
                                       f"{name} on the test spectra"))
        if isinstance(r.get("calibration"), Mapping):
            calibration.append(calibration_table(r["calibration"], caption=name))
        if r.get("n_flagged") is not None:
            calibration.append(key_value_table([(f"{name}: flagged test spectra",
                                                 r["n_flagged"])]))
    sections = [Section("provenance", "Configuration and provenance", "".join(provenance)),
                Section("data", "Data", key_value_table(data) + grid_html),
                Section("metrics", "Metrics on the test spectra", "".join(metrics)),
                Section("calibration", "Calibration and flags", "".join(calibration))]
    curves = []
    for name in results:
        history_path = folder / f"model-{name}" / "history.csv"
        if history_path.exists():
            history = read_history(history_path)
            if history:
                curves.append(figure_html(training_curve(history, title=name),
                                          f"model-{name}/history.csv", f"training-{name}"))
            else:
                curves.append(_note(f"model-{name}: no epochs (fitted in closed form)"))
    if curves:
        sections.append(Section("training", "Training curves", "".join(curves)))
    plots = _plots_section(folder)
    return sections + ([plots] if plots else [])


# ---------------------------------------------------------------------- prediction runs
@dataclass
class _Run:
    """The files of one prediction run (the catalogue or the parts folder may be missing,
    not both) and the catalogue's table once read."""

    catalogue: Path
    parts: Path | None
    rejects: Path | None
    table: Any = None


def _run_of(path: Path, table: Any = None) -> _Run:
    """The run a catalogue, or a ``.parts`` folder, belongs to."""
    catalogue = path.with_name(path.name[:-len(".parts")]) if path.name.endswith(".parts") \
        else path
    parts = catalogue.with_name(catalogue.name + ".parts")
    rejects = catalogue.with_name(catalogue.stem + ".rejects.csv")
    return _Run(catalogue, parts if (parts / "plan.json").exists() else None,
                rejects if rejects.exists() else None, table)


def _is_catalogue(path: Path) -> bool:
    return (path.is_file() and path.suffix.lower() in CATALOGUE_SUFFIXES
            and not path.name.endswith(".rejects.csv"))


def _runs_in(folder: Path) -> list[_Run]:
    """The prediction runs whose catalogue or parts folder is in ``folder``."""
    names = {p.name for p in folder.iterdir() if _is_catalogue(p)}
    names |= {p.name[:-len(".parts")] for p in folder.glob("*.parts")
              if (p / "plan.json").exists()}
    runs = []
    for name in sorted(names):
        run = _run_of(folder / name)
        if run.catalogue.exists():
            run.table = _read_predictions(run.catalogue)
        if run.parts is not None or run.table is not None:
            runs.append(run)
    return runs


def _read_predictions(path: Path) -> Any:
    """The table of ``path`` if it is a catalogue of predictions (a table with a
    ``flags`` column), else None."""
    from starlearn.jobs.archive import read_catalogue

    try:
        table = read_catalogue(path)
    except Exception:  # not a table at all (astropy and pyarrow raise many kinds)
        return None
    return table if "flags" in table.colnames else None


def _resolve(name: str, *bases: Path) -> Path | None:
    path = Path(name)
    candidates = [path] if path.is_absolute() else [path, *(b / path for b in bases)]
    return next((p for p in candidates if p.exists()), None)


def _plan_model(plan: Mapping[str, Any], base: Path) -> tuple[Path | None, str | None]:
    """The model folder a run used, if it is still there with the same config.json
    (checked by SHA-256); else None and why not."""
    from starlearn.artifact import sha256_file

    name = plan.get("model")
    if not name:
        return None, None
    folder = _resolve(str(name), base)
    if folder is None or not (folder / "config.json").exists():
        return None, f"the model folder {name} is not found from here"
    expected = (plan.get("model_identity") or {}).get("config_sha256")
    if expected and sha256_file(folder / "config.json") != expected:
        return None, (f"{folder} now holds another model (its config.json differs from the "
                      "one the run used)")
    return folder, None


def _read_parts(parts: Path, manifest: Sequence[Mapping[str, Any]]) -> Any:
    """The rows of the finished parts of an unmerged run."""
    from astropy.table import Table, vstack

    from starlearn.jobs.archive import read_catalogue

    tables = [read_catalogue(parts / r["file"]) for r in manifest
              if r.get("file") and (parts / r["file"]).exists()]
    return vstack(tables) if tables else Table()


def _prediction_summary(table: Any) -> str:
    """Per predicted label: how many are finite, their median and 5–95 % range, the
    median error; per class: counts and mean probability."""
    out = []
    labels = [n for n in table.colnames if f"{n}_err" in table.colnames]
    rows = []
    for name in labels:
        value = np.asarray(table[name], dtype=float)
        err = np.asarray(table[f"{name}_err"], dtype=float)
        ok = np.isfinite(value)
        if ok.any():
            p5, p50, p95 = np.percentile(value[ok], [5, 50, 95])
            rows.append([name, int(ok.sum()), p50, p5, p95,
                         float(np.nanmedian(err)) if np.isfinite(err).any() else None])
        else:
            rows.append([name, 0, None, None, None, None])
    if rows:
        out.append(table_html(["label", "predicted", "median", "5 %", "95 %",
                               "median error"], rows,
                              caption="predicted labels (rows with a finite value)"))
    if "class" in table.colnames:
        classes = np.asarray(table["class"]).astype(str)
        probability = np.asarray(table["probability"], dtype=float) \
            if "probability" in table.colnames else None
        rows = []
        for name in sorted(set(classes)):
            sel = classes == name
            mean_p = float(np.nanmean(probability[sel])) if probability is not None \
                and np.isfinite(probability[sel]).any() else None
            rows.append([name or "(not predicted)", int(sel.sum()), mean_p])
        out.append(table_html(["class", "spectra", "mean probability"], rows,
                              caption="predicted classes"))
    return "".join(out)


def _read_run(run: _Run) -> tuple[Mapping[str, Any], list[dict[str, Any]], Any]:
    """(plan, manifest records, catalogue table) of a run: the table of an unmerged run is
    that of its finished parts."""
    from astropy.table import Table

    from starlearn.jobs.archive import read_catalogue

    plan = _read_json(run.parts / "plan.json") if run.parts else {}
    manifest: list[dict[str, Any]] = []
    if run.parts and (run.parts / "manifest.jsonl").exists():
        for line in (run.parts / "manifest.jsonl").read_text().splitlines():
            try:
                manifest.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a kill: that part is not finished
    if run.table is not None:
        table = run.table
    elif run.catalogue.exists():
        table = read_catalogue(run.catalogue)
    else:
        table = _read_parts(run.parts, manifest) if run.parts else Table()
    return plan, manifest, table


def _prediction_provenance(run: _Run, plan: Mapping[str, Any],
                           manifest: Sequence[Mapping[str, Any]], config: Mapping[str, Any],
                           why: str | None) -> str:
    identity = plan.get("model_identity") or {}
    merged = run.catalogue.exists()
    items: list[tuple[str, Any]] = [
        ("catalogue", str(run.catalogue) if merged else
         f"{run.catalogue} (not written: the run did not finish; the finished parts are "
         "shown)"),
        ("made by", "starlearn predict"),
        ("written (file time, UTC)", _mtime(run.catalogue) if merged else None),
        ("model", plan.get("model")),
        ("model config.json SHA-256", identity.get("config_sha256")),
        ("model weights SHA-256", identity.get("weights_sha256")),
        ("starlearn version of the run", identity.get("starlearn")),
        *((f"option {k}", v) for k, v in sorted((plan.get("options") or {}).items())),
        ("parts planned", len(plan.get("parts") or []) if plan else None),
        ("parts finished", len({r.get("part") for r in manifest}) if run.parts else None),
        ("seconds in the parts (sum over workers)",
         sum(float(r.get("seconds", 0.0)) for r in manifest) if manifest else None)]
    if run.parts is None:
        items.append(("run folder", f"{run.catalogue.name}.parts was removed after the "
                                    "merge (predict --keep-parts keeps it): the model and "
                                    "options are not recorded"))
    if config:
        items += [("model estimator", config.get("class")), ("task", config.get("task")),
                  ("model network", (config.get("params") or {}).get("model")),
                  ("labels", ", ".join(_labels_names(config) or []) or None),
                  ("classes", ", ".join((config.get("classes") or {}).get("names") or [])
                   or None)]
    elif why:
        items.append(("model details", why))
    return key_value_table(items) + _versions_table(config.get("versions"),
                                                    "versions that saved the model")


def _prediction_data(plan: Mapping[str, Any], manifest: Sequence[Mapping[str, Any]],
                     table: Any, rejects: Any, config: Mapping[str, Any]) -> str:
    items: list[tuple[str, Any]] = [("spectra in the catalogue", len(table))]
    if "file" in table.colnames:
        items.append(("distinct input files", len(set(np.asarray(table["file"])))))
    datasets: dict[str, int] = {}
    n_files = 0
    for part in plan.get("parts") or []:
        if part.get("dataset"):
            datasets[part["dataset"]] = datasets.get(part["dataset"], 0) + int(
                part.get("stop", 0)) - int(part.get("start", 0))
        n_files += len(part.get("files") or [])
    items += [(f"input data set {name}", f"{rows} rows") for name, rows in datasets.items()]
    items.append(("input spectrum files", n_files or None))
    rejected = sum(int(r.get("rejected", 0)) for r in manifest) if manifest else None
    items.append(("inputs rejected", len(rejects) if rejects is not None else rejected))
    if "snr" in table.colnames:
        snr = np.asarray(table["snr"], dtype=float)
        if np.isfinite(snr).any():
            items.append(("S/N range", f"{np.nanmin(snr):.4g} – {np.nanmax(snr):.4g}"))
    out = key_value_table(items)
    wave = (config.get("grid") or {}).get("wave")
    if wave is not None:
        out += key_value_table(grid_summary(wave), caption="the model's wavelength grid")
    return out


def _prediction_calibration(table: Any, model_metrics: Mapping[str, Any]) -> str:
    counts = flag_counts(table) if len(table) else {}
    out = flags_table(counts, len(table)) if counts else _note(
        "the catalogue has no flags column")
    if isinstance(model_metrics.get("calibration"), Mapping):
        out += calibration_table(model_metrics["calibration"],
                                 caption="the model's error calibration on its held-out "
                                         "split (metrics.json)")
    elif "ece" in model_metrics:
        out += key_value_table([("the model's expected calibration error",
                                 model_metrics["ece"])])
    return out


def _rejects_section(rejects: Any, name: str) -> Section | None:
    if rejects is None or not len(rejects):
        return None
    rows = [[str(r["input"]), str(r["reason"])] for r in rejects[:MAX_REJECTS]]
    body = table_html(["input", "reason"], rows,
                      caption=f"{len(rejects)} rejected inputs ({name})")
    if len(rejects) > MAX_REJECTS:
        body += _note(f"the first {MAX_REJECTS} of {len(rejects)} are listed")
    return Section("rejects", "Rejected inputs", body)


def _prediction_sections(run: _Run) -> list[Section]:
    """The sections of a prediction run's page."""
    from astropy.table import Table

    plan, manifest, table = _read_run(run)
    model_folder, why = _plan_model(plan, run.catalogue.parent)
    config: Mapping[str, Any] = {}
    model_metrics: Mapping[str, Any] = {}
    if model_folder is not None:
        config = _read_json(model_folder / "config.json")
        if (model_folder / "metrics.json").exists():
            model_metrics = _read_json(model_folder / "metrics.json")
    rejects = Table.read(run.rejects, format="ascii.csv") if run.rejects else None
    sections = [Section("provenance", "Configuration and provenance",
                        _prediction_provenance(run, plan, manifest, config, why)),
                Section("data", "Data",
                        _prediction_data(plan, manifest, table, rejects, config))]
    summary = _prediction_summary(table) if len(table) else ""
    if summary:
        sections.append(Section("predictions", "Predictions", summary))
    sections.append(Section("calibration", "Calibration and flags",
                            _prediction_calibration(table, model_metrics)))
    rejected = _rejects_section(rejects, run.rejects.name if run.rejects else "")
    return sections + ([rejected] if rejected else [])


# ---------------------------------------------------------------------- the page
def identify(source: str | PathLike) -> str:
    """What ``source`` is: "model", "evaluation", "prediction" or "demo".

    Raises
    ------
    FileNotFoundError
        ``source`` does not exist.
    ValueError
        It is none of these (an empty folder, another file), naming the path and what was
        expected.
    """
    return _identify(Path(source))[0]


def _identify(source: Path) -> tuple[str, Any]:
    if not source.exists():
        raise FileNotFoundError(f"{source}: does not exist; expected {EXPECTED}")
    if source.is_file():
        if source.suffix.lower() == ".json":
            data = _read_json(source)
            if isinstance(data, Mapping) and _metrics_kind(data):
                return "evaluation", [(source, data)]
        elif _is_catalogue(source):
            table = _read_predictions(source)
            if table is not None:
                return "prediction", _run_of(source, table)
        raise ValueError(f"{source}: not a file a report can be made from (a catalogue of "
                         f"predictions with a flags column, or an evaluation JSON); "
                         f"expected {EXPECTED}")
    if (source / "config.json").exists():
        return "model", None
    if (source / "results.json").exists():
        summary = _read_json(source / "results.json")
        if isinstance(summary, Mapping) and isinstance(summary.get("results"), Mapping):
            return "demo", None
    if source.name.endswith(".parts") and (source / "plan.json").exists():
        return "prediction", _run_of(source)
    runs = _runs_in(source)
    if len(runs) == 1:
        return "prediction", runs[0]
    if len(runs) > 1:
        raise ValueError(f"{source}: holds several prediction runs "
                         f"({', '.join(r.catalogue.name for r in runs)}); give one "
                         "catalogue")
    results = _evaluation_results(source)
    if results or any((source / name).exists() for name in EVALUATION_PLOTS):
        return "evaluation", results
    what = "is empty" if not any(source.iterdir()) else \
        "holds no file a report can be made from"
    raise ValueError(f"{source}: {what}; expected {EXPECTED}")


_KINDS = {"model": "model folder", "evaluation": "evaluation", "prediction": "prediction run",
          "demo": "demo"}


def collect_sections(source: str | PathLike) -> tuple[str, list[Section]]:
    """(kind, sections) of the page for ``source`` (see :func:`identify`)."""
    source = Path(source)
    kind, found = _identify(source)
    if kind == "model":
        return kind, _model_sections(source)
    if kind == "demo":
        return kind, _demo_sections(source)
    if kind == "prediction":
        return kind, _prediction_sections(found)
    if source.is_file():  # an evaluation JSON alone: the PNGs beside it may be others'
        return kind, _evaluation_sections(source.parent, found, plots=False)
    return kind, _evaluation_sections(source, found)


_CSS = """
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d232b;
       background: #fff; margin: 0 auto; padding: 1.2em 2em 3em; max-width: 72em; }
header { border-bottom: 2px solid #2b6cb0; margin-bottom: 1em; }
h1 { font-size: 1.6em; margin: 0.2em 0; }
h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #d5dbe3;
     padding-bottom: 0.2em; }
h3 { font-size: 1.05em; margin-top: 1.2em; }
p.source { color: #4a5563; margin: 0.2em 0 0.8em; word-break: break-all; }
nav ol { margin: 0; padding-left: 1.4em; columns: 2; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.92em; }
caption { white-space: nowrap; text-align: left; color: #4a5563; padding-bottom: 0.3em;
          font-style: italic; }
th, td { border: 1px solid #d5dbe3; padding: 0.25em 0.6em; vertical-align: top; }
thead th { background: #edf2f7; }
tbody th { text-align: left; font-weight: 600; background: #f7f9fb; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.kv td { word-break: break-word; max-width: 48em; }
figure { margin: 1em 0 1.6em; }
figure img { max-width: 100%; height: auto; border: 1px solid #e2e8f0; }
figcaption { color: #4a5563; font-size: 0.9em; }
p.note { color: #4a5563; font-style: italic; }
details summary { cursor: pointer; color: #2b6cb0; margin: 0.4em 0; }
footer { margin-top: 3em; color: #6b7583; font-size: 0.85em; border-top: 1px solid #d5dbe3;
         padding-top: 0.6em; }
"""


def render_page(title: str, source: str, sections: Sequence[Section], *,
                footer: str = "") -> str:
    """The whole HTML page: a title, the source path, a table of contents, the sections
    and a footer; inline CSS, no script, and a Content-Security-Policy that lets the page
    load nothing but its own ``data:`` images and styles."""
    toc = "".join(f"<li><a href=\"#{html.escape(s.key)}\">{html.escape(s.title)}</a></li>"
                  for s in sections)
    body = "".join(f"<section id=\"{html.escape(s.key)}\"><h2>{html.escape(s.title)}</h2>"
                   f"{s.body}</section>" for s in sections)
    csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
            f"<header><h1>{html.escape(title)}</h1><p class=\"source\">"
            f"{html.escape(source)}</p></header><nav><ol>{toc}</ol></nav>{body}"
            f"<footer>{html.escape(footer)}</footer></body></html>\n")


def write_report(source: str | PathLike, output: str | PathLike, *,
                 overwrite: bool = False) -> Path:
    """Write the report page of ``source`` (a model folder, an evaluation folder or JSON,
    a prediction run's catalogue, parts folder or folder, or a demo folder) to ``output``
    (an HTML file, written whole: a temporary file, then a rename). Returns ``output``.

    Raises
    ------
    FileNotFoundError
        ``source`` does not exist, or the folder of ``output`` does not.
    FileExistsError
        ``output`` exists and ``overwrite`` is False.
    ValueError
        ``source`` is nothing a report can be made from (the message names the path and
        what was expected), or one of its files is damaged.
    """
    from starlearn._provenance import library_versions

    source, output = Path(source), Path(output)
    if output.exists() and not overwrite:
        raise FileExistsError(f"{output} exists; pass --overwrite (overwrite=True) to "
                              "replace it")
    check_writable(output)
    kind, sections = collect_sections(source)
    versions = library_versions()
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    name = source.resolve().name or str(source)
    page = render_page(f"starlearn report: {_KINDS[kind]} {name}", str(source.resolve()),
                       sections,
                       footer=f"made by starlearn report {versions.get('starlearn', '?')} "
                              f"(python {versions.get('python', '?')}) on {now}; every "
                              "figure is embedded in this file")
    atomic_write(output, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return output
