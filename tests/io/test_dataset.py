import h5py
import numpy as np
import pytest
from numpy.testing import assert_array_equal

from starlearn import SpectrumSet, open_dataset
from starlearn.io.dataset import DatasetWriter

from ..test_spectra import make_set


def assert_sets_equal(a: SpectrumSet, b: SpectrumSet) -> None:
    assert_array_equal(a.wave, b.wave)
    assert a.wave.dtype == b.wave.dtype == np.float64
    for name in ("flux", "ivar", "mask", "labels", "ids"):
        assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.label_names == b.label_names and a.class_names == b.class_names
    if a.classes is None:
        assert b.classes is None
    else:
        assert_array_equal(a.classes, b.classes)
    assert a.meta.colnames == b.meta.colnames
    for col in a.meta.colnames:
        assert_array_equal(np.asarray(a.meta[col]), np.asarray(b.meta[col]))


def test_hdf5_round_trip_is_exact(tmp_path):
    s = make_set(n=7)
    s.flux[2, 5] = np.nan  # becomes masked on the next construction
    s = s.replace()
    path = tmp_path / "set.h5"
    s.write(path)
    assert_sets_equal(s, SpectrumSet.read(path))


def test_sl_read_of_a_data_set_round_trips_exactly(tmp_path):
    """The one door: sl.read identifies the data set by content and gives back exactly what
    was written (flux, ivar, mask, labels, classes, ids, meta: no columns added), as
    SpectrumSet.read and read_dataset do."""
    import starlearn as sl

    s = make_set(n=7)
    s.mask[3, :4] = True
    s = s.replace()
    path = tmp_path / "set.h5"
    s.write(path)
    got = sl.read(path)
    assert_sets_equal(s, got)
    assert got.meta.colnames == ["snr", "survey"]
    assert_sets_equal(got, SpectrumSet.read(path))
    assert_sets_equal(got, sl.read_dataset(path))
    assert_sets_equal(got, sl.read(path, format="starlearn-h5"))
    assert got.mask[3, :4].all() and np.all(got.ivar[3, :4] == 0)


def test_round_trip_per_spectrum_wave_and_no_labels(tmp_path):
    s = SpectrumSet(wave=np.cumsum(np.ones((3, 10)), axis=1) + np.arange(3)[:, None],
                    flux=np.random.default_rng(1).normal(size=(3, 10)))
    s.write(tmp_path / "a.h5")
    back = SpectrumSet.read(tmp_path / "a.h5")
    assert_sets_equal(s, back)
    assert back.classes is None and back.label_names == []


def test_file_layout_matches_documented_format(tmp_path):
    path = tmp_path / "set.h5"
    make_set(n=300, n_pix=2000).write(path)
    with h5py.File(path, "r") as h5:
        assert h5.attrs["format"] == "starlearn-spectra" and h5.attrs["version"] == 2
        assert h5["wave"].dtype == np.float64
        assert h5["flux"].dtype == np.float32 and h5["ivar"].dtype == np.float32
        assert h5["mask"].dtype == bool
        assert h5["labels"].dtype == np.float32
        assert list(h5["labels"].attrs["names"]) == ["teff", "logg"]
        assert list(h5["classes"].attrs["names"]) == ["absorption", "emission"]
        rows, cols = h5["flux"].chunks
        assert cols == 2000 and 1 <= rows < 300  # chunked by whole spectra


