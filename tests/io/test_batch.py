"""read_many: many files into few SpectrumSets, identical to reading them one by one."""

import numpy as np
from numpy.testing import assert_array_equal

from starlearn.io import read, read_many
from starlearn.io.batch import rows_to_set

from .test_ingest import make_folder
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
