"""One ``evaluate()`` for every estimator: the metrics a saved model earns on a labelled
test set, dispatched on what the estimator is (regressor, classifier, autoencoder)."""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

__all__ = ["evaluate"]


def evaluate(estimator: Any, test: Any, *, plots: str | PathLike | None = None
             ) -> dict[str, Any]:
    """Evaluate ``estimator`` on ``test`` (a SpectrumSet or a data-set path).

    Returns the task's result dict with ``"task"`` added: ``"regress"`` (the StarNet
    table: per-label metrics, in S/N bins, the calibration; residual plots in ``plots``),
    ``"classify"`` (accuracy, F1, confusion; its plot in ``plots``) or ``"autoencode"``
    (reconstruction RMS, chi-square, odd fraction, denoising gains).
    """
    from starlearn.estimators import Autoencoder, Classifier
    from starlearn.spectra import SpectrumSet

    if isinstance(test, (str, PathLike)):
        test = SpectrumSet.read(test)
    plots = None if plots is None else Path(plots)
    if isinstance(estimator, Classifier):
        from starlearn.evaluate.classification import evaluate_classifier

        return {"task": "classify", **evaluate_classifier(estimator, test, plots=plots)}
    if isinstance(estimator, Autoencoder):
        from starlearn.evaluate.autoencoder import evaluate_autoencoder

        return {"task": "autoencode", **evaluate_autoencoder(estimator, test)}
    from starlearn.evaluate.regression import evaluate_regressor

    return {"task": "regress", **evaluate_regressor(estimator, test, output=plots)}
