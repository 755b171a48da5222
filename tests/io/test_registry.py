"""The one reader registry: every door (sl.read, SpectrumSet.read/write, read_many)
dispatches through it, and its public surface is all that other modules use."""

import ast
from pathlib import Path

import pytest
from astropy.io import fits
from numpy.testing import assert_array_equal

import starlearn as sl
from starlearn import SpectrumSet
from starlearn.io import registry
from starlearn.io.fitsutil import ReadError, as_hdulist

from ..test_spectra import make_set
from .test_dataset import assert_sets_equal
from .test_generic import table1d_hdul
from .test_lamost import lrs_image_hdul
from .test_sdss import sdss_hdul

ROOT = Path(__file__).resolve().parents[2]


def test_spectrumset_read_of_a_fits_survey_file_goes_through_the_registry(tmp_path):
    path = tmp_path / "spec-1.fits"
    lrs_image_hdul(n_pix=300, seed=2).writeto(path)
    one = sl.read(path)
    for got in (SpectrumSet.read(path), SpectrumSet.read(path, format="lamost-lrs"),
                SpectrumSet.read(str(path), "lamost-lrs", mask_bits="and")):
        assert_sets_equal(got, one)
    assert one.meta["format"][0] == "lamost-lrs" and one.meta["file"][0] == str(path)
    with fits.open(path) as hdul:
        assert_array_equal(SpectrumSet.read(hdul).flux, one.flux)
    with pytest.raises(ValueError, match="unknown format 'nope'"):
        SpectrumSet.read(path, format="nope")


def test_data_set_is_a_registered_format_read_and_written_by_name(tmp_path):
    info = registry.format_info("starlearn-h5")
    assert info.writer is not None and info.fits is False and info.container
    s = make_set(n=5)
    path = tmp_path / "set.data"  # the writer's default, whatever the file name
    s.write(path)
    assert registry.identify_format(path) == ["starlearn-h5"]
    assert_sets_equal(sl.read(path), s)
    assert_sets_equal(sl.read(path, format="starlearn-h5"), s)
    s.write(tmp_path / "named.h5", format="starlearn-h5", provenance={"by": "test"})
    with sl.open_dataset(tmp_path / "named.h5") as store:
        assert store.provenance == {"by": "test"}
    assert_sets_equal(sl.read(path, rows=[3, 0]), s[[3, 0]])
    assert_sets_equal(SpectrumSet.read(path, rows=slice(1, 3)), s[1:3])
    assert registry.accepts("starlearn-h5", path)
    with open(path, "rb") as f:
        # an identifier given an open file puts it back where it was
        assert sl.io.dataset.dataset_identify("read", None, f) and f.tell() == 0
        assert_sets_equal(sl.read(f, format="starlearn-h5"), s)


def test_write_names_the_formats_it_can_write(tmp_path):
    s = make_set(n=2)
    with pytest.raises(ValueError, match="format 'lamost-lrs' has no writer; formats with "
                                         "one: starlearn-h5"):
        s.write(tmp_path / "x.fits", format="lamost-lrs")
    with pytest.raises(ValueError, match="unknown format 'fits'"):
        s.write(tmp_path / "x.fits", format="fits")
    assert not list(tmp_path.iterdir())


def test_a_missing_file_is_a_read_error_and_a_file_not_found_error(tmp_path):
    for door in (sl.read, SpectrumSet.read, sl.read_dataset):
        with pytest.raises(ReadError, match="nothing.h5: no such file") as err:
            door(tmp_path / "nothing.h5")
        assert isinstance(err.value, FileNotFoundError) and err.value.reason == "no such file"


def test_a_bad_data_set_is_explained_by_the_data_set_reader(tmp_path):
    (tmp_path / "notes.h5").write_text("hello")
    with pytest.raises(ReadError, match="looks like starlearn-h5 .file name 'notes.h5'. but "
                                        "not a readable HDF5 file"):
        sl.read(tmp_path / "notes.h5")
    (tmp_path / "notes.txt").write_text("hello")  # no format's name: nothing to explain
    with pytest.raises(ReadError, match="format not recognised .known formats"):
        sl.read(tmp_path / "notes.txt")


def test_public_identify_accepts_and_read_as(tmp_path):
    generic, sdss = tmp_path / "a.fits", tmp_path / "b.fits"
    table1d_hdul().writeto(generic)
    sdss_hdul().writeto(sdss)
    assert registry.is_fits(sdss) and not registry.is_hdf5(sdss)
    with as_hdulist(sdss) as hdul:
        assert registry.identify(str(sdss), hdul) == "sdss-spec"
        # a lower-priority previous format does not win over a product format
        assert registry.identify(str(sdss), hdul, previous="table1d") == "sdss-spec"
        assert registry.accepts("table1d", hdul, str(sdss))
        assert not registry.accepts("lamost-lrs", hdul, str(sdss))
        got = registry.read_as("sdss-spec", hdul, str(sdss))
    assert_sets_equal(got, sl.read(sdss))
    with as_hdulist(generic) as hdul:
        assert registry.identify(str(generic), hdul, previous="table1d") == "table1d"
    (tmp_path / "c.txt").write_text("nothing to see")
    with pytest.raises(ReadError, match="c.txt: format not recognised"):
        registry.identify(str(tmp_path / "c.txt"))
    with pytest.raises(ValueError, match="unknown format 'nope'"):
        registry.format_info("nope")


def test_registering_a_format_twice_is_refused():
    with pytest.raises(ValueError, match="'lamost-lrs' is already registered"):
        registry.register_reader("lamost-lrs", identifier=None)(lambda source: None)
    with pytest.raises(ValueError, match="'starlearn-h5' already has a writer"):
        registry.register_writer("starlearn-h5")(lambda spectra, path: None)
    assert registry.format_info("lamost-lrs").reader is sl.io.lamost.read_lamost_lrs


def _private_registry_uses(path: Path) -> list[str]:
    """``from starlearn.io.registry import _x`` and ``registry._x`` in one source file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "starlearn.io.registry":
            found += [f"import {a.name}" for a in node.names if a.name.startswith("_")]
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                and not node.attr.startswith("__"):
            base = node.value
            name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
            if name == "registry":
                found.append(f"registry.{node.attr}")
    return [f"{path}:{use}" for use in found]


def test_no_module_outside_the_registry_uses_its_private_names():
    files = [p for folder in ("src", "tests", "benchmarks") if (ROOT / folder).exists()
             for p in sorted((ROOT / folder).rglob("*.py"))]
    own = ROOT / "src" / "starlearn" / "io" / "registry.py"
    assert own in files and len(files) > 20
    uses = [u for p in files if p != own for u in _private_registry_uses(p)]
    assert uses == []


def test_the_scan_sees_a_private_import(tmp_path):
    bad = tmp_path / "uses_private.py"
    bad.write_text("from starlearn.io.registry import _INFO, read\n"
                   "from starlearn.io import registry\nregistry._call\n")
    assert len(_private_registry_uses(bad)) == 2
