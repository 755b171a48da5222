"""Two runs on one output, resuming with another model, training into an existing folder."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from starlearn._lock import LockedError, lock_path, output_lock
from starlearn.cli import main
from starlearn.jobs.archive import read_catalogue

from .conftest import N_GOOD, cli


def _hold(path, pid):
    lock_path(path).write_text(json.dumps({"host": socket.gethostname(), "pid": pid,
                                           "started": time.time(), "command": "starlearn x"}))


def test_lock_refuses_a_live_owner_and_replaces_a_dead_one(tmp_path):
    target = tmp_path / "out.parquet"
    with output_lock(target):
        with pytest.raises(LockedError, match=f"process {os.getpid()}"), output_lock(target):
            pass
    assert not lock_path(target).exists()  # released
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _hold(target, dead.pid)
    with output_lock(target):  # stale: its process has gone
        assert json.loads(lock_path(target).read_text())["pid"] == os.getpid()


def test_second_predict_on_one_output_stops_at_once(lamost_model, bad_archive, tmp_path):
    folder, _ = bad_archive
    out = tmp_path / "cat.parquet"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _hold(out, sleeper.pid)  # a live run holds the output
        t0 = time.perf_counter()
        result = CliRunner().invoke(main, ["predict", str(lamost_model), str(folder), "-o",
                                           str(out), "--quiet"])
        assert result.exit_code == 1
        assert "in use by another starlearn run" in result.output
        assert str(sleeper.pid) in result.output
        assert time.perf_counter() - t0 < 10 and not out.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    # once the owner has gone the lock is stale and the run goes through
    result = CliRunner().invoke(main, ["predict", str(lamost_model), str(folder), "-o",
                                       str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert len(read_catalogue(out)) == N_GOOD


def test_two_real_predict_processes_on_one_output(lamost_model, bad_archive, tmp_path):
    folder, _ = bad_archive
    out = tmp_path / "cat.parquet"
    args = ["predict", str(lamost_model), str(folder), "-o", str(out), "--quiet",
            "--part-size", "1", "--engine", "torch"]
    first = subprocess.Popen([sys.executable, "-m", "starlearn.cli", *args],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not lock_path(out).exists() and time.time() < deadline:
        time.sleep(0.01)
    second = cli(*args)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err[-2000:]
    assert second.returncode == 1 and "in use by another starlearn run" in second.stderr
    assert len(read_catalogue(out)) == N_GOOD


def test_resume_with_other_weights_is_refused(lamost_model, other_model, bad_archive,
                                              tmp_path):
    folder, _ = bad_archive
    out = tmp_path / "cat.parquet"
    runner = CliRunner()
    first = runner.invoke(main, ["predict", str(lamost_model), str(folder), "-o", str(out),
                                 "--quiet", "--keep-parts", "--part-size", "3"])
    assert first.exit_code == 0, first.output
    manifest = out.with_name(out.name + ".parts") / "manifest.jsonl"
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join(lines[:2]) + "\n")  # as if killed after two parts
    out.unlink()
    other = runner.invoke(main, ["predict", str(other_model), str(folder), "-o", str(out),
                                 "--quiet", "--resume", "--part-size", "3"])
    assert other.exit_code == 1 and "another model" in other.output
    assert "weights" in other.output and not out.exists()
    options = runner.invoke(main, ["predict", str(lamost_model), str(folder), "-o", str(out),
                                   "--quiet", "--resume", "--min-usable", "0.2",
                                   "--part-size", "3"])
    assert options.exit_code == 1 and "min_usable" in options.output
    same = runner.invoke(main, ["predict", str(lamost_model), str(folder), "-o", str(out),
                                "--quiet", "--resume", "--part-size", "3"])
    assert same.exit_code == 0, same.output
    assert len(read_catalogue(out)) == N_GOOD


def test_train_refuses_an_existing_model_folder(tmp_path):
    import starlearn as sl

    sl.synth.generate("lamost", 120, seed=0).write(tmp_path / "train.h5")
    args = ["train", "--model", "shallow-nn", "--data", str(tmp_path / "train.h5"),
            "--labels", "teff", "--epochs", "1", "--quiet", "-o", str(tmp_path / "m")]
    runner = CliRunner()
    assert runner.invoke(main, args).exit_code == 0
    weights = (tmp_path / "m" / "weights.safetensors").read_bytes()
    again = runner.invoke(main, args)
    assert again.exit_code != 0 and "--overwrite" in again.output
    assert (tmp_path / "m" / "weights.safetensors").read_bytes() == weights
    replaced = runner.invoke(main, [*args, "--overwrite", "--seed", "4"])
    assert replaced.exit_code == 0, replaced.output
    assert (tmp_path / "m" / "weights.safetensors").read_bytes() != weights
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no leftovers
    _hold(tmp_path / "m", os.getpid())
    locked = runner.invoke(main, [*args, "--overwrite"])
    assert locked.exit_code == 1 and "in use by another starlearn run" in locked.output
