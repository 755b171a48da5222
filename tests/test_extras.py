"""The light install: optional packages are extras, and a missing one is a clean error.

``pip install starlearn`` reads, preprocesses, trains and predicts; each package that
serves one command is an extra of pyproject.toml (docs/install.md). Absence is simulated
with ``sys.modules[name] = None`` (``import name`` then raises ImportError and
``importlib.util.find_spec`` says None, as for a package that is not installed); the core
path runs in a fresh interpreter that blocks every optional package before anything is
imported, so that no module cached by other tests can stand in for a missing one.
"""

import ast
import os
import pickle
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from numpy.testing import assert_allclose

from starlearn._extras import missing, require
from starlearn.errors import InputError, MissingExtraError

ROOT = Path(__file__).resolve().parents[1]

OPTIONAL = {
    # module: (pip package, extra)
    "onnxruntime": ("onnxruntime", "onnx"),
    "onnx": ("onnx", "onnx"),
    "onnxscript": ("onnxscript", "onnx"),
    "optuna": ("optuna", "search"),
    "psycopg2": ("psycopg2-binary", "search-postgres"),
    "dask": ("dask", "dask"),
    "distributed": ("dask", "dask"),
    "imblearn": ("imbalanced-learn", "imbalance"),
    "gaiaxpy": ("gaiaxpy", "gaia"),
    "specutils": ("specutils", "specutils"),
    "fitsio": ("fitsio", "fitsio"),
}
"""Every optional module starlearn imports, the package that provides it, its extra."""

BLOCKED_IN_CORE = sorted({*OPTIONAL, "sqlalchemy", "alembic", "onnx_ir", "pandas", "gwcs",
                          "ndcube", "asdf", "asdf_astropy"})
"""What a light install lacks: the optional modules and what only they bring."""


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement string (``dask[distributed]>=1``
    -> ``dask``)."""
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _absent(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make ``modules`` unimportable, with their submodules and the shims that re-export
    them (``dask.distributed`` for ``distributed``) an earlier test may have imported."""
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)
        for name in [k for k in sys.modules if k.startswith(module + ".")
                     or k.endswith("." + module)]:
            monkeypatch.setitem(sys.modules, name, None)


def _check(err: BaseException, extra: str, package: str) -> None:
    assert isinstance(err, MissingExtraError)
    assert isinstance(err, ImportError) and isinstance(err, InputError)
    assert err.extra == extra and err.package == package
    assert f"needs {package}: pip install 'starlearn[{extra}]'" in str(err), str(err)


def _tiny_network() -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(8, 2)), torch.randn(4, 1, 8)


# ---------------------------------------------------------------------- the helper
def test_require_returns_the_module_or_names_the_extra():
    import json

    assert require("json", extra="x", what="y") is json
    with pytest.raises(MissingExtraError) as info:
        require("no_such_module_xyz", extra="search", what="starlearn search")
    err = info.value
    assert str(err) == ("starlearn search needs no_such_module_xyz: "
                        "pip install 'starlearn[search]'")
    assert err.name == "no_such_module_xyz" and isinstance(err.__cause__, ImportError)
    _check(err, "search", "no_such_module_xyz")


def test_the_error_names_the_pip_package_and_survives_pickling():
    """Worker processes send their exceptions back pickled (archive runs)."""
    err = missing("imblearn", extra="imbalance", what="balance='smote'")
    assert str(err) == "balance='smote' needs imbalanced-learn: pip install 'starlearn[imbalance]'"
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is MissingExtraError and str(back) == str(err)
    assert (back.name, back.package, back.extra) == ("imblearn", "imbalanced-learn", "imbalance")


# ---------------------------------------------------------------------- each extra
@pytest.mark.parametrize("absent", ["onnxruntime", "onnxscript"])
def test_engine_auto_quietly_uses_torch_without_onnx(monkeypatch, absent):
    from starlearn.infer import TorchEngine, make_engine, onnx_available

    _absent(monkeypatch, absent)
    module, x = _tiny_network()
    assert not onnx_available()
    engine = make_engine(module, "auto", example=x, work=None)  # large work: onnx if it could
    assert isinstance(engine, TorchEngine) and engine.name == "torch"
    assert engine.run(x.numpy())[0].shape == (4, 2)


