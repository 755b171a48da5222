import json

import numpy as np
from astropy.table import Table
from click.testing import CliRunner

from starlearn.cli import main
from starlearn.synth import draw_labels, render


def run(args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_classify_train_with_adaptation_predict_evaluate(tmp_path):
    stars = draw_labels("ondrejov-halpha", 360, seed=2, class_fractions=(0.45, 0.45, 0.10))
    render("ondrejov-halpha", stars[:300], seed=2).write(tmp_path / "ondrejov.h5")
    lamost = render("lamost", stars[300:], seed=3)
    lamost.write(tmp_path / "lamost.h5")
    (tmp_path / "small.toml").write_text(
        'epochs = 3\n[model_config]\nblocks = [[8, 8], [16, 16]]\ndense = [32]\n')
    out = run(["train", "--task", "classify", "--data", tmp_path / "ondrejov.h5",
               "--classes", "absorption,emission,double-peak", "--balance", "smote",
               "--adapt-to", tmp_path / "lamost.h5", "--adapt", "blur",
               "--config", tmp_path / "small.toml", "-o", tmp_path / "clf", "--quiet"])
    assert "balanced by smote" in out and "adapted to" in out and "macro-F1" in out
    config = json.loads((tmp_path / "clf" / "config.json").read_text())
    adapter = config["params"]["adapter"]
    assert adapter["type"] == "DomainAdapter"
    assert adapter["params"]["r_source"] == 13000 and adapter["params"]["r_target"] == 1800
    assert config["params"]["preprocess"]["type"] == "LineWindow"

    out = run(["predict", tmp_path / "clf", tmp_path / "lamost.h5", "-o", tmp_path / "p.csv"])
    table = Table.read(tmp_path / "p.csv")
    assert len(table) == 60
    assert {"id", "class", "probability", "prob_emission", "flags"} <= set(table.colnames)
    assert set(np.unique(table["class"])) <= {"absorption", "emission", "double-peak"}

    out = run(["evaluate", tmp_path / "clf", tmp_path / "lamost.h5", "--plots", tmp_path / "pl",
               "--json", tmp_path / "m.json"])
    assert "confusion matrix" in out
    assert (tmp_path / "pl" / "confusion.png").exists()
    assert json.loads((tmp_path / "m.json").read_text())["n"] == 60


def test_classify_options_are_checked(tmp_path):
    render("ondrejov-halpha", draw_labels("ondrejov-halpha", 30, seed=1), seed=1).write(
        tmp_path / "d.h5")
    result = CliRunner().invoke(main, ["train", "--task", "classify", "--data",
                                       str(tmp_path / "d.h5"), "--adapt", "blur", "-o",
                                       str(tmp_path / "m")])
    assert result.exit_code != 0 and "--adapt-to" in result.output
    result = CliRunner().invoke(main, ["train", "--task", "regress", "--data",
                                       str(tmp_path / "d.h5"), "--balance", "smote", "-o",
                                       str(tmp_path / "m")])
    assert result.exit_code != 0 and "--task classify only" in result.output
    result = CliRunner().invoke(main, ["train", "--task", "classify", "--data",
                                       str(tmp_path / "d.h5"), "--mc-samples", "4", "-o",
                                       str(tmp_path / "m")])
    assert result.exit_code != 0 and "does not use --mc-samples" in result.output
