import json
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table
from numpy.testing import assert_allclose

import starlearn as sl
from starlearn.artifact import SCHEMA_VERSION

DATA = Path(__file__).parent / "data"


def test_schema_v1_artifact_still_loads_and_predicts_the_same():
    """A model folder written by schema version 1, checked into tests/data."""
    model = sl.load(DATA / "artifact-v1")
    table = model.predict(sl.SpectrumSet.read(DATA / "artifact-v1-input.h5"))
    expected = Table.read(DATA / "artifact-v1-expected.ecsv")
    for column in ("depth", "depth_err", "flags"):
        # float32 outputs: to 1e-5 relative, and 1e-6 absolute for values near zero (a
        # depth of -0.003 differs in its last bits between BLAS and ONNX Runtime builds)
        assert_allclose(np.asarray(table[column]), np.asarray(expected[column]), rtol=1e-5,
                        atol=1e-6)
    config = json.loads((DATA / "artifact-v1" / "config.json").read_text())
    assert config["schema_version"] == 1 <= SCHEMA_VERSION


def test_unknown_schema_and_missing_config_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        sl.load(tmp_path)
    folder = tmp_path / "future"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(ValueError, match="schema version 99 is not supported"):
        sl.load(folder)
    (folder / "config.json").write_text(json.dumps({"schema_version": 1,
                                                    "class": "os.system"}))
    with pytest.raises(ValueError, match="names no starlearn estimator class"):
        sl.load(folder)


# --- damaged, incomplete and foreign model folders (issue 18) ------------------------------


