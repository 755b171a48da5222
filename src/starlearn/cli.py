"""The ``starlearn`` command: thin verbs over the library (parse, call, print)."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import Any

import click

from starlearn._provenance import provenance

__all__ = ["EXIT_REJECTED", "main"]


EXIT_REJECTED = 3
"""Exit status of ``predict --strict`` when some inputs were rejected or not predicted."""


def parse_range(text: str | None, *, name: str) -> float | tuple[float, float] | None:
    """Parse ``"LO:HI"`` into a tuple, ``"X"`` into a float, ``"none"``/``"inf"`` into None."""
    if text is None or text.lower() in ("none", "inf", "noiseless"):
        return None
    try:
        if ":" in text:
            lo, hi = (float(x) for x in text.split(":"))
            if lo > hi:
                raise ValueError
            return (lo, hi)
        return float(text)
    except ValueError:
        raise click.BadParameter(f"expected a number or LO:HI with LO <= HI, got '{text}'",
                                 param_hint=name) from None


class _Main(click.Group):
    """The command group: a problem with the user's input (a file that cannot be read, a
    model of another grid, a checkpoint of another training, an archive run in which
    nothing could be predicted ... raised with the file and the reason) is printed as
    ``Error: <reason>`` with exit status 1 instead of a traceback; STARLEARN_DEBUG=1
    shows the traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as err:
            from starlearn.errors import NothingPredictedError

            if os.environ.get("STARLEARN_DEBUG") or (
                    isinstance(err, RuntimeError) and not isinstance(err, NothingPredictedError)):
                raise
            raise click.ClickException(str(err)) from err
        except OSError as err:  # a full or read-only disk, a folder without permission
            if os.environ.get("STARLEARN_DEBUG"):
                raise
            raise click.ClickException(describe_os_error(err)) from err


_DISK_HINTS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
               errno.EROFS: "the file system is read-only",
               errno.EACCES: "no permission to write there",
               errno.EPERM: "no permission to write there"}


def describe_os_error(err: OSError) -> str:
    """``<file>: <what the system said> (<what it means>)``; nothing of the run that
    failed is left under a final name (outputs are written whole or not at all)."""
    where = err.filename or "a file"
    what = err.strerror or str(err)
    hint = _DISK_HINTS.get(err.errno or 0)
    if hint is None:
        text = str(err).lower()
        hint = next((h for key, h in (("no space", _DISK_HINTS[errno.ENOSPC]),
                                      ("read-only", _DISK_HINTS[errno.EROFS]),
                                      ("permission", _DISK_HINTS[errno.EACCES])) if key in text),
                    None)
    return f"{where}: {what}" + (f" ({hint}; nothing was written under the final name)"
                                 if hint else "")


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="starlearn")
def main() -> None:
    """starlearn: deep learning on stellar spectra (regression, autoencoders, classification).

    Data sets are HDF5 files in the starlearn data-set format (docs/dataset-format.md).
    """


@main.command()
@click.argument("survey", type=click.Choice(
    ["apogee", "lamost", "segue", "pfs-mr", "ondrejov-halpha"]))
@click.option("--n", "n", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Number of spectra.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--snr", default="20:200", show_default=True,
              help="S/N per pixel: LO:HI (log-uniform per spectrum), a number, or 'none' "
                   "for noiseless spectra.")
@click.option("--rv", default=None, help="Radial velocity in km/s: LO:HI or a number "
                                         "(default: rest frame).")
@click.option("--class-fractions", default=None,
              help="For ondrejov-halpha: fractions of absorption,emission,double-peak, "
                   "e.g. 0.45,0.45,0.10.")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output data set (.h5).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def synth(survey: str, n: int, seed: int, snr: str, rv: str | None,
          class_fractions: str | None, jobs: int, output: Path, overwrite: bool,
          quiet: bool) -> None:
    """Generate a synthetic survey of SURVEY-like spectra into an HDF5 data set."""
    from starlearn.synth import generate

    fractions = None
    if class_fractions:
        try:
            fractions = [float(x) for x in class_fractions.split(",")]
        except ValueError:
            raise click.BadParameter(f"expected comma-separated numbers, got "
                                     f"'{class_fractions}'", param_hint="--class-fractions") \
                from None
    if output.exists() and not overwrite:
        raise click.UsageError(f"{output} exists; pass --overwrite to replace it")
    from starlearn._atomic import check_writable
    from starlearn._lock import output_lock
    from starlearn.grid import PRESETS

    check_writable(output, int(1.1 * n * PRESETS[survey].n_pix * 9) + 65536)
    with output_lock(output):
        spectra = generate(survey, n, seed=seed, snr=parse_range(snr, name="--snr"),
                           rv=parse_range(rv, name="--rv"), class_fractions=fractions,
                           n_jobs=jobs, progress=not quiet)
        spectra.write(output, overwrite=overwrite,
                      provenance=provenance(command=sys.argv, survey=survey, n=n, seed=seed,
                                            snr=snr, rv=rv, class_fractions=class_fractions))
    click.echo(f"wrote {len(spectra)} {survey} spectra ({spectra.n_pix} pixels, labels "
               f"{', '.join(spectra.label_names)}) to {output}")


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output data set (.h5).")
@click.option("--format", "fmt", default="auto", show_default=True,
              help="Reader format for every file, or 'auto' to identify each file.")