def test_onnx_engine_export_and_quantisation_name_the_onnx_extra(monkeypatch, tmp_path):
    from starlearn.infer import OnnxEngine, export_onnx, make_engine
    from starlearn.infer.quantize import quantize_int8

    module, x = _tiny_network()
    _absent(monkeypatch, "onnxruntime")
    for kind in ("onnx", "onnx-int8"):
        with pytest.raises(MissingExtraError) as info:
            make_engine(module, kind, example=x, int8_path=tmp_path / "model.int8.onnx")
        _check(info.value, "onnx", "onnxruntime")
        assert str(info.value).startswith(f"engine={kind!r} needs onnxruntime")
    with pytest.raises(MissingExtraError) as info:
        OnnxEngine(b"")
    _check(info.value, "onnx", "onnxruntime")
    with pytest.raises(MissingExtraError) as info:
        quantize_int8(b"", np.zeros((1, 1, 8), np.float32))
    _check(info.value, "onnx", "onnxruntime")
    monkeypatch.undo()
    for absent in ("onnxscript", "onnx"):
        _absent(monkeypatch, absent)
        with pytest.raises(MissingExtraError) as info:
            export_onnx(module, x)
        _check(info.value, "onnx", absent)
        assert str(info.value).startswith("ONNX export needs")
        monkeypatch.undo()


@pytest.mark.parametrize("absent", ["dask", "distributed"])
def test_a_dask_scheduler_names_the_dask_extra_before_any_work(monkeypatch, tmp_path, absent):
    from starlearn.jobs.archive import run_archive

    _absent(monkeypatch, absent)
    output = tmp_path / "out.parquet"
    with pytest.raises(MissingExtraError) as info:
        run_archive(tmp_path, [str(tmp_path / "none.h5")], output, scheduler="local",
                    progress=False)
    _check(info.value, "dask", "dask[distributed]")
    assert not output.exists() and not (tmp_path / "out.parquet.parts").exists()


def test_the_predict_command_prints_the_missing_extra(monkeypatch, tmp_path):
    from starlearn.cli import main

    _absent(monkeypatch, "onnxruntime", "distributed")
    for option, text in ((["--engine", "onnx"],
                          "Error: engine='onnx' needs onnxruntime: pip install 'starlearn[onnx]'"),
                         (["--scheduler", "local"],
                          "Error: predict on a Dask cluster (--scheduler) needs "
                          "dask[distributed]: pip install 'starlearn[dask]'")):
        result = CliRunner().invoke(main, ["predict", str(tmp_path), "x.h5", "-o",
                                           str(tmp_path / "out.parquet"), "--quiet", *option])
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), (
            result.output + repr(result.exception))
        assert text in result.output and "Traceback" not in result.output


def test_search_names_the_search_extra(monkeypatch, tmp_path):
    from starlearn.cli import main
    from starlearn.jobs.search import (
        SearchJob,
        check_storage,
        open_storage,
        run_search,
        run_search_job,
        search_report,
    )

    storage = f"sqlite:///{tmp_path / 's.db'}"
    _absent(monkeypatch, "optuna")
    calls = [
        lambda: run_search_job(SearchJob(task="regress", data="x.h5", output=str(tmp_path / "m"),
                                         storage=storage)),
        lambda: run_search("regress", None, storage=storage, study="s", trials=1),
        lambda: search_report(storage, "s", tmp_path / "r"),
        lambda: open_storage(storage),
    ]
    for call in calls:
        with pytest.raises(MissingExtraError) as info:
            call()
        _check(info.value, "search", "optuna")
    data = tmp_path / "train.h5"
    data.write_bytes(b"never read")
    result = CliRunner().invoke(main, ["search", "--data", str(data), "--trials", "1",
                                       "--storage", storage, "-o", str(tmp_path / "m")])
    assert result.exit_code == 1, result.output + repr(result.exception)
    assert "Error: starlearn search needs optuna: pip install 'starlearn[search]'" in (
        result.output)
    result = CliRunner().invoke(main, ["search-report", "--storage", storage, "--study", "s",
                                       "-o", str(tmp_path / "r")])
    assert result.exit_code == 1, result.output + repr(result.exception)
    assert "Error: starlearn search-report needs optuna: pip install 'starlearn[search]'" in (
        result.output)
    assert not (tmp_path / "m").exists() and not (tmp_path / "r").exists()
    monkeypatch.undo()
    _absent(monkeypatch, "sqlalchemy")
    with pytest.raises(MissingExtraError) as info:
        check_storage(storage)
    _check(info.value, "search", "sqlalchemy")


