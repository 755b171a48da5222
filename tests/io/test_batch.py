"""read_many: many files into few SpectrumSets, identical to reading them one by one."""

import os

import numpy as np
from numpy.testing import assert_array_equal

from starlearn.io import read, read_many
from starlearn.io.batch import rows_to_set

from ..jobs.test_ingest import make_folder
from .test_lamost import lrs_image_hdul, lrs_table_hdul, mrs_hdul


def test_read_many_equals_read_one_by_one(tmp_path):
    folder = make_folder(tmp_path, n_good=4)
    lrs_table_hdul(n_pix=3909).writeto(folder / "spec-table.fits")  # no row reader path diff
    mrs_hdul().writeto(folder / "med-mrs.fits")  # a format without a row reader
    paths = sorted(str(p) for p in folder.iterdir())
    sets, rejects = read_many(paths)

    rejected = {p.rsplit("/", 1)[1]: reason for p, reason in rejects}
    assert set(rejected) == {"spec-truncated.fits", "spec-text.fits", "spec-allnan.fits"}
    assert "truncated" in rejected["spec-truncated.fits"]
    assert "no usable pixel" in rejected["spec-allnan.fits"]

    got = {}
    for s in sets:
        for i in range(len(s)):
            got[str(s.meta["file"][i])] = s[i:i + 1]
    good = [p for p in paths if p.rsplit("/", 1)[1] not in rejected]
    assert sorted(got) == sorted(good)
    for path in good:
        one, many = read(path), got[path]
        assert_array_equal(many.flux, one.flux)
        assert_array_equal(many.ivar, one.ivar)
        assert_array_equal(many.mask, one.mask)
        assert_array_equal(np.broadcast_to(many.wave, many.flux.shape)[0],
                           np.broadcast_to(one.wave, one.flux.shape)[0])
        assert list(many.ids) == list(one.ids)
        for key in one.meta.colnames:
            a, b = one.meta[key][0], many.meta[key][0]
            assert a == b or (isinstance(a, float) and np.isnan(a) and np.isnan(b)), key
    # the LAMOST LRS files came back as one set, not one per file
    lrs = [s for s in sets if len(s) > 1]
    assert len(lrs) == 1 and len(lrs[0]) == 5


def test_read_many_unknown_format_name(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="unknown format 'nope'"):
        read_many([], format="nope")


def test_read_many_keeps_priority_over_the_previous_format(tmp_path):
    """After a generic table file, an SDSS file (which the generic reader also accepts)
    is still read as sdss-spec, as read() would."""
    from .test_generic import table1d_hdul
    from .test_sdss import sdss_hdul

    generic = tmp_path / "a-processed.fits"
    table1d_hdul().writeto(generic)
    sdss = tmp_path / "b-spec.fits"
    sdss_hdul().writeto(sdss)
    sets, rejects = read_many([generic, sdss, generic])
    assert not rejects
    formats = {str(f): str(fmt) for s in sets
               for f, fmt in zip(s.meta["file"], s.meta["format"], strict=True)}
    assert formats == {str(generic): "table1d", str(sdss): "sdss-spec"}


def test_direct_lamost_reader_takes_only_plain_lrs_images(tmp_path):
    """The fitsio row reader gives read()'s spectrum for an LRS image (also gzipped) and
    leaves every other file (table layout, MRS, truncated, text) to the astropy path."""
    from starlearn.io.batch import _DIRECT_READERS

    direct = _DIRECT_READERS["lamost-lrs"]
    folder = make_folder(tmp_path, n_good=1)
    lrs_table_hdul(n_pix=3909).writeto(folder / "spec-table.fits")
    mrs_hdul().writeto(folder / "med-mrs.fits")
    lrs_image_hdul(n_pix=3909, seed=3).writeto(folder / "spec-gz.fits.gz")
    for good in ("spec-0.fits", "spec-gz.fits.gz"):
        path = str(folder / good)
        row, one = direct(path, path), read(path)
        assert row is not None
        many = rows_to_set([row])  # as read_many stores it
        assert_array_equal(many.flux, one.flux)
        assert_array_equal(many.ivar, one.ivar)
        assert_array_equal(many.mask, one.mask)
        assert_array_equal(many.wave, one.wave)
        assert row.id == one.ids[0]
        for key, value in row.meta.items():
            same = one.meta[key][0]
            assert same == value or (np.isnan(value) and np.isnan(same)), key
    for other in ("spec-table.fits", "med-mrs.fits", "spec-truncated.fits", "spec-text.fits"):
        assert direct(str(folder / other), other) is None, other


