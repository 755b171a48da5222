"""Training checkpoints: an interrupted training resumes exactly; other trainings refused."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from numpy.testing import assert_array_equal

import starlearn as sl
from starlearn import synth
from starlearn.cli import main
from starlearn.estimators import Autoencoder, Classifier, Regressor


class Interrupt(Exception):
    pass


def _interrupt_at(epoch):
    def callback(e, row):
        if e == epoch:
            raise Interrupt  # as a kill during this epoch: its checkpoint is not written
    return callback


@pytest.fixture(scope="module")
def spectra():
    return synth.generate("lamost", 120, seed=4, snr=(30, 100))


def _estimators():
    return [
        lambda: Regressor("shallow-nn", ["teff", "logg"], epochs=4, progress=False,
                          engine="torch", mc_samples=0, model_config={"hidden": [32, 16]},
                          augment_noise=0.5),
        lambda: Autoencoder("dense-ae", 8, denoise=True, snr=(10, 50), epochs=4,
                            model_config={"hidden": [64, 32, 16]}, progress=False),
    ]


@pytest.mark.parametrize("make", _estimators(), ids=["regressor", "autoencoder"])
def test_interrupted_training_resumes_to_the_same_model(make, spectra, tmp_path):
    whole = make().fit(spectra)
    assert len(whole.history_) == 4
    ckpt = tmp_path / "run.checkpoint"
    first = make()
    with pytest.raises(Interrupt):
        first.fit(spectra, checkpoint=ckpt, callbacks=[_interrupt_at(2)])
    assert ckpt.exists()
    resumed = make().fit(spectra, checkpoint=ckpt)
    # the same steps as the uninterrupted training: weights and losses identical
    for (name, a), (_, b) in zip(whole.module_.state_dict().items(),
                                 resumed.module_.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    strip = [{k: v for k, v in row.items() if k != "seconds"} for row in whole.history_]
    assert [{k: v for k, v in row.items() if k != "seconds"}
            for row in resumed.history_] == strip
    # a finished training's checkpoint resumes to the end at once
    again = make().fit(spectra, checkpoint=ckpt)
    assert len(again.history_) == 4
    assert torch.equal(next(iter(again.module_.state_dict().values())),
                       next(iter(whole.module_.state_dict().values())))


def test_classifier_resumes_too(tmp_path):
    data = synth.generate("ondrejov-halpha", 90, seed=2, snr=(30, 100),
                          class_fractions=(0.4, 0.4, 0.2))

    def make():
        return Classifier(model_config={"blocks": [[8]], "dense": [16]}, epochs=3,
                          progress=False)

    whole = make().fit(data)
    first = make()
    with pytest.raises(Interrupt):
        first.fit(data, checkpoint=tmp_path / "c.checkpoint", callbacks=[_interrupt_at(1)])
    resumed = make().fit(data, checkpoint=tmp_path / "c.checkpoint")
    assert_array_equal(resumed.predict(data[:20])["probability"],
                       whole.predict(data[:20])["probability"])


def test_checkpoint_of_another_training_is_refused(spectra, tmp_path):
    ckpt = tmp_path / "run.checkpoint"
    first = Regressor("shallow-nn", ["teff"], epochs=3, progress=False,
                      model_config={"hidden": [16]})
    with pytest.raises(Interrupt):
        first.fit(spectra, checkpoint=ckpt, callbacks=[_interrupt_at(1)])
    other = Regressor("shallow-nn", ["teff"], epochs=3, progress=False, lr=3e-3,
                      model_config={"hidden": [16]})
    with pytest.raises(ValueError, match="run.checkpoint: the checkpoint is of another "
                                         "training"):
        other.fit(spectra, checkpoint=ckpt)
    with pytest.raises(ValueError, match="another training"):
        Regressor("shallow-nn", ["teff"], epochs=3, progress=False,
                  model_config={"hidden": [16]}).fit(spectra[:100], checkpoint=ckpt)
    # more epochs is the same training, continued
    longer = Regressor("shallow-nn", ["teff"], epochs=5, progress=False,
                       model_config={"hidden": [16]}).fit(spectra, checkpoint=ckpt)
    assert len(longer.history_) == 5
    (tmp_path / "junk.checkpoint").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.checkpoint: not a readable training"):
        Regressor("shallow-nn", ["teff"], epochs=3, progress=False,
                  model_config={"hidden": [16]}).fit(spectra,
                                                     checkpoint=tmp_path / "junk.checkpoint")


@pytest.mark.slow
def test_cli_training_killed_and_resumed(spectra, tmp_path):
    data = tmp_path / "train.h5"
    spectra.write(data)
    out = tmp_path / "model"
    ckpt = tmp_path / "model.checkpoint"
    args = ["train", "--data", str(data), "--model", "shallow-nn", "--labels", "teff,logg",
            "-o", str(out), "--quiet"]
    proc = subprocess.Popen([sys.executable, "-m", "starlearn.cli", *args, "--epochs", "5000",
                             "--patience", "5000"], env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)  # a few more epochs, then kill -9 mid-run
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ckpt.exists() and not out.exists()
    refused = CliRunner().invoke(main, [*args, "--epochs", "3"])
    assert refused.exit_code != 0 and "--resume" in refused.output
    from safetensors import safe_open

    with safe_open(str(ckpt), framework="pt") as f:
        done = json.loads(f.metadata()["starlearn_checkpoint"])["epoch"]
    resumed = CliRunner().invoke(main, [*args, "--epochs", str(done + 3), "--patience",
                                        "5000", "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert not ckpt.exists()
    history = np.genfromtxt(out / "history.csv", delimiter=",", names=True)
    assert list(history["epoch"]) == list(range(done + 3))  # nothing lost, nothing twice
    assert np.isfinite(sl.load(out).predict(spectra[:5])["teff"]).all()