def _small_set(n: int = 120, n_pix: int = 16, seed: int = 0) -> sl.SpectrumSet:
    rng = np.random.default_rng(seed)
    wave = np.linspace(5000.0, 5100.0, n_pix)
    depth = rng.uniform(0, 1, n)
    flux = (1 - 0.5 * depth[:, None] * np.exp(-0.5 * ((wave - 5050.0) / 10.0) ** 2)
            + rng.normal(0, 0.01, (n, n_pix)))
    return sl.SpectrumSet(wave=wave, flux=flux, ivar=np.full(flux.shape, 1e4),
                          labels=depth[:, None], label_names=["depth"])


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small regressor (a second to train) saved to a folder, and spectra for it."""
    from starlearn.estimators import Regressor

    spectra = _small_set()
    folder = tmp_path_factory.mktemp("saved") / "model"
    Regressor("shallow-nn", epochs=2, progress=False, seed=0, mc_samples=0,
              model_config={"hidden": [8]}).fit(spectra).save(folder)
    return folder, spectra[:5]


@pytest.fixture
def model(saved, tmp_path):
    """A fresh copy of the saved model folder, to damage."""
    import shutil

    return Path(shutil.copytree(saved[0], tmp_path / "model"))


def _config(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text())


def _write_config(folder: Path, config: object) -> None:
    (folder / "config.json").write_text(json.dumps(config))


def test_a_missing_weights_file_is_named_as_missing(model):
    (model / "weights.safetensors").unlink()
    with pytest.raises(FileNotFoundError) as info:
        sl.load(model)
    message = str(info.value)
    assert f"{model / 'weights.safetensors'}: missing" in message
    assert "incomplete" in message


@pytest.mark.parametrize("damage", ["half", "empty", "random", "header-only", "directory"])
def test_a_damaged_weights_file_is_named_as_damaged(model, damage):
    weights = model / "weights.safetensors"
    data = weights.read_bytes()
    if damage == "directory":
        weights.unlink()
        weights.mkdir()
    else:
        weights.write_bytes({"half": data[:len(data) // 2], "empty": b"",
                             "random": np.random.default_rng(1).bytes(len(data)),
                             "header-only": data[:-8]}[damage])
    with pytest.raises(ValueError, match="damaged") as info:
        sl.load(model)
    assert str(info.value).startswith(f"{weights}: damaged (")
    assert "copy" in str(info.value)


def test_non_finite_weights_are_named_as_damaged(model):
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(model / "weights.safetensors"))
    tensors["head.linear.bias"][:] = float("nan")
    save_file(tensors, str(model / "weights.safetensors"))
    with pytest.raises(ValueError, match=r"damaged \(tensor 'head.linear.bias' holds NaN"):
        sl.load(model)


@pytest.mark.parametrize("change", ["drop", "extra", "shape", "novelty-shape",
                                    "novelty-missing", "novelty-both-missing"])
def test_weights_that_do_not_fit_the_config_are_refused(model, change):
    import torch
    from safetensors.torch import load_file, save_file

    weights = model / "weights.safetensors"
    tensors = load_file(str(weights))
    if change == "drop":
        del tensors["body.0.weight"]
    elif change == "extra":
        tensors["body.9.weight"] = torch.zeros(3)
    elif change == "shape":
        tensors["body.0.weight"] = torch.zeros(4, 16)
    elif change == "novelty-shape":
        tensors["novelty.icov"] = torch.zeros(3, 2, dtype=torch.float64)
    elif change == "novelty-missing":
        del tensors["novelty.icov"]
    else:
        del tensors["novelty.icov"], tensors["novelty.mean"]
    save_file(tensors, str(weights))
    with pytest.raises(ValueError) as info:
        sl.load(model)
    assert str(info.value).startswith(f"{weights}: does not match {model / 'config.json'}")


@pytest.mark.parametrize("text", ["", "not json", '{"schema_version": 1, "class": ',
                                  "[1, 2, 3]", '"a string"', "null"])
def test_a_config_that_is_not_a_json_object_is_named_as_damaged(model, text):
    (model / "config.json").write_text(text)
    with pytest.raises(ValueError) as info:
        sl.load(model)
    assert str(info.value).startswith(f"{model / 'config.json'}: damaged (")


def test_a_config_of_binary_bytes_or_a_folder_is_named_as_damaged(model):
    config = model / "config.json"
    config.write_bytes(np.random.default_rng(2).bytes(300))
    with pytest.raises(ValueError, match="damaged") as info:
        sl.load(model)
    assert str(info.value).startswith(f"{config}: ")
    config.unlink()
    config.mkdir()
    with pytest.raises(ValueError) as info:
        sl.load(model)
    assert str(info.value).startswith(f"{config}: ")


@pytest.mark.parametrize("key", ["schema_version", "class", "task", "params", "network",
                                 "grid", "labels", "novelty",
                                 "network.name", "network.n_pix", "network.n_labels",
                                 "labels.mean", "grid.wave", "novelty.threshold"])
def test_a_config_missing_an_entry_is_named_as_damaged(model, key):
    config = _config(model)
    section, _, name = key.rpartition(".")
    del (config[section] if section else config)[name]
    _write_config(model, config)
    with pytest.raises(ValueError) as info:
        sl.load(model)
    message = str(info.value)
    assert message.startswith(f"{model / 'config.json'}: damaged (")
    assert repr(key) in message or repr(name) in message


@pytest.mark.parametrize("key, value", [("params", [1]), ("network", "x"),
                                        ("labels", {"names": 3}), ("grid", {"wave": "x"}),
                                        ("network", {"name": "no-such-net", "n_pix": 16,
                                                     "n_labels": 1})])
def test_a_config_with_wrong_values_is_named_as_damaged(model, key, value):
    config = _config(model)
    config[key] = value
    _write_config(model, config)
    with pytest.raises(ValueError) as info:
        sl.load(model)
    assert str(info.value).startswith(f"{model / 'config.json'}: ")


def test_a_config_with_an_unknown_parameter_is_refused(model):
    config = _config(model)
    config["params"]["colour"] = "blue"
    _write_config(model, config)
    with pytest.raises(ValueError, match="colour") as info:
        sl.load(model)
    assert str(info.value).startswith(f"{model / 'config.json'}: ")


@pytest.mark.parametrize("class_path", [
    "os.system", "builtins.dict", "builtins.eval", "starlearn.spectra.SpectrumSet",
    "starlearn.artifact.load", "starlearn.cli.main", "starlearn.estimators._common.SavedEstimator",
    "starlearn.estimators.base.NetworkEstimator", "starlearn.estimators._labels.LabelEstimator",
    "starlearn.no_such_module.Regressor", "starlearn.estimators", "starlearn.demo.Regressor",
    "starlearn.estimators.Regressor.load", 42, None, ["starlearn.estimators.Regressor"]])
def test_only_starlearn_estimators_are_loaded(model, monkeypatch, class_path):
    import os
    import sys

    calls = []
    monkeypatch.setattr(os, "system", lambda *a: calls.append(a))
    monkeypatch.delitem(sys.modules, "starlearn.demo", raising=False)
    monkeypatch.delitem(sys.modules, "starlearn.cli", raising=False)
    config = _config(model)
    config["class"] = class_path
    _write_config(model, config)
    with pytest.raises(ValueError, match="names no starlearn estimator class") as info:
        sl.load(model)
    assert str(info.value).startswith(f"{model / 'config.json'}: ")
    assert "starlearn.estimators.Regressor" in str(info.value)  # the known classes
    assert not calls
    assert "starlearn.demo" not in sys.modules and "starlearn.cli" not in sys.modules


def test_the_full_class_path_of_an_estimator_loads_too(model, saved):
    config = _config(model)
    config["class"] = "starlearn.estimators.regressor.Regressor"
    _write_config(model, config)
    assert_allclose(np.asarray(sl.load(model).predict(saved[1])["depth"]),
                    np.asarray(sl.load(saved[0]).predict(saved[1])["depth"]))


def test_a_model_of_another_task_is_refused_by_the_class_load(model):
    from starlearn.estimators import Classifier

    with pytest.raises(ValueError, match="not a 'classify' model"):
        Classifier.load(model)


def test_a_folder_that_does_not_exist_or_is_a_file_is_named(tmp_path, model):
    with pytest.raises(FileNotFoundError, match="does not exist") as info:
        sl.load(tmp_path / "nowhere")
    assert str(info.value).startswith(f"{tmp_path / 'nowhere'}: ")
    with pytest.raises(ValueError, match="is a file, not a model folder") as info:
        sl.load(model / "config.json")
    assert str(info.value).startswith(f"{model / 'config.json'}: ")


def test_the_estimator_class_load_reports_the_same_errors(model):
    from safetensors.torch import load_file, save_file

    from starlearn.estimators import Regressor

    tensors = load_file(str(model / "weights.safetensors"))
    del tensors["body.0.weight"]
    save_file(tensors, str(model / "weights.safetensors"))
    with pytest.raises(ValueError, match="does not match"):
        Regressor.load(model)
    config = _config(model)
    del config["network"]
    _write_config(model, config)
    with pytest.raises(ValueError, match=r"damaged \(no entry 'network'"):
        Regressor.load(model)


def test_a_damaged_metrics_file_is_named(model):
    (model / "metrics.json").write_text('{"rmse": ')
    with pytest.raises(ValueError) as info:
        sl.load(model)
    assert str(info.value).startswith(f"{model / 'metrics.json'}: damaged (")


@pytest.mark.parametrize("damage", ["truncated", "record-not-json", "record-a-list",
                                    "no-record", "record-only"])
def test_a_damaged_onnx_export_does_not_stop_the_model(model, saved, damage):
    """model.onnx is optional: a damaged one is ignored and the model predicts with torch."""
    import warnings

    from starlearn.artifact import onnx_file, write_onnx

    onnx = write_onnx(model, b"\x08\x07" + bytes(500))  # stands in for an export
    record = model / "model.onnx.json"
    if damage == "truncated":
        onnx.write_bytes(onnx.read_bytes()[:100])
    elif damage == "record-not-json":
        record.write_text('{"weights_sha256": "ab')
    elif damage == "record-a-list":
        record.write_text("[]")
    elif damage == "no-record":
        record.unlink()
    else:
        onnx.unlink()
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert onnx_file(model) is None
        loaded = sl.load(model)
        loaded.engine = "auto"
        table = loaded.predict(saved[1])
    assert loaded.engine_.name == "torch"
    expected = sl.load(saved[0]).predict(saved[1])
    assert_allclose(np.asarray(table["depth"]), np.asarray(expected["depth"]), rtol=1e-6)


# --- sharing model folders: file modes follow the umask, not safetensors' 0o600 -------------


@pytest.fixture
def umask():
    """Set the process umask for one test (``umask(0o022)``), restoring it afterwards."""
    import os

    old = os.umask(0o022)
    os.umask(old)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def _mode(path: Path) -> int:
    import stat

    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_model_folder_files_get_the_mode_of_the_umask(tmp_path, umask, mask, mode):
    import torch

    from starlearn.artifact import write_artifact, write_onnx

    umask(mask)
    folder = write_artifact(tmp_path / "model", config={"class": "x"},
                            tensors={"w": torch.ones(3)}, extra={"metrics.json": {"r": 1}})
    write_onnx(folder, b"\x08\x07" + bytes(50))
    for name in ("weights.safetensors", "config.json", "metrics.json", "model.onnx",
                 "model.onnx.json"):
        assert _mode(folder / name) == mode, name


def test_files_written_through_the_atomic_helper_get_the_mode_of_the_umask(tmp_path, umask):
    import torch
    from safetensors.torch import save_file

    from starlearn._atomic import atomic_write, file_mode

    umask(0o022)
    assert file_mode() == 0o644
    target = tmp_path / "checkpoint.safetensors"
    atomic_write(target, lambda tmp: save_file({"w": torch.ones(2)}, str(tmp)))
    assert _mode(target) == 0o644
    atomic_write(tmp_path / "plan.json", lambda tmp: tmp.write_text("{}"))
    assert _mode(tmp_path / "plan.json") == 0o644
    sl.SpectrumSet(wave=[1.0, 2.0], flux=[[1.0, 2.0]]).write(tmp_path / "set.h5")
    assert _mode(tmp_path / "set.h5") == 0o644
