"""The reader conformance set: every real file in ../shared/data/fits-samples.

Each file is identified by exactly one product reader (or, for generic formats, by one
generic reader and no product), reads with ``sl.read(path)`` and no ``format=`` onto the
right vacuum wavelengths with plausible masks, or, for a file that holds no spectrum,
raises a ReadError that says what the file is.
"""

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

import starlearn.io as sio
from starlearn import air_to_vacuum
from starlearn.grid import C_KMS
from starlearn.io import registry
from starlearn.io.fitsutil import as_hdulist

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "fits-samples"

pytestmark = [pytest.mark.realdata,
              pytest.mark.skipif(not SHARED.exists(), reason="shared sample files not present"),
              pytest.mark.filterwarnings("ignore::astropy.io.fits.verify.VerifyWarning"),
              pytest.mark.filterwarnings("ignore::starlearn.io.ReadWarning")]

# file, format, spectra, pixels, first and last wavelength (vacuum Angstrom, within 0.5),
# highest masked fraction, medium in the file
EXPECTED = [
    ("apogee-apvisit/dr10spec_apogee-r3-4937-55760-002.fits", "apogee-apvisit", 1, 6144,
     15143.9, 16955.9, 0.2, "vacuum"),
    ("apogee/apStar-dr17-2M17335483-2753043.fits", "apogee-apstar", 1, 8575, 15100.8,
     16999.8, 0.2, "vacuum"),
    ("apogee/apStar-dr17-2M19485057+5005279.fits", "apogee-apstar", 1, 8575, 15100.8,
     16999.8, 0.2, "vacuum"),
    ("apogee/apVisit-r13-5095-55844-128.fits", "apogee-apvisit", 1, 12288, 15142.7, 16954.8,
     0.2, "vacuum"),
    ("apogee/apVisit-r13-9518-57729-104.fits", "apogee-apvisit", 1, 12288, 15142.3, 16954.5,
     0.2, "vacuum"),
    *[(f"apogee/aspcapStar-r6-l30e.2-{star}.fits", "apogee-aspcapstar", 1, 8575, 15100.8,
       16999.8, 0.4, "vacuum")
      for star in ("2M00452143+1634446", "2M03122509+0021585", "2M12241699+2453335",
                   "2M15010818+2250020", "2M22400144+0532162")],
    ("desi/coadd-sv3-dark-26065.fits", "desi", 5, 7781, 3600.0, 9824.0, 0.7, "vacuum"),
    ("eso-phase3/XShooter_XQ100.fits.gz", "eso-phase3", 1, 9771, 9817.5, 18235.0, 0.01,
     "vacuum"),
    ("gaia-xp-sampled/XP_SAMPLED-Gaia DR3 5937083312263887616.ecsv", "gaia-xp-sampled", 1,
     343, 3360.0, 10200.0, 0.0, "vacuum"),
    ("gaia-xp-sampled/XP_SAMPLED_RAW_dr3int6.csv", "gaia-xp-sampled", 2, 343, 3360.0,
     10200.0, 0.0, "vacuum"),
    *[(f"galah-dr3/131123003001096{ccd}.fits", "galah-dr3", 1, 4096, lo, hi, 0.01, "air")
      for ccd, lo, hi in ((1, 4713.8, 4902.3), (2, 5649.4, 5873.3), (3, 6477.8, 6736.3),
                          (4, 7585.6, 7886.8))],
    ("galah-dr4-allstar-spectrum/150411003101372_allstar_fit_spectrum.fits",
     "galah-dr4-allstar", 1, 15097, 4674.7, 7822.4, 0.2, "air"),
    *[(f"galah-dr4-reduction/210115000101001{ccd}.fits", "galah-dr4", 1, 4096, lo, hi, 0.01,
       "air")
      for ccd, lo, hi in ((1, 4715.4, 4903.6), (2, 5650.3, 5874.3), (3, 6478.0, 6736.8),
                          (4, 7586.2, 7887.6))],
    ("harps-drs-s1d/HARPS.2003-12-13T06:19:48.371_s1d_A.fits", "eso-image", 1, 313149,
     3782.8, 6915.1, 0.0, "air"),
    ("iraf-multispec/AAO.fits", "iraf-multispec", 51, 2746, 4781.7, 8417.5, 0.0, "air"),
    ("iraf-multispec/multispec-linear-log.fits", "iraf-multispec", 106, 2048, 3467.4,
     10293.4, 0.3, "air"),
    *[(f"lamost-lrs-dr1/spec-55862-B6212_sp06-{fibre}.fits", "lamost-lrs", 1, 3904, 3700.0,
       9088.7, 0.2, "vacuum") for fibre in ("003", "029")],
    ("lamost-lrs-dr8/spec-55859-F5902_sp03-232.fits.gz", "lamost-lrs", 1, 3906, 3700.0,
     9092.8, 0.1, "vacuum"),
    ("lamost-lrs-dr8/spec-55915-F5591503_sp03-127.fits.gz", "lamost-lrs", 1, 3909, 3700.0,
     9099.1, 0.1, "vacuum"),
    ("lamost-lrs-dr8/spec-56944-EG025338N015809M01_sp01-123.fits.gz", "lamost-lrs", 1, 3909,
     3700.0, 9099.1, 0.1, "vacuum"),
    ("lamost-lrs-gz/spec-55859-F5902_sp01-001.fits.gz", "lamost-lrs", 1, 3908, 3700.0,
     9097.0, 0.1, "vacuum"),
    ("lamost-lrs-gz/spec-60591-LN042429N340750BM01_sp01-001.fits.gz", "lamost-lrs", 1, 3909,
     3700.0, 9099.1, 0.1, "vacuum"),
    *[(f"lamost/{name}.fits", "lamost-lrs", 1, 3909, 3700.0, 9099.1, 0.5, "vacuum")
      for name in ("spec-55916-B5591606_sp01-001", "spec-55919-B5591903_sp01-001",
                   "spec-55919-B5591903_sp01-003", "spec-55919-B5591903_sp01-005",
                   "spec-55919-B5591903_sp01-006", "spec-55919-B5591903_sp01-007",
                   "spec-55919-B5591903_sp01-008", "spec-55919-B5591903_sp01-009",
                   "spec-55939-B5593905_sp01-018")],
    *[(f"lamost/spec-56257-GAC089N38V2_sp01-00{i}.fits", "lamost-lrs", 1, 3899, 3700.0,
       9078.2, 0.2, "vacuum") for i in (1, 4, 5, 6, 7, 8, 9)],
    ("ondrejov/alpha-lyr-absorption.fits", "ondrejov", 1, 1757, 6283.9, 6734.7, 0.0, "air"),
    ("ondrejov/gamma-cas-emission.fits", "ondrejov", 1, 1757, 6283.9, 6734.7, 0.0, "air"),
    ("ondrejov/oe270005.fits", "ondrejov", 1, 1997, 6266.8, 6779.3, 0.0, "air"),
    ("pfs-arm/pfsArm-000001-b1.fits", "pfs-arm", 1, 4096, 3800.0, 6499.3, 0.0, "vacuum"),
    ("pfs-object/pfsObject-0000-0,0-000-00000001-01-0xc28d46e6395428ab.fits", "pfs-object",
     1, 11640, 3800.0, 12599.2, 0.0, "vacuum"),
    ("sdss-spec-dr9/spec-3851-55302-0530.fits", "sdss-spec", 1, 4603, 3589.2, 10356.2, 0.2,
     "vacuum"),
    ("sdss-spec/example_lite.fits", "sdss-spec", 1, 3830, 3815.9, 9215.1, 0.1, "vacuum"),
    ("sdss-spec/spec-0266-51602-0001.fits", "sdss-spec", 1, 3835, 3806.3, 9202.4, 0.1,
     "vacuum"),
    ("sdss-spec/spec-0266-51602-0013.fits", "sdss-spec", 1, 3838, 3803.6, 9202.4, 0.5,
     "vacuum"),
    ("sdss-spec/spec-6717-56397-0534.fits", "sdss-spec", 1, 4597, 3606.6, 10392.0, 0.3,
     "vacuum"),
    *[(f"sdss-spspec-dr7/{name}.fit", "sdss-spspec", 1, 3855, 3796.6, 9221.5, 0.1, "vacuum")
      for name in ("dr6spec-52199-0659-338", "spSpec-51630-0266-637")],
    ("wcs1d/L5g_0355+11_Cruz09.fits", "wcs1d", 1, 3020, 6101.7, 10252.8, 0.0, "air"),
    ("wcs1d/UM184_nE.fits", "wcs1d", 1, 16582, 3043.2, 10274.7, 0.0, "air"),
    ("wcs1d/hr2421.fit", "wcs1d", 1, 573, 3065.0, 7805.6, 0.0, "air"),
]