def _by_file(sets):
    """{file: its one-spectrum set} for the sets with a meta ``file`` (survey files)."""
    return {str(f): s[i:i + 1] for s in sets if "file" in s.meta.colnames
            for i, f in enumerate(s.meta["file"])}


def test_the_batch_reader_gives_what_reading_one_by_one_gives(tmp_path):
    """read_many over folders, globs, list files and data sets: the same spectra as sl.read
    file by file, and each bad file rejected with exactly the reason sl.read gives."""
    import pytest

    import starlearn as sl

    from ..test_spectra import make_set
    from .test_dataset import assert_sets_equal
    from .test_generic import wcs1d_hdul

    folder = make_folder(tmp_path, n_good=3)
    wcs1d_hdul().writeto(folder / "other-wcs.fits")
    data = make_set(n=4, n_pix=3909)
    data.write(tmp_path / "set.h5")
    (tmp_path / "fake.h5").write_text("not HDF5")
    ascii_file = tmp_path / "spec.txt"
    ascii_file.write_text("# wave [Angstrom] flux\n" + "\n".join(
        f"{6500 + i * 0.5} 1.0" for i in range(3909)))
    listing = tmp_path / "more.lst"
    listing.write_text("# two files\nset.h5\nfake.h5\nmissing.fits\n")
    inputs = [folder, listing, str(tmp_path / "*.txt")]
    paths = sl.io.expand_inputs(inputs)
    assert len(paths) == 7 + 3 + 1

    sets, rejects = read_many(inputs, progress=True)
    expected_rejects = []
    for path in paths:
        try:
            sl.read(path)
        except sl.io.ReadError as err:
            expected_rejects.append((path, err.reason))
    assert sorted(rejects) == sorted(expected_rejects)
    assert {p.rsplit("/", 1)[1] for p, _ in rejects} == {
        "spec-truncated.fits", "spec-text.fits", "spec-allnan.fits", "fake.h5",
        "missing.fits"}
    got = _by_file(sets)
    rejected = {p for p, _ in rejects}
    for path in paths:
        if path in rejected or path.endswith(".h5"):
            continue
        one = sl.read(path)
        assert_array_equal(got[path].flux, one.flux)
        assert_array_equal(got[path].ivar, one.ivar)
        assert_array_equal(got[path].mask, one.mask)
        assert_array_equal(np.broadcast_to(got[path].wave, got[path].flux.shape)[0],
                           np.broadcast_to(one.wave, one.flux.shape)[0])
        assert list(got[path].ids) == list(one.ids)
        for key in one.meta.colnames:
            a, b = one.meta[key][0], got[path].meta[key][0]
            assert a == b or (isinstance(a, float) and np.isnan(a) and np.isnan(b)), key
    # in the order of each set's first file (the LAMOST rows as one set)
    first = [str(s.meta["file"][0]) if "file" in s.meta.colnames else "set.h5" for s in sets]
    assert [os.path.basename(f) for f in first] == ["other-wcs.fits", "spec-0.fits", "set.h5",
                                                    "spec.txt"]
    assert len(sets[1]) == 3
    assert_sets_equal(sets[2], sl.read(tmp_path / "set.h5"))  # a data set as stored
    assert_sets_equal(sets[2], data)
    with pytest.raises(ValueError, match="unknown format 'nope'"):
        read_many(inputs, format="nope")


def test_one_path_and_a_format_for_every_file(tmp_path):
    folder = make_folder(tmp_path, n_good=2)
    sets, rejects = read_many(str(folder / "spec-0.fits"))
    assert len(sets) == 1 and len(sets[0]) == 1 and not rejects
    sets, rejects = read_many(folder, format="lamost-lrs")
    assert sorted(str(f).rsplit("/", 1)[1] for f in sets[0].meta["file"]) == [
        "spec-0.fits", "spec-1.fits"]
    assert {p.rsplit("/", 1)[1] for p, _ in rejects} == {
        "spec-truncated.fits", "spec-text.fits", "spec-allnan.fits"}
