"""Inference engines: torch and ONNX Runtime agree, and the estimators can use either."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from starlearn.estimators import Regressor
from starlearn.infer import OnnxEngine, TorchEngine, export_onnx, make_engine, onnx_available
from starlearn.models import build_model

from .test_regression import toy_set

needs_onnx = pytest.mark.skipif(not onnx_available(), reason="onnxruntime not installed")


@needs_onnx
@pytest.mark.parametrize("name", ["starnet", "shallow-nn"])
def test_onnx_and_torch_engines_agree(name):
    torch.manual_seed(0)
    net = build_model(name, n_pix=300, n_labels=3)
    x = np.random.default_rng(0).normal(size=(70, 1, 300)).astype(np.float32)
    data = export_onnx(net, torch.as_tensor(x[:4]), output_names=["mean", "log_var"])
    ours = OnnxEngine(data, batch_size=32).run(x)  # batches of 32, 32 and 6
    ref = TorchEngine(net, "cpu", batch_size=64).run(x)
    assert len(ours) == len(ref) == 2
    for a, b in zip(ours, ref, strict=True):
        assert a.shape == b.shape == (70, 3)
        assert_allclose(a, b, atol=1e-4, rtol=1e-4)


@needs_onnx
def test_export_writes_a_file_the_engine_reads(tmp_path):
    net = build_model("shallow-cnn", n_pix=128, n_labels=2)
    x = torch.randn(3, 1, 128)
    export_onnx(net, x, tmp_path / "model.onnx")
    engine = make_engine(net, "onnx", onnx_path=tmp_path / "model.onnx")
    assert engine.name == "onnx"
    with torch.no_grad():
        mean = net(x)[0].numpy()
    assert_allclose(engine.run(x.numpy())[0], mean, atol=1e-4)


def test_unknown_engine_is_refused():
    net = build_model("shallow-nn", n_pix=64, n_labels=1)
    with pytest.raises(ValueError, match="engine must be one of"):
        make_engine(net, "tensorrt")
    with pytest.raises(ValueError, match="engine must be one of"):
        Regressor("starnet", engine="tpu").fit(toy_set(n=50))


def test_empty_input_is_refused():
    net = build_model("shallow-nn", n_pix=64, n_labels=1)
    with pytest.raises(ValueError, match="no input spectra"):
        TorchEngine(net).run(np.zeros((0, 1, 64), np.float32))


@needs_onnx
def test_regressor_predicts_the_same_with_either_engine():
    train, test = toy_set(n=300).split((0.8, 0.2), seed=1)
    reg = Regressor("starnet", epochs=3, progress=False, mc_samples=3, engine="torch").fit(train)
    by_torch = reg.predict(test)
    reg.engine = "onnx"
    by_onnx = reg.predict(test)
    assert reg.engine_.name == "onnx"
    for column in ("a", "a_err", "b", "b_err"):
        assert_allclose(np.asarray(by_onnx[column]), np.asarray(by_torch[column]),
                        rtol=1e-3, atol=1e-4)
    assert np.array_equal(np.asarray(by_onnx["flags"]), np.asarray(by_torch["flags"]))


@needs_onnx
def test_export_command_writes_a_checked_onnx_file_that_predict_uses(tmp_path):
    from click.testing import CliRunner

    import starlearn as sl
    from starlearn.cli import main

    train, test = toy_set(n=200).split((0.8, 0.2), seed=1)
    Regressor("starnet", epochs=2, progress=False, mc_samples=2,
              engine="onnx").fit(train).save(tmp_path / "m")
    result = CliRunner().invoke(main, ["export", str(tmp_path / "m"), "--onnx"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m" / "model.onnx").exists()
    model = sl.load(tmp_path / "m")
    table = model.predict(test)
    assert model.engine_.name == "onnx"
    model.engine = "torch"
    assert np.allclose(model.predict(test)["a"], table["a"], atol=1e-4)
    # a stale export (weights changed since) is ignored with a warning
    Regressor("starnet", epochs=1, progress=False, seed=5).fit(train).save(tmp_path / "m")
    stale = sl.load(tmp_path / "m")
    stale.engine = "onnx"
    with pytest.warns(UserWarning, match="does not match the weights"):
        stale.predict(test)


@needs_onnx
def test_int8_export_for_a_classifier_keeps_its_answers(tmp_path):
    from click.testing import CliRunner

    import starlearn as sl
    from starlearn.cli import main
    from starlearn.estimators import Classifier
    from starlearn.preprocess import LineWindow
    from starlearn.synth import generate

    spectra = generate("ondrejov-halpha", 400, seed=6, snr=(40, 120),
                       class_fractions=(0.4, 0.4, 0.2))
    Classifier(preprocess=LineWindow(), epochs=8, progress=False,
               model_config={"blocks": [[8, 8], [16, 16]], "dense": [32], "dropout": 0.0}
               ).fit(spectra[:300]).save(tmp_path / "clf")
    spectra[:200].write(tmp_path / "calib.h5")
    result = CliRunner().invoke(main, ["export", str(tmp_path / "clf"), "--onnx", "--int8",
                                       "--calibration", str(tmp_path / "calib.h5")])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "model.int8.onnx written" in result.output
    model = sl.load(tmp_path / "clf")
    fp32 = model.predict_proba(spectra[300:])
    model.engine = "onnx-int8"
    int8 = model.predict_proba(spectra[300:])
    assert model.engine_.name == "onnx-int8"
    assert np.abs(int8 - fp32).max() < 0.1
    assert np.mean(int8.argmax(1) == fp32.argmax(1)) > 0.95
    result = CliRunner().invoke(main, ["export", str(tmp_path / "clf"), "--onnx", "--int8"])
    assert result.exit_code != 0 and "--calibration" in result.output


@needs_onnx
def test_onnx_export_carries_what_a_user_needs_without_starlearn(tmp_path):
    """model.onnx names its labels and their units, the grid, the outputs and their
    meaning, the starlearn version and the weights' SHA-256 (ONNX metadata_props)."""
    import json

    import onnx
    import onnxruntime as ort

    from starlearn.artifact import sha256_file

    train = toy_set(n=200)
    model = Regressor("shallow-nn", epochs=2, progress=False, engine="torch",
                      labels=["a", "b"], model_config={"hidden": [16]}).fit(train)
    model.save(tmp_path / "m")
    out = model.export_onnx(tmp_path / "m")
    meta = ort.InferenceSession(str(out["onnx"])).get_modelmeta().custom_metadata_map
    assert meta == {p.key: p.value for p in onnx.load(out["onnx"]).metadata_props}
    assert json.loads(meta["labels"]) == ["a", "b"]
    assert json.loads(meta["label_units"]) == ["", ""]  # unknown to starlearn: no unit
    assert json.loads(meta["outputs"]) == ["mean", "log_var", "features", "label",
                                           "label_err"]
    assert "label_std" in meta["output_mean"] and "output_features" in meta
    assert "noise_scale" in meta["output_label_err"]
    assert_allclose(json.loads(meta["scatter"]), model.scatter_)
    # the graph alone gives the labels in their units and their calibrated errors
    x = model.network_input(train[:20])
    outputs = ort.InferenceSession(str(out["onnx"])).run(None, {"x": x})
    pred = model._predict_arrays(train[:20], mc=False)
    assert_allclose(outputs[3], pred["mean"], rtol=1e-4, atol=1e-4)
    assert_allclose(outputs[4], model._total_error(pred["err_stat"], np.zeros(20)),
                    rtol=1e-4, atol=1e-5)
    table = model.predict(train[:20])
    assert np.all(outputs[4][:, 0] <= np.asarray(table["a_err"]) * (1 + 1e-5))
    assert int(meta["n_pix"]) == 256 and meta["wave_spacing"] == "log-uniform"
    assert_allclose([float(meta["wave_min"]), float(meta["wave_max"])], [5000.0, 5300.0])
    assert_allclose(json.loads(meta["label_std"]), model.label_std_)
    assert meta["weights_sha256"] == sha256_file(tmp_path / "m" / "weights.safetensors")
    from importlib.metadata import version

    assert meta["starlearn_version"] == version("starlearn")
    assert meta["estimator"] == "starlearn.estimators.Regressor" and meta["task"] == "regress"
    # the outputs themselves are unchanged, and the loaded model still uses the file
    loaded = __import__("starlearn").load(tmp_path / "m")
    loaded.engine = "onnx"
    assert_allclose(np.asarray(loaded.predict(train[:20])["a"]),
                    np.asarray(model.predict(train[:20])["a"]), atol=1e-3)