def test_a_postgresql_storage_without_its_driver_names_the_postgres_extra(monkeypatch):
    pytest.importorskip("sqlalchemy")
    from starlearn.jobs.search import check_storage

    _absent(monkeypatch, "psycopg2")
    with pytest.raises(ValueError) as info:
        check_storage("postgresql+psycopg2://user:SECRET@db.example/searches")
    message = str(info.value)
    assert "pip install \"psycopg2-binary\"" in message
    assert "pip install 'starlearn[search-postgres]'" in message and "SECRET" not in message


@pytest.mark.parametrize("method", ["smote", "oversample"])
def test_class_balancing_names_the_imbalance_extra(monkeypatch, method):
    from starlearn.train.balance import balance_classes

    _absent(monkeypatch, "imblearn")
    x = np.random.default_rng(0).normal(size=(12, 1, 8)).astype(np.float32)
    y = np.array([0] * 9 + [1] * 3)
    with pytest.raises(MissingExtraError) as info:
        balance_classes(x, y, method)
    _check(info.value, "imbalance", "imbalanced-learn")
    assert str(info.value).startswith(f"balance={method!r} needs")
    assert balance_classes(x, y, "weights")[0] is x  # what needs no extra still works


def test_specutils_conversions_name_the_specutils_extra(monkeypatch):
    import starlearn.io.specutils_loaders as loaders
    from starlearn import SpectrumSet

    s = SpectrumSet(wave=[5000.0, 5001.0], flux=[[1.0, 2.0], [3.0, 4.0]])
    _absent(monkeypatch, "specutils")
    monkeypatch.setattr(loaders, "_DONE", False)
    for call in (s.to_specutils, lambda: SpectrumSet.from_specutils([]),
                 lambda: loaders.to_spectrum(s), loaders.register):
        with pytest.raises(MissingExtraError) as info:
            call()
        _check(info.value, "specutils", "specutils")


def test_gaia_continuous_spectra_name_the_gaia_extra(monkeypatch, tmp_path):
    """A reason of the file (ReadError, so that a batch read rejects the file and goes on),
    in the words of the other extras."""
    from astropy.table import Table

    import starlearn.io as sio

    path = tmp_path / "XP_CONTINUOUS_RAW.fits"
    Table({"source_id": [1], "bp_coefficients": np.ones((1, 55)),
           "rp_coefficients": np.ones((1, 55))}).write(path)
    _absent(monkeypatch, "gaiaxpy")
    with pytest.raises(sio.ReadError) as info:
        sio.read(path)
    assert isinstance(info.value, InputError)
    assert str(info.value) == (f"{path}: sampling Gaia XP continuous spectra needs GaiaXPy: "
                               "pip install 'starlearn[gaia]'")


def _catalogue(path: Path) -> None:
    from astropy.table import MaskedColumn, Table

    n = 200
    rng = np.random.default_rng(0)
    Table({"APOGEE_ID": [f"2M{i:06d} " for i in range(n)],
           "TEFF": rng.uniform(4000, 6000, n), "TEFF_ERR": np.full(n, 50.0),
           "LOGG": MaskedColumn(rng.integers(1, 5, n).astype(np.int32),
                                mask=np.arange(n) % 7 == 0),
           "SNR": rng.uniform(10, 200, n).astype(">f4"),
           "ASPCAPFLAG": np.where(np.arange(n) % 4 == 0, 4, 0).astype(">i2"),
           "GOOD": np.arange(n) % 3 != 0,
           "SPECTRUM": np.ones((n, 10_000))}).write(path)


