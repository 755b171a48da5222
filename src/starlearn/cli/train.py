"""``starlearn train``: options to an estimator, then the training job
(:mod:`starlearn.jobs.training`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from starlearn.cli._group import main
from starlearn.cli._options import (
    EstimatorOption,
    load_config,
    parse_params,
    parse_range,
    split_names,
)

__all__ = ["train"]

_REGRESS_ADAPT = ("none", "auto", "match", "coral", "mmd", "match+coral", "match+mmd",
                  "match+adversarial", "cycle", "match+cycle")


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
@click.option("--valid-fraction", cls=EstimatorOption,
              type=float, default=None, help="Held-out share.")
@click.option("--epochs", cls=EstimatorOption,
              type=int, default=None,
              help="Maximum epochs.")
@click.option("--batch-size", cls=EstimatorOption,
              type=int, default=None, help="Batch size.")
@click.option("--lr", cls=EstimatorOption,
              type=float, default=None, help="Adam learning rate.")
@click.option("--patience", cls=EstimatorOption,
              type=int, default=None, help="Early-stopping patience.")
@click.option("--scheduler", cls=EstimatorOption,
              type=click.Choice(["plateau", "cosine", "none"]), default=None,
              help="Learning-rate schedule.")
@click.option("--max-time", cls=EstimatorOption,
              type=float, default=None, help="Stop training after N seconds.")
@click.option("--mask-channel", cls=EstimatorOption,
              is_flag=True, default=None,
              help="Give the bad-pixel mask to the network.")
@click.option("--augment-noise", cls=EstimatorOption,
              type=float, default=None,
              help="Probability of an extra noise draw from the error spectrum.")
@click.option("--augment-mask", cls=EstimatorOption,
              type=float, default=None,
              help="Fraction of pixels masked at random while training.")
@click.option("--augment-rv", cls=EstimatorOption,
              type=float, default=None, help="RV jitter in km/s.")
@click.option("--mc-samples", cls=EstimatorOption,
              type=int, default=None,
              help="Noise draws propagating the error spectrum at prediction.")
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
@click.option("--balance", cls=EstimatorOption,
              type=click.Choice(["smote", "oversample", "weights", "none"]),
              default=None, help="classify: class-imbalance treatment.")
@click.option("--adapt-to", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="classify, regress: unlabelled spectra of the target "
                                 "instrument or survey (on the model's grid).")
@click.option("--adapt", type=click.Choice(["blur", "adversarial", "blur+adversarial",
                                            *_REGRESS_ADAPT]),
              default=None, help="Domain adaptation to --adapt-to: classify blur [default], "
                                 "adversarial, blur+adversarial; regress none, match, coral, "
                                 "mmd, adversarial, cycle, match+<method>, auto [default].")
@click.option("--init", "init", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="regress: fine-tune this pretrained model folder on the "
                                 "labelled --data (few-shot; --epochs, --lr apply).")
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
@click.option("--missing-rv", type=click.Choice(["rest", "measure"]), default=None,
              help="classify: spectra without a radial velocity (meta rv) are taken as at "
                   "rest, flagged (rest, the default), or get one measured from the line "
                   "itself (measure; at rest and flagged where the line is too weak).")
@click.option("--device", cls=EstimatorOption,
              default=None, help="auto, cpu, cuda ....")
@click.option("--seed", cls=EstimatorOption,
              type=int, default=None, help="Random seed.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False,
                                                         path_type=Path), default=None,
              help="TOML file with any of these options (command-line values win).")
@click.option("--resume", is_flag=True,
              help="Continue the training an interrupted run of this command left: its "
                   "state is saved after every epoch in OUTPUT.checkpoint (same data and "
                   "settings; --epochs, --patience and --max-time may change).")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="Any constructor parameter of the task's estimator (see its docs), the "
                   "value in TOML syntax (3, 0.5, true, \"text\", [1, 2]); repeatable. "
                   "Options above and --config may give the same ones.")
@click.option("--overwrite", is_flag=True,
              help="Replace an existing model folder OUTPUT (it is kept until the new "
                   "model is saved).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def train(task: str, model: str | None, data: Path, labels: str | None, output: Path,
          valid: Path | None, config_file: Path | None, grid: str | None, quiet: bool,
          resume: bool, overwrite: bool, latent: int | None, denoise: bool | None,
          snr_range: str | None, variational: bool | None, classes: str | None,
          balance: str | None, adapt_to: Path | None, adapt: str | None, init: Path | None,
          source_resolution: float | None, target_resolution: float | None,
          line: str | None, half_width: int | None, missing_rv: str | None,
          params: tuple[str, ...], **options: Any) -> None:
    """Train a model on a data set and save it as a model folder."""
    from starlearn.jobs.training import (
        JOB_USES,
        TASK_ESTIMATORS,
        build_estimator,
        check_settings,
        estimator_parameters,
        train_and_save,
    )
    from starlearn.spectra import SpectrumSet

    if init is not None:
        _fine_tune(task, init, data, output, overwrite=overwrite, quiet=quiet,
                   other={"adapt_to": adapt_to, "adapt": adapt, "valid": valid,
                          "config": config_file, "resume": resume or None,
                          "param": params or None, "grid": grid, "labels": labels},
                   options=options)
        return
    given = {"labels": split_names(labels), "grid": grid, "latent": latent, "denoise": denoise,
             "snr": parse_range(snr_range, name="--snr") if snr_range else None,
             "variational": variational, "classes": split_names(classes), "balance": balance,
             "adapt": adapt, "source_resolution": source_resolution,
             "target_resolution": target_resolution, "line": line,
             "half_width": half_width, "missing_rv": missing_rv, **options}
    given = {**{k: v for k, v in given.items() if v is not None}, **parse_params(params)}
    if adapt_to is not None and task not in ("classify", "regress"):
        given["adapt_to"] = adapt_to
    # an option the task's estimator (and job) does not take is a usage error
    problems = []
    for key in sorted(given):
        users = [t for t in TASK_ESTIMATORS
                 if key in JOB_USES.get(t, set()) or key in estimator_parameters(t)]
        if task not in users:
            flag = "--" + key.replace("_", "-")
            problems.append(f"--task {task} does not use {flag}"
                            + (f" (it applies to --task {' or '.join(users)} only)"
                               if users else ""))
    if problems:
        raise click.UsageError("; ".join(problems))
    settings = {**check_settings(task, load_config(config_file), where=str(config_file)),
                **given, "progress": not quiet}
    train_set = SpectrumSet.read(data) if task == "classify" else data
    target = SpectrumSet.read(adapt_to) if adapt_to is not None else None
    estimator = build_estimator(task, model, settings=settings, train=train_set,
                                target=target)
    extra = {"target": target} if task in ("classify", "regress") and target else {}
    train_and_save(estimator, output, train_set, valid, resume=resume, overwrite=overwrite,
                   **extra)
    _echo_summary(task, estimator, adapt_to)
    click.echo(f"model written to {output}")


def _fine_tune(task: str, init: Path, data: Path, output: Path, *, overwrite: bool,
               quiet: bool, other: dict[str, Any], options: dict[str, Any]) -> None:
    """``--init``: the few-shot job (:func:`starlearn.jobs.fine_tune.fine_tune_model`)."""
    from starlearn.jobs.fine_tune import fine_tune_model

    if task != "regress":
        raise click.UsageError("--init (fine-tuning) applies to --task regress only")
    ignored = [f"--{k.replace('_', '-')}" for k, v in {**other, **options}.items()
               if v is not None and k not in ("epochs", "lr")]
    if ignored:
        raise click.UsageError(f"--init fine-tunes the saved model with its own settings; "
                               f"only --epochs and --lr apply, not {', '.join(ignored)}")
    kwargs = {k: options[k] for k in ("epochs", "lr") if options.get(k) is not None}
    try:
        model = fine_tune_model(init, data, output, overwrite=overwrite, progress=not quiet,
                                **kwargs)
    except (ValueError, FileExistsError) as err:
        raise click.ClickException(str(err)) from None
    info = model.fine_tune_
    frozen = info["freeze_epochs"]
    click.echo(f"fine-tuned {init} on {info['n_train']} spectra ({frozen} epochs with the "
               f"feature layers frozen, then {info['epochs'] - frozen} at lr/10); "
               f"{info['n_valid']} chose the epochs")
    _echo_regression_summary(model)
    click.echo(f"model written to {output}")


def _echo_summary(task: str, estimator: Any, adapt_to: Path | None) -> None:
    if task == "regress":
        _echo_regression_summary(estimator)
        domain = estimator.valid_metrics_.get("domain")
        if domain:
            click.echo(f"adapted to {adapt_to} ({domain['method']}): feature distance source "
                       f"vs target MMD {domain['mmd']:.3g}, CORAL {domain['coral']:.3g}, "
                       f"domain AUC {domain['auc']:.2f} (0.5: indistinguishable)")
    elif task == "autoencode":
        mode = "denoising" if estimator.denoise else "reconstruction"
        click.echo(f"{estimator.model} ({mode}, latent {estimator.latent}) trained for "
                   f"{len(estimator.history_)} epochs")
    else:
        import numpy as np

        from starlearn.evaluate.classification import format_classification

        counts = ", ".join(f"{c} {n}" for c, n in zip(estimator.classes_,
                                                      estimator.class_counts_, strict=True))
        balance = estimator.balance
        adapt = ("blur" if estimator.adapter is not None else "") + (
            "+adversarial" if estimator.adversarial else "")
        click.echo(f"{estimator.model} trained for {len(estimator.history_)} epochs on "
                   f"{counts}"
                   + (f" (balanced by {balance}: {int(np.sum(estimator.balanced_counts_))})"
                      if balance in ("smote", "oversample") else "")
                   + (f"; adapted to {adapt_to} ({adapt.strip('+')})" if adapt_to else ""))
        click.echo("validation:")
        click.echo(format_classification(estimator.valid_metrics_))


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


