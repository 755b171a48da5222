"""Shared ground of the fault-injection suite: a small LAMOST model and archives of real-
layout LAMOST files with bad files mixed in (each bad in a way a real archive shows)."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from starlearn.estimators import Regressor
from starlearn.preprocess import Resample
from starlearn.synth import generate, write_lamost_files

N_GOOD = 12


@pytest.fixture(scope="session")
def lamost_model(tmp_path_factory) -> Path:
    """A LAMOST model that resamples its inputs onto the LAMOST grid (as `train --grid
    lamost` makes it), so that spectra of any survey reach the network."""
    root = tmp_path_factory.mktemp("model")
    train = generate("lamost", 300, seed=1, snr=(30, 100))
    Regressor("shallow-nn", ["teff", "logg"], epochs=2, progress=False, engine="torch",
              preprocess=Resample(grid="lamost"),
              model_config={"hidden": [32, 16]}).fit(train).save(root / "model")
    return root / "model"


@pytest.fixture(scope="session")
def other_model(tmp_path_factory) -> Path:
    """The same recipe with another seed: other weights."""
    root = tmp_path_factory.mktemp("model2")
    train = generate("lamost", 300, seed=5, snr=(30, 100))
    Regressor("shallow-nn", ["teff", "logg"], epochs=2, progress=False, engine="torch",
              seed=3, preprocess=Resample(grid="lamost"),
              model_config={"hidden": [32, 16]}).fit(train).save(root / "model")
    return root / "model"


def _table_layout(image_file: Path, out: Path, transform=None) -> None:
    """A LAMOST DR8 v2+ style file (one-row table in HDU 1) from an image-layout file."""
    with fits.open(image_file) as h:
        data, header = h[0].data.astype(np.float32), h[0].header
    wave = data[2].copy()
    if transform is not None:
        wave = transform(wave)
    cols = [fits.Column(name=name, format=f"{data.shape[1]}E", array=row[None, :])
            for name, row in zip(["FLUX", "IVAR", "WAVELENGTH", "ANDMASK", "ORMASK"],
                                 [data[0], data[1], wave, data[3], data[4]], strict=True)]
    primary = fits.PrimaryHDU()
    for key in ("TELESCOP", "OBSID", "CLASS", "SUBCLASS", "FILENAME"):
        if key in header:
            primary.header[key] = header[key]
    fits.HDUList([primary, fits.BinTableHDU.from_columns(cols, name="COADD")]).writeto(out)


def make_bad_files(folder: Path, good: Path) -> dict[str, str]:
    """Write bad files into ``folder`` (from the good image-layout file ``good``); returns
    {file name: what is wrong}."""
    bad = {}

    def edited(name: str, why: str, **keys) -> None:
        with fits.open(good) as h:
            for k, v in keys.items():
                if v is None:
                    del h[0].header[k]
                else:
                    h[0].header[k] = v
            h.writeto(folder / name)
        bad[name] = why

    edited("spec-zz-coeff1-zero.fits", "COEFF1 = 0", COEFF1=0.0)
    edited("spec-zz-coeff1-negative.fits", "COEFF1 < 0", COEFF1=-1e-4)
    edited("spec-zz-no-wave-keys.fits", "no COEFF0/COEFF1", COEFF0=None, COEFF1=None)
    _table_layout(good, folder / "spec-zz-decreasing.fits", lambda w: w[::-1].copy())
    bad["spec-zz-decreasing.fits"] = "decreasing wavelength column"
    shutil.copy(good, folder / "spec-zz-plain.fits.gz")
    bad["spec-zz-plain.fits.gz"] = "plain FITS named .gz"
    (folder / "spec-zz-cut.fits").write_bytes(good.read_bytes()[:6000])
    bad["spec-zz-cut.fits"] = "truncated"
    (folder / "spec-zz-notes.fits").write_text("not a FITS file\n" * 10)
    bad["spec-zz-notes.fits"] = "text"
    with fits.open(good) as h:
        h[0].data[0] = np.nan
        h.writeto(folder / "spec-zz-allnan.fits")
    bad["spec-zz-allnan.fits"] = "all flux NaN"
    return bad


@pytest.fixture(scope="session")
def bad_archive(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """N_GOOD good LAMOST files (image and table layouts) and the bad files, the bad ones
    named to sort after the good ones (so that they follow a file of their format)."""
    folder = tmp_path_factory.mktemp("archive") / "files"
    write_lamost_files(generate("lamost", N_GOOD, seed=2, snr=(30, 100)), folder)
    good = sorted(folder.glob("spec-*.fits"))
    _table_layout(good[0], folder / "spec-table-0.fits")
    (good[0]).unlink()
    bad = make_bad_files(folder, good[1])
    return folder, bad


def cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """Run ``starlearn ARGS`` in a fresh process."""
    return subprocess.run([sys.executable, "-m", "starlearn.cli", *args], capture_output=True,
                          text=True, **kwargs)
