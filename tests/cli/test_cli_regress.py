import json

import numpy as np
import pytest
from astropy.table import Table
from click.testing import CliRunner

from starlearn.cli import main

from ..test_regression import toy_set


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    train, test = toy_set(n=500).split((0.8, 0.2), seed=0)
    train.write(folder / "train.h5")
    test.write(folder / "test.h5")
    return folder


def run(args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_train_predict_evaluate_saliency(files, tmp_path):
    config = tmp_path / "options.toml"
    config.write_text("epochs = 15\nmc_samples = 4\nbatch_size = 32\n")
    out = run(["train", "--task", "regress", "--model", "shallow-nn", "--data",
               files / "train.h5", "--labels", "a,b", "-o", tmp_path / "model",
               "--config", config, "--lr", "2e-3", "--quiet"])
    assert "held-out calibration" in out and "z spread" in out
    saved = json.loads((tmp_path / "model" / "config.json").read_text())
    assert saved["params"]["epochs"] == 15 and saved["params"]["lr"] == 2e-3
    assert saved["params"]["batch_size"] == 32
    # the network is exported beside the weights, so predict runs ONNX from the start
    import starlearn as sl

    assert (tmp_path / "model" / "model.onnx").exists()
    loaded = sl.load(tmp_path / "model")
    loaded.predict(files / "test.h5")
    assert loaded.engine_.name == "onnx"

    run(["predict", tmp_path / "model", files / "test.h5", "-o", tmp_path / "pred.csv",
         "--quiet"])
    table = Table.read(tmp_path / "pred.csv")
    assert {"id", "a", "a_err", "b", "b_err", "flags"} <= set(table.colnames)
    assert len(table) == 100

    out = run(["evaluate", tmp_path / "model", files / "test.h5", "--json",
               tmp_path / "m.json", "--plots", tmp_path / "plots"])
    assert "robust" in out or "rσ" in out
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["metrics"]["a"]["r2"] > 0.8
    assert (tmp_path / "plots" / "residuals.png").exists()

    run(["saliency", tmp_path / "model", files / "test.h5", "-o", tmp_path / "sal.png"])
    assert (tmp_path / "sal.png").exists()
    assert np.load(tmp_path / "sal.npy").shape == (2, 256)


def test_compare_prints_the_table(files, tmp_path):
    out = run(["compare", "--train", files / "train.h5", "--test", files / "test.h5",
               "--labels", "a", "--models", "shallow-nn,cannon", "--epochs", "10",
               "--json", tmp_path / "t.json", "--quiet"])
    assert "shallow-nn" in out and "cannon" in out and "train s" in out
    assert set(json.loads((tmp_path / "t.json").read_text())) == {"shallow-nn", "cannon"}


def test_predict_refuses_another_grid_with_a_clear_message(files, tmp_path):
    run(["train", "--model", "cannon", "--data", files / "train.h5", "--labels", "a",
         "-o", tmp_path / "cannon", "--quiet"])
    other = toy_set(n=10, n_pix=200)
    other.write(tmp_path / "other.h5")
    result = CliRunner().invoke(main, ["predict", str(tmp_path / "cannon"),
                                       str(tmp_path / "other.h5"), "-o",
                                       str(tmp_path / "x.csv")])
    assert result.exit_code == 1
    assert "Error: " in result.output and "another wavelength grid" in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_demo_quick(tmp_path):
    out = run(["demo", "--quick", "--quiet", "-o", tmp_path / "demo"])
    assert "starnet" in out and "cannon" in out and "calibration" in out
    for name in ("results.json", "saliency.png", "spectra.png",
                 "eval-starnet/residuals.png", "model-starnet/config.json"):
        assert (tmp_path / "demo" / name).exists(), name
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    for name in ("teff", "logg", "fe_h"):  # StarNet learns: r2 well above 0
        assert results["results"]["starnet"]["metrics"][name]["r2"] > 0.5


@pytest.mark.parametrize("text, words", [
    ("epochz = 3\n", ["epochz", "unknown", "known:", "epochs"]),
    ('labels = "a,b"\n', ["labels", "list of names"]),
    ("epochs = \n", ["not a valid TOML"]),
])
def test_a_bad_config_is_a_clear_error_before_training(files, tmp_path, text, words):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    result = CliRunner().invoke(main, ["train", "--data", str(files / "train.h5"), "-o",
                                       str(tmp_path / "m"), "--config", str(config),
                                       "--quiet"])
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # no traceback
    for word in words:
        assert word in result.output, result.output
    assert not (tmp_path / "m").exists()


def test_any_estimator_parameter_through_param(files, tmp_path):
    run(["train", "--model", "shallow-nn", "--data", files / "train.h5", "--labels", "a",
         "-o", tmp_path / "m", "--epochs", "1", "--quiet",
         "--param", "weight_decay=1e-4", "--param", 'model_config={hidden = [16]}',
         "--param", "min_usable=0.3"])
    params = json.loads((tmp_path / "m" / "config.json").read_text())["params"]
    assert params["weight_decay"] == 1e-4 and params["min_usable"] == 0.3
    assert params["model_config"] == {"hidden": [16]}
    result = CliRunner().invoke(main, ["train", "--data", str(files / "train.h5"), "-o",
                                       str(tmp_path / "m2"), "--param", "colour=blue"])
    assert result.exit_code != 0 and "colour" in result.output