def test_fits_catalogues_are_read_by_astropy_without_fitsio(monkeypatch, tmp_path):
    """fitsio is an accelerator: without it astropy reads the same values, column by
    column from the memory-mapped file (never the 16 MB column nobody asked for)."""
    import tracemalloc

    from astropy.table import Table

    from starlearn.io.catalogue import CatalogueError, read_label_catalogue

    path = tmp_path / "allStar.fits"
    _catalogue(path)
    kwargs = {"id_column": "APOGEE_ID", "label_columns": "teff,logg",
              "where": "ASPCAPFLAG == 0 and SNR > 20 and GOOD"}
    pytest.importorskip("fitsio")
    fast = read_label_catalogue(path, **kwargs)
    _absent(monkeypatch, "fitsio")

    def no_whole_table(*args, **kwargs):
        raise AssertionError("the whole table was read")

    monkeypatch.setattr(Table, "read", no_whole_table)
    tracemalloc.start()
    try:
        plain = read_label_catalogue(path, **kwargs)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000  # the SPECTRUM column is 16 MB
    assert len(plain) == len(fast) > 50 and plain.n_rows == fast.n_rows == 200
    assert plain.ids.tolist() == fast.ids.tolist()
    assert_allclose(plain.values, fast.values)
    assert_allclose(plain.errors, fast.errors)
    assert plain.columns_read == fast.columns_read
    with pytest.raises(CatalogueError, match=r"'SPECTRUM' holds arrays of shape \(10000,\)"):
        read_label_catalogue(path, id_column="APOGEE_ID", label_columns="x=SPECTRUM")


def test_lamost_files_are_read_alike_without_fitsio(monkeypatch, tmp_path):
    pytest.importorskip("fitsio")
    from starlearn.io import read_many
    from starlearn.synth import generate, write_lamost_files

    files = write_lamost_files(generate("lamost", 3, seed=1), tmp_path)
    (fast,), rejects = read_many(files)
    assert rejects == []
    _absent(monkeypatch, "fitsio")
    (plain,), rejects = read_many(files)
    assert rejects == []
    assert_allclose(plain.wave, fast.wave)
    assert_allclose(plain.flux, fast.flux)
    assert_allclose(plain.ivar, fast.ivar)
    assert (plain.mask == fast.mask).all()


# ------------------------------------------------------------ the core, in a light install
CORE = """
import sys

BLOCKED = {blocked!r}
early = sorted(name for name in BLOCKED if name in sys.modules)
assert not early, f"imported before the blocker: {{early}}"


class Hide:
    \"\"\"A finder that finds nothing of BLOCKED and asks its own finder for the rest: the
    packages are not there, for ``import`` (Cython's too) and for find_spec alike.\"\"\"

    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        find = getattr(self.finder, "find_spec", None)
        if name.partition(".")[0] in BLOCKED or find is None:
            return None
        return find(name, path, target)

    def __getattr__(self, attr):
        return getattr(self.finder, attr)


sys.meta_path[:] = [Hide(finder) for finder in sys.meta_path]
for name in BLOCKED:
    try:
        __import__(name)
    except ImportError:
        continue
    raise AssertionError(f"{{name}} is still importable")

import starlearn
from starlearn.cli import main

try:
    main(["--help"], prog_name="starlearn")
except SystemExit as stop:
    assert stop.code in (0, None), stop.code

from starlearn import Regressor
from starlearn.io import read_many
from starlearn.jobs.archive import read_catalogue
from starlearn.jobs.training import save_model
from starlearn.synth import generate, write_lamost_files

spectra = generate("lamost", 5, seed=0)
files = write_lamost_files(spectra, "files")
(read,), rejects = read_many(files)
assert rejects == [] and len(read) == 5
model = Regressor("shallow-nn", ["teff", "logg"], epochs=1, engine="auto", progress=False,
                  seed=0).fit(spectra, spectra)
table = model.predict(spectra)
assert model.engine_.name == "torch" and len(table) == 5
save_model(model, "model")
try:
    main(["predict", "model", "files", "-o", "out.parquet", "--quiet"], prog_name="starlearn")
except SystemExit as stop:
    assert stop.code in (0, None), stop.code
assert len(read_catalogue("out.parquet")) == 5
leaked = sorted(name for name in sys.modules if name.partition(".")[0] in BLOCKED)
assert not leaked, leaked
print("core OK")
"""


