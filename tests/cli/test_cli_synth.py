"""``starlearn synth`` label priors: --teff/--logg/--feh/--alpha-fe/--vmacro boxes and
--labels-from catalogues."""

import json

import h5py
import numpy as np
import pytest
from astropy.table import Table
from click.testing import CliRunner

from starlearn import SpectrumSet
from starlearn.cli import main
from starlearn.synth import generate, label_names


def _synth(tmp_path, survey, *options, name="out.h5"):
    out = tmp_path / name
    result = CliRunner().invoke(main, ["synth", survey, *options, "-o", str(out), "--quiet"])
    return result, out


def _label(s, name):
    return s.labels[:, s.label_names.index(name)]


def test_ranges_restrict_every_drawn_label(tmp_path):
    result, out = _synth(tmp_path, "apogee", "--n", "24", "--seed", "2", "--snr", "none",
                         "--teff", "4000:5200", "--logg", "1:3", "--feh", "-1:-0.2",
                         "--alpha-fe", "0:0.35")
    assert result.exit_code == 0, result.output
    s = SpectrumSet.read(out)
    assert len(s) == 24
    for name, lo, hi in (("teff", 4000, 5200), ("logg", 1, 3), ("fe_h", -1, -0.2),
                         ("alpha_fe", 0, 0.35)):
        v = _label(s, name)
        assert np.all((v >= lo) & (v <= hi)), name
        assert np.std(v) > 0.05 * (hi - lo), name                  # not one star repeated
    with h5py.File(out) as f:
        config = json.loads(f.attrs["provenance"])["config"]
    assert config["prior"] == {"teff": [4000.0, 5200.0], "logg": [1.0, 3.0],
                               "fe_h": [-1.0, -0.2], "alpha_fe": [0.0, 0.35]}
    # seeded: the same command gives the same spectra
    again, out2 = _synth(tmp_path, "apogee", "--n", "24", "--seed", "2", "--snr", "none",
                         "--teff", "4000:5200", "--logg", "1:3", "--feh", "-1:-0.2",
                         "--alpha-fe", "0:0.35", name="again.h5")
    assert again.exit_code == 0, again.output
    np.testing.assert_array_equal(SpectrumSet.read(out2).flux, s.flux)


def test_a_single_number_fixes_the_label(tmp_path):
    result, out = _synth(tmp_path, "lamost", "--n", "16", "--snr", "50", "--feh", "-0.5",
                         "--teff", "5000:6000")
    assert result.exit_code == 0, result.output
    s = SpectrumSet.read(out)
    np.testing.assert_array_equal(_label(s, "fe_h"), np.float32(-0.5))
    teff = _label(s, "teff")
    assert np.all((teff >= 5000) & (teff <= 6000)) and np.std(teff) > 100


def test_default_output_is_unchanged(tmp_path):
    result, out = _synth(tmp_path, "lamost", "--n", "4", "--seed", "5", "--snr", "none")
    assert result.exit_code == 0, result.output
    s = SpectrumSet.read(out)
    ref = generate("lamost", 4, seed=5, snr=None)
    np.testing.assert_array_equal(s.flux, ref.flux)
    np.testing.assert_array_equal(s.labels, ref.labels)
    with h5py.File(out) as f:
        config = json.loads(f.attrs["provenance"])["config"]
    assert "prior" not in config and "labels_from" not in config


@pytest.mark.parametrize(("survey", "flag", "value"), [("apogee", "--vmacro", "3:6"),
                                                       ("ondrejov-halpha", "--alpha-fe", "0.1")])
def test_a_flag_for_a_label_the_preset_lacks_is_a_usage_error(tmp_path, survey, flag, value):
    result, out = _synth(tmp_path, survey, "--n", "2", flag, value)
    assert result.exit_code == 2
    assert f"Invalid value for {flag}" in result.output
    assert f"the {survey} preset has no {flag[2:].replace('-', '_')} label" in result.output
    assert ", ".join(label_names(survey)) in result.output.replace("\n", " ")
    assert not out.exists()


def test_impossible_boxes_are_clear_errors(tmp_path):
    result, out = _synth(tmp_path, "apogee", "--n", "2", "--teff", "9000:9500")
    assert result.exit_code == 1 and "no stars of the apogee population" in result.output
    assert "Traceback" not in result.output and not out.exists()
    result, _ = _synth(tmp_path, "lamost", "--n", "2", "--teff", "2000:3000")
    assert result.exit_code == 1 and "outside the generator's Teff limits" in result.output
    result, _ = _synth(tmp_path, "lamost", "--n", "2", "--logg", "4:3")
    assert result.exit_code == 2 and "LO <= HI" in result.output


def test_labels_from_covers_the_catalogue(tmp_path):
    rng = np.random.default_rng(1)
    n = 300
    cat = Table({"obsid": np.arange(n), "Teff": rng.normal(5600.0, 300.0, n),
                 "log_g": rng.uniform(3.9, 4.5, n), "[Fe/H]": rng.normal(-0.2, 0.25, n)})
    cat["Teff"][:20] = np.nan                                      # dropped
    path = tmp_path / "lamost_dr.csv"
    cat.write(path)
    result, out = _synth(tmp_path, "lamost", "--n", "60", "--seed", "4", "--snr", "none",
                         "--labels-from", str(path))
    assert result.exit_code == 0, result.output
    s = SpectrumSet.read(out)
    rows = np.asarray(s.meta["catalog_row"])
    assert rows.min() >= 20
    teff = _label(s, "teff")
    np.testing.assert_allclose(teff, np.asarray(cat["Teff"])[rows], rtol=1e-6)
    assert abs(np.median(teff) / np.nanmedian(cat["Teff"]) - 1) < 0.03
    with h5py.File(out) as f:
        assert json.loads(f.attrs["provenance"])["config"]["labels_from"] == str(path)
    # with a box: rows outside it are not used
    result, out = _synth(tmp_path, "lamost", "--n", "30", "--snr", "none",
                         "--labels-from", str(path), "--teff", "5500:6000", name="box.h5")
    assert result.exit_code == 0, result.output
    teff = _label(SpectrumSet.read(out), "teff")
    assert np.all((teff >= 5500) & (teff <= 6000))


def test_labels_from_errors_name_the_file(tmp_path):
    path = tmp_path / "nofeh.ecsv"
    Table({"TEFF": [4500.0, 4800.0], "LOGG": [2.0, 2.5]}).write(path)
    result, out = _synth(tmp_path, "apogee", "--n", "2", "--labels-from", str(path))
    assert result.exit_code == 1
    assert f"{path}: no [Fe/H] column" in result.output.replace("\n", " ")
    assert not out.exists()
    empty = tmp_path / "empty.fits"
    Table({"TEFF": np.zeros(0), "LOGG": np.zeros(0), "FE_H": np.zeros(0)}).write(empty)
    result, _ = _synth(tmp_path, "apogee", "--n", "2", "--labels-from", str(empty))
    assert result.exit_code == 1 and "no usable rows" in result.output
    assert "empty.fits" in result.output
    result, _ = _synth(tmp_path, "apogee", "--n", "2", "--labels-from",
                       str(tmp_path / "absent.fits"))
    assert result.exit_code == 2 and "does not exist" in result.output