NOT_SPECTRA = [
    ("pfs-arm/pfsConfig-0x52327a27.fits", "pfs-config", "fibre configuration"),
    ("pfs-gaobject/pfsGAObject.fits", "pfs-gaobject", "placeholder"),
]

NEEDS_GAIAXPY = [
    ("gaia-xp-continuous/XP_CONTINUOUS-Gaia DR3 5937083312263887616.ecsv", 1),
    ("gaia-xp-continuous/XP_CONTINUOUS_RAW.csv", 2),
]


def _all_files() -> list[str]:
    return sorted(str(p.relative_to(SHARED)) for p in SHARED.rglob("*") if p.is_file())


def _claims(path: Path) -> tuple[list[str], list[str]]:
    """(product formats, generic formats) whose identifiers claim the file, every
    identifier asked directly."""
    infos = [i for i in registry.formats() if i.identifier is not None]
    if registry.is_fits(str(path)):
        with as_hdulist(path) as hdul:
            found = [i for i in infos if i.fits in (True, None)
                     and registry.accepts(i.name, hdul, str(path))]
    else:
        found = [i for i in infos if i.fits in (False, None)
                 and registry.accepts(i.name, str(path))]
    return ([i.name for i in found if not i.generic], [i.name for i in found if i.generic])


def test_the_table_covers_every_sample_file():
    listed = {e[0] for e in EXPECTED} | {e[0] for e in NOT_SPECTRA} | {
        e[0] for e in NEEDS_GAIAXPY}
    assert set(_all_files()) <= listed, sorted(set(_all_files()) - listed)


