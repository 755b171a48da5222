"""Option parsing shared by the commands: ranges, comma lists, the --config TOML file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

__all__ = ["EstimatorOption", "load_config", "parse_params", "parse_range", "split_names"]


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



def split_names(text: str | None) -> list[str] | None:
    """``"teff,logg"`` -> ``["teff", "logg"]`` (None stays None)."""
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def load_config(path: Path | None) -> dict[str, Any]:
    """The settings of a ``--config`` TOML file (keys with dashes or underscores), or {}
    without one; a file that is not TOML is a clear error naming it. Which keys a command
    accepts is checked by the job that uses them."""
    if path is None:
        return {}
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as err:
        raise click.BadParameter(f"{path}: not a valid TOML file ({err})",
                                 param_hint="--config") from None
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def parse_params(items: tuple[str, ...]) -> dict[str, Any]:
    """``("lr=3e-4", "model_config={dropout = 0.1}")`` -> {"lr": 0.0003, ...}: each value in
    TOML syntax (a bare word that is not TOML is taken as a string)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got '{item}'", param_hint="--param")
        try:
            out[key] = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[key] = value.strip()
    return out


class EstimatorOption(click.Option):
    """An option that sets an estimator's constructor parameter of the same name: its help
    shows the default of each task's estimator, read from the estimator's signature when
    the help is shown (the signature is the one place defaults are written)."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        record = super().get_help_record(ctx)
        if record is None:
            return None
        import inspect

        from starlearn.jobs.training import TASK_ESTIMATORS, estimator_class

        name = self.name or ""
        defaults = []
        for task in TASK_ESTIMATORS:
            parameter = inspect.signature(estimator_class(task)).parameters.get(name)
            if parameter is not None and parameter.default is not inspect.Parameter.empty:
                defaults.append(f"{task} {parameter.default}")
        if not defaults:
            return record
        return record[0], f"{record[1]} [{', '.join(defaults)}]"