def test_hand_written_file_is_readable(tmp_path):
    """The h5py example in docs/dataset-format.md, written by hand."""
    path = tmp_path / "mine.h5"
    n, n_pix = 4, 100
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "starlearn-spectra"
        f.attrs["version"] = 1
        f["wave"] = np.geomspace(15100.0, 17000.0, n_pix)
        f.create_dataset("flux", data=np.ones((n, n_pix), "f4"), chunks=(1, n_pix))
        f.create_dataset("ivar", data=np.full((n, n_pix), 100.0, "f4"), chunks=(1, n_pix))
        f["labels"] = np.array([[4800, 2.5], [5800, 4.4], [np.nan, 1.0], [4000, 1.2]], "f4")
        f["labels"].attrs["names"] = ["teff", "logg"]
        f["ids"] = ["a", "b", "c", "d"]
    s = SpectrumSet.read(path)
    assert len(s) == 4 and s.label_names == ["teff", "logg"]
    assert np.isnan(s.labels[2, 0]) and not s.mask.any()
    assert list(s.ids) == ["a", "b", "c", "d"]


def test_lazy_store_reads_batches_and_fancy_indices(tmp_path):
    s = make_set(n=23)
    path = tmp_path / "set.h5"
    s.write(path)
    with open_dataset(path) as store:
        assert len(store) == 23 and store.n_pix == s.n_pix
        batches = list(store.iter_batches(10))
        assert [len(b) for b in batches] == [10, 10, 3]
        assert_sets_equal(SpectrumSet.concat(batches), s)
        picked = store.read([5, 2, 19])
        assert_array_equal(picked.ids, ["star5", "star2", "star19"])
        assert_array_equal(picked.flux, s.flux[[5, 2, 19]])
        assert_array_equal(store[3].flux, s.flux[3:4])


def test_writer_appends_blocks(tmp_path):
    s = make_set(n=9)
    path = tmp_path / "big.h5"
    with DatasetWriter(path, n_pix=s.n_pix, wave=s.wave, label_names=s.label_names,
                       class_names=s.class_names,
                       meta_columns={"snr": np.dtype(float), "survey": np.dtype(object)}) as w:
        for start in (0, 4):
            w.append(s[start:start + 4 if start == 0 else 9])
    assert_sets_equal(SpectrumSet.read(path), s)


def test_overwrite_protection(tmp_path):
    path = tmp_path / "x.h5"
    make_set().write(path)
    with pytest.raises(FileExistsError, match="x.h5"):
        make_set().write(path)
    make_set(n=2).write(path, overwrite=True)
    assert len(SpectrumSet.read(path)) == 2


def test_overwrite_leaves_an_open_reader_its_file(tmp_path, monkeypatch):
    """Replacing a data set that a process is reading (a training, say) swaps the file in
    whole: the reader keeps the old spectra, nothing is truncated under it, and a write
    that fails leaves the old file in place."""
    path = tmp_path / "train.h5"
    old = make_set(n=6, seed=1)
    old.write(path)
    with open_dataset(path) as store:
        make_set(n=3, seed=2).write(path, overwrite=True)
        assert_array_equal(store[:].flux, old.flux)
    assert len(SpectrumSet.read(path)) == 3
    def fail(self, spectra):
        raise OSError("disk full")

    monkeypatch.setattr(DatasetWriter, "append", fail)
    with pytest.raises(OSError, match="disk full"):
        make_set(n=4).write(path, overwrite=True)
    assert len(SpectrumSet.read(path)) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["train.h5"]


def test_bad_files_get_errors_naming_the_file_and_problem(tmp_path):
    not_h5 = tmp_path / "text.h5"
    not_h5.write_text("hello")
    with pytest.raises(ValueError, match="text.h5.*not a readable HDF5"):
        SpectrumSet.read(not_h5)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["flux"] = np.ones((2, 3))
    with pytest.raises(ValueError, match="other.h5.*'format'"):
        SpectrumSet.read(other)
    wrong = tmp_path / "wrong.h5"
    with h5py.File(wrong, "w") as f:
        f.attrs["format"] = "starlearn-spectra"
        f.attrs["version"] = 1
        f["wave"] = np.arange(4.0)
        f["flux"] = np.ones((2, 3))
        f["ivar"] = np.ones((2, 3))
    with pytest.raises(ValueError, match="wrong.h5.*'/wave' has shape"):
        SpectrumSet.read(wrong)
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        SpectrumSet.read(tmp_path / "missing.h5")
    truncated = tmp_path / "trunc.h5"
    make_set(n=50, n_pix=500).write(truncated)
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match="trunc.h5"):
        SpectrumSet.read(truncated)


