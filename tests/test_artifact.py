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
        assert_allclose(np.asarray(table[column]), np.asarray(expected[column]), rtol=1e-5)
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
