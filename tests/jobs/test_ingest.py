import re

import numpy as np
import pytest
from astropy.table import Table
from click.testing import CliRunner
from numpy.testing import assert_allclose

from starlearn import SpectrumSet, get_grid
from starlearn.cli import main
from starlearn.io import ReadError, expand_inputs
from starlearn.jobs.ingest import ingest

from ..io.test_lamost import lrs_image_hdul


def make_folder(tmp_path, n_good=4):
    folder = tmp_path / "archive"
    folder.mkdir()
    for i in range(n_good):
        hdul = lrs_image_hdul(n_pix=3909, seed=i)
        hdul[0].header["OBSID"] = 1000 + i
        hdul.writeto(folder / f"spec-{i}.fits")
    trunc = folder / "spec-truncated.fits"
    lrs_image_hdul(n_pix=3909).writeto(trunc)
    trunc.write_bytes(trunc.read_bytes()[:20000])
    (folder / "spec-text.fits").write_text("SIMPLE? no, this is a text file\n" * 20)
    nan = lrs_image_hdul(n_pix=3909)
    nan[0].data[0] = np.nan
    nan.writeto(folder / "spec-allnan.fits")
    return folder


def test_ingest_folder_keeps_good_files_and_lists_rejects(tmp_path):
    folder = make_folder(tmp_path)
    out = tmp_path / "set.h5"
    report = ingest([folder], out, grid="lamost", progress=False)
    assert report.n_files == 7 and report.n_read == 4 and report.n_spectra == 4
    reasons = dict(report.rejects)
    assert "truncated FITS file" in reasons[str(folder / "spec-truncated.fits")]
    assert "format not recognised" in reasons[str(folder / "spec-text.fits")]
    assert "no usable pixel" in reasons[str(folder / "spec-allnan.fits")]
    s = SpectrumSet.read(out)
    assert len(s) == 4 and get_grid("lamost").matches(s.wave)
    assert sorted(s.ids) == ["1000", "1001", "1002", "1003"]
    rejects = Table.read(tmp_path / "set.h5.rejects.csv")
    assert len(rejects) == 3
    assert "rejected 1: truncated FITS file" in report.summary()


def test_ingest_joins_catalogue_labels_with_sentinels_as_nan(tmp_path):
    folder = make_folder(tmp_path, n_good=3)
    catalog = tmp_path / "labels.csv"
    Table({"obsid": ["1000", "1001", "1002"], "teff": [5000.0, -9999.0, 6000.0],
           "logg": [4.5, 4.0, -9999.0]}).write(catalog)
    out = tmp_path / "set.h5"
    report = ingest([str(folder / "spec-?.fits")], out, labels=catalog, id_column="obsid",
                    label_columns=["teff", "logg"], workers=2, progress=False)
    assert report.n_labelled == 3 and not report.rejects
    s = SpectrumSet.read(out)
    order = np.argsort(s.ids)
    assert_allclose(s.labels[order], [[5000.0, 4.5], [np.nan, 4.0], [6000.0, np.nan]])
    assert s.wave.ndim == 2  # no grid: per-spectrum wavelengths kept


def test_ingest_without_readable_input_fails_clearly(tmp_path):
    bad = tmp_path / "bad.fits"
    bad.write_text("nothing")
    with pytest.raises(ReadError, match="no input could be read"):
        ingest([bad], tmp_path / "out.h5", progress=False)
    assert not (tmp_path / "out.h5").exists()


def test_expand_inputs_from_list_file_and_glob(tmp_path):
    for name in ("a.fits", "b.fits.gz", "c.txt", "skip.png"):
        (tmp_path / name).write_text("x")
    listing = tmp_path / "files.lst"
    listing.write_text("# my files\na.fits\nc.txt\n")
    assert expand_inputs([listing]) == [str(tmp_path / "a.fits"), str(tmp_path / "c.txt")]
    assert expand_inputs([str(tmp_path / "*.fits*")]) == [str(tmp_path / "a.fits"),
                                                           str(tmp_path / "b.fits.gz")]
    assert len(expand_inputs([tmp_path])) == 3


