"""``starlearn search`` and ``search-report``: hyper-parameter search (see
:mod:`starlearn.jobs.search`)."""

from __future__ import annotations

from pathlib import Path

import click

from starlearn.cli._group import main
from starlearn.cli._options import split_names

__all__ = ["search", "search_report"]


@main.command()
@click.option("--task", type=click.Choice(["regress", "autoencode", "classify"]),
              default="regress", show_default=True)
@click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="Training data set (.h5).")
@click.option("--valid", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Validation data set (default: a held-out share).")
@click.option("--labels", default=None, help="regress: comma-separated labels.")
@click.option("--classes", default=None, help="classify: comma-separated classes.")
@click.option("--trials", type=int, required=True,
              help="Finished trials wanted in the study (over all workers).")
@click.option("--timeout", type=float, default=None, help="Stop adding trials after S s.")
@click.option("--storage", default=None,
              help="Optuna RDB URL: sqlite:///file.db [default: OUTPUT.study.db] or "
                   "postgresql+psycopg2://user@host/db for many machines.")
@click.option("--study", default=None, help="Study name [OUTPUT's name].")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="Folder for the best model, retrained.")
@click.option("--space", "space_file", type=click.Path(exists=True, dir_okay=False,
                                                       path_type=Path), default=None,
              help="TOML file changing the default search space.")
@click.option("--workers", type=int, default=1, show_default=True,
              help="Local worker processes sharing the study.")
@click.option("--max-epochs", type=int, default=10, show_default=True,
              help="Epoch cap of every trial (and of the retraining).")
@click.option("--pruner", type=click.Choice(["median", "halving"]), default="median",
              show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--worker-index", type=int, default=0, hidden=True)
@click.option("--no-retrain", is_flag=True, hidden=True)
@click.option("--quiet", is_flag=True)
def search(task: str, data: Path, valid: Path | None, labels: str | None, classes: str | None,
           trials: int, timeout: float | None, storage: str | None, study: str | None,
           output: Path, space_file: Path | None, workers: int, max_epochs: int, pruner: str,
           seed: int, worker_index: int, no_retrain: bool, quiet: bool) -> None:
    """Hyper-parameter search (Optuna TPE, pruning) in a study shared through an RDB;
    the best parameters are retrained and saved as a model folder."""
    from starlearn.jobs.search import SearchJob, run_search_job

    if trials < 1 or workers < 1 or max_epochs < 1:
        raise click.UsageError("--trials, --workers and --max-epochs must be at least 1")
    job = SearchJob(task=task, data=str(data), output=str(output),
                    valid=str(valid) if valid else None, labels=split_names(labels),
                    classes=split_names(classes), trials=trials, timeout=timeout,
                    storage=storage, study=study,
                    space_file=str(space_file) if space_file else None, workers=workers,
                    max_epochs=max_epochs, pruner=pruner, seed=seed)
    summary = run_search_job(job, worker_index=worker_index, retrain=not no_retrain,
                             progress=not quiet)
    if summary["failed_helpers"]:
        click.echo(f"warning: {summary['failed_helpers']} helper worker(s) failed; the "
                   "study holds what they finished", err=True)
    if no_retrain:
        return
    click.echo(f"study '{summary['study']}': {summary['counts']}; best validation score "
               f"{summary['best_value']:.5g} (trial {summary['best_trial']})")
    click.echo(f"best parameters {summary['best_params']}")
    click.echo(f"model retrained with them and written to {output} (study.json beside it)")


@main.command("search-report")
@click.option("--storage", required=True, help="Optuna RDB URL of the study.")
@click.option("--study", required=True, help="Study name.")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="Folder for best_trials.csv, history.png, importance.png.")
def search_report(storage: str, study: str, output: Path) -> None:
    """Best trials, optimisation history and parameter importances of a study."""
    import matplotlib

    matplotlib.use("Agg")  # files only: the command has no screen
    from starlearn.jobs.search import search_report as report

    result = report(storage, study, output)
    if result["table"] is not None:
        click.echo(result["table"][:10])
    click.echo(f"study '{study}' in {result['storage']}: {result['counts']}; best "
               f"{result['best_value']} -> {output}")