@pytest.mark.parametrize("name", _all_files() if SHARED.exists() else [])
def test_identification_is_never_ambiguous(name):
    products, generic = _claims(SHARED / name)
    expected = {e[0]: e[1] for e in EXPECTED + NOT_SPECTRA}
    expected.update({e[0]: "gaia-xp-continuous" for e in NEEDS_GAIAXPY})
    if products:
        assert products == [expected[name]], products
    else:
        assert generic == [expected[name]], generic
    assert sio.identify_format(SHARED / name) == [expected[name]]


@pytest.mark.parametrize(("name", "fmt", "n", "n_pix", "lo", "hi", "masked", "medium"),
                         EXPECTED, ids=[e[0] for e in EXPECTED])
def test_every_sample_reads_onto_its_wavelengths(name, fmt, n, n_pix, lo, hi, masked, medium):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = sio.read(SHARED / name)
    assert s.meta["format"][0] == fmt
    assert len(s) == n and s.n_pix == n_pix
    assert_allclose([np.min(s.wave), np.max(s.wave)], [lo, hi], atol=0.5)
    assert np.all(np.diff(s.wave, axis=-1) > 0)
    assert s.mask.mean() <= masked
    assert not np.all(s.mask, axis=1).all()
    assert set(s.meta["medium_in_file"]) == {medium}
    for column in ("medium_from", "wave_unit_in_file", "wave_unit_from"):
        assert all(str(v) for v in s.meta[column])


@pytest.mark.parametrize(("name", "fmt", "what"), NOT_SPECTRA)
def test_files_without_a_spectrum_say_what_they_are(name, fmt, what):
    with pytest.raises(sio.ReadError, match=what):
        sio.read(SHARED / name)


@pytest.mark.parametrize(("name", "n"), NEEDS_GAIAXPY)
def test_gaia_continuous_is_sampled_with_gaiaxpy(name, n):
    _needs_gaiaxpy()
    s = sio.read(SHARED / name)
    assert len(s) == n and s.n_pix == 343
    assert_allclose(s.wave[[0, -1]], [3360.0, 10200.0])
    sampled = sio.read(SHARED / "gaia-xp-sampled" / name.split("/")[1].replace(
        "CONTINUOUS", "SAMPLED")) if "Gaia DR3" in name else None
    if sampled is not None:  # the same source, sampled by the archive
        ratio = np.median(s.flux[0, 50:300] / sampled.flux[0, 50:300])
        assert abs(ratio - 1) < 0.02


