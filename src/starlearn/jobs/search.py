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

Every parameter of a space is checked against the values its network and the trainer
accept (:func:`check_space`: dropout in [0, 1), learning rate > 0, integer sizes >= 1 ...)
before any trial runs. A storage URL may carry a password (``postgresql://user:pw@host/db``):
:func:`mask_storage` hides it for anything written or printed, :func:`check_storage`
refuses a masked URL and names the missing database driver (and what to install) instead
of failing inside SQLAlchemy.

Optuna (with SQLAlchemy, which it brings) is the optional extra ``starlearn[search]``; a
PostgreSQL storage also needs its driver, ``psycopg2-binary`` (``starlearn[search-postgres]``
has both). Without them the search functions raise
:class:`~starlearn.errors.MissingExtraError` naming the extra.
"""

from __future__ import annotations

import copy
import json
import math
import numbers
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlearn._extras import require

__all__ = [
    "DEFAULT_SPACES",
    "STORAGE_ENV",
    "TASKS",
    "SearchJob",
    "check_space",
    "check_storage",
    "default_storage",
    "estimator_from_params",
    "load_space",
    "mask_storage",
    "open_storage",
    "resolve_storage",
    "run_search",
    "run_search_job",
    "search_report",
    "storage_is_masked",
    "study_summary",
]

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


SCHEDULERS = ("cosine", "plateau", "none")  # the schedules starlearn.train.Trainer knows


@dataclass(frozen=True)
class _Limit:
    """The values a numeric parameter accepts: ``low`` <= value (< ``low`` excluded when
    ``low_open``) and value <= ``high`` (< when ``high_open``); integers only when
    ``integer``, odd ones only when ``odd``."""

    integer: bool
    low: float
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    odd: bool = False

    def allows(self, value: Any) -> bool:
        """Whether the single value ``value`` is accepted (an integer parameter takes
        integers, not 32.0: the estimators check the type)."""
        if not _is_number(value) or not math.isfinite(value):
            return False
        if self.integer and not isinstance(value, numbers.Integral):
            return False
        if self.odd and int(value) % 2 == 0:
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def describe(self) -> str:
        """The accepted values in words: "an integer >= 1", "a number in [0, 1)" ..."""
        kind = "an odd integer" if self.odd else "an integer" if self.integer else "a number"
        low = f"{self.low:g}"
        if self.high == math.inf:
            return f"{kind} {'>' if self.low_open else '>='} {low}"
        return (f"{kind} in {'(' if self.low_open else '['}{low}, {self.high:g}"
                f"{')' if self.high_open else ']'}")


_COUNT = _Limit(integer=True, low=1)
_LIMITS: dict[str, _Limit] = {
    "n_conv": _COUNT, "filters": _COUNT, "kernel": _COUNT, "pool": _COUNT,
    "n_dense": _Limit(integer=True, low=0),  # 0: the Gaussian head on the convolutions
    "dense": _COUNT, "latent": _COUNT, "width": _COUNT, "n_blocks": _COUNT,
    "batch_size": _COUNT, "patience": _COUNT,
    "dropout": _Limit(integer=False, low=0.0, high=1.0, high_open=True),
    "lr": _Limit(integer=False, low=0.0, low_open=True),
    "weight_decay": _Limit(integer=False, low=0.0),
}
"""Value limits of the numeric parameters (what the networks and the trainer accept)."""

_ODD_KERNEL = _Limit(integer=True, low=1, odd=True)  # VGG1D pads a kernel symmetrically


def _limit(name: str, task: str) -> _Limit:
    return _ODD_KERNEL if (task, name) == ("classify", "kernel") else _LIMITS[name]


def _named_choices() -> dict[str, tuple[str, ...]]:
    """The choices the trainer and the networks support, per categorical parameter."""
    from starlearn.models.layers import ACTIVATIONS
    from starlearn.train.trainer import OPTIMIZERS

    return {"optimizer": tuple(OPTIMIZERS), "scheduler": SCHEDULERS,
            "activation": tuple(ACTIVATIONS)}


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_keys(name: str, spec: Mapping[str, Any], allowed: Sequence[str]) -> None:
    extra = sorted(set(spec) - set(allowed))
    if extra:
        raise ValueError(f"search space: '{name}' has unknown keys {extra}; a "
                         f"{spec['type']} parameter takes {list(allowed)}")


def _check_categorical(name: str, spec: Mapping[str, Any], task: str) -> dict[str, Any]:
    _check_keys(name, spec, ("type", "choices"))
    raw = spec.get("choices", [])
    choices = [raw] if isinstance(raw, (str, bytes)) else list(raw)
    if not choices:
        raise ValueError(f"search space: '{name}' has no choices")
    named = _named_choices().get(name)
    if named is not None:
        bad = [c for c in choices if c not in named]
        if bad:
            raise ValueError(f"search space: '{name}' choices {bad} are not supported "
                             f"(supported: {list(named)})")
    else:
        limit = _limit(name, task)
        bad = [c for c in choices if not limit.allows(c)]
        if bad:
            raise ValueError(f"search space: '{name}' choices {bad} are out of its limits: "
                             f"{name} must be {limit.describe()}")
    return {"type": "categorical", "choices": choices}


def _check_range(name: str, spec: Mapping[str, Any], task: str) -> dict[str, Any]:
    kind = spec["type"]
    _check_keys(name, spec, ("type", "low", "high", "log"))
    if name in _named_choices():
        raise ValueError(f"search space: '{name}' must be categorical (a list of 'choices'), "
                         f"got type '{kind}'")
    low, high, log = spec.get("low"), spec.get("high"), spec.get("log", False)
    if not (_is_number(low) and _is_number(high)):
        raise ValueError(f"search space: '{name}' needs numeric 'low' and 'high', got "
                         f"low={low!r}, high={high!r}")
    if not (math.isfinite(low) and math.isfinite(high)) or not low < high:
        raise ValueError(f"search space: '{name}' has an empty range [{low}, {high}]")
    if not isinstance(log, bool):
        raise ValueError(f"search space: '{name}': 'log' must be true or false, got {log!r}")
    limit = _limit(name, task)
    if kind == "int":
        if not (low == int(low) and high == int(high)):
            raise ValueError(f"search space: '{name}' is an int parameter; 'low' and "
                             f"'high' must be integers, got [{low}, {high}]")
        low, high = int(low), int(high)
    elif limit.integer:
        raise ValueError(f"search space: '{name}' takes integers only; use type 'int' (or "
                         "'categorical'), not 'float'")
    if limit.odd:
        raise ValueError(f"search space: '{name}' of task '{task}' must be odd, which a "
                         f"range [{low}, {high}] is not; use categorical odd choices, "
                         "e.g. [3, 5, 7]")
    if not (limit.allows(low) and limit.allows(high)):
        raise ValueError(f"search space: '{name}' range [{low}, {high}] is out of its "
                         f"limits: {name} must be {limit.describe()}")
    if log and low <= 0:
        raise ValueError(f"search space: '{name}' is log-scaled, so 'low' must be > 0, "
                         f"got {low}")
    if kind == "float":
        low, high = float(low), float(high)
    return {"type": kind, "low": low, "high": high, "log": log}


def check_space(space: Mapping[str, Any], task: str) -> dict[str, dict[str, Any]]:
    """Validate a space; returns a clean copy.

    Each parameter must be one the task's space knows, given as a table with a ``type``
    and the keys of that type, and every value it can take must be accepted by the
    network or the trainer (dropout in [0, 1), ``lr`` > 0, ``weight_decay`` >= 0, sizes,
    counts, ``batch_size`` and ``patience`` integers >= 1, ``n_dense`` >= 0, the
    classifier's ``kernel`` odd, known optimisers, schedules and activations). Raises
    ValueError naming the parameter, the values given and the values allowed, before any
    training.
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
            out[name] = _check_categorical(name, spec, task)
        elif kind in ("int", "float"):
            out[name] = _check_range(name, spec, task)
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


STORAGE_ENV = "STARLEARN_STORAGE"
"""Environment variable holding the storage URL (with its password) for the command line:
helper workers get the URL from it, never from their command line."""

_MASK = "***"  # what SQLAlchemy renders in place of a hidden password

_DRIVER_PACKAGES = {"psycopg2": "psycopg2-binary", "psycopg": "psycopg[binary]",
                    "pg8000": "pg8000", "asyncpg": "asyncpg", "MySQLdb": "mysqlclient",
                    "pymysql": "PyMySQL", "mysql": "mysql-connector-python",
                    "mariadb": "mariadb", "oracledb": "oracledb", "cx_Oracle": "cx_Oracle",
                    "pyodbc": "pyodbc", "pymssql": "pymssql"}
"""pip package of the database driver modules SQLAlchemy imports."""


def mask_storage(url: str) -> str:
    """``url`` with its password replaced by ``***`` (SQLAlchemy's rendering), for
    anything written to a file or printed; a URL without a password (SQLite) is returned
    unchanged. Text that is no URL still has a ``scheme://user:password@`` part masked."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError, TypeError):
        return re.sub(r"(://[^:/@]*:)[^@/]*@", rf"\g<1>{_MASK}@", str(url))
    if parsed.password is None:
        return url
    return parsed.render_as_string(hide_password=True)


def storage_is_masked(url: str) -> bool:
    """Whether ``url`` carries a masked password (``***``, as study.json stores it)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).password == _MASK
    except (ArgumentError, ValueError, TypeError):
        return False


def _driver_problem(url: str) -> str | None:
    """Why the database driver of ``url`` cannot be loaded (None if it can)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import NoSuchModuleError

    parsed = make_url(url)
    try:
        dialect = parsed.get_dialect()
        load = getattr(dialect, "import_dbapi", None) or dialect.dbapi  # SQLAlchemy 1.4
        load()
    except NoSuchModuleError:
        return (f"SQLAlchemy knows no database kind '{parsed.drivername}' (e.g. sqlite, "
                "postgresql+psycopg2, mysql+pymysql)")
    except ImportError as err:
        module = err.name or str(err)
        package = _DRIVER_PACKAGES.get(module.split(".")[0], module.split(".")[0])
        extra = ("; pip install 'starlearn[search-postgres]' installs it too"
                 if package == "psycopg2-binary" else "")
        return (f"its database driver, the Python module '{module}', is not installed; "
                f"install it with: pip install \"{package}\" (or name an installed driver "
                f"in the URL: dialect+driver://..., e.g. postgresql+psycopg2://...){extra}")
    return None


def check_storage(url: str) -> None:
    """Refuse, with a ValueError naming the URL (password masked), a storage URL that
    cannot be opened for a reason of its own: not a database URL, a masked password, a
    database driver that is not installed (with the package to pip install)."""
    require("sqlalchemy", extra="search", what="a search storage URL")
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    shown = mask_storage(url)
    try:
        make_url(url)
    except (ArgumentError, ValueError, TypeError):
        raise ValueError(f"storage {shown!r}: not a database URL; use sqlite:///file.db or "
                         "postgresql+psycopg2://user@host/db") from None
    if storage_is_masked(url):
        raise ValueError(f"storage {shown!r}: the password is masked ('{_MASK}', as "
                         "study.json stores it); give the full URL, with its password")
    problem = _driver_problem(url)
    if problem is not None:
        raise ValueError(f"storage {shown!r}: {problem}")


def open_storage(url: str, *, heartbeat: bool = True) -> Any:
    """The Optuna RDBStorage of ``url``, checked first (:func:`check_storage`); a database
    that refuses the connection is a ValueError naming the masked URL.

    With ``heartbeat`` (5 s), a trial whose worker died (no beat for 20 s) is marked failed
    and not retried. Optuna 4.9 renamed the callback argument and class
    (``failed_trial_callback``/``RetryFailedTrialCallback`` are deprecated); both spellings
    are supported. The heartbeat is an Optuna "experimental" feature: its warning is muted."""
    import warnings

    require("optuna", extra="search", what="an Optuna storage")
    import optuna.storages as storages
    from optuna.exceptions import ExperimentalWarning
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    check_storage(url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        kwargs: dict[str, Any] = {}
        if heartbeat and hasattr(storages, "RetryHeartbeatStaleTrialCallback"):
            kwargs = {"heartbeat_interval": 5, "grace_period": 20,
                      "heartbeat_stale_trial_callback":
                          storages.RetryHeartbeatStaleTrialCallback(max_retry=0)}
        elif heartbeat:
            kwargs = {"heartbeat_interval": 5, "grace_period": 20,
                      "failed_trial_callback": storages.RetryFailedTrialCallback(max_retry=0)}
        try:
            return storages.RDBStorage(url, **kwargs)
        except OperationalError as err:
            reason = str(err.orig if err.orig is not None else err).strip().splitlines()[0]
            password = make_url(url).password
            if password:  # drivers do not echo it, but never risk it
                reason = reason.replace(str(password), _MASK)
            raise ValueError(f"storage {mask_storage(url)!r}: cannot open the database "
                             f"({reason})") from None


def run_search(task: str, data: Any, *, storage: str, study: str, trials: int,
               valid: Any = None, base: Mapping[str, Any] | None = None,
               space: Mapping[str, Any] | None = None, timeout: float | None = None,
               pruner: str = "median", seed: int = 0, worker: int = 0,
               sampler: str = "tpe", fit_kwargs: Mapping[str, Any] | None = None) -> Any:
    """Add trials to the shared study until it holds ``trials`` finished ones (complete or
    pruned, counted over all workers) or ``timeout`` seconds pass; returns the Optuna study.

    ``storage`` is an RDB URL with its password, if any (:func:`open_storage`; a masked
    one or a missing database driver is a ValueError). ``space`` is checked
    (:func:`check_space`) before the storage is opened.
    ``worker`` offsets the sampler's seed so that parallel workers explore differently.
    ``sampler`` "tpe" (default) or "random" (the baseline of benchmarks/search.py).
    """
    require("optuna", extra="search", what="starlearn search")
    import optuna
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    clean = check_space(space if space is not None else DEFAULT_SPACES[task], task)
    rdb = open_storage(storage)
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

        def report(epoch: int, row: dict[str, float]) -> None:
            value = _score(task, [row])[0]
            scores.append(value)
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch}")

        estimator.fit(data, valid, callbacks=[report], **dict(fit_kwargs or {}))
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


# ---------------------------------------------------------------------- the search job
def resolve_storage(given: str | None, output: str | os.PathLike | None) -> str:
    """The storage URL to open: ``given`` (``--storage``), else ``$STARLEARN_STORAGE``, else
    the SQLite file beside ``output``. A masked ``given`` (from study.json) is replaced by
    ``$STARLEARN_STORAGE`` when that is the same URL with its password; otherwise it is a
    ValueError saying to pass the full URL."""
    env = os.environ.get(STORAGE_ENV) or None
    if given is None:
        if env is not None:
            return env
        if output is None:
            raise ValueError(f"no storage: pass --storage or set {STORAGE_ENV}")
        return default_storage(output)
    if not storage_is_masked(given):
        return given
    if env is not None and not storage_is_masked(env) and mask_storage(env) == given:
        return env
    other = ("" if env is None else f" ({STORAGE_ENV} is masked too)"
             if storage_is_masked(env) else
             f" ({STORAGE_ENV} holds another URL, {mask_storage(env)!r})")
    raise ValueError(f"storage {given!r}: the password is masked ('***', as study.json "
                     f"stores it), so it cannot be used to connect{other}; pass the full "
                     f"URL with --storage, or set {STORAGE_ENV} to it")


def _base_settings(task: str, labels: Sequence[str] | None, classes: Sequence[str] | None,
                   max_epochs: int, seed: int) -> dict[str, Any]:
    base: dict[str, Any] = {"epochs": max_epochs, "seed": seed, "progress": False}
    if task == "regress":
        base["labels"] = list(labels) if labels else None
    elif task == "classify":
        from starlearn.preprocess import LineWindow

        base["classes"] = list(classes) if classes else None
        base["preprocess"] = LineWindow(on_missing="mask")
    return base


@dataclass
class SearchJob:
    """One search: its data, space, budget and where the result goes (the arguments of
    ``starlearn search``). ``storage=None``: ``$STARLEARN_STORAGE`` or the SQLite file
    beside ``output``; ``study=None``: the name of ``output``."""

    task: str
    data: str
    output: str
    valid: str | None = None
    labels: list[str] | None = None
    classes: list[str] | None = None
    trials: int = 20
    timeout: float | None = None
    storage: str | None = None
    study: str | None = None
    space_file: str | None = None
    workers: int = 1
    max_epochs: int = 10
    pruner: str = "median"
    seed: int = 0

    def to_helper_file(self, path: Path) -> None:
        """The job as a helper worker reads it (JSON, **without** the storage URL, which
        may hold a password: the helper gets it from ``$STARLEARN_STORAGE``)."""
        record = {k: v for k, v in self.__dict__.items() if k != "storage"}
        path.write_text(json.dumps(record))


def _helper_command(job_file: Path, worker_index: int) -> list[str]:
    """Command line of helper worker ``worker_index``: the job file and the index, no
    storage (the URL may hold a password, and command lines are public)."""
    return [sys.executable, "-m", "starlearn.jobs.search", "--job", str(job_file),
            "--worker-index", str(worker_index)]


def _helper_env(storage: str) -> dict[str, str]:
    """Environment of a helper worker: the storage URL in ``STARLEARN_STORAGE``, one
    OpenMP thread."""
    return {**os.environ, STORAGE_ENV: storage, "OMP_NUM_THREADS": "1"}


def run_search_job(job: SearchJob, *, worker_index: int = 0, retrain: bool = True,
                   progress: bool = True) -> dict[str, Any]:
    """Run (this process's share of) ``job``: with ``job.workers > 1`` worker 0 starts the
    other workers as helper processes; with ``retrain``, wait for them, retrain the best
    parameters on all the data and save the model in ``job.output`` with ``study.json``
    (storage URL masked). The space and the storage (URL, database driver) are checked
    before any helper starts or any trial runs.

    Returns the study summary (:func:`study_summary`) with ``failed_helpers``,
    ``storage`` (masked) and ``study`` added.

    Raises
    ------
    ValueError
        A bad space or storage, or (with ``retrain``) a study without a completed trial.
    """
    import subprocess
    import tempfile

    from starlearn.jobs.training import save_model

    require("optuna", extra="search", what="starlearn search")
    space = load_space(job.task, job.space_file)
    storage = resolve_storage(job.storage, job.output)
    check_storage(storage)
    study = job.study or Path(job.output).name
    base = _base_settings(job.task, job.labels, job.classes, job.max_epochs, job.seed)
    helpers = []
    with tempfile.TemporaryDirectory(prefix="starlearn-search-") as tmp:
        if worker_index == 0 and job.workers > 1:
            job_file = Path(tmp) / "job.json"
            SearchJob(**{**job.__dict__, "study": study}).to_helper_file(job_file)
            for k in range(1, job.workers):
                helpers.append(subprocess.Popen(_helper_command(job_file, k),
                                                env=_helper_env(storage)))
            import torch

            torch.set_num_threads(max(1, (os.cpu_count() or 1) // job.workers))
        st = run_search(job.task, job.data, storage=storage, study=study, trials=job.trials,
                        valid=job.valid, base=base, space=space, timeout=job.timeout,
                        pruner=job.pruner, seed=job.seed, worker=worker_index)
        failed = sum(h.wait() != 0 for h in helpers)
    summary = {**study_summary(st), "failed_helpers": failed, "study": study,
               "storage": mask_storage(storage)}
    if not retrain:
        return summary
    if summary["best_params"] is None:
        raise ValueError(f"study '{study}' has no completed trial")
    estimator = estimator_from_params(job.task, summary["best_params"],
                                      base={**base, "progress": progress})
    estimator.fit(job.data, job.valid)
    output = save_model(estimator, job.output)
    (output / "study.json").write_text(json.dumps(
        {**{k: v for k, v in summary.items() if k != "failed_helpers"}, "space": space},
        indent=1, default=str))
    return summary


def search_report(storage: str, study: str, output: str | os.PathLike) -> dict[str, Any]:
    """Write ``best_trials.csv`` (the 20 best trials), ``history.png`` (value per trial
    and best so far), ``importance.png`` (fANOVA importances) and ``summary.json`` into
    ``output``; returns the summary with ``table`` (astropy Table of the best trials, or
    None) and ``storage`` (masked). ``storage`` may be the masked URL of study.json when
    ``STARLEARN_STORAGE`` holds the full one (:func:`resolve_storage`)."""
    import matplotlib.pyplot as plt
    import numpy as np

    require("optuna", extra="search", what="starlearn search-report")
    import optuna
    from astropy.table import Table
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = resolve_storage(storage, None)
    shown = mask_storage(storage)
    try:
        st = optuna.load_study(study_name=study, storage=open_storage(storage,
                                                                      heartbeat=False))
    except KeyError:
        raise ValueError(f"no study '{study}' in {shown}") from None
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    summary = study_summary(st, top=20)
    rows = [{"trial": t["number"], "value": t["value"], "epochs": t["epochs"],
             **{k: str(v) for k, v in t["params"].items()}} for t in summary["top"]]
    table = None
    if rows:
        table = Table(rows=[[r.get(k) for k in rows[0]] for r in rows], names=list(rows[0]))
        table.write(output / "best_trials.csv", format="ascii.csv", overwrite=True)
    done = [t for t in st.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    fig, ax = plt.subplots(figsize=(6, 4))
    if done:
        numbers = np.array([t.number for t in done])
        values = np.array([t.value for t in done])
        ax.plot(numbers, values, "o", ms=4, label="trial")
        ax.step(numbers, np.minimum.accumulate(values), where="post", label="best so far")
        ax.set_yscale("log" if np.all(values > 0) else "linear")
    ax.set_xlabel("trial")
    ax.set_ylabel("validation score")
    ax.set_title(f"study '{study}': optimisation history", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(output / "history.png", dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    if len(done) >= 3:
        importances = optuna.importance.get_param_importances(st)
        names = list(importances)[::-1]
        ax.barh(names, [importances[n] for n in names])
    ax.set_xlabel("importance (fANOVA)")
    ax.set_title("parameter importance", fontsize=10)
    fig.tight_layout()
    fig.savefig(output / "importance.png", dpi=110)
    plt.close(fig)
    (output / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    return {**summary, "table": table, "storage": shown}


def _helper_main(argv: Sequence[str]) -> None:
    """Entry of a helper worker: ``python -m starlearn.jobs.search --job JOB.json
    --worker-index K`` (the storage from ``$STARLEARN_STORAGE``)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m starlearn.jobs.search")
    parser.add_argument("--job", required=True)
    parser.add_argument("--worker-index", type=int, required=True)
    args = parser.parse_args(list(argv))
    job = SearchJob(**json.loads(Path(args.job).read_text()))
    run_search_job(job, worker_index=args.worker_index, retrain=False, progress=False)


if __name__ == "__main__":
    _helper_main(sys.argv[1:])
