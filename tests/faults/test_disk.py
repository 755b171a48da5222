"""Full and read-only disks: a clean error naming the file, nothing half-written under a
final name, no temporary files left. Needs root to mount a small tmpfs (skipped otherwise)."""

import os
import subprocess
import uuid

import pytest

import starlearn as sl

from .conftest import cli


def _mount(path, *options):
    path.mkdir()
    opts = ",".join(["size=256k", *options])
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)],
                              capture_output=True)
    except FileNotFoundError:
        pytest.skip("no mount command")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode()[-200:]}")
    return path


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    disk = _mount(tmp_path / f"disk-{uuid.uuid4().hex[:6]}")
    yield disk
    subprocess.run(["umount", str(disk)], check=False)


@pytest.fixture
def read_only_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    disk = _mount(tmp_path / f"ro-{uuid.uuid4().hex[:6]}", "ro")
    yield disk
    subprocess.run(["umount", str(disk)], check=False)


def _assert_clean(result, disk, what):
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert what in result.stderr, result.stderr[-2000:]
    assert [p.name for p in disk.iterdir() if not p.name.startswith(".")
            and p.suffix in (".h5", ".parquet", ".fits")] == []
    assert [p.name for p in disk.iterdir() if p.name.endswith(".tmp")] == []


def test_synth_and_ingest_on_a_full_disk(small_disk, bad_archive, tmp_path):
    result = cli("synth", "apogee", "--n", "200", "-o", str(small_disk / "s.h5"), "--quiet")
    _assert_clean(result, small_disk, "the disk is full")
    folder, _ = bad_archive
    result = cli("ingest", str(folder), "-o", str(small_disk / "set.h5"), "--grid", "apogee",
                 "--quiet")
    # the LAMOST files do not cover the APOGEE grid: rejected, or a full disk
    assert "Traceback" not in result.stderr
    result = cli("ingest", str(folder), "-o", str(small_disk / "set.h5"), "--grid", "lamost",
                 "--quiet")
    _assert_clean(result, small_disk, "the disk is full")


def test_train_on_a_full_disk_keeps_no_half_model(small_disk, tmp_path):
    sl.synth.generate("apogee", 100, seed=0).write(tmp_path / "t.h5")
    result = cli("train", "--model", "starnet", "--data", str(tmp_path / "t.h5"), "--labels",
                 "teff", "--epochs", "1", "--quiet", "-o", str(small_disk / "m"))
    _assert_clean(result, small_disk, "the disk is full")
    assert not (small_disk / "m").exists()
    assert not [p for p in small_disk.iterdir() if p.name.startswith(".m.")]


def test_predict_on_a_full_disk(small_disk, lamost_model, bad_archive):
    folder, _ = bad_archive
    big = small_disk / "filler"
    with open(big, "wb") as f:  # leave ~40 kB: the free-space check refuses up front
        f.write(b"\0" * (256 - 40) * 1024)
    result = cli("predict", str(lamost_model), str(folder), "-o",
                 str(small_disk / "cat.parquet"), "--quiet")
    _assert_clean(result, small_disk, "the disk is full")


def test_predict_and_synth_on_a_read_only_disk(read_only_disk, lamost_model, bad_archive):
    folder, _ = bad_archive
    result = cli("predict", str(lamost_model), str(folder), "-o",
                 str(read_only_disk / "cat.parquet"), "--quiet")
    _assert_clean(result, read_only_disk, "read-only")
    result = cli("synth", "lamost", "--n", "5", "-o", str(read_only_disk / "s.h5"), "--quiet")
    _assert_clean(result, read_only_disk, "read-only")