def test_expand_inputs_takes_an_existing_file_as_named(tmp_path):
    """A file with glob characters in its name is that file, not a pattern."""
    odd = tmp_path / "spec[1].fits"
    odd.write_text("x")
    (tmp_path / "spec1.fits").write_text("x")
    assert expand_inputs([odd]) == [str(odd)]
    assert expand_inputs(str(tmp_path / "spec?.fits")) == [str(tmp_path / "spec1.fits")]
    assert expand_inputs([tmp_path / "gone.fits"]) == [str(tmp_path / "gone.fits")]


def test_ingest_cli(tmp_path):
    folder = make_folder(tmp_path, n_good=2)
    out = tmp_path / "cli.h5"
    result = CliRunner().invoke(main, ["ingest", str(folder), "-o", str(out), "--wave-range",
                                       "4000:8000", "--resolution", "1800", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "2 read, 3 rejected" in result.output and "spec-text.fits" in result.output
    s = SpectrumSet.read(out)
    assert abs(s.wave[0] - 4000) < 1e-6 and abs(s.wave[-1] - 8000) < 1e-6


def test_ingest_multi_object_files_one_row_per_object(tmp_path):
    """A DESI coadd (three targets, arms joined) and LAMOST files, resampled onto one
    grid: one data-set row per target with its TARGETID."""
    from starlearn import Grid, read_dataset

    from ..io.test_desi import desi_hdul

    folder = make_folder(tmp_path, n_good=2)
    desi_hdul().writeto(folder / "coadd-sv3-dark-1.fits")
    grid = Grid.log_uniform(3700.0, 3800.0, n_pix=50)
    out = tmp_path / "set.h5"
    report = ingest([folder], out, grid=grid, progress=False)
    assert report.n_spectra == 5
    data = read_dataset(out)
    assert {"1000", "1001", "1002"} <= {str(i) for i in data.ids}


# --------------------------------------------------------------------------- catalogue joins
def allstar_like(path, *, extra=None):
    """An allStar-like catalogue for the four spectra 1000-1003 of make_folder: 1001 twice
    (the EXTRATARG=16 duplicate has Teff 9999 and the higher S/N, and comes last), 1002
    twice (both primary: S/N decides), 1003 flagged by ASPCAPFLAG, 1004 without a spectrum."""
    columns = {
        "APOGEE_ID": ["1000", "1001", "1002", "1001", "1002", "1003", "1004"],
        "TEFF": [5000.0, 5100.0, 5200.0, 9999.0, 5300.0, 5400.0, 5500.0],
        "TEFF_ERR": [50.0, 51.0, 52.0, 999.0, 53.0, -9999.0, 55.0],
        "LOGG": [4.5, 4.4, 4.3, 1.0, 4.2, 4.1, 4.0],
        "LOGG_ERR": [0.1, 0.2, 0.3, 0.9, 0.4, 0.5, 0.6],
        "FE_H": [0.0, -0.1, -0.2, 0.5, -0.3, -0.4, -0.5],
        "EXTRATARG": np.array([0, 0, 0, 16, 0, 0, 0], dtype=np.int16),
        "SNR": [100.0, 50.0, 60.0, 300.0, 80.0, 20.0, 90.0],
        "ASPCAPFLAG": np.array([0, 0, 0, 0, 0, 4, 0], dtype=np.int64),
    }
    columns.update(extra or {})
    Table(columns).write(path)
    return path


def spectra_of(tmp_path, n_good=4):
    folder = make_folder(tmp_path, n_good=n_good)
    return [str(folder / "spec-?.fits")]


def by_id(s):
    order = np.argsort(s.ids)
    return [str(i) for i in s.ids[order]], s.labels[order], s.meta[order]


def test_duplicates_best_keeps_the_primary_row_then_the_highest_snr(tmp_path):
    """The user's allStar case: the EXTRATARG=16 duplicate (Teff 9999, higher S/N, last
    row) must not win; both 1002 rows are primary, so the higher S/N (80) wins."""
    cat = allstar_like(tmp_path / "allStar.fits")
    out = tmp_path / "set.h5"
    report = ingest(spectra_of(tmp_path), out, labels=cat, id_column="APOGEE_ID",
                    label_columns=["TEFF", "LOGG"], progress=False)
    ids, labels, _ = by_id(SpectrumSet.read(out))
    assert ids == ["1000", "1001", "1002", "1003"]
    assert_allclose(labels[:, 0], [5000.0, 5100.0, 5300.0, 5400.0])
    cat_info = report.catalogue
    assert cat_info.duplicates == "best" and cat_info.duplicated_ids == ["1001", "1002"]
    assert cat_info.n_duplicate_rows == 2
    assert cat_info.decided_by == {"flag": 1, "snr": 1, "file order": 0}
    assert report.n_labelled == 4 and report.n_labelled_duplicated == 2
    text = report.summary()
    assert "2 identifiers on several rows (2 rows dropped), resolved by 'best'" in text
    assert "EXTRATARG bit 4 (DUPLICATE) unset, then highest SNR" in text
    assert "decided by flag: 1, snr: 1" in text
    assert "4 spectra matched a catalogue row" in text
    assert "2 of them by an identifier on several rows" in text


def test_duplicates_first_keeps_the_first_row_in_file_order(tmp_path):
    cat = allstar_like(tmp_path / "allStar.fits")
    out = tmp_path / "set.h5"
    report = ingest(spectra_of(tmp_path), out, labels=cat, id_column="APOGEE_ID",
                    label_columns=["TEFF"], duplicates="first", progress=False)
    _, labels, _ = by_id(SpectrumSet.read(out))
    assert_allclose(labels[:, 0], [5000.0, 5100.0, 5200.0, 5400.0])
    assert "resolved by 'first' (the first row in file order)" in report.summary()


def test_duplicates_refuse_lists_the_ids_and_writes_nothing(tmp_path):
    from starlearn.io.catalogue import DuplicateIdError

    cat = allstar_like(tmp_path / "allStar.fits")
    out = tmp_path / "set.h5"
    with pytest.raises(DuplicateIdError, match=r"2 identifiers are on more than one row "
                       r"\(4 rows\): 1001 \(2 rows\), 1002 \(2 rows\)") as err:
        ingest(spectra_of(tmp_path), out, labels=cat, id_column="APOGEE_ID",
               label_columns=["TEFF"], duplicates="refuse", progress=False)
    assert err.value.ids == ["1001", "1002"] and "--duplicates" in str(err.value)
    assert isinstance(err.value, ReadError) and not out.exists()


def test_refusal_lists_at_most_ten_ids(tmp_path):
    from starlearn.io.catalogue import DuplicateIdError, read_label_catalogue

    path = tmp_path / "many.csv"
    Table({"id": [f"s{i:02d}" for i in range(25)] * 2, "teff": np.arange(50.0)}).write(path)
    with pytest.raises(DuplicateIdError) as err:
        read_label_catalogue(path, id_column="id", label_columns="teff", duplicates="refuse")
    assert len(err.value.ids) == 25
    assert "s09 (2 rows), ... and 15 more" in str(err.value)
    assert "s10" not in str(err.value)


def test_best_without_flag_or_snr_refuses_instead_of_guessing(tmp_path):
    from starlearn.io.catalogue import DuplicateIdError, read_label_catalogue

    path = tmp_path / "plain.csv"
    Table({"id": ["a", "a", "b"], "teff": [1.0, 2.0, 3.0]}).write(path)
    with pytest.raises(DuplicateIdError, match="'best' has nothing to rank them by"):
        read_label_catalogue(path, id_column="id", label_columns="teff")
    first = read_label_catalogue(path, id_column="id", label_columns="teff",
                                 duplicates="first")
    assert first.as_dict()["a"].tolist() == [1.0]


def test_best_with_other_survey_flags_and_snr_columns(tmp_path):
    """GALAH DR3 flag_repeat = 0 and DESI ZCAT_PRIMARY mark the primary row; LAMOST has
    no flag and its duplicates are ranked by snrg."""
    from starlearn.io.catalogue import read_label_catalogue

    galah = tmp_path / "galah.csv"
    Table({"sobject_id": [1, 1, 2], "teff": [1.0, 2.0, 3.0], "flag_repeat": [1, 0, 0],
           "snr_c2_iraf": [90.0, 10.0, 5.0]}).write(galah)
    cat = read_label_catalogue(galah, id_column="sobject_id", label_columns="teff")
    assert cat.as_dict()["1"].tolist() == [2.0] and cat.ranked_by[0] == "flag_repeat = 0"
    desi = tmp_path / "zcat.fits"
    Table({"TARGETID": np.array([7, 7, 8]), "TEFF": [1.0, 2.0, 3.0],
           "ZCAT_PRIMARY": [False, True, True]}).write(desi)
    assert read_label_catalogue(desi, id_column="targetid",
                                label_columns="teff").as_dict()["7"].tolist() == [2.0]
    lamost = tmp_path / "lamost.csv"
    Table({"obsid": [5, 5, 5], "teff": [1.0, 2.0, 3.0],
           "snrg": [10.0, np.nan, 30.0]}).write(lamost)
    cat = read_label_catalogue(lamost, id_column="obsid", label_columns="teff")
    assert cat.as_dict()["5"].tolist() == [3.0] and cat.ranked_by == ["highest snrg"]
    assert cat.decided_by["snr"] == 1


def test_where_selects_catalogue_rows_before_duplicates(tmp_path):
    """ASPCAPFLAG drops 1003 (its spectrum gets NaN labels); a bit test removes the
    EXTRATARG duplicate, so only 1002 is still duplicated."""
    cat = allstar_like(tmp_path / "allStar.fits")
    out = tmp_path / "set.h5"
    report = ingest(spectra_of(tmp_path), out, labels=cat, id_column="APOGEE_ID",
                    label_columns=["TEFF"], where="aspcapflag == 0 and EXTRATARG & 16 == 0",
                    duplicates="first", progress=False)
    _, labels, _ = by_id(SpectrumSet.read(out))
    assert_allclose(labels[:, 0], [5000.0, 5100.0, 5200.0, np.nan])
    assert report.catalogue.n_rows == 7 and report.catalogue.n_selected == 5
    assert report.catalogue.duplicated_ids == ["1002"] and report.n_labelled == 3
    assert "7 rows, 5 kept by where 'aspcapflag == 0 and EXTRATARG & 16 == 0'" in \
        report.summary()


def test_where_language(tmp_path):
    from starlearn.io.catalogue import parse_where

    columns = {"SNR": np.ma.masked_array([60.0, 40.0, np.nan, 100.0, -9999.0],
                                         mask=[0, 0, 0, 1, 0]),
               "TELESCOPE": np.array(["apo25m", "lco25m ", "apo1m", "apo25m", "x"]),
               "FLAG": np.array([0, 16, 17, 0, 1]),
               "class": np.array(["STAR", "STAR", "QSO", "STAR", "STAR"])}

    def rows(text):
        return parse_where(text).evaluate(columns).tolist()

    assert rows("SNR > 50") == [True, False, False, False, False]
    # missing (NaN, masked, -9999) is neither true nor false, also under not
    assert rows("not (SNR > 50)") == [False, True, False, False, False]
    assert rows("SNR > 50 or FLAG == 0") == [True, False, False, True, False]
    assert rows("30 < SNR <= 60") == [True, True, False, False, False]
    assert rows("FLAG & 16 == 0") == [True, False, False, True, True]
    assert rows("(SNR > 50) | (FLAG == 1)") == [True, False, False, False, True]
    assert rows("TELESCOPE in ('apo25m', 'lco25m')") == [True, True, False, True, False]
    assert rows("TELESCOPE not in ['apo25m']") == [False, True, True, False, True]
    assert rows("`class` == 'QSO'") == [False, False, True, False, False]
    assert rows("SNR * 2 > 100 and not FLAG != 0") == [True, False, False, False, False]
    assert parse_where("`[Fe/H]` > -1 and SNR > 0").names == ["[Fe/H]", "SNR"]


@pytest.mark.parametrize("text, message", [
    ("__import__('os').system('echo hi')", "function calls are not allowed"),
    ("SNR.__class__", "attribute access"),
    ("SNR[0] > 1", "indexing"),
    ("SNR ** 2 > 1", "'**' is not allowed"),
    ("[x for x in SNR]", "comprehensions are not allowed"),
    ("lambda: 0", "lambda is not allowed"),
    ("SNR >", "not a valid expression"),
    ("SNR = 5", "not a valid expression"),
    ("SNR is None", "'is' is not allowed"),
    ("SNR == None", "constant None"),
    ("SNR and FLAG == 0", "'and' needs comparisons"),
    ("FLAG & 16", "not true/false"),
    ("SNR & 1 == 0", "'&' needs integers"),
    ("TELESCOPE > 'a'", "orders text"),
    ("TELESCOPE == 5", "compares text with integers"),
])
def test_where_refuses_what_it_does_not_allow(text, message):
    from starlearn.io.catalogue import WhereError, parse_where

    columns = {"SNR": np.array([1.0]), "FLAG": np.array([0]), "TELESCOPE": np.array(["a"])}
    with pytest.raises(WhereError, match=re.escape(message)):
        parse_where(text).evaluate(columns)


def test_where_errors_stop_ingest_before_any_spectrum(tmp_path, monkeypatch):
    from starlearn.io.catalogue import CatalogueError, WhereError

    cat = allstar_like(tmp_path / "allStar.fits")
    out = tmp_path / "set.h5"
    inputs = spectra_of(tmp_path)
    read_files = []
    monkeypatch.setattr("starlearn.jobs.ingest._read_one",
                        lambda path, *a: read_files.append(path))
    with pytest.raises(CatalogueError, match=r"where 'SNRR > 50': no column 'SNRR'; did you "
                                             r"mean SNR\?"):
        ingest(inputs, out, labels=cat, id_column="APOGEE_ID",
               label_columns=["TEFF"], where="SNRR > 50", progress=False)
    with pytest.raises(WhereError, match="function calls are not allowed"):
        ingest(inputs, out, labels=cat, id_column="APOGEE_ID",
               label_columns=["TEFF"], where="__import__('os')", progress=False)
    with pytest.raises(CatalogueError, match="label 'vsini': no column 'VSINI'"):
        ingest(inputs, out, labels=cat, id_column="APOGEE_ID",
               label_columns=["VSINI"], progress=False)
    with pytest.raises(ValueError, match="duplicates must be one of refuse, first, best"):
        ingest(inputs, out, labels=cat, id_column="APOGEE_ID",
               label_columns=["TEFF"], duplicates="last", progress=False)
    assert read_files == [] and not out.exists()


def test_label_uncertainties_are_stored_as_meta_err_columns(tmp_path):
    cat = allstar_like(tmp_path / "allStar.fits",
                       extra={"e_FE_H": [0.01, 0.02, 0.03, 0.09, 0.04, 0.05, 0.06]})
    out = tmp_path / "set.h5"
    report = ingest(spectra_of(tmp_path), out, labels=cat, id_column="APOGEE_ID",
                    label_columns=["TEFF", "logg=LOGG", "FE_H"], where="ASPCAPFLAG == 0",
                    progress=False)
    assert report.catalogue.error_columns == {"teff": "TEFF_ERR", "logg": "LOGG_ERR",
                                              "fe_h": "e_FE_H"}
    assert "uncertainties joined as meta: teff_err (TEFF_ERR)" in report.summary()
    s = SpectrumSet.read(out)
    assert s.label_names == ["teff", "logg", "fe_h"]
    _, labels, meta = by_id(s)
    assert_allclose(meta["teff_err"], [50.0, 51.0, 53.0, np.nan])  # 1003 cut by where
    assert_allclose(meta["logg_err"], [0.1, 0.2, 0.4, np.nan], rtol=1e-6)
    assert_allclose(meta["fe_h_err"], [0.01, 0.02, 0.04, np.nan], rtol=1e-6)
    assert_allclose(labels[:, 1], [4.5, 4.4, 4.2, np.nan], rtol=1e-6)

    plain = tmp_path / "plain.h5"
    ingest([str(tmp_path / "archive" / "spec-?.fits")], plain, labels=cat, id_column="APOGEE_ID",
           label_columns=["TEFF"], label_errors=False, progress=False)
    assert "teff_err" not in SpectrumSet.read(plain).meta.colnames


def test_negative_and_sentinel_uncertainties_are_nan(tmp_path):
    from starlearn.io.catalogue import read_label_catalogue

    path = tmp_path / "c.ecsv"
    Table({"id": ["a", "b", "c"], "teff": [1.0, 2.0, 3.0],
           "teff_err": [-1.0, -9999.0, 5.0]}).write(path)
    cat = read_label_catalogue(path, id_column="ID", label_columns="Teff")
    assert_allclose(cat.errors[:, 0], [np.nan, np.nan, 5.0])


def test_column_names_are_matched_in_any_case_and_normalised(tmp_path):
    from starlearn.io.catalogue import read_label_catalogue

    path = tmp_path / "mixed.csv"
    Table({"Obs_ID": ["a", "b"], "Teff": [5000.0, 6000.0], "[Fe/H]": [-0.5, 0.1],
           "e_[Fe/H]": [0.05, 0.06], "LOGG": [4.0, 4.5]}).write(path)
    cat = read_label_catalogue(path, id_column="obs_id", label_columns="TEFF,fe_h,g=logg")
    assert cat.label_names == ["teff", "fe_h", "g"]
    assert cat.label_columns == ["Teff", "[Fe/H]", "LOGG"] and cat.id_column == "Obs_ID"
    assert cat.error_columns == {"fe_h": "e_[Fe/H]"}
    assert_allclose(cat.values, [[5000.0, -0.5, 4.0], [6000.0, 0.1, 4.5]])

    out = tmp_path / "set.h5"
    folder = make_folder(tmp_path, n_good=2)
    upper = tmp_path / "upper.fits"
    Table({"OBSID": ["1000", "1001"], "TEFF": [5000.0, 5100.0],
           "[Fe/H]": [-0.5, 0.1]}).write(upper)
    ingest([str(folder / "spec-?.fits")], out, labels=upper, id_column="obsid",
           label_columns=["TEFF", "[Fe/H]"], progress=False)
    assert SpectrumSet.read(out).label_names == ["teff", "fe_h"]


def test_ambiguous_and_repeated_names_are_refused(tmp_path):
    from starlearn.io.catalogue import CatalogueError, read_label_catalogue

    path = tmp_path / "twice.csv"
    Table({"id": ["a"], "teff": [1.0], "TEFF": [2.0], "Teff_K": [3.0]}).write(path)
    assert read_label_catalogue(path, id_column="id",
                                label_columns="TEFF").label_columns == ["TEFF"]
    with pytest.raises(CatalogueError, match=r"'Teff' matches several columns \(teff, TEFF\)"):
        read_label_catalogue(path, id_column="id", label_columns="Teff")
    with pytest.raises(ValueError, match="label names teff given twice"):
        read_label_catalogue(path, id_column="id", label_columns="teff,TEFF")
    with pytest.raises(CatalogueError, match="column 'id' holds text, not numbers"):
        read_label_catalogue(path, id_column="teff", label_columns="x=id")


def test_fits_catalogue_reads_only_the_needed_columns(tmp_path, monkeypatch):
    """A catalogue with a 16 MB array column nobody asked for: fitsio is asked for the
    needed columns only, never the whole table, and the memory used stays far below the
    column's size."""
    import tracemalloc

    import fitsio

    from starlearn.io.catalogue import read_label_catalogue

    n = 200
    rng = np.random.default_rng(0)
    path = tmp_path / "big.fits"
    Table({"APOGEE_ID": [f"2M{i:06d}" for i in range(n)], "TEFF": rng.uniform(4000, 6000, n),
           "TEFF_ERR": np.full(n, 50.0), "SNR": rng.uniform(10, 200, n),
           "ASPCAPFLAG": np.where(np.arange(n) % 4 == 0, 4, 0),
           "UNUSED_TOO": np.ones(n),
           "SPECTRUM": np.ones((n, 10_000))}).write(path)
    asked: list[str] = []
    real_column = fitsio.hdu.table.TableHDU.read_column

    def spy_column(self, col, *args, **kwargs):
        asked.append(col)
        return real_column(self, col, *args, **kwargs)

    def no_whole_table(self, *args, **kwargs):
        raise AssertionError("the whole table was read")

    monkeypatch.setattr(fitsio.hdu.table.TableHDU, "read_column", spy_column)
    monkeypatch.setattr(fitsio.hdu.table.TableHDU, "read", no_whole_table)
    monkeypatch.setattr(Table, "read", no_whole_table)
    tracemalloc.start()
    try:
        cat = read_label_catalogue(path, id_column="APOGEE_ID", label_columns="teff",
                                   where="ASPCAPFLAG == 0 and SNR > 0")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert set(asked) == {"ASPCAPFLAG", "SNR", "APOGEE_ID", "TEFF", "TEFF_ERR"}
    assert cat.columns_read == ["ASPCAPFLAG", "SNR", "APOGEE_ID", "TEFF", "TEFF_ERR"]
    assert len(cat) == 150 and peak < 2_000_000  # the SPECTRUM column is 16 MB


def test_parquet_and_csv_catalogues_read_only_the_needed_columns(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from starlearn.io.catalogue import read_label_catalogue

    table = Table({"id": ["a", "b", "c"], "teff": [1.0, np.nan, 3.0], "snr": [5.0, 6.0, 7.0],
                   "unused": ["x", "y", "z"]})
    pq.write_table(pa.table({c: table[c].tolist() for c in table.colnames}),
                   tmp_path / "c.parquet")
    asked = []
    real = pq.ParquetFile.read

    def spy(self, columns=None, **kwargs):
        asked.append(columns)
        return real(self, columns=columns, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read", spy)
    cat = read_label_catalogue(tmp_path / "c.parquet", id_column="ID", label_columns="TEFF",
                               where="snr > 5")
    assert asked == [["snr"], ["id"], ["teff"]] and cat.ids.tolist() == ["b", "c"]
    assert_allclose(cat.values[:, 0], [np.nan, 3.0])

    table.write(tmp_path / "c.csv")
    cat = read_label_catalogue(tmp_path / "c.csv", id_column="id", label_columns="teff")
    assert "unused" not in cat.columns_read and cat.ids.tolist() == ["a", "b", "c"]


def test_load_label_catalog_keeps_its_contract(tmp_path):
    from starlearn.jobs.ingest import load_label_catalog

    cat = allstar_like(tmp_path / "allStar.fits")
    labels = load_label_catalog(cat, id_column="APOGEE_ID", label_columns=["TEFF", "LOGG"])
    assert sorted(labels) == ["1000", "1001", "1002", "1003", "1004"]
    assert_allclose(labels["1001"], [5100.0, 4.4])