@needs_onnx
def test_onnx_export_of_a_classifier_names_its_classes_and_a_known_label_its_unit(tmp_path):
    import json

    import onnxruntime as ort

    from starlearn.estimators import Classifier
    from starlearn.preprocess import LineWindow
    from starlearn.synth import generate

    spectra = generate("ondrejov-halpha", 120, seed=6, snr=(40, 120),
                       class_fractions=(0.4, 0.4, 0.2))
    Classifier(preprocess=LineWindow(), epochs=1, progress=False,
               model_config={"blocks": [[4], [8]], "dense": [8], "dropout": 0.0}
               ).fit(spectra).save(tmp_path / "clf")
    clf = __import__("starlearn").load(tmp_path / "clf")
    meta = ort.InferenceSession(str(clf.export_onnx(tmp_path / "clf")["onnx"])
                                ).get_modelmeta().custom_metadata_map
    assert json.loads(meta["classes"]) == list(clf.classes_)
    assert json.loads(meta["outputs"]) == ["proba", "features"]
    assert "classes" in meta["output_proba"] and "labels" not in meta
    assert json.loads(meta["preprocess"])["type"] == "LineWindow"

    lamost = generate("lamost", 80, seed=1)
    reg = Regressor("shallow-nn", ["teff", "logg", "fe_h"], epochs=1, progress=False,
                    engine="torch", model_config={"hidden": [8]}).fit(lamost)
    reg.save(tmp_path / "reg")
    meta = ort.InferenceSession(str(reg.export_onnx(tmp_path / "reg")["onnx"])
                                ).get_modelmeta().custom_metadata_map
    assert json.loads(meta["label_units"]) == ["K", "dex", "dex"]
    assert int(meta["n_pix"]) == 3909 and abs(float(meta["dlog10"]) - 1e-4) < 1e-12