@click.option("--grid", default=None,
              help="Resample onto a grid preset (apogee, lamost, segue, pfs-mr, "
                   "ondrejov-halpha).")
@click.option("--wave-range", default=None,
              help="Resample onto a log-uniform grid from A to B Angstrom (vacuum), 'A:B'; "
                   "use with --resolution.")
@click.option("--resolution", type=float, default=None,
              help="Resolving power of the --wave-range grid (2 pixels per resolution "
                   "element).")
@click.option("--rest-frame", is_flag=True,
              help="Shift each spectrum to the rest frame by its radial velocity first.")
@click.option("--labels", "catalog", type=click.Path(exists=True, dir_okay=False),
              default=None, help="Label catalogue (FITS, CSV, ECSV or Parquet).")
@click.option("--id-column", default=None, help="Catalogue column matching spectrum ids.")
@click.option("--label-columns", default=None,
              help="Comma-separated catalogue columns to use as labels.")
@click.option("--option", "options", multiple=True,
              help="Reader option KEY=VALUE (e.g. rows=visits), repeatable.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Reader processes.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def ingest(inputs: tuple[str, ...], output: Path, fmt: str, grid: str | None,
           wave_range: str | None, resolution: float | None, rest_frame: bool,
           catalog: str | None, id_column: str | None, label_columns: str | None,
           options: tuple[str, ...], workers: int, overwrite: bool, quiet: bool) -> None:
    """Read survey files (paths, folders, globs or .lst lists) into one HDF5 data set."""
    from starlearn.grid import Grid
    from starlearn.io.ingest import ingest as run_ingest

    if grid is not None and wave_range is not None:
        raise click.UsageError("give --grid or --wave-range, not both")
    target: str | Grid | None = grid
    if wave_range is not None:
        span = parse_range(wave_range, name="--wave-range")
        if not isinstance(span, tuple) or resolution is None:
            raise click.UsageError("--wave-range needs A:B and --resolution")
        target = Grid.log_uniform(span[0], span[1], sampling_r=2 * resolution,
                                  resolution=resolution, name="custom")
    read_options: dict[str, object] = {}
    for item in options:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"expected KEY=VALUE, got '{item}'", param_hint="--option")
        read_options[key] = int(value) if value.lstrip("-").isdigit() else value
    from starlearn._atomic import check_writable
    from starlearn._lock import output_lock

    check_writable(output)
    with output_lock(output):
        report = run_ingest(
            inputs, output, format=None if fmt == "auto" else fmt, grid=target,
            rest_frame=rest_frame, labels=catalog, id_column=id_column,
            label_columns=label_columns.split(",") if label_columns else None,
            workers=workers, overwrite=overwrite, progress=not quiet,
            read_options=read_options,
            provenance=provenance(command=sys.argv, inputs=list(inputs), format=fmt,
                                  grid=grid, wave_range=wave_range, resolution=resolution,
                                  labels=catalog, id_column=id_column,
                                  label_columns=label_columns))
    click.echo(report.summary())
    if report.rejects:
        click.echo(f"  rejects listed in {output}.rejects.csv")
        for path, reason in report.rejects[:10]:
            click.echo(f"    {path}: {reason}")


@main.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def info(path: Path) -> None:
    """Describe a data set (size, grid, labels, classes, metadata columns) or a spectrum
    file of any supported format (format, spectra, wavelengths, medium, labels)."""
    from starlearn.io import describe

    click.echo(describe(path))


