"""``starlearn latent-map``, ``saliency`` and ``demo``: looking inside models."""

from __future__ import annotations

from pathlib import Path

import click

from starlearn.cli._group import main

__all__ = ["demo", "latent_map", "saliency"]


@main.command("latent-map")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("data", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--color", default="teff", show_default=True,
              help="Label or meta column to colour by.")
@click.option("--method", type=click.Choice(["tsne", "pca"]), default="tsne",
              show_default=True)
@click.option("--n", "n", type=int, default=3000, show_default=True,
              help="Spectra to map.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="PNG to write.")
def latent_map(model_dir: Path, data: Path, color: str, method: str, n: int,
               output: Path) -> None:
    """2-D map (t-SNE or PCA) of an autoencoder's latent space, coloured by a label."""
    import numpy as np

    from starlearn.estimators import load
    from starlearn.evaluate.autoencoder import latent_map as make_map
    from starlearn.io import open_dataset

    estimator = load(model_dir)
    with open_dataset(data) as store:
        spectra = store.read(slice(0, min(n, len(store))))
    if color in spectra.label_names:
        values = spectra.label(color)
    elif color in spectra.meta.colnames:
        values = np.asarray(spectra.meta[color], dtype=float)
    else:
        raise click.BadParameter(f"'{color}' is neither a label {spectra.label_names} nor a "
                                 f"meta column {spectra.meta.colnames}", param_hint="--color")
    make_map(estimator.encode(spectra), values, output, label=color, method=method)
    click.echo(f"latent map of {len(spectra)} spectra written to {output}")


@main.command()
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("data", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="PNG to write.")
@click.option("--n", "n", type=int, default=500, show_default=True,
              help="Spectra to average over.")
def saliency(model_dir: Path, data: Path, output: Path, n: int) -> None:
    """Plot where in the spectrum a model looks for each label (PNG)."""
    import numpy as np

    from starlearn.estimators import load
    from starlearn.evaluate.plots import plot_saliency
    from starlearn.evaluate.saliency import saliency as compute
    from starlearn.io import open_dataset

    estimator = load(model_dir)
    with open_dataset(data) as store:
        spectra = store.read(slice(0, min(n, len(store))))
    sal = compute(estimator, spectra)
    model_input = spectra if estimator.preprocess is None else \
        estimator.preprocess.transform(spectra)
    plot_saliency(estimator.wave_, sal, estimator.label_names_, output,
                  mean_spectrum=model_input.mean_flux())
    np.save(output.with_suffix(".npy"), sal)
    click.echo(f"saliency of {len(spectra)} spectra written to {output} (array: "
               f"{output.with_suffix('.npy')})")


@main.command()
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              default=Path("starlearn-demo"), show_default=True, help="Output folder.")
@click.option("--quick", is_flag=True, help="A one-minute version (used by the tests).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def demo(output: Path, quick: bool, seed: int, quiet: bool) -> None:
    """Run the built-in demonstration on synthetic APOGEE-like spectra (no download)."""
    from starlearn.jobs.demo import run_demo

    run_demo(output, quick=quick, seed=seed, progress=not quiet, echo=click.echo)


