"""Hyper-parameter search: spaces and their value limits, a small study, shared
SQLite/PostgreSQL storage, resume, the storage password kept out of files, output and
command lines, missing database drivers."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

import starlearn as sl
import starlearn.jobs.search as search_mod
from starlearn.cli import main
from starlearn.jobs.search import (
    DEFAULT_SPACES,
    STORAGE_ENV,
    check_space,
    check_storage,
    load_space,
    mask_storage,
)
from starlearn.jobs.search import resolve_storage as _resolve_storage

from ..test_regression import toy_set

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


def test_space_values_outside_the_parameters_limits_are_refused():
    def refused(task, name, spec):
        with pytest.raises(ValueError) as err:
            check_space({name: spec}, task)
        message = str(err.value)
        assert f"'{name}'" in message, message
        return message

    message = refused("regress", "dropout", {"type": "float", "low": 0.5, "high": 5})
    assert "[0.5, 5]" in message and "[0, 1)" in message
    assert "[0, 1)" in refused("classify", "dropout",
                               {"type": "categorical", "choices": [0.2, 1.0]})
    assert "> 0" in refused("regress", "lr", {"type": "float", "low": 0.0, "high": 1e-3})
    assert ">= 0" in refused("autoencode", "weight_decay",
                             {"type": "float", "low": -1e-4, "high": 1e-3})
    assert "integer >= 1" in refused("regress", "batch_size",
                                     {"type": "categorical", "choices": [0, 32]})
    assert "integer >= 1" in refused("regress", "batch_size",
                                     {"type": "categorical", "choices": [32.0, 64]})
    assert "'int'" in refused("regress", "batch_size",
                              {"type": "float", "low": 16, "high": 64})
    assert "integers" in refused("regress", "patience",
                                 {"type": "int", "low": 2.5, "high": 8})
    for task, name in (("regress", "patience"), ("regress", "kernel"), ("regress", "pool"),
                       ("regress", "filters"), ("regress", "dense"), ("regress", "n_conv"),
                       ("classify", "n_blocks"), ("autoencode", "latent"),
                       ("autoencode", "width")):
        assert "integer >= 1" in refused(task, name, {"type": "int", "low": 0, "high": 4})
    assert "odd" in refused("classify", "kernel", {"type": "int", "low": 3, "high": 7})
    assert "odd" in refused("classify", "kernel", {"type": "categorical", "choices": [3, 4]})
    assert "categorical" in refused("regress", "optimizer", {"type": "int", "low": 0,
                                                             "high": 2})
    assert "unknown keys ['lg']" in refused("regress", "lr", {"type": "float", "low": 1e-4,
                                                              "high": 1e-2, "lg": True})
    # the limits are the networks' and the trainer's, not the default spaces'
    clean = check_space({"n_dense": {"type": "int", "low": 0, "high": 2},
                         "pool": {"type": "int", "low": 1, "high": 2},
                         "optimizer": {"type": "categorical", "choices": ["sgd"]},
                         "scheduler": {"type": "categorical", "choices": ["none"]},
                         "activation": {"type": "categorical", "choices": ["gelu"]}},
                        "regress")
    assert clean["n_dense"] == {"type": "int", "low": 0, "high": 2, "log": False}
    for task, space in DEFAULT_SPACES.items():  # the defaults pass unchanged
        assert {name: {**spec, "log": spec.get("log", False)} if spec["type"] != "categorical"
                else spec for name, spec in space.items()} == check_space(space, task)


def test_search_refuses_a_dropout_range_beyond_one_before_training(tmp_path):
    space = tmp_path / "space.toml"
    space.write_text('[params]\ndropout = {type = "float", low = 0.5, high = 5}\n')
    result = CliRunner().invoke(main, ["search", "--data", str(space), "--trials", "1",
                                       "--space", str(space), "-o", str(tmp_path / "m")])
    assert result.exit_code != 0
    assert "'dropout' range [0.5, 5]" in result.output and "[0, 1)" in result.output
    assert not (tmp_path / "m").exists() and not (tmp_path / "m.study.db").exists()


def test_missing_database_driver_is_a_clean_error_naming_the_module(data, tmp_path,
                                                                    monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    for url, module, package in (
            ("postgresql://user:SECRET@db.example/searches", "psycopg", "psycopg[binary]"),
            ("postgresql+psycopg2://user:SECRET@db.example/searches", "psycopg2",
             "psycopg2-binary"),
            ("mysql://user:SECRET@db.example/searches", "MySQLdb", "mysqlclient")):
        with pytest.raises(ValueError) as err:
            check_storage(url)
        message = str(err.value)
        assert mask_storage(url) in message and "SECRET" not in message
        assert f"'{module}'" in message and f"pip install \"{package}\"" in message
    url = "postgresql://user:SECRET@db.example/searches"
    for args in (["search", "--data", str(data / "train.h5"), "--labels", "a,b",
                  "--trials", "1", "--storage", url, "-o", str(tmp_path / "m")],
                 ["search-report", "--storage", url, "--study", "s",
                  "-o", str(tmp_path / "r")]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), (
            result.output + repr(result.exception))
        assert "Error: storage 'postgresql://user:***@db.example/searches'" in result.output
        assert "'psycopg'" in result.output and "pip install" in result.output
        assert "SECRET" not in result.output
    assert not (tmp_path / "m").exists() and not (tmp_path / "r").exists()


def test_unreachable_database_is_a_clean_error_without_the_password():
    url = f"postgresql+psycopg2://user:SECRET@127.0.0.1:{_free_port()}/searches"
    pytest.importorskip("psycopg2")
    with pytest.raises(ValueError, match="cannot open the database") as err:
        search_mod.open_storage(url)
    assert "user:***@127.0.0.1" in str(err.value) and "SECRET" not in str(err.value)


def test_masked_storage_needs_the_full_url_from_the_option_or_the_environment(
        tmp_path, monkeypatch):
    url = "postgresql+psycopg2://user:SECRET@db.example:5432/searches"
    masked = mask_storage(url)
    assert masked == "postgresql+psycopg2://user:***@db.example:5432/searches"
    plain = f"sqlite:///{tmp_path / 'study.db'}"
    assert mask_storage(plain) == plain and mask_storage("study.db") == "study.db"
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    assert _resolve_storage(url, tmp_path / "m") == url
    assert _resolve_storage(None, tmp_path / "m") == f"sqlite:///{tmp_path / 'm'}.study.db"
    with pytest.raises(ValueError, match=f"masked.*--storage.*{STORAGE_ENV}") as err:
        _resolve_storage(masked, tmp_path / "m")
    assert "SECRET" not in str(err.value)
    with pytest.raises(ValueError, match="password is masked"):
        search_mod.run_search("regress", None, storage=masked, study="s", trials=1)
    monkeypatch.setenv(STORAGE_ENV, url)
    assert _resolve_storage(masked, tmp_path / "m") == url
    assert _resolve_storage(None, tmp_path / "m") == url  # how helper workers get it
    monkeypatch.setenv(STORAGE_ENV, url.replace("searches", "other"))
    with pytest.raises(ValueError, match="holds another URL") as err:
        _resolve_storage(masked, tmp_path / "m")
    assert "SECRET" not in str(err.value)


def test_storage_password_stays_out_of_study_json_report_and_helper_command_lines(
        data, tmp_path, monkeypatch):
    import torch

    url = "postgresql+psycopg2://user:SECRET@db.example:5432/searches"
    masked = "postgresql+psycopg2://user:***@db.example:5432/searches"
    sqlite, real_open = f"sqlite:///{tmp_path / 'study.db'}", search_mod.open_storage

    def open_as_sqlite(given, **kwargs):  # the "server" is a SQLite file
        assert given == url  # the full URL reaches the storage
        check_storage(given)
        return real_open(sqlite, **kwargs)

    calls = []

    def helper(args, env=None, **kwargs):  # records the helper worker's command and env
        calls.append((list(args), dict(env or {})))
        return SimpleNamespace(args=args, wait=lambda: 0)

    monkeypatch.setattr(search_mod, "open_storage", open_as_sqlite)
    monkeypatch.setattr(subprocess, "Popen", helper)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    out = tmp_path / "best"
    result = CliRunner().invoke(main, [
        "search", "--task", "regress", "--data", str(data / "train.h5"), "--labels", "a,b",
        "--trials", "1", "--max-epochs", "1", "--space", str(data / "space.toml"),
        "--storage", url, "--study", "pw", "--workers", "2", "-o", str(out), "--quiet"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "SECRET" not in result.output
    [(cmd, env)] = calls
    assert not any("SECRET" in arg for arg in cmd) and "--storage" not in cmd
    assert env[STORAGE_ENV] == url and "--worker-index" in cmd
    text = (out / "study.json").read_text()
    assert "SECRET" not in text and json.loads(text)["storage"] == masked
    report = ["search-report", "--storage", masked, "--study", "pw",
              "-o", str(tmp_path / "report")]
    result = CliRunner().invoke(main, report)  # masked, and no full URL anywhere
    assert result.exit_code == 1 and "masked" in result.output
    assert STORAGE_ENV in result.output and "SECRET" not in result.output
    assert not (tmp_path / "report").exists()
    monkeypatch.setenv(STORAGE_ENV, url)
    result = CliRunner().invoke(main, report)
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert masked in result.output and "SECRET" not in result.output
    assert "SECRET" not in (tmp_path / "report" / "summary.json").read_text()
    result = CliRunner().invoke(main, ["search-report", "--storage", url, "--study", "nope",
                                       "-o", str(tmp_path / "r2")])
    assert result.exit_code != 0 and masked in result.output
    assert "SECRET" not in result.output


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
    assert not (tmp_path / "best.study.db").exists()  # the helper got the storage (env)
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
        storage = f"postgresql+psycopg2://starlearn:SECRET@127.0.0.1:{port}/search"
        result = subprocess.run(_search_cmd(data, storage, "pg", 4, tmp_path / "best",
                                            "--workers", "2"), capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "SECRET" not in result.stdout + result.stderr
        trials = study_trials(storage, "pg")
        assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in trials) == 4
        assert len({t.number for t in trials}) == len(trials)
        summary = json.loads((tmp_path / "best" / "study.json").read_text())
        assert summary["storage"] == storage.replace("SECRET", "***")
        report = subprocess.run(
            [sys.executable, "-m", "starlearn.cli", "search-report", "--storage",
             summary["storage"], "--study", "pg", "-o", str(tmp_path / "report")],
            capture_output=True, text=True, env={**os.environ, STORAGE_ENV: storage})
        assert report.returncode == 0, report.stderr[-3000:]
        assert "***" in report.stdout and "SECRET" not in report.stdout + report.stderr
    finally:
        subprocess.run((["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else [])
                       + ["pg_ctl", "-D", pgdata, "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
