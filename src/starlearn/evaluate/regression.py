"""Evaluate a fitted regressor on a labelled test set: numbers (JSON) and plots."""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from starlearn.evaluate.metrics import calibration, regression_metrics
from starlearn.spectra import SpectrumSet

__all__ = ["evaluate_regressor", "format_table"]


def evaluate_regressor(regressor: Any, test: SpectrumSet, *,
                       output: str | PathLike | None = None) -> dict[str, Any]:
    """Predict ``test`` and compare with its labels.

    Returns
    -------
    dict with ``metrics`` (per label r2, bias, median offset, sigma, robust sigma, RMSE,
    and the same in S/N bins when the test set has a ``snr`` meta column),
    ``calibration`` (fraction of |z| < 1, z spread) and ``n_flagged``. With ``output``,
    writes ``metrics.json`` and ``residuals.png`` there (predicted against true value and
    the residuals, :func:`starlearn.evaluate.plots.plot_residuals`), and ``kiel.png``
    when the labels include ``teff`` and ``logg`` (Kiel diagrams of the true and the
    predicted labels, :func:`starlearn.evaluate.plots.plot_kiel`).
    """
    table = regressor.predict(test)
    names = list(regressor.label_names_)
    missing = [n for n in names if n not in test.label_names]
    if missing:
        raise ValueError(f"the test set has no labels {missing} (it has {test.label_names})")
    true = np.stack([test.label(n) for n in names], axis=1).astype(np.float64)
    pred = np.stack([np.asarray(table[n]) for n in names], axis=1).astype(np.float64)
    err = np.stack([np.asarray(table[f"{n}_err"]) for n in names], axis=1).astype(np.float64)
    snr = np.asarray(test.meta["snr"], dtype=np.float64) if "snr" in test.meta.colnames \
        else None
    result = {"n_test": len(test), "labels": names,
              "metrics": regression_metrics(true, pred, names, snr=snr),
              "calibration": calibration(true, pred, err, names),
              "n_flagged": int(np.count_nonzero(np.asarray(table["flags"])))}
    if output is not None:
        from starlearn.evaluate.plots import plot_kiel, plot_residuals

        out = Path(output)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(result, indent=1))
        title = f"{regressor.model} on {len(test)} test spectra"
        plot_residuals(true, pred, names, out / "residuals.png", title=title)
        if "teff" in names and "logg" in names:
            plot_kiel(pred, out / "kiel.png", names=names, reference=true, title=title)
    return result


def format_table(results: dict[str, dict[str, Any]], names: list[str], *,
                 timing: bool = False) -> str:
    """The StarNet-style table: one row per model; sigma, robust sigma and r2 per label,
    and (``timing``) training seconds and predictions per second."""
    head = f"{'model':<12}" + "".join(f"{n + ' σ':>12}{n + ' rσ':>11}{n + ' r2':>8}"
                                      for n in names)
    if timing:
        head += f"{'train s':>9}{'pred/s':>9}"
    lines = [head, "-" * len(head)]
    for model, res in results.items():
        row = f"{model:<12}"
        for n in names:
            m = res["metrics"][n]
            row += f"{m['sigma']:>12.4g}{m['robust_sigma']:>11.4g}{m['r2']:>8.3f}"
        if timing:
            row += f"{res.get('train_seconds', float('nan')):>9.1f}"
            row += f"{res.get('predict_per_second', float('nan')):>9.0f}"
        lines.append(row)
    return "\n".join(lines)
