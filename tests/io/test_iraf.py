import warnings

import numpy as np
import pytest
from astropy.io import fits
from numpy.testing import assert_allclose

import starlearn.io as sio
from starlearn import air_to_vacuum
from starlearn.io.iraf import multispec_wavelengths


def _wat2(specs: list[str]) -> dict[str, str]:
    text = "wtype=multispec " + " ".join(specs)
    return {f"WAT2_{i + 1:03d}": text[i * 68:(i + 1) * 68] for i in range(len(text) // 68 + 1)}


def multispec_hdul() -> fits.HDUList:
    n = 100
    specs = [
        'spec1 = "1 10 0 5000. 0.5 100 0. 1. 10."',  # linear
        'spec2 = "2 11 1 3.7 1e-4 100 0. 1. 10."',  # log-linear
        # Chebyshev of order 3 over pixels 1..100: w = 6000 + 20 n + 1 n^2 (as T0, T1, T2)
        'spec3 = "3 12 2 5980. 0.4 100 0. 1. 10. 1. 0. 1 3 1. 100. 6000.5 20. 0.5"',
        'spec4 = "4 13 0 7000. -0.5 90 0. 1. 10."',  # descending, 90 valid pixels
        'spec5 = "5 14 1 0.49 0.002 100 0. 1. 10."',  # nonsense (3 A...): left out
    ]
    data = np.ones((5, n), "f4") * np.arange(1, 6)[:, None]
    hdu = fits.PrimaryHDU(data)
    hdu.header.update({"CTYPE1": "MULTISPE", "CTYPE2": "MULTISPE", "WCSDIM": 2,
                       "WAT0_001": "system=multispec",
                       "WAT1_001": "wtype=multispec label=Wavelength units=angstroms",
                       "OBJECT": "HD 2", **_wat2(specs)})
    return fits.HDUList([hdu])


def test_multispec_dispersions(tmp_path):
    path = tmp_path / "ech.fits"
    multispec_hdul().writeto(path)
    assert sio.identify_format(path) == ["iraf-multispec"]
    with pytest.warns(sio.ReadWarning, match="1 of 5 apertures left out"):
        s = sio.read(path, medium="vacuum")
    assert len(s) == 4 and list(s.ids) == ["HD 2/1", "HD 2/2", "HD 2/3", "HD 2/4"]
    p = np.arange(1, 101)
    assert_allclose(s.wave_of(0), 5000.0 + 0.5 * (p - 1))
    assert_allclose(s.wave_of(1), 10 ** (3.7 + 1e-4 * (p - 1)))
    n = (2 * p - 101) / 99
    assert_allclose(s.wave_of(2), 6000.5 + 20 * n + 0.5 * (2 * n**2 - 1))
    assert np.all(np.diff(s.wave_of(3)) > 0) and s.mask[3].sum() == 10  # beyond nw, reversed
    assert s.mask[3, :10].all()
    assert s.meta["aperture"][3] == 4 and s.meta["ivar_estimated"][0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        air = sio.read(path)
    assert air.meta["medium_in_file"][0] == "air"  # IRAF's arc-lamp convention
    assert_allclose(air.wave_of(0), air_to_vacuum(5000.0 + 0.5 * (p - 1)))


def test_splines_and_tables():
    p = np.arange(1.0, 11.0)
    # linear spline of 1 piece between pmin 1 and pmax 10: W = c0 (1 - s) + c1 s
    w = multispec_wavelengths([1, 1, 2, 0, 0, 10, 0, 0, 0, 1.0, 100.0, 4, 1, 1, 10, 0, 9],
                              p, "x")
    assert_allclose(w, 100.0 + (p - 1))
    # cubic spline of 1 piece with all coefficients 1: the basis sums to 6
    w = multispec_wavelengths([1, 1, 2, 0, 0, 10, 0, 0, 0, 1.0, 0.0, 3, 1, 1, 10, 1, 1, 1, 1],
                              p, "x")
    assert_allclose(w, 6.0)
    # a pixel-coordinate table (ftype 5)
    w = multispec_wavelengths([1, 1, 2, 0, 0, 3, 0, 0, 0, 1.0, 0.0, 5, 3, 10.0, 20.0, 30.0],
                              np.array([1.0, 1.5, 3.0]), "x")
    assert_allclose(w, [10.0, 15.0, 30.0])
