"""The synthetic generator against real stars: band heads, line wings and blanketing
measured the same way on a synthetic spectrum and on a real one of the same kind."""

from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

import starlearn as sl
from starlearn.synth import render

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "fits-samples"

pytestmark = [pytest.mark.realdata,
              pytest.mark.skipif(not SHARED.exists(), reason="shared sample files not present")]


def _steepest_descent(wave: np.ndarray, flux: np.ndarray, near: float, half: float = 2.0
                      ) -> float:
    """Wavelength (A) of the steepest drop of the flux within +-half A of ``near``: a band
    head's blue edge (sub-pixel, by a parabola through the derivative's minimum)."""
    k = np.nonzero(np.abs(wave - near) < half)[0]
    g = np.gradient(flux[k], wave[k])
    j = int(np.clip(np.argmin(g), 1, len(k) - 2))
    a, b, c = g[j - 1], g[j], g[j + 1]
    return float(wave[k][j] + 0.25 * (a - c) / (a - 2 * b + c) * (wave[k][j + 1]
                                                                  - wave[k][j - 1]))


def test_co_band_heads_sit_where_a_real_apogee_giant_has_them():
    """CO second-overtone heads within 0.5 A of the real apStar giant 2M17335483-2753043
    (Teff 3,677 K, log g 0.53, [Fe/H] -0.29 from its own RV-fit table); without omega_e y_e
    and the higher Dunham terms the heads were 1-17 A too red."""
    real = sl.read(SHARED / "apogee" / "apStar-dr17-2M17335483-2753043.fits")
    wave = np.asarray(real.wave if real.shared_wave else real.wave[0], dtype=float)
    flux, bad = np.asarray(real.flux[0], dtype=float), np.asarray(real.mask[0])
    synth = render("apogee", Table({"teff": [3680.0], "logg": [0.55], "fe_h": [-0.3]}),
                   snr=None)
    checked = 0
    # band heads (vacuum A) of 3-0, 4-1, 5-2, 7-4 and 8-5 (6-3 and 9-6 fall on bad pixels
    # of this star)
    for head in (15581.5, 15779.3, 15981.5, 16400.7, 16617.4):
        assert not bad[np.abs(wave - head) < 3].any()
        at_real = _steepest_descent(wave, flux, head)
        at_synth = _steepest_descent(synth.wave, synth.flux[0], head)
        assert abs(at_synth - at_real) < 0.5, (head, at_real, at_synth)
        checked += 1
    assert checked == 5
