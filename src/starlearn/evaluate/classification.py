"""Classification metrics, the confusion matrix plot and the domain-shift embedding plot."""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from typing import TYPE_CHECKING, Any

import numpy as np

from starlearn.spectra import SpectrumSet

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["classification_metrics", "evaluate_classifier", "expected_calibration_error",
           "format_classification", "plot_confusion", "plot_domains"]


def expected_calibration_error(true: np.ndarray, proba: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error: the mean over equal-width confidence bins of
    |accuracy - mean confidence|, weighted by the share of spectra in each bin."""
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == true
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        sel = which == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - confidence[sel].mean())
    return float(ece)


def classification_metrics(true: np.ndarray, proba: np.ndarray,
                           classes: Sequence[str]) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/F1/support, macro-F1, confusion matrix (rows
    true, columns predicted) and expected calibration error.

    ``true``: class indices (n,); ``proba``: probabilities (n, n_classes).
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    true = np.asarray(true, dtype=int)
    pred = np.asarray(proba).argmax(axis=1)
    labels = np.arange(len(classes))
    precision, recall, f1, support = precision_recall_fscore_support(
        true, pred, labels=labels, zero_division=0)
    return {
        "n": len(true),
        "accuracy": float(np.mean(pred == true)) if len(true) else float("nan"),
        "macro_f1": float(np.mean(f1)),
        "per_class": {name: {"precision": float(precision[j]), "recall": float(recall[j]),
                             "f1": float(f1[j]), "support": int(support[j])}
                      for j, name in enumerate(classes)},
        "confusion": confusion_matrix(true, pred, labels=labels).tolist(),
        "classes": list(classes),
        "ece": expected_calibration_error(true, np.asarray(proba)),
    }


def format_classification(metrics: dict[str, Any]) -> str:
    """The metrics as a text table (per class, then overall) and the confusion matrix."""
    classes = metrics["classes"]
    width = max(12, *(len(c) + 2 for c in classes))
    lines = [f"{'class':{width}s}{'precision':>10s}{'recall':>10s}{'F1':>10s}{'support':>9s}"]
    for name in classes:
        row = metrics["per_class"][name]
        lines.append(f"{name:{width}s}{row['precision']:10.3f}{row['recall']:10.3f}"
                     f"{row['f1']:10.3f}{row['support']:9d}")
    lines.append(f"accuracy {metrics['accuracy']:.4f}   macro-F1 {metrics['macro_f1']:.4f}   "
                 f"ECE {metrics['ece']:.4f}   (n = {metrics['n']})")
    lines.append("confusion matrix (rows: true, columns: predicted)")
    lines.append(" " * width + "".join(f"{c[:10]:>11s}" for c in classes))
    for name, row in zip(classes, metrics["confusion"], strict=True):
        lines.append(f"{name:{width}s}" + "".join(f"{v:11d}" for v in row))
    return "\n".join(lines)


def plot_confusion(metrics: dict[str, Any], path: str | PathLike | None = None, *,
                   title: str = "") -> Figure:
    """The confusion matrix: rows true class, columns predicted class.

    Every cell shows its count; colours are the fraction of the true class (row
    normalised, so rare classes read as well as common ones), with a colour bar. Row
    labels give each true class's number of spectra.

    Parameters
    ----------
    metrics : the dict of :func:`classification_metrics` (``confusion``, ``classes``,
        ``macro_f1``)
    path : file to write (optional; format from the suffix)
    title : default "macro-F1 ..., accuracy ..."

    Returns
    -------
    matplotlib.figure.Figure (object-oriented API: no pyplot, no backend chosen).
    """
    from starlearn.evaluate.plots import _finish, _new_figure

    counts = np.asarray(metrics["confusion"], dtype=float)
    totals = counts.sum(axis=1)
    frac = counts / np.maximum(totals[:, None], 1)
    classes = metrics["classes"]
    k = len(classes)
    fig = _new_figure(2.4 + 1.0 * k, 1.6 + 0.9 * k)
    ax = fig.subplots()
    image = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center",
                    color="white" if frac[i, j] > 0.55 else "black", fontsize=9)
    ax.set_xticks(range(k), classes, rotation=30, ha="right")
    ax.set_yticks(range(k), [f"{c} ({int(n)})" for c, n in zip(classes, totals,
                                                              strict=True)])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class (number of spectra)")
    fig.colorbar(image, ax=ax, label="fraction of the true class", shrink=0.85)
    accuracy = metrics.get("accuracy")
    default = f"macro-F1 {metrics['macro_f1']:.3f}" + (
        f", accuracy {accuracy:.3f}" if accuracy is not None else "")
    ax.set_title(title or default, fontsize=10)
    return _finish(fig, path)


def plot_domains(panels: dict[str, tuple[np.ndarray, np.ndarray]],
                 path: str | PathLike | None = None, *, method: str = "tsne",
                 seed: int = 0) -> Figure:
    """Side-by-side 2-D embeddings of source and target features, one panel per entry of
    ``panels`` (title -> (source features, target features)), e.g. before and after domain
    adaptation. Well-adapted features mix the two colours.

    Returns the matplotlib Figure; writes it to ``path`` when given.
    """
    from starlearn.evaluate.embedding import embed_2d
    from starlearn.evaluate.plots import _METHOD_AXES, _finish, _new_figure

    fig = _new_figure(4.6 * len(panels), 4.4)
    axes = fig.subplots(1, len(panels), squeeze=False)
    axis = _METHOD_AXES.get(method, method)
    for ax, (title, (source, target)) in zip(axes[0], panels.items(), strict=True):
        xy = embed_2d(np.concatenate([source, target]), method, seed)
        ax.scatter(*xy[:len(source)].T, s=4, alpha=0.5, lw=0, label="source (training)")
        ax.scatter(*xy[len(source):].T, s=4, alpha=0.5, lw=0, label="target")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(f"{axis} 1")
        ax.set_ylabel(f"{axis} 2")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8, markerscale=3)
    return _finish(fig, path)


def evaluate_classifier(classifier: Any, test: SpectrumSet, *,
                        plots: str | PathLike | None = None) -> dict[str, Any]:
    """Metrics of a fitted Classifier on labelled ``test`` spectra (classes by name);
    spectra of classes the model does not know are left out. With ``plots`` (a folder),
    writes ``confusion.png``."""
    from pathlib import Path

    if test.classes is None:
        raise ValueError("evaluate: the test spectra have no classes")
    names = np.asarray([*test.class_names, ""])[np.where(test.classes >= 0,
                                                                 test.classes, -1)]
    known = np.isin(names, classifier.classes_)
    if not known.any():
        raise ValueError(f"evaluate: no test spectrum has one of the model's classes "
                         f"{classifier.classes_}")
    subset = test[np.flatnonzero(known)]
    true = np.array([classifier.classes_.index(n) for n in names[known]])
    proba = classifier.predict_proba(subset)
    metrics = classification_metrics(true, proba, classifier.classes_)
    if plots is not None:
        folder = Path(plots)
        folder.mkdir(parents=True, exist_ok=True)
        plot_confusion(metrics, folder / "confusion.png")
    return metrics
