"""Models meet real spectra: a model trained on ``starlearn synth lamost`` predicts every
real LAMOST sample in ../shared/data/fits-samples/lamost, including the files cut at the
red end (3,899 pixels, 3,700-9,078 A, against the model's 3,909), which it resamples."""

from pathlib import Path

import numpy as np
import pytest

from starlearn.estimators import Regressor
from starlearn.jobs.archive import read_catalogue, run_archive
from starlearn.preprocess import RunningPercentileContinuum
from starlearn.synth import generate

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "data" / "fits-samples" / "lamost"

pytestmark = [pytest.mark.realdata,
              pytest.mark.skipif(not SAMPLES.exists(), reason="shared sample files not present"),
              pytest.mark.filterwarnings("ignore::astropy.io.fits.verify.VerifyWarning"),
              pytest.mark.filterwarnings("ignore::starlearn.io.ReadWarning")]


def test_a_synth_lamost_model_predicts_every_real_lamost_sample(tmp_path):
    files = sorted(SAMPLES.glob("*.fits"))
    assert len(files) == 16
    # continuum-normalised inside the model: real spectra are flux-calibrated
    Regressor("shallow-nn", ["teff", "logg", "fe_h"], epochs=2, progress=False,
              engine="torch", preprocess=RunningPercentileContinuum(),
              model_config={"hidden": [16]}).fit(generate("lamost", 200, seed=1)).save(
        tmp_path / "model")
    out = tmp_path / "labels.fits"
    with pytest.warns(UserWarning, match="resampled onto the model's grid"):
        summary = run_archive(tmp_path / "model", [SAMPLES], out, progress=False,
                              command=["starlearn", "predict"])
    assert summary.rejects is None and summary.rejected == 0, summary
    assert summary.spectra == 16 and summary.not_predicted == 0
    assert summary.resampled == {"3899 pixels, 3700.0-9078.2 A": 7}  # the 3,909 are as is
    table = read_catalogue(out)
    assert len(table) == 16 and len(set(table["file"])) == 16
    assert not np.any(table["flags"] & 4)
    assert np.all(np.isfinite(table["ra"])) and np.all(np.isfinite(table["dec"]))
    assert np.all(table["mjd"] > 55_000) and str(table["ra"].unit) == "deg"
    # whatever is not masked (bits 8, 16) is a number in the physical range, with a unit
    shown = np.isfinite(table["teff"])
    assert np.all((table["teff"][shown] > 2000) & (table["teff"][shown] < 60_000))
    assert str(table["teff"].unit) == "K" and str(table["logg"].unit) == "dex"


@pytest.mark.parametrize(("preset", "folders", "n_files"), [
    ("apogee", ["apogee"], 9),  # apStar DR17, apVisit r13, aspcapStar r6: onto the apStar grid
    ("segue", ["sdss-spec", "sdss-spec-dr9", "sdss-spspec-dr7"], 7),  # DR7 to DR17 files
])
def test_a_synth_model_of_each_preset_predicts_its_real_samples(tmp_path, preset, folders,
                                                                n_files):
    root = SAMPLES.parent
    Regressor("shallow-nn", ["teff", "logg", "fe_h"], epochs=1, progress=False,
              engine="torch", preprocess=RunningPercentileContinuum(),
              model_config={"hidden": [8]}).fit(generate(preset, 100, seed=1)).save(
        tmp_path / "model")
    out = tmp_path / "labels.parquet"
    with pytest.warns(UserWarning, match="resampled onto the model's grid"):
        summary = run_archive(tmp_path / "model", [root / f for f in folders], out,
                              progress=False, command=["starlearn", "predict"])
    assert summary.rejected == 0 and summary.spectra == n_files, summary
    assert summary.not_predicted == 0
    table = read_catalogue(out)
    assert len(set(table["file"])) == n_files and str(table["teff"].unit) == "K"


def test_a_coarser_real_grid_is_refused_with_the_way_out(tmp_path):
    """The DR10 apVisit (6,144 pixels 1.26 times as wide as the apStar grid's) is not
    upsampled silently: the reason and --resample always are named."""
    from starlearn.errors import NothingPredictedError

    Regressor("shallow-nn", ["teff"], epochs=1, progress=False, engine="torch",
              model_config={"hidden": [4]}).fit(generate("apogee", 60, seed=2)).save(
        tmp_path / "model")
    with pytest.raises(NothingPredictedError, match="1.26 times as wide.*--resample always"):
        run_archive(tmp_path / "model", [SAMPLES.parent / "apogee-apvisit"],
                    tmp_path / "x.fits", progress=False)
