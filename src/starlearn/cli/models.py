"""``starlearn predict``, ``evaluate``, ``compare``, ``reconstruct`` and ``export``:
using saved models."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from starlearn._provenance import provenance
from starlearn.cli._group import EXIT_REJECTED, main
from starlearn.cli._options import split_names

__all__ = ["compare", "evaluate", "export", "predict", "reconstruct"]


@main.command()
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output catalogue: .parquet, .fits or .csv.")
@click.option("--format", "fmt", default="auto", show_default=True,
              help="Reader format for spectrum files, or 'auto'.")
@click.option("--engine", type=click.Choice(["auto", "torch", "onnx", "onnx-int8"]),
              default="auto",
              show_default=True, help="Inference backend.")
@click.option("--workers", type=int, default=1, show_default=True,
              help="Worker processes (local, or Dask workers with --scheduler local).")
@click.option("--scheduler", default=None,
              help="Run on Dask: 'local' (a LocalCluster) or a scheduler address "
                   "(tcp://HOST:PORT).")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted run (its OUTPUT.parts folder).")
@click.option("--part-size", type=int, default=500, show_default=True,
              help="Files per part (data sets: 40x as many rows per part).")
@click.option("--keep-parts", is_flag=True,
              help="Keep the OUTPUT.parts folder (plan, manifest, parts) after merging.")
@click.option("--min-usable", type=click.FloatRange(0.0, 1.0), default=None,
              help="Least fraction of the model's pixels a spectrum must have usable to be "
                   "predicted; fewer gives NaN and flag 4 [the model's, 0.5].")
@click.option("--resample", type=click.Choice(["auto", "never", "always"]), default="auto",
              show_default=True,
              help="Inputs on another wavelength grid than the model's: resample them onto "
                   "it (flux-conserving, pixels outside their coverage masked) when they "
                   "cover at least --min-usable of it at no coarser sampling (auto), "
                   "always, or reject them (never).")
@click.option("--strict", is_flag=True,
              help=f"Exit with status {EXIT_REJECTED} when any input was rejected or not "
                   "predicted (the catalogue is still written).")
@click.option("--overwrite", is_flag=True)
@click.option("--quiet", is_flag=True)
def predict(model_dir: Path, inputs: tuple[str, ...], output: Path, fmt: str, engine: str,
            workers: int, scheduler: str | None, resume: bool, part_size: int,
            keep_parts: bool, min_usable: float | None, resample: str, strict: bool,
            overwrite: bool, quiet: bool) -> None:
    """Predict with a saved model for data sets (.h5) or spectrum files (FITS, text).

    INPUTS are files, folders, glob patterns, list files (.lst) or HDF5 data sets. The run
    is split into parts written atomically with a manifest: --resume after a crash or kill
    continues it (with the same model and options only), and the catalogue has each input
    exactly once. Files that cannot be used go to OUTPUT_STEM.rejects.csv with the reason
    and the run goes on; exit status 0, or with --strict 3 when any input was rejected.
    The catalogue (docs/catalogue-format.md) carries the inputs' identifiers and observing
    metadata, units, the model's provenance and the meaning of each flag bit.
    """
    import warnings

    from starlearn.jobs.archive import run_archive

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        summary = run_archive(model_dir, inputs, output, engine=engine, workers=workers,
                              scheduler=scheduler, resume=resume,
                              fmt=None if fmt == "auto" else fmt, files_per_part=part_size,
                              rows_per_part=40 * part_size, min_usable=min_usable,
                              resample=resample, overwrite=overwrite, keep_parts=keep_parts,
                              progress=not quiet, command=sys.argv)
    for warning in caught:  # one line each, not Python's file:line form
        click.echo(f"Warning: {warning.message}", err=True)
    click.echo(str(summary))
    if summary.rejects is not None:
        click.echo(f"rejected inputs and reasons: {summary.rejects}")
    if strict and (summary.rejected or summary.not_predicted):
        click.echo(f"--strict: {summary.rejected} inputs rejected, {summary.not_predicted} "
                   f"not predicted; exit status {EXIT_REJECTED}", err=True)
        sys.exit(EXIT_REJECTED)


@main.command()
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("test", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write every number to this JSON file.")
@click.option("--plots", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for plots (residuals; confusion matrix for classifiers).")
def evaluate(model_dir: Path, test: Path, json_path: Path | None, plots: Path | None) -> None:
    """Evaluate a saved model on a labelled test data set."""
    import json

    from starlearn.estimators import load
    from starlearn.jobs.evaluate import evaluate as run_evaluation

    estimator = load(model_dir)
    result = run_evaluation(estimator, test, plots=plots)
    if result["task"] == "classify":
        from starlearn.evaluate.classification import format_classification

        click.echo(f"{estimator.model} on {result['n']} spectra:")
        click.echo(format_classification(result))
        if plots is not None:
            click.echo(f"confusion matrix plot written to {plots / 'confusion.png'}")
    elif result["task"] == "autoencode":
        click.echo(f"{estimator.model} on {result['n_test']} spectra: reconstruction RMS "
                   f"{result['reconstruction_rms']:.4g} (mean spectrum: "
                   f"{result['mean_spectrum_rms']:.4g}), median reduced chi2 "
                   f"{result['median_chi2']:.3g}, odd {100 * result['odd_fraction']:.1f}%")
        for row in result.get("denoising", []):
            click.echo(f"  denoising at S/N {row['snr']:>4.0f}: gain {row['gain']:.2f} "
                       "(RMS noisy / RMS denoised, against the clean truth)")
    else:
        from starlearn.evaluate.regression import format_table

        click.echo(format_table({estimator.model: result}, result["labels"]))
        _echo_calibration(result)
    if json_path is not None:
        json_path.write_text(json.dumps(result, indent=1))
        click.echo(f"metrics written to {json_path}")


def _echo_calibration(result: dict) -> None:
    for name, c in result["calibration"].items():
        click.echo(f"  calibration {name:>9}: |z|<1 {c['frac_within_1sigma']:.2f} "
                   f"(0.68 ideal), z spread {c['z_spread']:.2f} (1 ideal)")


@main.command()
@click.option("--train", "train_path", type=click.Path(exists=True, dir_okay=False,
                                                       path_type=Path), required=True)
@click.option("--test", "test_path", type=click.Path(exists=True, dir_okay=False,
                                                     path_type=Path), required=True)
@click.option("--labels", default=None, help="Comma-separated labels (default: all).")
@click.option("--models", default="shallow-nn,deep-nn,shallow-cnn,starnet,deep-cnn,cannon",
              show_default=True)
@click.option("--epochs", type=int, default=None, help="Maximum epochs per network [60].")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quiet", is_flag=True)
def compare(train_path: Path, test_path: Path, labels: str | None, models: str,
            epochs: int | None, json_path: Path | None, seed: int, quiet: bool) -> None:
    """Train several models on the same data and print the architecture table."""
    import json

    from starlearn.evaluate.regression import format_table
    from starlearn.jobs.compare import compare_models

    label_list = split_names(labels)
    results = compare_models(models.split(","), train_path, test_path, labels=label_list,
                             epochs=epochs, seed=seed, progress=not quiet)
    names = next(iter(results.values()))["labels"]
    click.echo(format_table(results, names, timing=True))
    if json_path is not None:
        json_path.write_text(json.dumps(results, indent=1))


@main.command()
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="Output data set (.h5) of reconstructed/denoised spectra.")
@click.option("--table", "table_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Score table (id, chi2, density, odd, latents) "
                                 "[OUTPUT with .csv].")
@click.option("--overwrite", is_flag=True)
@click.option("--quiet", is_flag=True)
def reconstruct(model_dir: Path, inputs: tuple[str, ...], output: Path,
                table_path: Path | None, overwrite: bool, quiet: bool) -> None:
    """Reconstruct (or denoise) spectra with a saved autoencoder; score odd spectra."""
    from starlearn.estimators import Autoencoder, load
    from starlearn.io import ReadError, read_many
    from starlearn.spectra import SpectrumSet

    estimator = load(model_dir)
    if not isinstance(estimator, Autoencoder):
        raise click.UsageError(f"{model_dir} is not an autoencoder")
    groups, rejects = read_many(inputs, progress=not quiet)
    if not groups:
        raise ReadError(", ".join(inputs)[:200], "no spectrum could be read")
    spectra = SpectrumSet.concat(groups)
    recon = estimator.reconstruct(spectra)
    scores = estimator.score(spectra)
    for name in ("chi2", "density", "odd"):
        recon.meta[name] = scores[name]
    recon.write(output, overwrite=overwrite,
                provenance=provenance(command=sys.argv, model=str(model_dir)))
    table_path = table_path or output.with_suffix(".csv")
    scores.write(table_path, overwrite=True)
    click.echo(f"{len(recon)} spectra reconstructed to {output}; scores in {table_path} "
               f"({int(scores['odd'].sum())} odd, {len(rejects)} files rejected)")


@main.command()
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--onnx", "to_onnx", is_flag=True, required=True,
              help="Write model.onnx (ONNX Runtime) into the model folder.")
@click.option("--int8", is_flag=True,
              help="Also write model.int8.onnx, quantised to int8 (engine onnx-int8).")
@click.option("--calibration", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="--int8: spectra (.h5) to calibrate the quantisation on.")
@click.option("--n-calibration", type=int, default=512, show_default=True)
def export(model_dir: Path, to_onnx: bool, int8: bool, calibration: Path | None,
           n_calibration: int) -> None:
    """Export a saved model's network (ONNX), checked against torch to 1e-4."""
    from starlearn.estimators import load

    if int8 and calibration is None:
        raise click.UsageError("--int8 needs --calibration DATA.h5 (representative spectra)")
    estimator = load(model_dir)
    try:
        out = estimator.export_onnx(model_dir, int8_calibration=calibration if int8 else None,
                                    n_calibration=n_calibration)
    except NotImplementedError as err:
        raise click.UsageError(f"{type(estimator).__name__} models have no ONNX export "
                               f"({err})") from None
    click.echo(f"{out['onnx']} written ({out['onnx'].stat().st_size / 1e6:.1f} MB); it "
               "matches the torch network to 1e-4 and is used by predict's onnx engine")
    if "int8" in out:
        click.echo(f"{out['int8']} written (int8; largest output difference on the "
                   f"calibration spectra {out['int8_max_diff']:.3g}); use --engine onnx-int8")


