"""``starlearn report``: one self-contained HTML page for a training or prediction run."""

from __future__ import annotations

from pathlib import Path

import click

from starlearn.cli._group import main

__all__ = ["report"]


@main.command()
@click.argument("source", metavar="RUN_OR_MODEL",
                type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="HTML page to write.")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
def report(source: Path, output: Path, overwrite: bool) -> None:
    """Write one self-contained HTML page about a model folder or a run.

    RUN_OR_MODEL is a model folder (starlearn train), an evaluation folder or JSON file
    (starlearn evaluate --plots/--json), a prediction catalogue, its .parts folder or the
    folder holding them (starlearn predict), or a demo folder (starlearn demo). The page
    shows the configuration and provenance, the metrics tables, the training curve, every
    PNG plot of the folder, the calibration and flags, and the data the run saw; images
    are embedded, nothing is loaded from elsewhere and it needs no JavaScript.
    """
    from starlearn.jobs.report import write_report

    path = write_report(source, output, overwrite=overwrite)
    click.echo(f"report of {source} written to {path} ({path.stat().st_size / 1e3:.0f} kB)")