# --- format version 2: units ---------------------------------------------------------------


def test_flux_unit_label_units_and_meta_units_round_trip_through_hdf5(tmp_path):
    import astropy.units as u

    s = make_set(n=5)
    s.meta["rv"] = np.arange(5.0)
    s.meta["rv"].unit = u.km / u.s
    s = s.replace(flux_unit="erg / (s cm2 Angstrom)")
    path = tmp_path / "units.h5"
    s.write(path)
    with h5py.File(path, "r") as h5:
        assert h5.attrs["version"] == 2
        assert h5["wave"].attrs["unit"] == "Angstrom"
        assert u.Unit(h5["flux"].attrs["unit"]) == s.flux_unit
        assert u.Unit(h5["ivar"].attrs["unit"]) == s.flux_unit ** -2
        assert list(h5["labels"].attrs["units"]) == ["K", "dex"]
        assert h5["meta"]["rv"].attrs["unit"] == "km / s"
    back = SpectrumSet.read(path)
    assert_sets_equal(s, back)
    assert back.flux_unit == s.flux_unit and back.meta["rv"].unit == u.km / u.s
    with open_dataset(path) as store:
        assert store.version == 2 and store.flux_unit == s.flux_unit
        assert store.label_units == [u.K, u.dex]
        assert "flux unit: erg / (Angstrom s cm2)" in store.summary()
        assert store[1:3].flux_unit == s.flux_unit
    plain = tmp_path / "plain.h5"
    make_set(n=2).write(plain)
    with h5py.File(plain, "r") as h5:
        assert h5["flux"].attrs["unit"] == "" and h5["ivar"].attrs["unit"] == ""
    assert SpectrumSet.read(plain).flux_unit == u.dimensionless_unscaled


def test_a_version_1_file_written_the_old_way_is_still_read(tmp_path):
    """Version 1 had no unit attributes: wavelengths are Angstrom, flux dimensionless."""
    import astropy.units as u

    path = tmp_path / "v1.h5"
    n, n_pix = 3, 6
    rng = np.random.default_rng(3)
    wave = np.linspace(5000.0, 5005.0, n_pix)[None, :] + np.arange(n)[:, None]
    flux = rng.normal(1.0, 0.1, (n, n_pix)).astype("f4")
    mask = np.zeros((n, n_pix), bool)
    mask[1, 2] = True
    with h5py.File(path, "w") as f:
        f.attrs["format"], f.attrs["version"] = "starlearn-spectra", 1
        f["wave"] = wave
        f.create_dataset("flux", data=flux, chunks=(1, n_pix))
        f.create_dataset("ivar", data=np.full((n, n_pix), 25.0, "f4"), chunks=(1, n_pix))
        f.create_dataset("mask", data=mask, chunks=(1, n_pix))
        f["labels"] = np.array([[4800, 2.5], [5800, 4.4], [np.nan, 1.0]], "f4")
        f["labels"].attrs["names"] = ["teff", "logg"]
        f["classes"] = np.array([0, -1, 1])
        f["classes"].attrs["names"] = ["giant", "dwarf"]
        f["ids"] = ["a", "b", "c"]
        f["meta/snr"] = np.array([10.0, 20.0, 30.0])
        f["meta/survey"] = np.array(["apogee", "galah", "lamost"], dtype=object)
    s = SpectrumSet.read(path)
    assert_array_equal(s.wave, wave)
    assert s.flux_unit == u.dimensionless_unscaled
    assert_array_equal(s.flux[0], flux[0])
    assert s.mask[1, 2] and s.ivar[1, 2] == 0 and s.mask.sum() == 1
    assert s.label_names == ["teff", "logg"] and np.isnan(s.labels[2, 0])
    assert s.classes.tolist() == [0, -1, 1] and s.class_names == ["giant", "dwarf"]
    assert list(s.ids) == ["a", "b", "c"] and list(s.meta["survey"]) == ["apogee", "galah",
                                                                          "lamost"]
    with open_dataset(path) as store:
        assert store.version == 1 and store.label_units == [u.K, u.dex]
    # written again, it is a version-2 file with the same content
    s.write(tmp_path / "v2.h5")
    assert_sets_equal(s, SpectrumSet.read(tmp_path / "v2.h5"))


