"""``starlearn search`` and ``starlearn search-report`` (kept out of cli.py).

The storage URL may carry a database password. It is written (study.json) and printed
with the password masked (``postgresql://user:***@host/db``), and the helper workers get
it from the environment variable ``STARLEARN_STORAGE``, never from their command line
(which any user of the machine can read). ``STARLEARN_STORAGE`` also serves the user: it is
the storage when ``--storage`` is not given, and the full URL behind a masked
``--storage`` copied from study.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

__all__ = ["run_search_command", "search_report"]


def _base_settings(task: str, labels: str | None, classes: str | None, max_epochs: int,
                   seed: int) -> dict[str, Any]:
    base: dict[str, Any] = {"epochs": max_epochs, "seed": seed, "progress": False}
    if task == "regress":
        base["labels"] = labels.split(",") if labels else None
    elif task == "classify":
        from starlearn.preprocess import LineWindow

        base["classes"] = classes.split(",") if classes else None
        base["preprocess"] = LineWindow(on_missing="mask")
    return base


def _resolve_storage(given: str | None, output: Path | None) -> str:
    """The storage URL to open: ``given`` (``--storage``), else ``$STARLEARN_STORAGE``, else
    the SQLite file beside ``output``. A masked ``given`` (from study.json) is replaced by
    ``$STARLEARN_STORAGE`` when that is the same URL with its password; otherwise it is a
    ValueError saying to pass the full URL."""
    from starlearn.train.search import (
        STORAGE_ENV,
        default_storage,
        mask_storage,
        storage_is_masked,
    )

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


def _helper_command(*, task: str, data: Path, valid: Path | None, labels: str | None,
                    classes: str | None, trials: int, timeout: float | None, study: str,
                    output: Path, space_file: Path | None, max_epochs: int, pruner: str,
                    seed: int, worker_index: int) -> list[str]:
    """Command line of helper worker ``worker_index``: no storage on it (the URL may hold
    a password, and command lines are public); :func:`_helper_env` passes it."""
    cmd = [sys.executable, "-m", "starlearn.cli", "search", "--task", task,
           "--data", str(data), "--trials", str(trials), "--study", study,
           "-o", str(output), "--max-epochs", str(max_epochs), "--pruner", pruner,
           "--seed", str(seed), "--worker-index", str(worker_index), "--no-retrain",
           "--quiet"]
    for flag, value in (("--valid", valid), ("--labels", labels), ("--classes", classes),
                        ("--timeout", timeout), ("--space", space_file)):
        if value is not None:
            cmd += [flag, str(value)]
    return cmd


def _helper_env(storage: str) -> dict[str, str]:
    """Environment of a helper worker: the storage URL in ``STARLEARN_STORAGE``, one
    OpenMP thread."""
    from starlearn.train.search import STORAGE_ENV

    return {**os.environ, STORAGE_ENV: storage, "OMP_NUM_THREADS": "1"}


def run_search_command(*, task: str, data: Path, valid: Path | None, labels: str | None,
                       classes: str | None, trials: int, timeout: float | None,
                       storage: str | None, study: str | None, output: Path,
                       space_file: Path | None, workers: int, max_epochs: int, pruner: str,
                       seed: int, worker_index: int, retrain: bool, quiet: bool) -> None:
    """Run (this process's share of) a search; with ``retrain``, wait for the helpers,
    retrain the best parameters on all the data and save the model with the summary.

    The space and the storage (URL, database driver) are checked before any helper starts
    or any trial runs; study.json holds the storage URL with its password masked."""
    from starlearn.train.search import (
        check_storage,
        estimator_from_params,
        load_space,
        mask_storage,
        run_search,
        study_summary,
    )

    try:
        space = load_space(task, space_file)
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    storage = _resolve_storage(storage, output)
    check_storage(storage)
    study = study or output.name
    base = _base_settings(task, labels, classes, max_epochs, seed)
    helpers = []
    if worker_index == 0 and workers > 1:
        for k in range(1, workers):
            cmd = _helper_command(task=task, data=data, valid=valid, labels=labels,
                                  classes=classes, trials=trials, timeout=timeout,
                                  study=study, output=output, space_file=space_file,
                                  max_epochs=max_epochs, pruner=pruner, seed=seed,
                                  worker_index=k)
            helpers.append(subprocess.Popen(cmd, env=_helper_env(storage)))
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
    st = run_search(task, str(data), storage=storage, study=study, trials=trials,
                    valid=str(valid) if valid else None, base=base, space=space,
                    timeout=timeout, pruner=pruner, seed=seed, worker=worker_index)
    failed = [h.args for h in helpers if h.wait() != 0]
    if failed:
        click.echo(f"warning: {len(failed)} helper worker(s) failed; the study holds what "
                   "they finished", err=True)
    if not retrain:
        return
    summary = study_summary(st)
    if summary["best_params"] is None:
        raise click.ClickException(f"study '{study}' has no completed trial")
    click.echo(f"study '{study}': {summary['counts']}; best validation score "
               f"{summary['best_value']:.5g} (trial {summary['best_trial']})")
    estimator = estimator_from_params(task, summary["best_params"],
                                      base={**base, "progress": not quiet})
    estimator.fit(str(data), str(valid) if valid else None)
    from starlearn.cli import save_model

    save_model(estimator, output)
    (output / "study.json").write_text(json.dumps(
        {**summary, "storage": mask_storage(storage), "space": space}, indent=1,
        default=str))
    click.echo(f"best parameters {summary['best_params']}")
    click.echo(f"model retrained with them and written to {output} (study.json beside it)")


def search_report(storage: str, study: str, output: Path) -> None:
    """Best trials table (CSV, printed), optimisation history and importances (PNG).

    ``storage`` may be the masked URL of study.json when ``STARLEARN_STORAGE`` holds the
    full one (:func:`_resolve_storage`); the URL is printed masked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import optuna
    from astropy.table import Table
    from optuna.trial import TrialState

    from starlearn.train.search import mask_storage, open_storage, study_summary

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = _resolve_storage(storage, None)
    shown = mask_storage(storage)
    try:
        st = optuna.load_study(study_name=study, storage=open_storage(storage,
                                                                      heartbeat=False))
    except KeyError:
        raise click.UsageError(f"no study '{study}' in {shown}") from None
    output.mkdir(parents=True, exist_ok=True)
    summary = study_summary(st, top=20)
    rows = [{"trial": t["number"], "value": t["value"], "epochs": t["epochs"],
             **{k: str(v) for k, v in t["params"].items()}} for t in summary["top"]]
    if rows:
        table = Table(rows=[[r.get(k) for k in rows[0]] for r in rows], names=list(rows[0]))
        table.write(output / "best_trials.csv", format="ascii.csv", overwrite=True)
        click.echo(table[:10])
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
    click.echo(f"study '{study}' in {shown}: {summary['counts']}; best "
               f"{summary['best_value']} -> {output}")
