import numpy as np
import pytest
from astropy.table import Table
from click.testing import CliRunner
from numpy.testing import assert_allclose

from starlearn import SpectrumSet, get_grid
from starlearn.cli import main
from starlearn.io import ReadError, expand_inputs
from starlearn.jobs.ingest import ingest

from ..io.test_lamost import lrs_image_hdul


def make_folder(tmp_path, n_good=4):
    folder = tmp_path / "archive"
    folder.mkdir()
    for i in range(n_good):
        hdul = lrs_image_hdul(n_pix=3909, seed=i)
        hdul[0].header["OBSID"] = 1000 + i
        hdul.writeto(folder / f"spec-{i}.fits")
    trunc = folder / "spec-truncated.fits"
    lrs_image_hdul(n_pix=3909).writeto(trunc)
    trunc.write_bytes(trunc.read_bytes()[:20000])
    (folder / "spec-text.fits").write_text("SIMPLE? no, this is a text file\n" * 20)
    nan = lrs_image_hdul(n_pix=3909)
    nan[0].data[0] = np.nan
    nan.writeto(folder / "spec-allnan.fits")
    return folder


def test_ingest_folder_keeps_good_files_and_lists_rejects(tmp_path):
    folder = make_folder(tmp_path)
    out = tmp_path / "set.h5"
    report = ingest([folder], out, grid="lamost", progress=False)
    assert report.n_files == 7 and report.n_read == 4 and report.n_spectra == 4
    reasons = dict(report.rejects)
    assert "truncated FITS file" in reasons[str(folder / "spec-truncated.fits")]
    assert "format not recognised" in reasons[str(folder / "spec-text.fits")]
    assert "no usable pixel" in reasons[str(folder / "spec-allnan.fits")]
    s = SpectrumSet.read(out)
    assert len(s) == 4 and get_grid("lamost").matches(s.wave)
    assert sorted(s.ids) == ["1000", "1001", "1002", "1003"]
    rejects = Table.read(tmp_path / "set.h5.rejects.csv")
    assert len(rejects) == 3
    assert "rejected 1: truncated FITS file" in report.summary()


def test_ingest_joins_catalogue_labels_with_sentinels_as_nan(tmp_path):
    folder = make_folder(tmp_path, n_good=3)
    catalog = tmp_path / "labels.csv"
    Table({"obsid": ["1000", "1001", "1002"], "teff": [5000.0, -9999.0, 6000.0],
           "logg": [4.5, 4.0, -9999.0]}).write(catalog)
    out = tmp_path / "set.h5"
    report = ingest([str(folder / "spec-?.fits")], out, labels=catalog, id_column="obsid",
                    label_columns=["teff", "logg"], workers=2, progress=False)
    assert report.n_labelled == 3 and not report.rejects
    s = SpectrumSet.read(out)
    order = np.argsort(s.ids)
    assert_allclose(s.labels[order], [[5000.0, 4.5], [np.nan, 4.0], [6000.0, np.nan]])
    assert s.wave.ndim == 2  # no grid: per-spectrum wavelengths kept


def test_ingest_without_readable_input_fails_clearly(tmp_path):
    bad = tmp_path / "bad.fits"
    bad.write_text("nothing")
    with pytest.raises(ReadError, match="no input could be read"):
        ingest([bad], tmp_path / "out.h5", progress=False)
    assert not (tmp_path / "out.h5").exists()


def test_expand_inputs_from_list_file_and_glob(tmp_path):
    for name in ("a.fits", "b.fits.gz", "c.txt", "skip.png"):
        (tmp_path / name).write_text("x")
    listing = tmp_path / "files.lst"
    listing.write_text("# my files\na.fits\nc.txt\n")
    assert expand_inputs([listing]) == [str(tmp_path / "a.fits"), str(tmp_path / "c.txt")]
    assert expand_inputs([str(tmp_path / "*.fits*")]) == [str(tmp_path / "a.fits"),
                                                           str(tmp_path / "b.fits.gz")]
    assert len(expand_inputs([tmp_path])) == 3


def test_expand_inputs_takes_an_existing_file_as_named(tmp_path):
    """A file with glob characters in its name is that file, not a pattern."""
    odd = tmp_path / "spec[1].fits"
    odd.write_text("x")
    (tmp_path / "spec1.fits").write_text("x")
    assert expand_inputs([odd]) == [str(odd)]
    assert expand_inputs(str(tmp_path / "spec?.fits")) == [str(tmp_path / "spec1.fits")]
    assert expand_inputs([tmp_path / "gone.fits"]) == [str(tmp_path / "gone.fits")]


def test_ingest_cli(tmp_path):
    folder = make_folder(tmp_path, n_good=2)
    out = tmp_path / "cli.h5"
    result = CliRunner().invoke(main, ["ingest", str(folder), "-o", str(out), "--wave-range",
                                       "4000:8000", "--resolution", "1800", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "2 read, 3 rejected" in result.output and "spec-text.fits" in result.output
    s = SpectrumSet.read(out)
    assert abs(s.wave[0] - 4000) < 1e-6 and abs(s.wave[-1] - 8000) < 1e-6


def test_ingest_multi_object_files_one_row_per_object(tmp_path):
    """A DESI coadd (three targets, arms joined) and LAMOST files, resampled onto one
    grid: one data-set row per target with its TARGETID."""
    from starlearn import Grid, read_dataset

    from ..io.test_desi import desi_hdul

    folder = make_folder(tmp_path, n_good=2)
    desi_hdul().writeto(folder / "coadd-sv3-dark-1.fits")
    grid = Grid.log_uniform(3700.0, 3800.0, n_pix=50)
    out = tmp_path / "set.h5"
    report = ingest([folder], out, grid=grid, progress=False)
    assert report.n_spectra == 5
    data = read_dataset(out)
    assert {"1000", "1001", "1002"} <= {str(i) for i in data.ids}