def test_a_hand_written_version_2_file_in_other_units_is_converted(tmp_path):
    path = tmp_path / "nm.h5"
    with h5py.File(path, "w") as f:
        f.attrs["format"], f.attrs["version"] = "starlearn-spectra", 2
        f["wave"] = np.array([500.0, 500.5, 501.0])
        f["wave"].attrs["unit"] = "nm"
        f["flux"] = np.ones((2, 3), "f4")
        f["flux"].attrs["unit"] = "mJy"
        f["ivar"] = np.ones((2, 3), "f4")
        f["labels"] = np.array([[4800.0, 12000.0, 1.0], [5000.0, 3000.0, 2.0]], "f4")
        f["labels"].attrs["names"] = ["teff", "vsini", "depth"]
        f["labels"].attrs["units"] = ["K", "m / s", "mm"]
        f["ids"] = ["a", "b"]
    s = SpectrumSet.read(path)
    assert_array_equal(s.wave, [5000.0, 5005.0, 5010.0])
    assert str(s.flux_unit) == "mJy"
    np.testing.assert_allclose(s.label("vsini"), [12.0, 3.0])  # m/s -> km/s
    assert_array_equal(s.label("depth"), [1.0, 2.0])  # a label starlearn does not know
    with h5py.File(path, "a") as f:
        f["labels"].attrs["units"] = ["dex", "km / s", ""]
    with pytest.raises(ValueError, match="nm.h5.*label 'teff' is in dex.*does not convert "
                                         "to K"):
        SpectrumSet.read(path)
    with h5py.File(path, "a") as f:
        f["labels"].attrs["units"] = ["K", "km / s", ""]
        f["wave"].attrs["unit"] = "km / s"
    with pytest.raises(ValueError, match="nm.h5.*'/wave'.*velocity"):
        SpectrumSet.read(path)
    with h5py.File(path, "a") as f:
        f["wave"].attrs["unit"] = "Angstrom"
        f.attrs["version"] = 3
    with pytest.raises(ValueError, match="version 3 is not supported.*versions 1, 2"):
        SpectrumSet.read(path)


def test_writer_converts_blocks_to_the_file_flux_unit(tmp_path):
    import astropy.units as u

    wave = np.linspace(5000.0, 5010.0, 4)
    jy = SpectrumSet(wave=wave, flux=np.ones((2, 4)) * u.Jy)
    mjy = SpectrumSet(wave=wave, flux=np.full((1, 4), 500.0) * u.mJy)
    path = tmp_path / "blocks.h5"
    with DatasetWriter(path, n_pix=4, wave=wave) as w:  # the unit of the first block
        w.append(jy)
        w.append(mjy)
    back = SpectrumSet.read(path)
    assert back.flux_unit == u.Jy
    np.testing.assert_allclose(back.flux[:, 0], [1.0, 1.0, 0.5])
    with pytest.raises(ValueError, match="block flux unit '' does not convert.*'Jy'"), \
            DatasetWriter(tmp_path / "bad.h5", n_pix=4, wave=wave, flux_unit="Jy") as w:
        w.append(SpectrumSet(wave=wave, flux=np.ones((1, 4))))
    assert not (tmp_path / "bad.h5").exists()
