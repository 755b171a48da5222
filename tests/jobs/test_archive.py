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