def save_model(estimator: object, output: Path) -> None:
    """Write the artifact folder and, for a network with an ONNX export, ``model.onnx``
    beside the weights, so that ``predict`` runs ONNX Runtime from the first spectrum
    (an export that fails leaves a working model that predicts with torch)."""
    import shutil

    from starlearn.infer.engine import onnx_available

    # written whole into a temporary folder, then put in place of any earlier model, so
    # that a failure (a full disk) or a kill never leaves half a model under the name
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        estimator.save(tmp)  # type: ignore[attr-defined]
        if hasattr(estimator, "module_") and onnx_available():
            try:
                estimator.export_onnx(tmp)  # type: ignore[attr-defined]
            except NotImplementedError:
                pass
            except Exception as err:  # the trained model must not be lost
                click.echo(f"warning: ONNX export failed ({type(err).__name__}: {err}); "
                           "predict will use the torch engine", err=True)
        old = output.with_name(f".{output.name}.{os.getpid()}.old")
        if output.exists():
            os.replace(output, old)
        os.replace(tmp, output)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def training_checkpoint(output: Path, resume: bool) -> Path:
    """Where ``train`` keeps its per-epoch checkpoint (``OUTPUT.checkpoint``, beside the
    model folder); one left by an interrupted run is continued with --resume only."""
    path = output.with_name(output.name + ".checkpoint")
    if path.exists() and not resume:
        raise click.UsageError(f"{path} holds an interrupted training: pass --resume to "
                               "continue it, or remove the file to start again")
    return path


def fit_and_save(estimator: Any, output: Path, checkpoint: Path, *args: Any,
                 **kwargs: Any) -> None:
    """Fit with a per-epoch checkpoint, save the model, then drop the checkpoint."""
    estimator.fit(*args, checkpoint=checkpoint, **kwargs)
    save_model(estimator, output)
    checkpoint.unlink(missing_ok=True)


def _load_config_file(path: Path | None) -> dict[str, object]:
    if path is None:
        return {}
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    with open(path, "rb") as f:
        data = tomllib.load(f)
    return {str(k).replace("-", "_"): v for k, v in data.items()}


_TRAIN_DEFAULTS: dict[str, object] = {
    "epochs": 16, "batch_size": 64, "lr": 1e-3, "patience": 8, "scheduler": "cosine",
    "valid_fraction": 0.1, "seed": 0, "device": "auto",
}


@main.command()
@click.option("--task", type=click.Choice(["regress", "autoencode", "classify"]),
              default="regress", show_default=True, help="What to learn.")
@click.option("--model", default=None,
              help="regress: shallow-nn, deep-nn, shallow-cnn, starnet [default], deep-cnn, "
                   "cannon; autoencode: dense-ae [default], conv-ae; classify: vgg1d.")
@click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="Training data set (.h5).")
@click.option("--labels", default=None, help="Comma-separated labels (default: all).")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="Model folder to write.")
@click.option("--valid", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Validation data set (default: hold out --valid-fraction).")
@click.option("--valid-fraction", type=float, default=None, help="Held-out share [0.1].")
@click.option("--epochs", type=int, default=None,
              help="Maximum epochs [regress 16, autoencode 100, classify 40].")
@click.option("--batch-size", type=int, default=None, help="Batch size [64].")
@click.option("--lr", type=float, default=None, help="Adam learning rate [1e-3].")
@click.option("--patience", type=int, default=None, help="Early-stopping patience [8].")
@click.option("--scheduler", type=click.Choice(["plateau", "cosine", "none"]), default=None,
              help="Learning-rate schedule [regress: cosine; others: plateau].")
@click.option("--max-time", type=float, default=None, help="Stop training after N seconds.")
@click.option("--mask-channel", is_flag=True, default=None,
              help="Give the bad-pixel mask to the network.")
@click.option("--augment-noise", type=float, default=None,
              help="Probability of an extra noise draw from the error spectrum [0].")
@click.option("--augment-mask", type=float, default=None,
              help="Fraction of pixels masked at random while training [0].")
@click.option("--augment-rv", type=float, default=None, help="RV jitter in km/s [0].")
@click.option("--mc-samples", type=int, default=None,
              help="Noise draws propagating the error spectrum at prediction [0: the "
                   "network's predicted variance, trained on noisy spectra, carries the "
                   "noise; > 0 only for a model trained on noiseless spectra].")
@click.option("--grid", default=None,
              help="Resample inputs onto this grid preset as part of the model.")
@click.option("--latent", type=int, default=None,
              help="autoencode: latent size [dense-ae 32, conv-ae 16].")
@click.option("--denoise", is_flag=True, default=None,
              help="autoencode: train to remove noise (with --snr: the data are clean and "
                   "noise is added; without: self-supervised on noisy data).")
@click.option("--snr", "snr_range", default=None,
              help="autoencode --denoise: S/N of the added noise, LO:HI or a number.")
@click.option("--variational", is_flag=True, default=None,
              help="autoencode: variational autoencoder.")
@click.option("--classes", default=None,
              help="classify: comma-separated classes in output order (default: all).")
@click.option("--balance", type=click.Choice(["smote", "oversample", "weights", "none"]),
              default=None, help="classify: class-imbalance treatment [none].")
@click.option("--adapt-to", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="classify: unlabelled spectra of the target instrument.")
@click.option("--adapt", type=click.Choice(["blur", "adversarial", "blur+adversarial"]),
              default=None, help="classify: domain adaptation to --adapt-to [blur].")
@click.option("--source-resolution", type=float, default=None,
              help="classify --adapt blur: R of the training spectra (default: from the "
                   "grid preset they are on).")
@click.option("--target-resolution", type=float, default=None,
              help="classify --adapt blur: R of the target spectra (default: from its grid).")
@click.option("--line", default=None,
              help="classify: centre (Å, air) of the window the network reads [6562.8, "
                   "H-alpha]; 'none' for spectra already cut.")
@click.option("--half-width", type=int, default=None,
              help="classify: window pixels on each side of the line [70].")
@click.option("--device", default=None, help="auto, cpu, cuda ... [auto].")
@click.option("--seed", type=int, default=None, help="Random seed [0].")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False,
                                                         path_type=Path), default=None,
              help="TOML file with any of these options (command-line values win).")
