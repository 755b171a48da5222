"""Hyper-parameter search with Optuna: TPE sampling, pruning, a study shared through an RDB.

A *space* maps parameter names to distributions (``{"type": "float", "low": 1e-4,
"high": 3e-3, "log": true}``, ``{"type": "int", ...}``, ``{"type": "categorical",
"choices": [...]}``). ``DEFAULT_SPACES`` holds one per task; a TOML file can change or
remove entries (:func:`load_space`). Each trial builds an estimator from its parameters
(:func:`estimator_from_params`), trains it while reporting the validation score of every
epoch to Optuna (so that the median or successive-halving pruner can stop poor trials), and
returns the best validation score. The study lives in an RDB storage (SQLite file or
PostgreSQL URL), so several processes or machines running :func:`run_search` with the same
storage and study name share it; trial numbers are unique, parameter sets already
evaluated are not trained again, and a heartbeat marks the running trial of a killed
worker as failed so that the study goes on.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_SPACES", "TASKS", "check_space", "default_storage",
           "estimator_from_params", "load_space", "run_search", "study_summary"]

TASKS = ("regress", "autoencode", "classify")

_COMMON: dict[str, dict[str, Any]] = {
    "lr": {"type": "float", "low": 1e-4, "high": 3e-3, "log": True},
    "batch_size": {"type": "categorical", "choices": [32, 64, 128]},
    "weight_decay": {"type": "float", "low": 1e-7, "high": 1e-3, "log": True},
    "optimizer": {"type": "categorical", "choices": ["adam", "adamw", "rmsprop"]},
    "scheduler": {"type": "categorical", "choices": ["cosine", "plateau"]},
    "patience": {"type": "int", "low": 4, "high": 12},
    "activation": {"type": "categorical", "choices": ["relu", "elu", "leaky_relu"]},
}

DEFAULT_SPACES: dict[str, dict[str, dict[str, Any]]] = {
    # the 13 StarNet knobs: convolutions (number, filters, kernel), pool, dense layers
    # (number, width), dropout, activation, learning rate, batch size, weight decay,
    # optimiser, schedule, patience
    "regress": {
        "n_conv": {"type": "int", "low": 1, "high": 3},
        "filters": {"type": "int", "low": 4, "high": 32, "log": True},
        "kernel": {"type": "int", "low": 3, "high": 16},
        "pool": {"type": "int", "low": 2, "high": 8},
        "n_dense": {"type": "int", "low": 1, "high": 3},
        "dense": {"type": "int", "low": 32, "high": 512, "log": True},
        "dropout": {"type": "float", "low": 0.0, "high": 0.3},
        **_COMMON,
    },
    "autoencode": {
        "latent": {"type": "int", "low": 8, "high": 64, "log": True},
        "width": {"type": "int", "low": 128, "high": 1024, "log": True},
        **{k: v for k, v in _COMMON.items() if k not in ("activation",)},
    },
    "classify": {
        "n_blocks": {"type": "int", "low": 2, "high": 3},
        "filters": {"type": "int", "low": 8, "high": 64, "log": True},
        "kernel": {"type": "categorical", "choices": [3, 5, 7]},
        "dense": {"type": "int", "low": 32, "high": 512, "log": True},
        "dropout": {"type": "float", "low": 0.0, "high": 0.5},
        **_COMMON,
    },
}
"""Default search space per task."""


def check_space(space: Mapping[str, Any], task: str) -> dict[str, dict[str, Any]]:
    """Validate a space (known parameters, valid ranges); returns a clean copy.

    Raises ValueError naming the parameter and the problem, before any training.
    """
    if task not in TASKS:
        raise ValueError(f"search: task must be one of {TASKS}, got {task!r}")
    known = DEFAULT_SPACES[task]
    if not space:
        raise ValueError("search: the search space is empty")
    out: dict[str, dict[str, Any]] = {}
    for name, spec in space.items():
        if name not in known:
            raise ValueError(f"search space: unknown parameter '{name}' for task '{task}'; "
                             f"known: {sorted(known)}")
        if not isinstance(spec, Mapping):
            raise ValueError(f"search space: '{name}' must be a table with a 'type', "
                             f"got {spec!r}")
        kind = spec.get("type")
        if kind == "categorical":
            choices = list(spec.get("choices", []))
            if not choices:
                raise ValueError(f"search space: '{name}' has no choices")
            allowed = known[name].get("choices")
            if allowed is not None and name in ("optimizer", "scheduler", "activation"):
                bad = [c for c in choices if c not in allowed]
                if bad:
                    raise ValueError(f"search space: '{name}' choices {bad} are not "
                                     f"supported (supported: {allowed})")
            out[name] = {"type": "categorical", "choices": choices}
        elif kind in ("int", "float"):
            try:
                low, high = float(spec["low"]), float(spec["high"])
            except (KeyError, TypeError, ValueError):
                raise ValueError(f"search space: '{name}' needs numeric 'low' and 'high'"
                                 ) from None
            if not (math.isfinite(low) and math.isfinite(high)) or not low < high:
                raise ValueError(f"search space: '{name}' has an empty range "
                                 f"[{spec.get('low')}, {spec.get('high')}]")
            log = bool(spec.get("log", False))
            if log and low <= 0:
                raise ValueError(f"search space: '{name}' is log-scaled, so 'low' must be > 0")
            clean = {"type": kind, "low": int(low) if kind == "int" else low,
                     "high": int(high) if kind == "int" else high, "log": log}
            out[name] = clean
        else:
            raise ValueError(f"search space: '{name}' has type {kind!r}; use 'int', 'float' "
                             "or 'categorical'")
    return out


def load_space(task: str, path: str | os.PathLike | None = None) -> dict[str, dict[str, Any]]:
    """The default space of ``task``, changed by a TOML file: a table per parameter
    replaces the default; ``name = false`` removes a parameter (it keeps the estimator's
    default)."""
    space = copy.deepcopy(DEFAULT_SPACES.get(task, {}))
    if path is not None:
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib  # type: ignore[no-redef]
        with open(path, "rb") as f:
            data = tomllib.load(f)
        data = data.get("params", data)
        for name, spec in data.items():
            if spec is False:
                if name not in space:
                    raise ValueError(f"{path}: cannot remove unknown parameter '{name}'")
                space.pop(name)
            else:
                space[name] = spec
    return check_space(space, task)


def _suggest(trial: Any, space: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    params = {}
    for name, spec in space.items():
        if spec["type"] == "categorical":
            params[name] = trial.suggest_categorical(name, spec["choices"])
        elif spec["type"] == "int":
            params[name] = trial.suggest_int(name, spec["low"], spec["high"], log=spec["log"])
        else:
            params[name] = trial.suggest_float(name, spec["low"], spec["high"],
                                               log=spec["log"])
    return params


def estimator_from_params(task: str, params: Mapping[str, Any], *, base: Mapping[str, Any]
                          ) -> Any:
    """An unfitted estimator for ``task`` from search parameters and fixed settings
    ``base`` (labels or classes, preprocessing, max epochs, device, seed ...)."""
    from starlearn.estimators import Autoencoder, Classifier, Regressor

    p = dict(params)
    fit = {k: p.pop(k) for k in ("lr", "batch_size", "weight_decay", "optimizer",
                                 "scheduler", "patience") if k in p}
    settings = {**base, **fit}
    if task == "regress":
        n_conv, filters = p.pop("n_conv", 2), p.pop("filters", 16)
        config = {"filters": [max(2, filters // 2 ** (n_conv - 1 - i)) for i in range(n_conv)],
                  "kernel": p.pop("kernel", 8), "pool": p.pop("pool", 4),
                  "dense": [max(8, p.get("dense", 256) // 2**i)
                            for i in range(p.pop("n_dense", 2))],
                  "dropout": p.pop("dropout", 0.0), "activation": p.pop("activation", "relu")}
        p.pop("dense", None)
        return Regressor("starnet", model_config=config, **settings)
    if task == "autoencode":
        width = p.pop("width", 1024)
        latent = p.pop("latent", 32)
        config = {"hidden": [width, max(latent * 2, width // 2), max(latent, width // 8)]}
        return Autoencoder("dense-ae", latent, model_config=config, **settings)
    n_blocks, filters = p.pop("n_blocks", 3), p.pop("filters", 64)
    config = {"blocks": [[filters * 2**i] * 2 for i in range(n_blocks)],
              "kernel": p.pop("kernel", 3), "dense": [p.pop("dense", 512)] * 2,
              "dropout": p.pop("dropout", 0.5), "activation": p.pop("activation", "relu")}
    return Classifier("vgg1d", model_config=config, **settings)


def _score(task: str, history: list[dict[str, float]]) -> list[float]:
    key = "valid_score" if task == "regress" else "valid_loss"
    return [float(h.get(key, h["valid_loss"])) for h in history]


def _heartbeat_storage(url: str) -> Any:
    """RDBStorage with a 5 s heartbeat: a trial whose worker died (no beat for 20 s) is
    marked failed and not retried. Optuna 4.9 renamed the callback argument and class
    (``failed_trial_callback``/``RetryFailedTrialCallback`` are deprecated); both spellings
    are supported. The heartbeat is an Optuna "experimental" feature: its warning is muted."""
    import warnings

    import optuna.storages as storages
    from optuna.exceptions import ExperimentalWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        if hasattr(storages, "RetryHeartbeatStaleTrialCallback"):
            return storages.RDBStorage(
                url, heartbeat_interval=5, grace_period=20,
                heartbeat_stale_trial_callback=storages.RetryHeartbeatStaleTrialCallback(
                    max_retry=0))
        return storages.RDBStorage(
            url, heartbeat_interval=5, grace_period=20,
            failed_trial_callback=storages.RetryFailedTrialCallback(max_retry=0))


def run_search(task: str, data: Any, *, storage: str, study: str, trials: int,
               valid: Any = None, base: Mapping[str, Any] | None = None,
               space: Mapping[str, Any] | None = None, timeout: float | None = None,
               pruner: str = "median", seed: int = 0, worker: int = 0,
               sampler: str = "tpe", fit_kwargs: Mapping[str, Any] | None = None) -> Any:
    """Add trials to the shared study until it holds ``trials`` finished ones (complete or
    pruned, counted over all workers) or ``timeout`` seconds pass; returns the Optuna study.

    ``worker`` offsets the sampler's seed so that parallel workers explore differently.
    ``sampler`` "tpe" (default) or "random" (the baseline of benchmarks/search.py).
    """
    import optuna
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    clean = check_space(space if space is not None else DEFAULT_SPACES[task], task)
    rdb = _heartbeat_storage(storage)
    prune = (optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)
             if pruner == "median" else optuna.pruners.SuccessiveHalvingPruner())
    if sampler not in ("tpe", "random"):
        raise ValueError(f"search: sampler must be 'tpe' or 'random', got {sampler!r}")
    chosen = (optuna.samplers.TPESampler(seed=seed + 1000 * worker, n_startup_trials=4)
              if sampler == "tpe" else optuna.samplers.RandomSampler(seed=seed + 1000 * worker))
    st = optuna.create_study(storage=rdb, study_name=study, direction="minimize",
                             sampler=chosen, pruner=prune, load_if_exists=True)
    base = dict(base or {})

    def objective(trial: Any) -> float:
        taken = sum(1 for t in st.get_trials(deepcopy=False, states=(
            TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING))
            if t.number < trial.number)
        if taken >= trials:  # other workers hold the whole budget: stop without training
            trial.set_user_attr("over_budget", True)
            st.stop()
            raise _OverBudget(f"the study's {trials} trials are taken by other workers")
        params = _suggest(trial, clean)
        for other in st.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if other.params == params:  # evaluated already (by any worker): no retraining
                trial.set_user_attr("duplicate_of", other.number)
                return float(other.value)
        estimator = estimator_from_params(task, params, base=base)
        scores: list[float] = []

        def on_epoch(epoch: int, row: dict[str, float]) -> None:
            value = _score(task, [row])[0]
            scores.append(value)
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch}")

        estimator._epoch_callback = on_epoch
        estimator.fit(data, valid, **dict(fit_kwargs or {}))
        best = min(_score(task, estimator.history_))
        trial.set_user_attr("epochs", len(estimator.history_))
        return best

    finished = (TrialState.COMPLETE, TrialState.PRUNED)
    if len(st.get_trials(deepcopy=False, states=finished)) >= trials:
        return st  # a finished study: nothing to add
    st.optimize(objective, timeout=timeout, gc_after_trial=True,
                callbacks=[MaxTrialsCallback(trials, states=finished)],
                catch=(FloatingPointError, _OverBudget))
    return st


class _OverBudget(Exception):
    """A trial started when trials finished or running elsewhere already fill the budget
    (two workers asking at once): it is marked failed and its worker stops, so that the
    study ends with exactly the asked number of finished trials."""


def study_summary(study: Any, top: int = 10) -> dict[str, Any]:
    """Best value and parameters, counts by state, and the ``top`` best trials."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    done = sorted((t for t in trials if t.state == TrialState.COMPLETE),
                  key=lambda t: t.value)
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    return {"study": study.study_name, "counts": counts,
            "best_value": done[0].value if done else None,
            "best_params": done[0].params if done else None,
            "best_trial": done[0].number if done else None,
            "top": [{"number": t.number, "value": t.value, "params": t.params,
                     "epochs": t.user_attrs.get("epochs")} for t in done[:top]]}


def default_storage(output: str | os.PathLike) -> str:
    """A SQLite URL beside the output folder: ``sqlite:///<output>.study.db``."""
    return f"sqlite:///{Path(output).resolve()}.study.db"
