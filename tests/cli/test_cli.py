import json

import h5py
import numpy as np
from click.testing import CliRunner

from starlearn import SpectrumSet
from starlearn.cli import main
from starlearn.cli._options import parse_range


def test_parse_range():
    assert parse_range("20:200", name="--snr") == (20.0, 200.0)
    assert parse_range("50", name="--snr") == 50.0
    assert parse_range("none", name="--snr") is None


def test_synth_command_writes_a_dataset_with_provenance(tmp_path):
    out = tmp_path / "apogee.h5"
    args = ["synth", "apogee", "--n", "5", "--seed", "3", "--snr", "50:100", "-o", str(out),
            "--quiet"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "wrote 5 apogee spectra" in result.output
    s = SpectrumSet.read(out)
    assert len(s) == 5 and s.n_pix == 8575
    assert {"teff", "logg", "fe_h"} <= set(s.label_names)
    assert np.all((s.meta["snr"] >= 50) & (s.meta["snr"] <= 100))
    with h5py.File(out) as f:
        record = json.loads(f.attrs["provenance"])
    assert record["config"]["seed"] == 3 and "numpy" in record["versions"]
    again = tmp_path / "again.h5"
    CliRunner().invoke(main, [*args[:-3], "-o", str(again), "--quiet"])
    np.testing.assert_array_equal(SpectrumSet.read(again).flux, s.flux)

    info = CliRunner().invoke(main, ["info", str(out)])
    assert info.exit_code == 0 and "5 spectra x 8575 pixels" in info.output
    assert "label      teff" in info.output


def test_synth_refuses_to_overwrite_and_bad_ranges(tmp_path):
    out = tmp_path / "x.h5"
    out.write_text("")
    result = CliRunner().invoke(main, ["synth", "lamost", "--n", "2", "-o", str(out)])
    assert result.exit_code != 0 and "exists" in result.output
    result = CliRunner().invoke(main, ["synth", "lamost", "--n", "2", "--snr", "90:10",
                                       "-o", str(tmp_path / "y.h5")])
    assert result.exit_code != 0 and "LO <= HI" in result.output
    result = CliRunner().invoke(main, ["synth", "gaia", "-o", str(tmp_path / "z.h5")])
    assert result.exit_code != 0 and "gaia" in result.output
