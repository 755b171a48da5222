import numpy as np
from astropy.table import Table
from click.testing import CliRunner

from starlearn import SpectrumSet, synth
from starlearn.cli import main


def run(args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_autoencode_train_reconstruct_evaluate_map(tmp_path):
    clean = synth.generate("pfs-mr", 260, seed=4, snr=None)
    clean[:220].write(tmp_path / "clean.h5")
    clean[220:].write(tmp_path / "test.h5")
    noisy = synth.generate("pfs-mr", 40, seed=5, snr=(10, 20))
    noisy.write(tmp_path / "noisy.h5")
    (tmp_path / "ae.toml").write_text("epochs = 8\n[model_config]\nhidden = [64, 32, 16]\n")
    out = run(["train", "--task", "autoencode", "--model", "dense-ae", "--latent", "8",
               "--data", tmp_path / "clean.h5", "--denoise", "--snr", "5:50",
               "--config", tmp_path / "ae.toml", "-o", tmp_path / "ae", "--quiet"])
    assert "denoising, latent 8" in out

    out = run(["reconstruct", tmp_path / "ae", tmp_path / "noisy.h5", "-o",
               tmp_path / "denoised.h5", "--quiet"])
    denoised = SpectrumSet.read(tmp_path / "denoised.h5")
    assert len(denoised) == 40 and denoised.n_pix == 4096
    assert {"chi2", "density", "odd"} <= set(denoised.meta.colnames)
    table = Table.read(tmp_path / "denoised.csv")
    assert {"id", "chi2", "odd", "z0", "z7"} <= set(table.colnames)

    out = run(["evaluate", tmp_path / "ae", tmp_path / "test.h5"])
    assert "denoising at S/N   10: gain" in out

    run(["latent-map", tmp_path / "ae", tmp_path / "test.h5", "--color", "teff",
         "--method", "pca", "-o", tmp_path / "map.png"])
    assert (tmp_path / "map.png").stat().st_size > 1000
    result = CliRunner().invoke(main, ["latent-map", str(tmp_path / "ae"),
                                       str(tmp_path / "test.h5"), "--color", "colour",
                                       "-o", str(tmp_path / "x.png")])
    assert result.exit_code != 0 and "neither a label" in result.output
    assert np.isfinite(denoised.flux).all()


def test_snr_without_denoise_is_refused(tmp_path):
    synth.generate("pfs-mr", 20, seed=1, snr=None).write(tmp_path / "c.h5")
    result = CliRunner().invoke(main, ["train", "--task", "autoencode", "--data",
                                       str(tmp_path / "c.h5"), "--snr", "10", "-o",
                                       str(tmp_path / "m")])
    assert result.exit_code != 0 and "--denoise" in result.output