@click.option("--resume", is_flag=True,
              help="Continue the training an interrupted run of this command left: its "
                   "state is saved after every epoch in OUTPUT.checkpoint (same data and "
                   "settings; --epochs, --patience and --max-time may change).")
@click.option("--overwrite", is_flag=True,
              help="Replace an existing model folder OUTPUT (it is kept until the new "
                   "model is saved).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def train(task: str, model: str | None, data: Path, labels: str | None, output: Path,
          valid: Path | None, config_file: Path | None, grid: str | None, quiet: bool,
          resume: bool, overwrite: bool,
          latent: int | None, denoise: bool | None, snr_range: str | None,
          variational: bool | None, classes: str | None, balance: str | None,
          adapt_to: Path | None, adapt: str | None, source_resolution: float | None,
          target_resolution: float | None, line: str | None, half_width: int | None,
          **options: object) -> None:
    """Train a model on a data set and save it as a model folder."""
    from starlearn._lock import output_lock

    if output.exists() and not overwrite:
        raise click.UsageError(f"{output} exists; pass --overwrite to replace it (the old "
                               "model stays until the new one is saved)")
    from starlearn._atomic import check_writable

    check_writable(output)
    with output_lock(output):
        _train(task, model, data, labels, output, valid, config_file, grid, quiet, resume,
               latent, denoise, snr_range, variational, classes, balance, adapt_to, adapt,
               source_resolution, target_resolution, line, half_width, **options)


def _train(task: str, model: str | None, data: Path, labels: str | None, output: Path,
           valid: Path | None, config_file: Path | None, grid: str | None, quiet: bool,
           resume: bool, latent: int | None, denoise: bool | None, snr_range: str | None,
           variational: bool | None, classes: str | None, balance: str | None,
           adapt_to: Path | None, adapt: str | None, source_resolution: float | None,
           target_resolution: float | None, line: str | None, half_width: int | None,
           **options: object) -> None:
    from starlearn.estimators import Regressor
    from starlearn.preprocess import Resample

    classify_only = {"--classes": classes, "--balance": balance, "--adapt-to": adapt_to,
                     "--adapt": adapt, "--line": line, "--half-width": half_width}
    used = [k for k, v in classify_only.items() if v is not None]
    if task != "classify" and used:
        raise click.UsageError(f"{', '.join(used)} apply to --task classify only")
    checkpoint = training_checkpoint(output, resume)
    if task == "classify":
        from starlearn._cli_classify import train_classifier

        train_classifier(model or "vgg1d", data, valid, output, config_file, quiet, checkpoint,
                         classes=classes, balance=balance, adapt_to=adapt_to, adapt=adapt,
                         source_resolution=source_resolution,
                         target_resolution=target_resolution, line=line,
                         half_width=half_width,
                         options={k: v for k, v in options.items() if v is not None})
        return
    if task == "autoencode":
        _train_autoencoder(model or "dense-ae", data, valid, output, config_file, grid,
                           latent, bool(denoise), snr_range, bool(variational), quiet,
                           checkpoint, {k: v for k, v in options.items() if v is not None})
        return
    model = model or "starnet"
    settings = {**_TRAIN_DEFAULTS, **_load_config_file(config_file)}
    settings.update({k: v for k, v in options.items() if v is not None})
    grid = grid or settings.pop("grid", None)  # type: ignore[assignment]
    settings.pop("grid", None)
    label_list = labels.split(",") if labels else settings.pop("labels", None)
    settings.pop("labels", None)
    estimator = Regressor(model, label_list, preprocess=Resample(grid=grid) if grid else None,
                          progress=not quiet, **settings)  # type: ignore[arg-type]
    fit_and_save(estimator, output, checkpoint, data, valid)
    _echo_regression_summary(estimator)
    click.echo(f"model written to {output}")


