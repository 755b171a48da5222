"""The architecture comparison job: train several regressors on the same data and seed,
evaluate each on the same test set (the StarNet comparison table)."""

from __future__ import annotations

from typing import Any

__all__ = ["compare_models"]


def compare_models(models: list[str], train: Any, test: Any, *,
                   labels: list[str] | None = None, epochs: int | None = None, seed: int = 0,
                   progress: bool = True,
                   options: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Train each model on ``train`` and evaluate on ``test`` (same data, same seed).

    Returns ``{model: evaluate_regressor result + train_seconds, predict_per_second}``.
    """
    import time

    from starlearn.estimators._common import as_source, read_rows
    from starlearn.evaluate.regression import evaluate_regressor
    from starlearn.jobs.training import label_estimator

    test_set = read_rows(as_source(test), None)
    results: dict[str, dict[str, Any]] = {}
    for name in models:
        settings = dict(options or {})
        if epochs is not None:
            settings["epochs"] = epochs
        estimator = label_estimator(name, labels, seed=seed, progress=progress, **settings)
        start = time.perf_counter()
        estimator.fit(train)
        train_seconds = time.perf_counter() - start
        start = time.perf_counter()
        result = evaluate_regressor(estimator, test_set)
        result["train_seconds"] = train_seconds
        result["predict_per_second"] = len(test_set) / (time.perf_counter() - start)
        results[name] = result
    return results
