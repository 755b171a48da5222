"""Bad files mixed into an archive: every door (sl.read, ingest, predict) rejects each one
with the same reason, the good files all go through, in any file order."""

import os
import shutil

import numpy as np
import pytest
from astropy.table import Table
from click.testing import CliRunner

import starlearn as sl
from starlearn.cli import EXIT_REJECTED, main
from starlearn.jobs.archive import read_catalogue, run_archive
from starlearn.jobs.ingest import ingest

from .conftest import N_GOOD


def _read_reason(path) -> str:
    with pytest.raises(sl.io.ReadError) as err:
        sl.read(path)
    return err.value.reason


def _reasons(rejects_csv) -> dict[str, str]:
    table = Table.read(rejects_csv, format="ascii.csv")
    return {os.path.basename(str(r["input"])): str(r["reason"]) for r in table}


def test_predict_rejects_each_bad_file_with_the_reason_read_gives(lamost_model, bad_archive,
                                                                  tmp_path):
    folder, bad = bad_archive
    out = tmp_path / "cat.parquet"
    summary = run_archive(lamost_model, [folder], out, files_per_part=4, progress=False)
    table = read_catalogue(out)
    assert len(table) == N_GOOD == summary.spectra
    assert np.all(np.isfinite(table["teff"]))
    got = _reasons(summary.rejects)
    assert set(got) == set(bad)
    for name in bad:
        assert got[name] == _read_reason(folder / name), name
    assert "strictly increasing" in got["spec-zz-decreasing.fits"]
    assert "COEFF1" in got["spec-zz-coeff1-zero.fits"]
    assert "not gzip" in got["spec-zz-plain.fits.gz"]
    # the real reason, not only "not recognised"
    assert "lamost-lrs" in got["spec-zz-no-wave-keys.fits"]
    assert "COEFF0" in got["spec-zz-no-wave-keys.fits"]


def test_ingest_gives_the_same_reasons(bad_archive, tmp_path):
    folder, bad = bad_archive
    report = ingest([folder], tmp_path / "set.h5", grid="lamost", progress=False)
    got = {os.path.basename(p): r for p, r in report.rejects}
    assert set(got) == set(bad)
    for name in bad:
        assert got[name] == _read_reason(folder / name), name


def test_file_order_does_not_change_the_result(lamost_model, bad_archive, tmp_path):
    folder, _ = bad_archive
    files = sorted(str(p) for p in folder.iterdir())
    one = run_archive(lamost_model, files, tmp_path / "a.parquet", progress=False)
    two = run_archive(lamost_model, files[::-1], tmp_path / "b.parquet", progress=False)
    a, b = read_catalogue(one.output), read_catalogue(two.output)
    a.sort("file")
    b.sort("file")
    assert list(a["file"]) == list(b["file"])
    assert np.allclose(a["teff"], b["teff"])
    assert _reasons(one.rejects) == _reasons(two.rejects)


def test_exit_status_counts_rejects_only_with_strict(lamost_model, bad_archive, tmp_path):
    folder, _ = bad_archive
    runner = CliRunner()
    args = ["predict", str(lamost_model), str(folder), "--quiet"]
    plain = runner.invoke(main, [*args, "-o", str(tmp_path / "a.parquet")])
    assert plain.exit_code == 0, plain.output
    assert f"{len(os.listdir(folder)) - N_GOOD} inputs rejected" in plain.output
    strict = runner.invoke(main, [*args, "-o", str(tmp_path / "b.parquet"), "--strict"])
    assert strict.exit_code == EXIT_REJECTED == 3
    assert len(read_catalogue(tmp_path / "b.parquet")) == N_GOOD  # still written


def test_spectra_the_model_cannot_see_get_nan_and_a_flag(lamost_model, tmp_path):
    """APOGEE spectra given to a LAMOST model: no pixel of the model's grid is covered."""
    apogee = sl.synth.generate("apogee", 6, seed=0)
    lamost = sl.synth.generate("lamost", 4, seed=0)
    model = sl.load(lamost_model)
    table = model.predict(apogee)
    assert np.all(np.isnan(table["teff"])) and np.all(np.isnan(table["teff_err"]))
    assert np.all(table["flags"] & 4)
    # half covered: predicted only when the threshold allows it
    cut = lamost.replace(mask=lamost.mask | (lamost.wave > 5500)[None, :])
    usable = (~cut.mask).mean(axis=1)
    assert np.all((usable > 0.3) & (usable < 0.5))
    assert np.all(np.isnan(model.predict(cut)["teff"]))
    model.min_usable = 0.3
    assert np.all(np.isfinite(model.predict(cut)["teff"]))

    apogee.write(tmp_path / "apogee.h5")
    runner = CliRunner()
    result = runner.invoke(main, ["predict", str(lamost_model), str(tmp_path / "apogee.h5"),
                                  "-o", str(tmp_path / "x.parquet"), "--quiet"])
    assert result.exit_code == 1 and "none of the 6 spectra could be predicted" in (
        result.output)
    assert not (tmp_path / "x.parquet").exists()


def test_unsupported_output_is_refused_before_any_work(lamost_model, bad_archive, tmp_path):
    folder, _ = bad_archive
    result = CliRunner().invoke(main, ["predict", str(lamost_model), str(folder), "-o",
                                       str(tmp_path / "x.txt"), "--quiet"])
    assert result.exit_code == 1 and ".parquet" in result.output and "x.txt" in result.output
    assert os.listdir(tmp_path) == []  # no parts folder, no catalogue


def test_failed_run_leaves_no_catalogue(lamost_model, tmp_path):
    folder = tmp_path / "junk"
    folder.mkdir()
    for i in range(3):
        (folder / f"n{i}.fits").write_text("not FITS\n")
    out = tmp_path / "cat.fits"
    result = CliRunner().invoke(main, ["predict", str(lamost_model), str(folder), "-o",
                                       str(out), "--quiet"])
    assert result.exit_code == 1 and "no input could be predicted" in result.output
    assert not out.exists()
    again = CliRunner().invoke(main, ["predict", str(lamost_model), str(folder), "-o",
                                      str(out), "--quiet", "--overwrite"])
    assert "exists" not in again.output  # no empty catalogue in the way
    shutil.rmtree(folder)
