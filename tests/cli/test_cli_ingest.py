"""``starlearn ingest --labels``: the catalogue-join flags through click's CliRunner."""

import json

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from numpy.testing import assert_allclose

from starlearn import SpectrumSet
from starlearn.cli import main

from ..jobs.test_ingest import allstar_like, make_folder


@pytest.fixture
def archive(tmp_path):
    folder = make_folder(tmp_path, n_good=4)
    return str(folder / "spec-?.fits"), str(allstar_like(tmp_path / "allStar.fits"))


def run(*args):
    return CliRunner().invoke(main, ["ingest", *map(str, args), "--quiet"])


def sorted_set(path):
    s = SpectrumSet.read(path)
    order = np.argsort(s.ids)
    return s, s.labels[order], s.meta[order]


def test_default_best_rule_and_summary(archive, tmp_path):
    spectra, cat = archive
    out = tmp_path / "set.h5"
    result = run(spectra, "-o", out, "--labels", cat, "--id-column", "APOGEE_ID",
                 "--label-columns", "TEFF,LOGG,FE_H")
    assert result.exit_code == 0, result.output
    assert "2 identifiers on several rows (2 rows dropped), resolved by 'best'" in \
        result.output
    assert "EXTRATARG bit 4 (DUPLICATE) unset, then highest SNR" in result.output
    assert "4 spectra matched a catalogue row" in result.output
    assert "uncertainties joined as meta: teff_err (TEFF_ERR), logg_err (LOGG_ERR)" in \
        result.output
    s, labels, meta = sorted_set(out)
    assert s.label_names == ["teff", "logg", "fe_h"]  # upper-case columns, lower-case labels
    assert_allclose(labels[:, 0], [5000.0, 5100.0, 5300.0, 5400.0])  # not the 9999 duplicate
    assert_allclose(meta["teff_err"], [50.0, 51.0, 53.0, np.nan])
    assert "fe_h_err" not in s.meta.colnames
    with h5py.File(out) as f:
        config = json.loads(f.attrs["provenance"])["config"]
    assert config["duplicates"] == "best" and config["where"] is None


def test_refuse_lists_the_duplicated_ids(archive, tmp_path):
    spectra, cat = archive
    out = tmp_path / "set.h5"
    result = run(spectra, "-o", out, "--labels", cat, "--id-column", "apogee_id",
                 "--label-columns", "teff", "--duplicates", "refuse")
    assert result.exit_code == 1
    assert "2 identifiers are on more than one row (4 rows): 1001 (2 rows), 1002 (2 rows)" \
        in result.output
    assert "Traceback" not in result.output and not out.exists()


def test_first_rule_where_and_mapping(archive, tmp_path):
    spectra, cat = archive
    out = tmp_path / "set.h5"
    result = run(spectra, "-o", out, "--labels", cat, "--id-column", "APOGEE_ID",
                 "--label-columns", "temp=TEFF,logg=LOGG", "--duplicates", "first",
                 "--where", "ASPCAPFLAG == 0 and SNR > 30", "--no-label-errors")
    assert result.exit_code == 0, result.output
    assert "7 rows, 6 kept by where 'ASPCAPFLAG == 0 and SNR > 30'" in result.output
    assert "resolved by 'first'" in result.output
    s, labels, _ = sorted_set(out)
    assert s.label_names == ["temp", "logg"]
    assert_allclose(labels[:, 0], [5000.0, 5100.0, 5200.0, np.nan])  # 1003 cut by --where
    assert "temp_err" not in s.meta.colnames and "teff_err" not in s.meta.colnames


@pytest.mark.parametrize("where, message", [
    ("SNRR > 50", "no column 'SNRR'; did you mean SNR?"),
    ("__import__('os').system('touch pwned')", "function calls are not allowed"),
    ("SNR >", "not a valid expression"),
])
def test_bad_where_is_a_clear_error(archive, tmp_path, where, message):
    spectra, cat = archive
    out = tmp_path / "set.h5"
    result = run(spectra, "-o", out, "--labels", cat, "--id-column", "APOGEE_ID",
                 "--label-columns", "TEFF", "--where", where)
    assert result.exit_code != 0 and message in result.output
    assert "Traceback" not in result.output and not out.exists()
    assert not (tmp_path / "pwned").exists()


def test_flag_combinations_are_checked(archive, tmp_path):
    spectra, cat = archive
    out = tmp_path / "set.h5"
    result = run(spectra, "-o", out, "--where", "SNR > 1")
    assert result.exit_code == 2 and "need --labels" in result.output
    result = run(spectra, "-o", out, "--labels", cat, "--label-columns", "TEFF")
    assert result.exit_code == 2 and "--labels needs --id-column" in result.output
    result = run(spectra, "-o", out, "--labels", cat, "--id-column", "APOGEE_ID",
                 "--label-columns", "TEFF", "--duplicates", "last")
    assert result.exit_code == 2 and "'last' is not one of" in result.output
