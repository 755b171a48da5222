"""``starlearn train --task classify``: options to a Classifier (kept out of cli.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np

__all__ = ["train_classifier"]

_ACCEPTED = {"epochs", "batch_size", "lr", "patience", "scheduler", "max_time",
             "valid_fraction", "augment_noise", "device", "seed"}


def _resolution(spectra: Any, given: float | None, option: str, what: str) -> float:
    from starlearn.grid import find_preset

    if given is not None:
        return float(given)
    preset = find_preset(spectra.wave) if spectra.shared_wave else None
    if preset is None or preset.resolution is None:
        raise click.UsageError(f"cannot tell the resolving power of the {what} spectra (their "
                               f"grid is not a preset); give {option}")
    return float(preset.resolution)


def _near_window(spectra: Any, window: Any) -> Any:
    """``spectra`` with only the pixels inside the window's wavelength range left unmasked
    (S/N measured there, on the native pixels, is what noise matching should reach)."""
    if window is None:
        return spectra
    grid = window.grid
    outside = (spectra.wave < grid.start) | (spectra.wave > grid.stop)
    return spectra.replace(mask=spectra.mask | np.broadcast_to(outside, spectra.mask.shape))


def train_classifier(model: str, data: Path, valid: Path | None, output: Path,
                     config_file: Path | None, quiet: bool, checkpoint: Path, *,
                     classes: str | None,
                     balance: str | None, adapt_to: Path | None, adapt: str | None,
                     source_resolution: float | None, target_resolution: float | None,
                     line: str | None, half_width: int | None,
                     options: dict[str, Any]) -> None:
    """Build, fit and save a Classifier from the CLI options; print validation metrics."""
    from starlearn.cli import _load_config_file
    from starlearn.estimators import Classifier
    from starlearn.evaluate.classification import format_classification
    from starlearn.grid import find_preset
    from starlearn.preprocess import DomainAdapter, LineWindow, median_snr
    from starlearn.spectra import SpectrumSet

    settings = {**_load_config_file(config_file), **options}
    rejected = sorted(set(options) - _ACCEPTED)
    if rejected:
        raise click.UsageError(f"--task classify does not use "
                               f"{', '.join('--' + r.replace('_', '-') for r in rejected)}")
    for key in ("labels", "mc_samples", "mask_channel", "augment_mask", "augment_rv", "grid"):
        settings.pop(key, None)
    if adapt is not None and adapt_to is None:
        raise click.UsageError("--adapt needs --adapt-to TARGET.h5 (unlabelled target spectra)")
    adapt = adapt or ("blur" if adapt_to is not None else None)
    balance = balance or settings.pop("balance", None)
    if balance == "none":
        balance = None
    line = line or settings.pop("line", None)
    half_width = half_width or settings.pop("half_width", None) or 70
    train_set = SpectrumSet.read(data)
    target = SpectrumSet.read(adapt_to) if adapt_to is not None else None

    window = None
    if line is None or str(line).lower() != "none":
        sampling: Any = "lamost"
        if target is not None and target.shared_wave and find_preset(target.wave) is not None:
            sampling = find_preset(target.wave)
        window = LineWindow(line=float(line) if line else 6562.8, half_width=int(half_width),
                            sampling=sampling,
                            rv_column="rv" if "rv" in train_set.meta.colnames else None,
                            on_missing="mask")
    adapter = None
    if adapt is not None and "blur" in adapt:
        r_source = _resolution(train_set, source_resolution, "--source-resolution", "training")
        r_target = _resolution(target, target_resolution, "--target-resolution", "target")
        snr = median_snr(_near_window(target, window))
        adapter = DomainAdapter(r_source=r_source, r_target=r_target,
                                target_grid=find_preset(target.wave) if target.shared_wave
                                else None,
                                target_snr=snr[snr > 0] if (snr > 0).any() else None)
    estimator = Classifier(model, classes.split(",") if classes else settings.pop("classes",
                                                                                    None),
                           preprocess=window, adapter=adapter, balance=balance,
                           adversarial=adapt is not None and "adversarial" in adapt,
                           progress=not quiet, **settings)
    from starlearn.cli import fit_and_save

    fit_and_save(estimator, output, checkpoint, train_set, valid, target=target)
    counts = ", ".join(f"{c} {n}" for c, n in zip(estimator.classes_,
                                                  estimator.class_counts_, strict=True))
    click.echo(f"{model} trained for {len(estimator.history_)} epochs on {counts}"
               + (f" (balanced by {balance}: {int(np.sum(estimator.balanced_counts_))})"
                  if balance in ("smote", "oversample") else "")
               + (f"; adapted to {adapt_to} ({adapt})" if adapt else ""))
    click.echo("validation:")
    click.echo(format_classification(estimator.valid_metrics_))
    click.echo(f"model written to {output}")