def _train_autoencoder(model: str, data: Path, valid: Path | None, output: Path,
                       config_file: Path | None, grid: str | None, latent: int | None,
                       denoise: bool, snr_range: str | None, variational: bool, quiet: bool,
                       checkpoint: Path, options: dict[str, object]) -> None:
    from starlearn.estimators import Autoencoder
    from starlearn.preprocess import Resample

    settings = {**_load_config_file(config_file), **options}
    for key in ("mc_samples", "augment_noise", "augment_mask", "augment_rv", "mask_channel",
                "labels"):
        settings.pop(key, None)
    if latent is None:
        latent = int(settings.pop("latent", 32 if model == "dense-ae" else 16))
    snr = parse_range(snr_range, name="--snr") if snr_range else settings.pop("snr", None)
    if snr is not None and not denoise:
        raise click.UsageError("--snr is the noise added for --denoise; add --denoise")
    estimator = Autoencoder(model, latent, denoise=denoise, snr=snr, variational=variational,
                            preprocess=Resample(grid=grid) if grid else None,
                            progress=not quiet, **settings)  # type: ignore[arg-type]
    fit_and_save(estimator, output, checkpoint, data, valid)
    mode = {True: "denoising", False: "reconstruction"}[denoise]
    click.echo(f"{model} ({mode}, latent {latent}) trained for {len(estimator.history_)} "
               f"epochs; model written to {output}")


def _echo_regression_summary(estimator: object) -> None:
    metrics = estimator.valid_metrics_  # type: ignore[attr-defined]
    names = estimator.label_names_  # type: ignore[attr-defined]
    click.echo(f"held-out calibration split ({metrics['metrics'][names[0]]['n']} spectra, "
               "which chose neither the weights nor the epoch; z from the calibration "
               "fitted on the other half):")
    for name in names:
        m, c = metrics["metrics"][name], metrics["calibration"][name]
        click.echo(f"  {name:>9}: sigma {m['sigma']:.4g}  robust sigma {m['robust_sigma']:.4g}"
                   f"  bias {m['bias']:+.3g}  |z|<1 {c['frac_within_1sigma']:.2f}"
                   f"  z spread {c['z_spread']:.2f}")


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
@click.option("--strict", is_flag=True,
              help=f"Exit with status {EXIT_REJECTED} when any input was rejected or not "
                   "predicted (the catalogue is still written).")
@click.option("--overwrite", is_flag=True)
@click.option("--quiet", is_flag=True)
def predict(model_dir: Path, inputs: tuple[str, ...], output: Path, fmt: str, engine: str,
            workers: int, scheduler: str | None, resume: bool, part_size: int,
            keep_parts: bool, min_usable: float | None, strict: bool, overwrite: bool,
            quiet: bool) -> None:
    """Predict with a saved model for data sets (.h5) or spectrum files (FITS, text).

    INPUTS are files, folders, glob patterns, list files (.lst) or HDF5 data sets. The run
    is split into parts written atomically with a manifest: --resume after a crash or kill
    continues it (with the same model and options only), and the catalogue has each input
    exactly once. Files that cannot be used go to OUTPUT_STEM.rejects.csv with the reason
    and the run goes on; exit status 0, or with --strict 3 when any input was rejected.
    """
    from starlearn._lock import output_lock

    with output_lock(output):
        _predict(model_dir, inputs, output, fmt, engine, workers, scheduler, resume,
                 part_size, keep_parts, min_usable, strict, overwrite, quiet)



