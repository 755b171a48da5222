"""``starlearn predict --resample``: inputs on another wavelength grid than the model's."""

import warnings

import numpy as np
import pytest
from astropy.table import Table
from click.testing import CliRunner

from starlearn.cli import main
from starlearn.estimators import Regressor
from starlearn.spectra import SpectrumSet
from starlearn.synth import generate

from ..test_regression import toy_set


@pytest.fixture(scope="module")
def lamost(tmp_path_factory):
    """A tiny model trained on synthetic LAMOST spectra (3,909 pixels) and spectra cut at
    the red end (3,899 pixels, as many real LAMOST files are)."""
    root = tmp_path_factory.mktemp("predict")
    Regressor("shallow-nn", ["teff", "logg"], epochs=2, progress=False, engine="torch",
              model_config={"hidden": [16]}).fit(generate("lamost", 200, seed=1)).save(
        root / "model")
    s = generate("lamost", 20, seed=2, snr=(30, 100))
    SpectrumSet(wave=s.wave[:3899], flux=s.flux[:, :3899], ivar=s.ivar[:, :3899],
                mask=s.mask[:, :3899], ids=s.ids, meta=s.meta).write(root / "cut.h5")
    return root


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_predict_resamples_another_grid_by_default_and_says_so(lamost, tmp_path):
    out = tmp_path / "cat.fits"
    result = invoke("predict", lamost / "model", lamost / "cut.h5", "-o", out, "--quiet")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "resampled onto" in line]
    assert len(lines) == 2  # one warning line and the summary's count
    assert lines[0].startswith("Warning: 20 spectra") and "3899 pixels" in lines[0]
    assert "20 resampled onto the model's grid" in lines[1]
    table = Table.read(out)
    assert len(table) == 20 and not np.any(table["flags"] & 4)


def test_predict_never_refuses_and_a_failed_run_leaves_nothing_in_the_way(lamost, tmp_path):
    out = tmp_path / "cat.parquet"
    args = ("predict", lamost / "model", lamost / "cut.h5", "-o", out, "--quiet",
            "--resample", "never")
    for _ in range(2):
        result = invoke(*args)
        assert result.exit_code == 1 and "another wavelength grid" in result.output
        assert "earlier run" not in result.output and "exists" not in result.output
        assert not out.exists() and not out.with_name(out.name + ".parts").exists()
    assert "--resample" in invoke("predict", "--help").output
    assert invoke(*args[:-1], "sometimes").exit_code == 2


def test_auto_refuses_much_coarser_spectra_and_always_resamples_them():
    train = toy_set(n=120)
    model = Regressor("shallow-nn", epochs=1, progress=False, engine="torch",
                      model_config={"hidden": [8]}).fit(train)
    coarse = toy_set(n=5, n_pix=200)  # the same range in 200 pixels, not 256
    with pytest.raises(ValueError, match="another wavelength grid"):
        model.predict(coarse)  # the library's default is "never"
    with pytest.raises(ValueError, match=r"1\.28 times as wide.*--resample always"):
        model.prepare_inputs(coarse, resample="auto")
    short = toy_set(n=5).replace(wave=np.geomspace(5000.0, 5100.0, 256))
    with pytest.raises(ValueError, match="cover only 34%"):
        model.prepare_inputs(short, resample="auto")
    with pytest.warns(UserWarning, match="resampled onto the model's grid"):
        ready = model.prepare_inputs(coarse, resample="always")
    assert ready.n_pix == 256 and np.allclose(ready.wave, model.wave_)
    model.resample = "always"  # what predict follows, as --resample sets it
    with pytest.warns(UserWarning, match="resample='always'"):
        table = model.predict(short)
    assert np.all(table["flags"] & 4)  # two thirds uncovered: min_usable decides
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # on the model's grid: nothing to say
        model.predict(train[:3])
    with pytest.raises(ValueError, match="resample must be"):
        model.prepare_inputs(coarse, resample="sometimes")