@pytest.mark.slow
def test_the_core_works_without_any_optional_package(tmp_path):
    """``import starlearn``, ``starlearn --help``, reading survey files, training, ``predict``
    with engine "auto" and the predict command, in a fresh interpreter without any of the
    optional packages (nor pandas, SQLAlchemy, asdf ... that only they bring)."""
    script = tmp_path / "core.py"
    script.write_text(textwrap.dedent(CORE.format(blocked=BLOCKED_IN_CORE)))
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "MPLBACKEND": "Agg"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "core OK" in done.stdout
    assert "Commands:" in done.stdout and "search" in done.stdout


# ---------------------------------------------------------------------- pyproject.toml
def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_core_dependencies_hold_no_optional_package_and_all_holds_every_extra():
    project = _pyproject()["project"]
    core = {_name(r) for r in project["dependencies"]}
    extras = project["optional-dependencies"]
    optional = {_name(r) for name, reqs in extras.items() if name not in ("all", "test")
                for r in reqs}
    assert optional >= {package for package, _ in OPTIONAL.values()}
    assert not core & optional, core & optional
    assert {"numpy", "scipy", "astropy", "h5py", "torch", "safetensors", "scikit-learn",
            "matplotlib", "click", "tqdm"} <= core
    in_all = set(extras["all"])
    for name, reqs in extras.items():
        if name not in ("all", "test"):
            assert set(reqs) <= in_all, f"[{name}] has {set(reqs) - in_all} not in [all]"
    assert {_name(r) for r in in_all} == optional  # nothing in [all] beyond the extras
    assert "starlearn[all]" in extras["test"]


def test_every_extra_the_code_names_exists_and_is_documented():
    extras = set(_pyproject()["project"]["optional-dependencies"])
    named = set()
    for path in (ROOT / "src" / "starlearn").rglob("*.py"):
        text = path.read_text()
        named |= set(re.findall(r"extra=\"([\w-]+)\"", text))
        named |= set(re.findall(r"starlearn\[([\w-]+)\]", text))
    named.discard("<extra>")
    assert named and named <= extras, named - extras
    for module, (_, extra) in OPTIONAL.items():
        assert extra in extras, (module, extra)
    doc = (ROOT / "docs" / "install.md").read_text()
    for extra in extras - {"test"}:
        assert f"`{extra}`" in doc, f"docs/install.md does not list [{extra}]"


def _module_level_imports(tree: ast.Module) -> list[tuple[str, int]]:
    """Top-level names imported when the module is imported (not inside functions,
    classes or ``if TYPE_CHECKING:``)."""
    found = []

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                found.extend((a.name.split(".")[0], node.lineno) for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.append((node.module.split(".")[0], node.lineno))
            elif isinstance(node, ast.If):
                if "TYPE_CHECKING" not in ast.unparse(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, ast.With):
                visit(node.body)

    visit(tree.body)
    return found


def test_no_module_imports_an_optional_package_when_it_is_imported():
    offenders = []
    for path in sorted((ROOT / "src" / "starlearn").rglob("*.py")):
        for name, line in _module_level_imports(ast.parse(path.read_text())):
            if name in OPTIONAL or name == "sqlalchemy":
                offenders.append(f"{path.relative_to(ROOT)}:{line}: import {name}")
    assert not offenders, "\n".join(offenders)
