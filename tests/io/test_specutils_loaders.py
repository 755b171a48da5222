"""starlearn's loaders in specutils: the same flux, wavelengths and mask as sl.read, and
registration that does not cost every command line call a specutils import."""

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import starlearn.io as sio
from starlearn.io.specutils_loaders import LOADERS

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "fits-samples"

specutils = pytest.importorskip("specutils")

SAMPLES = {
    "lamost-lrs": "lamost/spec-55916-B5591606_sp01-001.fits",
    "lamost-mrs": None,
    "galah-dr3": "galah-dr3/1311230030010963.fits",
    "galah-dr4": "galah-dr4-reduction/2101150001010013.fits",
    "galah-dr4-allstar": "galah-dr4-allstar-spectrum/150411003101372_allstar_fit_spectrum.fits",
    "gaia-xp-sampled": "gaia-xp-sampled/XP_SAMPLED_RAW_dr3int6.csv",
    "gaia-xp-continuous": "gaia-xp-continuous/XP_CONTINUOUS_RAW.csv",
    "desi": "desi/coadd-sv3-dark-26065.fits",
    "pfs-object": "pfs-object/pfsObject-0000-0,0-000-00000001-01-0xc28d46e6395428ab.fits",
    "pfs-gaobject": None,  # the only sample is a placeholder without a spectrum
    "pfs-arm": "pfs-arm/pfsArm-000001-b1.fits",
    "eso-phase3": "eso-phase3/XShooter_XQ100.fits.gz",
    "eso-image": "harps-drs-s1d/HARPS.2003-12-13T06:19:48.371_s1d_A.fits",
    "ondrejov": "ondrejov/gamma-cas-emission.fits",
    "iraf-multispec": "iraf-multispec/AAO.fits",
}


def test_every_loader_has_a_sample_or_a_reason():
    assert {fmt for _, fmt, _, _ in LOADERS} == set(SAMPLES)


@pytest.mark.realdata
@pytest.mark.skipif(not SHARED.exists(), reason="shared sample files not present")
@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize(("label", "fmt", "kind"), [(a, b, c) for a, b, c, _ in LOADERS
                                                    if SAMPLES[b]])
def test_round_trip_to_specutils(label, fmt, kind):
    """Spectrum.read (format identified by specutils) gives what sl.read gives."""
    import starlearn  # noqa: F401

    if fmt == "gaia-xp-continuous":
        _needs_gaiaxpy()
    path = SHARED / SAMPLES[fmt]
    ours = sio.read(path)
    if kind == "Spectrum":
        spec = specutils.Spectrum.read(path)
        assert_allclose(spec.spectral_axis.to_value("Angstrom"), ours.wave_of(0))
        flux = ours.flux[0] if len(ours) == 1 else ours.flux
        mask = ours.mask[0] if len(ours) == 1 else ours.mask
        assert_allclose(spec.flux.value, flux, rtol=1e-6)
        assert_array_equal(spec.mask, mask)
        assert spec.meta["starlearn"]["format"][0] == fmt
    else:
        specs = specutils.SpectrumList.read(path, format=label)
        assert len(specs) == len(ours)
        for i, spec in enumerate(specs):
            assert_allclose(spec.spectral_axis.to_value("Angstrom"), ours.wave_of(i))
            assert_array_equal(spec.mask, ours.mask[i])


def test_lamost_mrs_and_generated_files_round_trip(tmp_path):
    import starlearn  # noqa: F401

    from .test_lamost import mrs_per_pixel_hdul

    path = tmp_path / "med-58000-x.fits"
    mrs_per_pixel_hdul().writeto(path)
    spec = specutils.Spectrum.read(path)
    ours = sio.read(path)
    assert_allclose(spec.spectral_axis.value, ours.wave)
    assert_array_equal(spec.mask, ours.mask[0])
    assert np.allclose(spec.uncertainty.array, ours.ivar[0])


def test_cli_help_and_info_import_neither_specutils_nor_torch(tmp_path):
    from .test_lamost import lrs_image_hdul

    path = tmp_path / "spec.fits"
    lrs_image_hdul().writeto(path)
    for args in (["--help"], ["info", str(path)]):
        code = (f"import sys, runpy; sys.argv = ['starlearn', *{args!r}]\n"
                "try:\n    runpy.run_module('starlearn.cli', run_name='__main__')\n"
                "except SystemExit:\n    pass\n"
                "print(sorted(m for m in ('specutils', 'torch') if m in sys.modules))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True)
        assert out.stdout.strip().splitlines()[-1] == "[]", (args, out.stdout)


def test_loaders_register_when_specutils_comes_later():
    code = ("import starlearn, sys\nassert 'specutils' not in sys.modules\n"
            "from specutils import Spectrum\n"
            "from astropy.io import registry\n"
            "print('LAMOST-LRS' in registry.get_formats(Spectrum)['Format'])")
    with warnings.catch_warnings():
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True)
    assert out.stdout.strip() == "True"


def _needs_gaiaxpy() -> None:
    """Skip without GaiaXPy, without importing it here (its import sets matplotlib's
    text.usetex globally; starlearn's reader guards against that, a bare import does not)."""
    import importlib.util

    if importlib.util.find_spec("gaiaxpy") is None:
        pytest.skip("GaiaXPy (starlearn[gaia]) is not installed")
