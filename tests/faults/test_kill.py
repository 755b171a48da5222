"""kill -9 at random points of predict, ingest and train: nothing lost, nothing twice, no
half file under a final name, no temporary file left once the next run has gone."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import starlearn as sl
from starlearn.jobs.archive import read_catalogue

from .conftest import N_GOOD, cli


def _start(*args):
    return subprocess.Popen([sys.executable, "-m", "starlearn.cli", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _kill_after(proc, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _leftovers(folder):
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp"))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_predict_killed_anywhere_resumes_with_each_input_once(lamost_model, bad_archive,
                                                              tmp_path, seed):
    folder, _ = bad_archive
    out = tmp_path / "cat.parquet"
    args = ["predict", str(lamost_model), str(folder), "-o", str(out), "--quiet",
            "--part-size", "2", "--engine", "torch"]
    # the first seconds go to starting Python and loading the model: kill anywhere in
    # the first ~6 s (before, during or after the parts)
    _kill_after(_start(*args), float(np.random.default_rng(seed).uniform(1.0, 6.0)))
    parts = out.with_name(out.name + ".parts")
    resumed = cli(*args, "--resume") if parts.exists() else cli(*args, "--overwrite")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    table = read_catalogue(out)
    assert len(table) == N_GOOD and len(set(table["file"])) == N_GOOD
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("seed", [0, 1])
def test_ingest_killed_leaves_no_half_data_set(bad_archive, tmp_path, seed):
    folder, _ = bad_archive
    out = tmp_path / "set.h5"
    args = ["ingest", str(folder), "-o", str(out), "--grid", "lamost", "--quiet"]
    _kill_after(_start(*args), float(np.random.default_rng(seed).uniform(1.0, 4.0)))
    if out.exists():  # the kill came after the rename: the file is whole
        assert len(sl.SpectrumSet.read(out)) == N_GOOD
        args.append("--overwrite")
    again = cli(*args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(sl.SpectrumSet.read(out)) == N_GOOD
    assert _leftovers(tmp_path) == []  # the killed run's temporary file is gone too


def test_stale_temporary_files_are_removed_by_the_next_write(tmp_path):
    from starlearn._atomic import atomic_write, temporary_name

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    target = tmp_path / "cat.parquet"
    live = temporary_name(target)
    stale = live.with_name(live.name.replace(f".{os.getpid()}.",
                                             f".{dead.pid}."))
    stale.write_bytes(b"x" * 1000)
    other_host = tmp_path / ".cat.parquet.otherhost.1.tmp"
    other_host.write_bytes(b"y")
    atomic_write(target, lambda p: p.write_text("ok"))
    assert target.read_text() == "ok"
    assert not stale.exists() and other_host.exists()  # another host's file is not ours

    def failing(p):
        p.write_text("half")
        raise OSError(28, "No space left on device", str(p))

    with pytest.raises(OSError):
        atomic_write(tmp_path / "b.csv", failing)
    assert not (tmp_path / "b.csv").exists()
    assert _leftovers(tmp_path) == [other_host.name]


def test_train_killed_then_resumed_gives_a_whole_model(tmp_path):
    sl.synth.generate("lamost", 400, seed=0).write(tmp_path / "t.h5")
    model = tmp_path / "m"
    args = ["train", "--model", "shallow-nn", "--data", str(tmp_path / "t.h5"), "--labels",
            "teff", "--epochs", "40", "--patience", "40", "--quiet", "-o", str(model)]
    proc = _start(*args)
    checkpoint = model.with_name("m.checkpoint")
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not model.exists() or (model / "weights.safetensors").exists()
    refused = cli(*args)
    if checkpoint.exists():
        assert refused.returncode != 0 and "--resume" in refused.stderr
    resumed = cli(*args, "--resume") if checkpoint.exists() else cli(*args)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    loaded = sl.load(model)
    assert np.all(np.isfinite(loaded.predict(sl.SpectrumSet.read(tmp_path / "t.h5")[:5])[
        "teff"]))
    assert not checkpoint.exists() and _leftovers(tmp_path) == []
    assert json.loads((model / "config.json").read_text())["task"] == "regress"