def _predict(model_dir: Path, inputs: tuple[str, ...], output: Path, fmt: str, engine: str,
             workers: int, scheduler: str | None, resume: bool, part_size: int,
             keep_parts: bool, min_usable: float | None, strict: bool, overwrite: bool,
             quiet: bool) -> None:
    import shutil

    from starlearn.infer.runner import run_archive

    parts = output.with_name(output.name + ".parts")
    if output.exists() and not (overwrite or resume):
        raise click.UsageError(f"{output} exists; pass --overwrite to replace it")
    if parts.exists() and not resume:
        if not overwrite:
            raise click.UsageError(f"{parts} holds an interrupted run: pass --resume to "
                                   "continue it, or --overwrite to start again")
        shutil.rmtree(parts)
    if part_size < 1 or workers < 1:
        raise click.UsageError("--part-size and --workers must be at least 1")
    summary = run_archive(model_dir, inputs, output, engine=engine, workers=workers,
                          scheduler=scheduler, resume=resume,
                          fmt=None if fmt == "auto" else fmt, files_per_part=part_size,
                          rows_per_part=40 * part_size, min_usable=min_usable,
                          progress=not quiet)
    if not keep_parts:
        shutil.rmtree(parts, ignore_errors=True)
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

    from starlearn.artifact import load
    from starlearn.evaluate.regression import evaluate_regressor, format_table
    from starlearn.spectra import SpectrumSet

    estimator = load(model_dir)
    if type(estimator).__name__ == "Classifier":
        from starlearn.evaluate.classification import evaluate_classifier, format_classification

        result = evaluate_classifier(estimator, SpectrumSet.read(test), plots=plots)
        click.echo(f"{estimator.model} on {result['n']} spectra:")
        click.echo(format_classification(result))
        if plots is not None:
            click.echo(f"confusion matrix plot written to {plots / 'confusion.png'}")
    elif type(estimator).__name__ == "Autoencoder":
        from starlearn.evaluate.autoencoder import evaluate_autoencoder

        result = evaluate_autoencoder(estimator, SpectrumSet.read(test))
        click.echo(f"{estimator.model} on {result['n_test']} spectra: reconstruction RMS "
                   f"{result['reconstruction_rms']:.4g} (mean spectrum: "
                   f"{result['mean_spectrum_rms']:.4g}), median reduced chi2 "
                   f"{result['median_chi2']:.3g}, odd {100 * result['odd_fraction']:.1f}%")
        for row in result.get("denoising", []):
            click.echo(f"  denoising at S/N {row['snr']:>4.0f}: gain {row['gain']:.2f} "
                       "(RMS noisy / RMS denoised, against the clean truth)")
    else:
        result = evaluate_regressor(estimator, SpectrumSet.read(test), output=plots)
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

    from starlearn.evaluate.regression import compare_models, format_table

    label_list = labels.split(",") if labels else None
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
    from starlearn.artifact import load
    from starlearn.io.ingest import load_spectra
    from starlearn.spectra import SpectrumSet

    estimator = load(model_dir)
    if type(estimator).__name__ != "Autoencoder":
        raise click.UsageError(f"{model_dir} is not an autoencoder")
    groups, rejects = load_spectra(inputs, progress=not quiet)
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
    from starlearn.artifact import load

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
    from starlearn._cli_search import run_search_command

    if trials < 1 or workers < 1 or max_epochs < 1:
        raise click.UsageError("--trials, --workers and --max-epochs must be at least 1")
    run_search_command(task=task, data=data, valid=valid, labels=labels, classes=classes,
                       trials=trials, timeout=timeout, storage=storage, study=study,
                       output=output, space_file=space_file, workers=workers,
                       max_epochs=max_epochs, pruner=pruner, seed=seed,
                       worker_index=worker_index, retrain=not no_retrain, quiet=quiet)


@main.command("search-report")
@click.option("--storage", required=True, help="Optuna RDB URL of the study.")
@click.option("--study", required=True, help="Study name.")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="Folder for best_trials.csv, history.png, importance.png.")
def search_report(storage: str, study: str, output: Path) -> None:
    """Best trials, optimisation history and parameter importances of a study."""
    from starlearn._cli_search import search_report as report

    report(storage, study, output)


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

    from starlearn.artifact import load
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

    from starlearn.artifact import load
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
    from starlearn.demo import run_demo

    run_demo(output, quick=quick, seed=seed, progress=not quiet, echo=click.echo)


if __name__ == "__main__":  # pragma: no cover
    main()