def _line_shift(s, i, rest, half=1.0):
    """Velocity (km/s) of the flux minimum within +-half Angstrom of ``rest``."""
    w, f = s.wave_of(i), s.flux[i]
    near = (np.abs(w - rest) < half) & ~s.mask[i]
    return (w[near][np.argmin(f[near])] / rest - 1) * C_KMS


def test_air_files_land_on_vacuum_lines():
    """Air-wavelength products converted: Vega's H-alpha (RV -14 km/s) and Gl 273's
    sodium D lines (RV +18 km/s, HARPS s1d barycentric) land within 15 km/s; left in air
    they would sit 83 km/s blue."""
    vega = sio.read(SHARED / "ondrejov" / "alpha-lyr-absorption.fits")
    assert abs(_line_shift(vega, 0, air_to_vacuum(6562.80), half=2.0) + 14) < 15
    harps = sio.read(SHARED / "harps-drs-s1d" / "HARPS.2003-12-13T06:19:48.371_s1d_A.fits")
    for air in (5889.950, 5895.924):
        assert abs(_line_shift(harps, 0, float(air_to_vacuum(air))) - 18) < 15


def test_galah_rest_frame_and_velocities():
    """DR3 normalised spectra are at rest; DR4 reduction spectra carry RVCOM: H-alpha of
    the DR3 star within 15 km/s of rest."""
    dr3 = sio.read(SHARED / "galah-dr3" / "1311230030010963.fits")
    assert dr3.meta["rv"][0] == 0.0
    assert abs(_line_shift(dr3, 0, float(air_to_vacuum(6562.80)), half=1.5)) < 15
    dr4 = sio.read(SHARED / "galah-dr4-reduction" / "2101150001010013.fits")
    assert_allclose(dr4.meta["rv"][0], -18.68, atol=0.01)


def test_galah_cameras_join_into_one_star():
    joined = sio.read(SHARED / "galah-dr3" / "1311230030010961.fits", cameras="all")
    assert len(joined) == 1 and joined.n_pix == 4 * 4096
    assert joined.ids[0] == "131123003001096" and joined.meta["cameras"][0] == "1234"
    assert np.all(np.diff(joined.wave) > 0)


def test_pfs_object_2016_image_grid_counts_pixels_from_zero():
    s = sio.read(SHARED / "pfs-object" / os.listdir(SHARED / "pfs-object")[0], table=False)
    assert s.n_pix == 9100
    assert_allclose(s.wave[0], 3500.0)  # CRVAL1 = 350 nm at pixel 0 (CRPIX1 = 0)
    assert_allclose(s.wave[300], 3500.0 + 300 * 1.00006103515625)
    assert s.mask[0, :300].all() and not s.mask[0, 300:].any()  # no data below 380 nm


def test_desi_arms_join_on_their_lattice():
    s = sio.read(SHARED / "desi" / "coadd-sv3-dark-26065.fits")
    assert_allclose(np.diff(s.wave), 0.8, atol=1e-3)
    assert [str(i) for i in s.ids][2] == "39627866878511337"
    good = ~s.mask[2]
    assert good.mean() > 0.99
    b = sio.read(SHARED / "desi" / "coadd-sv3-dark-26065.fits", arms="B")
    assert b.n_pix == 2751 and b.wave[-1] == pytest.approx(5800.0)


def test_reading_with_gaiaxpy_leaves_matplotlib_settings_alone():
    _needs_gaiaxpy()
    import matplotlib

    before = matplotlib.rcParams["text.usetex"]
    sio.read(SHARED / "gaia-xp-continuous" / "XP_CONTINUOUS_RAW.csv")
    assert matplotlib.rcParams["text.usetex"] == before


def _needs_gaiaxpy() -> None:
    """Skip without GaiaXPy, without importing it here (its import sets matplotlib's
    text.usetex globally; starlearn's reader guards against that, a bare import does not)."""
    import importlib.util

    if importlib.util.find_spec("gaiaxpy") is None:
        pytest.skip("GaiaXPy (starlearn[gaia]) is not installed")
