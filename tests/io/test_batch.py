"""read_many: many files into few SpectrumSets, identical to reading them one by one."""

import numpy as np
from numpy.testing import assert_array_equal

from starlearn.io import read, read_many

from .test_ingest import make_folder
from .test_lamost import lrs_table_hdul, mrs_hdul


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
