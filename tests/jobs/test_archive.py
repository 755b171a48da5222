"""Archive runner: parts, rejects, kill -9 and resume, Dask, packed data sets."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from astropy.table import Table

from starlearn.errors import NothingPredictedError
from starlearn.estimators import Regressor
from starlearn.jobs.archive import plan_parts, read_catalogue, run_archive
from starlearn.synth import generate, write_lamost_files


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("archive")
    train = generate("lamost", 300, seed=1, snr=(30, 100))
    Regressor("shallow-nn", ["teff", "logg"], epochs=2, progress=False, mc_samples=100,
              engine="torch", model_config={"hidden": [32, 16]}).fit(train).save(root / "model")
    write_lamost_files(generate("lamost", 60, seed=2, snr=(30, 100)), root / "files")
    (root / "files" / "notes.fits").write_text("not a FITS file\n")
    good = (root / "files" / "spec-000000.fits").read_bytes()
    (root / "files" / "cut.fits").write_bytes(good[:5000])
    return root


def test_plan_splits_files_and_data_sets(tmp_path):
    generate("lamost", 45, seed=3).write(tmp_path / "d.h5")
    parts = plan_parts(["a.fits", "b.fits", "c.fits", str(tmp_path / "d.h5"), "e.fits"],
                       files_per_part=2, rows_per_part=20)
    assert [(len(p.files), p.dataset is not None, p.start, p.stop) for p in parts] == [
        (2, False, 0, 0), (1, False, 0, 0), (0, True, 0, 20), (0, True, 20, 40),
        (0, True, 40, 45), (1, False, 0, 0)]
    assert [p.index for p in parts] == list(range(6))


def test_local_run_writes_every_input_once_and_lists_rejects(archive, tmp_path):
    out = tmp_path / "cat.parquet"
    summary = run_archive(archive / "model", [archive / "files"], out, files_per_part=7,
                          progress=False)
    table = read_catalogue(out)
    assert len(table) == 60 == summary.spectra
    assert len(set(table["file"])) == 60 and {"teff", "teff_err", "flags"} <= set(
        table.colnames)
    rejects = Table.read(summary.rejects, format="ascii.csv")
    reasons = {os.path.basename(r["input"]): r["reason"] for r in rejects}
    assert set(reasons) == {"notes.fits", "cut.fits"}
    assert "not recognised" in reasons["notes.fits"] and "truncated" in reasons["cut.fits"]
    with pytest.raises(FileExistsError, match="resume"):
        run_archive(archive / "model", [archive / "files"], out, progress=False)


def test_killed_run_resumes_with_each_input_exactly_once(archive, tmp_path):
    out = tmp_path / "cat.parquet"
    parts = tmp_path / "cat.parquet.parts"
    cmd = [sys.executable, "-m", "starlearn.cli", "predict", str(archive / "model"),
           str(archive / "files"), "-o", str(out), "--part-size", "1", "--engine", "torch",
           "--quiet", "--keep-parts"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    manifest = parts / "manifest.jsonl"
    while time.time() < deadline:
        if manifest.exists() and len(manifest.read_text().splitlines()) >= 4:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_at_kill = len(manifest.read_text().splitlines())
    assert 4 <= done_at_kill < 62, "the kill should land in the middle of the run"
    assert not out.exists()
    result = subprocess.run([*cmd, "--resume"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "parts already done" in result.stdout
    table = read_catalogue(out)
    assert len(table) == 60 and len(set(table["file"])) == 60
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert sorted(r["part"] for r in records) == list(range(62))  # no part twice


def test_dask_local_cluster_gives_the_same_catalogue(archive, tmp_path):
    pytest.importorskip("dask.distributed")
    local = run_archive(archive / "model", [archive / "files"], tmp_path / "a.parquet",
                        files_per_part=20, progress=False)
    dask = run_archive(archive / "model", [archive / "files"], tmp_path / "b.parquet",
                       files_per_part=20, scheduler="local", workers=2, progress=False)
    a, b = read_catalogue(local.output), read_catalogue(dask.output)
    a.sort("file")
    b.sort("file")
    assert list(a["file"]) == list(b["file"])
    for column in ("teff", "teff_err", "logg", "flags"):
        assert np.allclose(a[column], b[column], rtol=1e-5, atol=1e-5), column
    assert dask.rejected == local.rejected == 2


def test_packed_data_set_is_streamed_in_row_parts(archive, tmp_path):
    generate("lamost", 50, seed=4).write(tmp_path / "packed.h5")
    summary = run_archive(archive / "model", [tmp_path / "packed.h5"], tmp_path / "p.csv",
                          rows_per_part=20, progress=False)
    table = Table.read(tmp_path / "p.csv")
    assert summary.parts == 3 and len(table) == 50
    assert list(table["id"]) == [f"lamost-s4-{i:06d}" for i in range(1, 51)]


def _worker_threads(model_dir):
    import torch
    from threadpoolctl import threadpool_info

    from starlearn.jobs.archive import _model

    _model(model_dir, "torch", 1)
    return torch.get_num_threads(), sorted({p["num_threads"] for p in threadpool_info()})


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_worker_limits_torch_and_blas_to_its_share_of_cores(archive):
    # an idle numpy BLAS pool of all cores spins in every worker otherwise
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(1) as pool:
        torch_threads, pools = pool.apply(_worker_threads, (str(archive / "model"),))
    assert torch_threads == 1 and pools == [1]


def test_multi_object_files_give_one_row_per_object(archive, tmp_path):
    """A pfsArm-like file (one spectrum per fibre, wavelengths in nm; here all on the
    model's grid) among single-spectrum files: one catalogue row per fibre, ids
    visit/fibre, the file named."""
    from astropy.io import fits

    stars = generate("lamost", 4, seed=5, snr=(50, 100))
    wave_nm = np.stack([stars.wave / 10.0] * 4)
    covar = np.zeros((4, 3, stars.n_pix))
    covar[:, 0] = 1 / np.where(stars.ivar > 0, stars.ivar, 1e-6)
    config = fits.BinTableHDU.from_columns([
        fits.Column(name="pfsConfigId", format="K", array=[1]),
        fits.Column(name="visit", format="J", array=[9])], name="CONFIG")
    folder = tmp_path / "in"
    folder.mkdir()
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(stars.flux, name="FLUX"),
                  fits.ImageHDU(covar, name="COVAR"),
                  fits.ImageHDU(np.zeros(stars.flux.shape, np.int32), name="MASK"),
                  fits.ImageHDU(wave_nm, name="WAVELENGTH"), config]).writeto(
        folder / "pfsArm-000009-b1.fits")
    write_lamost_files(generate("lamost", 3, seed=6, snr=(30, 100)), folder)
    out = tmp_path / "cat.parquet"
    summary = run_archive(archive / "model", [folder], out, progress=False)
    table = read_catalogue(out)
    assert summary.rejects is None or not Table.read(summary.rejects, format="ascii.csv"), \
        Table.read(summary.rejects, format="ascii.csv")
    assert len(table) == 7 == summary.spectra
    arm = table[[os.path.basename(f).startswith("pfsArm") for f in table["file"]]]
    assert sorted(arm["id"]) == ["9/1", "9/2", "9/3", "9/4"]
    assert np.all(np.isfinite(arm["teff"]))


def _cut(spectra, n_pix):
    """The spectra on the first ``n_pix`` pixels of their grid (a file cut at the red end,
    as 3,899-pixel real LAMOST files are)."""
    from starlearn.spectra import SpectrumSet

    return SpectrumSet(wave=spectra.wave[:n_pix], flux=spectra.flux[:, :n_pix],
                       ivar=spectra.ivar[:, :n_pix], mask=spectra.mask[:, :n_pix],
                       ids=spectra.ids, meta=spectra.meta)


def test_inputs_on_another_grid_are_resampled_when_the_policy_allows(archive, tmp_path):
    _cut(generate("lamost", 30, seed=7, snr=(30, 100)), 3899).write(tmp_path / "cut.h5")
    out = tmp_path / "cat.parquet"
    with pytest.warns(UserWarning, match="30 spectra on another wavelength grid were "
                                         "resampled onto the model's grid"):
        summary = run_archive(archive / "model", [tmp_path / "cut.h5"], out, progress=False)
    assert summary.spectra == 30 and summary.resampled == {
        "3899 pixels, 3700.0-9078.2 A": 30} and "30 resampled" in str(summary)
    table = read_catalogue(out)
    assert not np.any(table["flags"] & 4) and np.all(np.isfinite(table["teff"]))
    # "never": refused with the reason, and the failed run leaves nothing in the way
    never = tmp_path / "never.parquet"
    for _ in range(2):  # the second run is not refused for an earlier one's leftovers
        with pytest.raises(NothingPredictedError, match="another wavelength grid"):
            run_archive(archive / "model", [tmp_path / "cut.h5"], never, resample="never",
                        progress=False)
        assert not never.exists() and not (tmp_path / "never.parquet.parts").exists()
    assert (tmp_path / "never.rejects.csv").exists()
    with pytest.raises(ValueError, match="resample must be one of"):
        run_archive(archive / "model", [tmp_path / "cut.h5"], never, resample="maybe")


def test_resume_needs_the_same_resample_policy(archive, tmp_path):
    generate("lamost", 10, seed=8).write(tmp_path / "d.h5")
    out = tmp_path / "cat.csv"
    run_archive(archive / "model", [tmp_path / "d.h5"], out, progress=False)
    with pytest.raises(ValueError, match="resample=always"):
        run_archive(archive / "model", [tmp_path / "d.h5"], out, resume=True,
                    resample="always", progress=False)


def test_catalogues_carry_metadata_units_provenance_and_flag_meanings(archive, tmp_path):
    from astropy.io import fits

    from starlearn.artifact import sha256_file

    outs = {}
    for suffix in (".fits", ".parquet", ".ecsv"):
        outs[suffix] = tmp_path / f"cat{suffix}"
        run_archive(archive / "model", [archive / "files"], outs[suffix], progress=False,
                    command=["starlearn", "predict", "model", "files"])
    weights = sha256_file(archive / "model" / "weights.safetensors")
    with fits.open(outs[".fits"]) as hdus:
        header = hdus[1].header
        data = hdus[1].data
        names = [header[f"TTYPE{i}"] for i in range(1, header["TFIELDS"] + 1)]
        units = {header[f"TTYPE{i}"]: header.get(f"TUNIT{i}")
                 for i in range(1, header["TFIELDS"] + 1)}
        assert header["WTSHA256"] == weights and header["CMDLINE"] == (
            "starlearn predict model files")
        assert header["MODEL"] == str((archive / "model").resolve())
        assert header["SLVERS"] and header["DATE"].startswith("20")
        assert header["MODELCLS"] == "starlearn.estimators.Regressor"
        for bit in (1, 2, 4, 8, 16):
            assert header[f"FLAG{bit}"]
        assert "physical range" in header["FLAG8"]
        assert all(header.get(f"TCOMM{i}") for i in range(1, header["TFIELDS"] + 1))
        assert len(data) == 60
    # the readers' identifiers and metadata first, then the predictions
    assert names[:2] == ["id", "obsid"] and {"designation", "file", "rv"} <= set(names)
    assert names.index("file") < names.index("teff")
    assert units["teff"] == units["teff_err"] == "K"
    assert units["logg"] == units["logg_err"] == "dex" and units["rv"] == "km s-1"
    assert units["flags"] is None and units["teff_flag"] is None
    for suffix in (".parquet", ".ecsv", ".fits"):
        table = read_catalogue(outs[suffix])
        assert str(table["teff"].unit) == "K" and str(table["logg_err"].unit) == "dex", suffix
        assert table.meta["WTSHA256"] == weights, suffix
        assert len(set(table["obsid"])) == 60 and table["obsid"].dtype.kind == "U"
    # astropy's own Parquet reader gets the units and the full strings back too
    pytest.importorskip("pandas")
    direct = Table.read(outs[".parquet"])
    assert str(direct["teff"].unit) == "K"
    assert max(len(f) for f in direct["file"]) == max(len(f) for f in read_catalogue(
        outs[".parquet"])["file"])


def test_unphysical_and_far_extrapolated_labels_are_masked_with_a_flag():
    """Bit 1 (outside the training range) keeps the value; bit 16 (more than half the
    training range's width beyond it) and bit 8 (outside the physical range) give NaN."""
    from starlearn.units import physical_range

    train = generate("lamost", 120, seed=9)
    model = Regressor("shallow-nn", ["teff", "logg"], epochs=1, progress=False,
                      engine="torch", model_config={"hidden": [8]}).fit(train)
    low, high = model.label_min_[0], model.label_max_[0]
    span = high - low
    wanted = np.array([(low + high) / 2, high + 0.2 * span, high + 0.8 * span, 70_000.0])
    real = model._predict_arrays

    def fake(spectra, **kwargs):
        pred = real(spectra, **kwargs)
        pred["mean"] = pred["mean"].copy()
        pred["mean"][:, 0] = wanted
        pred["mean"][:, 1] = (model.label_min_[1] + model.label_max_[1]) / 2
        return pred

    model._predict_arrays = fake
    table = model.predict(train[:4])
    flags = np.asarray(table["teff_flag"]) & ~2  # bit 2 depends on the features
    assert list(flags) == [0, 1, 1 | 16, 1 | 8 | 16]
    assert np.isfinite(table["teff"][:2]).all() and np.isfinite(table["teff_err"][:2]).all()
    assert np.isnan(table["teff"][2:]).all() and np.isnan(table["teff_err"][2:]).all()
    assert np.isfinite(table["logg"]).all() and physical_range("teff") == (2000.0, 60000.0)
    assert str(table["teff"].unit) == "K" and str(table["logg_err"].unit) == "dex"
