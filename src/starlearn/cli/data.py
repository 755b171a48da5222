"""``starlearn synth``, ``ingest`` and ``info``: data sets from the generator or from
survey files."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from starlearn._provenance import provenance
from starlearn.cli._group import main
from starlearn.cli._options import parse_range

__all__ = ["info", "ingest", "synth"]


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
@click.option("--teff", default=None,
              help="Draw only stars with Teff in LO:HI (K), or fix it at a number.")
@click.option("--logg", default=None,
              help="Draw only stars with log g in LO:HI (dex, cgs), or fix it at a number.")
@click.option("--feh", default=None,
              help="Draw only stars with [Fe/H] in LO:HI (dex), or fix it at a number.")
@click.option("--alpha-fe", default=None,
              help="Draw only stars with [alpha/Fe] in LO:HI (dex), or fix it at a number "
                   "(every preset but ondrejov-halpha).")
@click.option("--vmacro", default=None,
              help="Macroturbulence LO:HI (km/s), or a number, for presets with a vmacro "
                   "label (none today: the renderer sets it from Teff and log g).")
@click.option("--labels-from", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None,
              help="Table of real labels (FITS, ECSV or CSV) whose rows the stars take, "
                   "drawn with replacement; combined with the ranges above, rows outside "
                   "them are dropped.")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output data set (.h5).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def synth(survey: str, n: int, seed: int, snr: str, rv: str | None,
          class_fractions: str | None, teff: str | None, logg: str | None, feh: str | None,
          alpha_fe: str | None, vmacro: str | None, labels_from: Path | None, jobs: int,
          output: Path, overwrite: bool, quiet: bool) -> None:
    """Generate a synthetic survey of SURVEY-like spectra into an HDF5 data set.

    --teff, --logg, --feh, --alpha-fe and --vmacro restrict the drawn population to a box
    (LO:HI, or a number to fix the label); --labels-from draws the labels from a table of
    real stars (docs/synthetic.md, "Label priors").
    """
    from starlearn.synth import generate, label_names

    fractions = None
    if class_fractions:
        try:
            fractions = [float(x) for x in class_fractions.split(",")]
        except ValueError:
            raise click.BadParameter(f"expected comma-separated numbers, got "
                                     f"'{class_fractions}'", param_hint="--class-fractions") \
                from None
    prior = {}
    for flag, label, text in (("--teff", "teff", teff), ("--logg", "logg", logg),
                              ("--feh", "fe_h", feh), ("--alpha-fe", "alpha_fe", alpha_fe),
                              ("--vmacro", "vmacro", vmacro)):
        value = parse_range(text, name=flag)
        if value is None:
            continue
        if label not in label_names(survey):
            note = ("; vmacro is set from Teff and log g by the renderer" if label == "vmacro"
                    else "")
            raise click.BadParameter(f"the {survey} preset has no {label} label; its labels "
                                     f"are {', '.join(label_names(survey))}{note}",
                                     param_hint=flag)
        prior[label] = value
    if output.exists() and not overwrite:
        raise click.UsageError(f"{output} exists; pass --overwrite to replace it")
    from starlearn._atomic import check_writable
    from starlearn._lock import output_lock
    from starlearn.grid import PRESETS

    check_writable(output, int(1.1 * n * PRESETS[survey].n_pix * 9) + 65536)
    with output_lock(output):
        spectra = generate(survey, n, seed=seed, snr=parse_range(snr, name="--snr"),
                           rv=parse_range(rv, name="--rv"), class_fractions=fractions,
                           prior=prior or None, labels_from=labels_from, n_jobs=jobs,
                           progress=not quiet)
        chosen = {"prior": prior} if prior else {}
        if labels_from is not None:
            chosen["labels_from"] = str(labels_from)
        spectra.write(output, overwrite=overwrite,
                      provenance=provenance(command=sys.argv, survey=survey, n=n, seed=seed,
                                            snr=snr, rv=rv, class_fractions=class_fractions,
                                            **chosen))
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
@click.option("--id-column", default=None,
              help="Catalogue column matching spectrum ids (any case).")
@click.option("--label-columns", default=None,
              help="Comma-separated catalogue columns to use as labels (any case; stored "
                   "in lower case: TEFF -> teff, [Fe/H] -> fe_h), or NAME=COLUMN items "
                   "(teff=TEFF,feh=FE_H).")
@click.option("--where", default=None,
              help="Keep only the catalogue rows this expression selects, e.g. "
                   "\"ASPCAPFLAG == 0 and SNR > 50\" (comparisons, and/or/not, in, "
                   "& for bit flags; docs/readers.md).")
@click.option("--duplicates", type=click.Choice(["best", "first", "refuse"]), default="best",
              show_default=True,
              help="An id on several catalogue rows: keep the survey's primary row, then "
                   "the highest S/N (best); the first row (first); or stop and list them "
                   "(refuse).")
@click.option("--label-errors/--no-label-errors", default=True, show_default=True,
              help="Store the catalogue's label uncertainties (TEFF_ERR, e_teff, ...) as "
                   "meta columns <label>_err.")
@click.option("--option", "options", multiple=True,
              help="Reader option KEY=VALUE (e.g. rows=visits), repeatable.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Reader processes.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def ingest(inputs: tuple[str, ...], output: Path, fmt: str, grid: str | None,
           wave_range: str | None, resolution: float | None, rest_frame: bool,
           catalog: str | None, id_column: str | None, label_columns: str | None,
           where: str | None, duplicates: str, label_errors: bool,
           options: tuple[str, ...], workers: int, overwrite: bool, quiet: bool) -> None:
    """Read survey files (paths, folders, globs or .lst lists) into one HDF5 data set.

    --labels joins a catalogue on --id-column: --label-columns become the labels, rows
    are selected with --where, an id on several rows is resolved by --duplicates, and
    label uncertainties are stored as meta <label>_err (docs/readers.md, "Joining a label
    catalogue").
    """
    from starlearn.grid import Grid
    from starlearn.jobs.ingest import ingest as run_ingest

    if grid is not None and wave_range is not None:
        raise click.UsageError("give --grid or --wave-range, not both")
    if catalog is None and (where is not None or id_column or label_columns):
        raise click.UsageError("--where, --id-column and --label-columns need --labels")
    if catalog is not None and not (id_column and label_columns):
        raise click.UsageError("--labels needs --id-column and --label-columns")
    if where is not None:
        from starlearn.io.catalogue import WhereError, parse_where

        try:
            parse_where(where)
        except WhereError as err:
            raise click.BadParameter(str(err), param_hint="--where") from None
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
            where=where, duplicates=duplicates, label_errors=label_errors,
            workers=workers, overwrite=overwrite, progress=not quiet,
            read_options=read_options,
            provenance=provenance(command=sys.argv, inputs=list(inputs), format=fmt,
                                  grid=grid, wave_range=wave_range, resolution=resolution,
                                  labels=catalog, id_column=id_column,
                                  label_columns=label_columns, where=where,
                                  duplicates=duplicates, label_errors=label_errors))
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


