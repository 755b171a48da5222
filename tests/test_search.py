"""Hyper-parameter search: spaces, a small study, shared SQLite/PostgreSQL storage, resume."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

import starlearn as sl
from starlearn.cli import main
from starlearn.train.search import DEFAULT_SPACES, check_space, load_space

from .test_regression import toy_set

optuna = pytest.importorskip("optuna")

TINY = """\
[params]
n_conv = {type = "int", low = 1, high = 2}
filters = {type = "int", low = 2, high = 8}
kernel = {type = "int", low = 3, high = 5}
pool = {type = "int", low = 2, high = 4}
n_dense = {type = "int", low = 1, high = 2}
dense = {type = "int", low = 8, high = 32}
lr = {type = "float", low = 5e-4, high = 5e-3, log = true}
batch_size = {type = "categorical", choices = [32, 64]}
weight_decay = false
optimizer = {type = "categorical", choices = ["adam", "adamw"]}
activation = false
dropout = false
scheduler = false
patience = false
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("search")
    toy_set(n=600, n_pix=128).write(root / "train.h5")
    (root / "space.toml").write_text(TINY)
    return root


def study_trials(storage, name):
    return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)


def test_default_spaces_cover_the_starnet_knobs_and_bad_spaces_are_refused(tmp_path):
    assert len(DEFAULT_SPACES["regress"]) >= 13
    with pytest.raises(ValueError, match="unknown parameter 'depth'"):
        check_space({"depth": {"type": "int", "low": 1, "high": 3}}, "regress")
    with pytest.raises(ValueError, match="empty range"):
        check_space({"lr": {"type": "float", "low": 1e-3, "high": 1e-3}}, "regress")
    with pytest.raises(ValueError, match="no choices"):
        check_space({"batch_size": {"type": "categorical", "choices": []}}, "classify")
    with pytest.raises(ValueError, match="not supported"):
        check_space({"optimizer": {"type": "categorical", "choices": ["lbfgs"]}}, "regress")
    bad = tmp_path / "bad.toml"
    bad.write_text('[params]\nkernel = {type = "int", low = 9, high = 3}\n')
    with pytest.raises(ValueError, match="'kernel' has an empty range"):
        load_space("regress", bad)
    result = CliRunner().invoke(main, ["search", "--data", str(bad), "--trials", "1",
                                       "--space", str(bad), "-o", str(tmp_path / "m")])
    assert result.exit_code != 0 and "empty range" in result.output
    assert not (tmp_path / "m").exists()  # refused before any training


def test_small_search_saves_a_best_model_that_predicts(data, tmp_path):
    out = tmp_path / "best"
    result = CliRunner().invoke(main, [
        "search", "--task", "regress", "--data", str(data / "train.h5"), "--labels", "a,b",
        "--trials", "4", "--max-epochs", "4", "--space", str(data / "space.toml"),
        "-o", str(out), "--quiet"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    summary = json.loads((out / "study.json").read_text())
    assert summary["counts"].get("complete", 0) + summary["counts"].get("pruned", 0) >= 4
    model = sl.load(out)
    table = model.predict(toy_set(n=40, n_pix=128, seed=9))
    assert len(table) == 40 and np.isfinite(table["a"]).all()
    report = tmp_path / "report"
    result = CliRunner().invoke(main, ["search-report", "--storage", summary["storage"],
                                       "--study", "best", "-o", str(report)])
    assert result.exit_code == 0, result.output
    for name in ("best_trials.csv", "history.png", "importance.png"):
        assert (report / name).exists(), name


def _search_cmd(data, storage, study, trials, out, *extra):
    return [sys.executable, "-m", "starlearn.cli", "search", "--task", "regress",
            "--data", str(data / "train.h5"), "--labels", "a,b", "--trials", str(trials),
            "--max-epochs", "3", "--space", str(data / "space.toml"), "--storage", storage,
            "--study", study, "-o", str(out), "--quiet", *extra]


def test_two_workers_share_one_sqlite_study_without_duplicates(data, tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    result = subprocess.run(_search_cmd(data, storage, "shared", 6, tmp_path / "best",
                                        "--workers", "2"), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    trials = study_trials(storage, "shared")
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 6  # exactly the budget, though two workers asked at once
    assert len({t.number for t in trials}) == len(trials)
    trained = [t for t in finished if "duplicate_of" not in t.user_attrs]
    keys = [json.dumps(t.params, sort_keys=True) for t in trained]
    assert len(keys) == len(set(keys))  # no parameter set trained twice


def test_search_resumes_after_a_killed_worker(data, tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    cmd = _search_cmd(data, storage, "resumable", 5, tmp_path / "best", "--no-retrain")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline:
        time.sleep(0.5)
        try:
            trials = study_trials(storage, "resumable")
        except Exception:
            continue
        if any(t.state.name == "COMPLETE" for t in trials) and any(
                t.state.name == "RUNNING" for t in trials):
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = study_trials(storage, "resumable")
    assert any(t.state.name == "RUNNING" for t in before)  # killed mid-trial
    time.sleep(21)  # past the heartbeat grace period
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    after = study_trials(storage, "resumable")
    assert not any(t.state.name == "RUNNING" for t in after)
    assert any(t.state.name == "FAIL" for t in after)  # the killed worker's trial
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in after) >= 5


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg(*cmd):
    """Run a PostgreSQL tool (as the postgres user when the tests run as root, since the
    server refuses to run as root)."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run([*prefix, *cmd], check=True, capture_output=True, text=True)


@pytest.mark.skipif(shutil.which("pg_ctl") is None or shutil.which("initdb") is None,
                    reason="PostgreSQL server binaries (pg_ctl, initdb) not installed")
def test_two_workers_share_a_postgresql_study(data, tmp_path):
    import tempfile

    pytest.importorskip("psycopg2")
    root = tempfile.mkdtemp(prefix="starlearn-pg-")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    pgdata, port = os.path.join(root, "data"), _free_port()
    _pg("initdb", "-D", pgdata, "-U", "starlearn", "--auth=trust")
    _pg("pg_ctl", "-D", pgdata, "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1",
        "-l", os.path.join(root, "log"), "-w", "start")
    try:
        _pg("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "starlearn", "search")
        storage = f"postgresql+psycopg2://starlearn@127.0.0.1:{port}/search"
        result = subprocess.run(_search_cmd(data, storage, "pg", 4, tmp_path / "best",
                                            "--workers", "2"), capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-3000:]
        trials = study_trials(storage, "pg")
        assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in trials) == 4
        assert len({t.number for t in trials}) == len(trials)
    finally:
        subprocess.run((["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else [])
                       + ["pg_ctl", "-D", pgdata, "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
