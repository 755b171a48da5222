import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from numpy.testing import assert_allclose, assert_array_equal

import starlearn.io as sio
from starlearn import PRESETS

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "fits-samples" / "apogee"
N = 8575


def grid_header(header: fits.Header) -> None:
    header.update({"CRVAL1": 4.179, "CDELT1": 6e-6, "CRPIX1": 1, "CTYPE1": "LOG-LINEAR"})


def aspcapstar_hdul() -> fits.HDUList:
    flux = fits.ImageHDU(np.linspace(0.9, 1.1, N).astype("f4"))
    err = fits.ImageHDU(np.full(N, 0.01, "f4"))
    err.data[:246] = 0  # no data before the blue chip
    flux.data[:246] = 0
    flux.data[1000] = 0  # a bad pixel as DR13 writes it: flux 0, error 10
    err.data[1000] = 10.0
    err.data[2000] = 1e10  # ... and as DR16/17 write it
    model = fits.ImageHDU(np.ones(N, "f4"))
    for hdu in (flux, err, model):
        grid_header(hdu.header)
    param = np.array([[4750.0, 2.4, 0.1, -0.5, 0.1, 0.3, 0.2, 1.0, -9999.0]], "f4")
    x_h = np.full((1, 26), -9999.0, "f4")
    x_h[0, 17] = -0.45  # Fe
    x_h[0, 5] = -0.2  # Mg
    table = fits.BinTableHDU.from_columns([
        fits.Column(name="APOGEE_ID", format="18A", array=["2M00000000+0000000"]),
        fits.Column(name="PARAM", format="9E", array=param),
        fits.Column(name="FPARAM", format="9E", array=param + 1),
        fits.Column(name="PARAMFLAG", format="9J",
                    array=np.array([[0, 0, 0, 0, 1 << 16, 0, 0, 0, 0]], "i4")),
        fits.Column(name="X_H", format="26E", array=x_h),
        fits.Column(name="ASPCAPFLAG", format="J", array=[0]),
        fits.Column(name="SNR", format="E", array=[123.0]),
        fits.Column(name="VHELIO", format="E", array=[-12.5]),
    ])
    return fits.HDUList([fits.PrimaryHDU(), flux, err, model, table])


def apstar_hdul(n_visits: int = 2) -> fits.HDUList:
    rows = 1 if n_visits == 1 else n_visits + 2
    primary = fits.PrimaryHDU()
    grid_header(primary.header)
    primary.header.update({"OBJID": "2M11111111+1111111", "SNR": 150.0, "VHELIO": 10.0,
                           "NVISITS": n_visits})
    flux = fits.ImageHDU(np.ones((rows, N)) * np.arange(1, rows + 1)[:, None])
    err = fits.ImageHDU(np.full((rows, N), 0.1))
    bits = np.zeros((rows, N), np.int64)
    bits[:, 1000] = 1  # BADPIX
    bits[:, 1001] = 1 << 9  # PERSIST_HIGH: not bad by default
    mask = fits.ImageHDU(bits)
    mask.header["BUNIT"] = "Pixel bitmask" if n_visits > 1 else "Flag Mask (bitwise)"
    visits = fits.BinTableHDU.from_columns([
        fits.Column(name="snr", format="D", array=np.arange(n_visits) + 50.0),
        fits.Column(name="vhelio", format="D", array=np.arange(n_visits) + 11.0)])
    return fits.HDUList([primary, flux, err, mask, *[fits.ImageHDU() for _ in range(5)],
                         visits])


def test_idl_era_apstar_of_one_visit(tmp_path):
    """DR10-DR14 apStar (IDL writer): 'Flag Mask (bitwise)', one row for a one-visit star,
    10 HDUs; read as apStar (DR13 apStar files were 'format not recognised')."""
    path = tmp_path / "apStar-r6-2M0.fits"
    apstar_hdul(n_visits=1).writeto(path)
    assert sio.identify_format(path) == ["apogee-apstar"]
    s = sio.read(path)
    assert len(s) == 1 and s.meta["rv"][0] == 0.0 and s.meta["vhelio"][0] == 10.0


def apvisit_hdul() -> fits.HDUList:
    primary = fits.PrimaryHDU()
    primary.header.update({"OBJID": "2M2", "SNR": 44.0, "VHELIO": -33.0, "VRAD": -44.4,
                           "BC": 11.4, "MJD5": 55844})
    starts = [16470.0, 15860.0, 15140.0]  # red, green, blue: stored red first, decreasing
    wave = np.stack([s + 480 - 0.12 * np.arange(4096) for s in starts])
    flux = fits.ImageHDU(np.tile(np.arange(3)[:, None] + 1.0, (1, 4096)))
    err = fits.ImageHDU(np.full((3, 4096), 0.05))
    mask = fits.ImageHDU(np.zeros((3, 4096), np.int16))
    wave_hdu = fits.ImageHDU(wave)
    wave_hdu.header["BUNIT"] = "Wavelength (Ang)"
    flux.header["BUNIT"] = "Flux (10^-17 erg/s/cm^2/Ang)"
    return fits.HDUList([primary, flux, err, mask, wave_hdu])


def test_aspcapstar(tmp_path):
    path = tmp_path / "aspcapStar-test.fits"
    aspcapstar_hdul().writeto(path)
    assert sio.identify_format(path) == ["apogee-aspcapstar"]
    s = sio.read(path)
    assert PRESETS["apogee"].matches(s.wave)
    assert s.mask[0, :246].all() and s.mask[0, [1000, 2000]].all()
    assert s.mask[0, 246:].sum() == 2  # only the two sentinel pixels
    assert_allclose(s.ivar[0, 400], 1e4, rtol=1e-5)
    assert_allclose(s.label("teff"), [4750.0])
    assert np.isnan(s.label("o_m")[0])  # -9999 becomes NaN
    assert np.isnan(s.label("c_m")[0])  # PARAMFLAG PARAM_FIXED: not a measurement
    assert_allclose(s.label("fe_h"), [-0.45])
    assert_allclose(s.label("mg_fe"), [0.25], atol=1e-6)
    assert np.isnan(s.label("si_fe")[0])
    assert s.meta["snr"][0] == 123.0
    assert s.meta["rv"][0] == 0.0 and s.meta["vhelio"][0] == -12.5  # at rest; VHELIO kept
    assert s.ids[0] == "2M00000000+0000000"
    assert_allclose(sio.read(path, params="FPARAM").label("teff"), [4751.0])
    assert_allclose(sio.read(path, spectrum="model").flux[0, 500], 1.0)


def test_apstar_rows(tmp_path):
    path = tmp_path / "apStar-test.fits"
    apstar_hdul().writeto(path)
    assert sio.identify_format(path) == ["apogee-apstar"]
    combined = sio.read(path)
    assert len(combined) == 1 and combined.flux[0, 0] == 1.0
    assert combined.mask[0, 1000] and not combined.mask[0, 1001]
    visits = sio.read(path, rows="visits")
    assert_array_equal(visits.flux[:, 0], [3.0, 4.0])
    assert_allclose(visits.meta["vhelio"], [11.0, 12.0])
    assert_allclose(visits.meta["snr"], [50.0, 51.0])
    assert len(sio.read(path, rows="all")) == 4
    assert not sio.read(path, mask_bits=0).mask.any()
    single = tmp_path / "apStar-one.fits"
    apstar_hdul(n_visits=1).writeto(single)
    assert len(sio.read(single, rows="visits")) == 1


def test_apvisit_joins_chips_in_increasing_wavelength(tmp_path):
    path = tmp_path / "apVisit-test.fits"
    apvisit_hdul().writeto(path)
    assert sio.identify_format(path) == ["apogee-apvisit"]
    s = sio.read(path)
    assert s.n_pix == 3 * 4096
    assert np.all(np.diff(s.wave_of(0)) > 0)
    assert s.flux[0, 0] == 3.0 and s.flux[0, -1] == 1.0  # blue chip first after sorting
    # the visit is in the observer's frame: VREL (primary VRAD) takes it to rest, not VHELIO
    assert_allclose(s.meta["rv"][0], -44.4)
    assert s.meta["vhelio"][0] == -33.0


@pytest.mark.realdata
@pytest.mark.skipif(not SHARED.exists(), reason="shared sample files not present")
def test_real_apogee_files():
    warnings.simplefilter("ignore")
    for path in sorted(SHARED.glob("aspcapStar-*.fits")):
        s = sio.read(path)
        assert PRESETS["apogee"].matches(s.wave)
        assert "teff" in s.label_names and 0 < s.meta["snr"][0] < 1000
    # PARAM of this cool dwarf is ASPCAP's -9999 (no calibrated value): NaN, not a number
    s = sio.read(SHARED / "aspcapStar-r6-l30e.2-2M00452143+1634446.fits")
    assert np.isnan(s.label("teff")[0]) and np.isnan(s.label("logg")[0])
    assert np.isnan(s.meta["param_vmicro"][0])  # PARAMFLAG 65536: PARAM_FIXED
    assert_allclose(s.meta["param_vbroad"][0], np.nan)  # fixed too
    fixed = sio.read(SHARED / "aspcapStar-r6-l30e.2-2M03122509+0021585.fits")
    assert np.isnan(fixed.label("c_m")[0]) and np.isnan(fixed.label("n_m")[0])  # 0.0, fixed
    s = sio.read(SHARED / "aspcapStar-r6-l30e.2-2M00452143+1634446.fits", params="FPARAM")
    assert_allclose(s.label("teff"), [2500.6], atol=0.1)
    assert_allclose(s.label("m_h"), [-2.2223], atol=1e-3)
    apstar = sio.read(SHARED / "apStar-dr17-2M17335483-2753043.fits", rows="visits")
    assert len(apstar) == 3
    assert_allclose(apstar.meta["vhelio"], [15.915, 15.650, 15.561], atol=1e-3)
    visit = sio.read(SHARED / "apVisit-r13-5095-55844-128.fits")
    wave = visit.wave_of(0)
    assert 15100 < wave[0] < 15200 and 16900 < wave[-1] < 17000


def _ccf_lag(spectra, template_wave, template_flux, velocities):
    """Velocity (km/s) at the peak of the cross-correlation of a spectrum (divided by a
    running median) with a rest-frame template."""
    from scipy.ndimage import median_filter

    from starlearn.grid import C_KMS

    w, f = spectra.wave_of(0), spectra.flux[0].astype(float)
    good = ~spectra.mask[0] & (f > 0)
    grid = template_wave[(template_wave > w[good].min() + 10)
                         & (template_wave < w[good].max() - 10)]
    data = np.interp(grid, w[good], f[good])
    data = data / median_filter(data, 301) - 1
    scores = []
    for v in velocities:
        t = np.interp(grid / (1 + v / C_KMS), template_wave, template_flux)
        t = t - t.mean()
        scores.append(np.sum(data * t) / np.sqrt(np.sum(data**2) * np.sum(t**2)))
    return velocities[int(np.argmax(scores))]


@pytest.mark.realdata
@pytest.mark.skipif(not SHARED.exists(), reason="shared sample files not present")
def test_real_apogee_velocities_take_spectra_to_rest():
    """Cross-correlation with a rest-frame template (The Payne's APOGEE emulator, K dwarf):
    apStar spectra are at rest as read (rv 0; shifting them by VHELIO, as before, put them
    14-16 km/s off); apVisit spectra land at rest after DopplerShift by rv = VREL."""
    from starlearn.preprocess import DopplerShift

    payne = SHARED.parents[1] / "payne-emulator"
    nn = np.load(payne / "NN_normalized_spectra.npz")
    wave = np.load(payne / "apogee_wavelength.npz")["wavelength"]
    x = (np.array([4500.0, 4.5, 0.0, 0.0, 5.0]) - nn["x_min"]) / (nn["x_max"] - nn["x_min"]) \
        - 0.5
    hidden = 1 / (1 + np.exp(-(np.einsum("ijk,k->ij", nn["w_array_0"], x) + nn["b_array_0"])))
    template = np.einsum("ij,ij->i", nn["w_array_1"], hidden) + nn["b_array_1"]
    velocities = np.arange(-80.0, 80.5, 0.5)
    for name in ("apStar-dr17-2M17335483-2753043.fits", "apStar-dr17-2M19485057+5005279.fits"):
        s = sio.read(SHARED / name)
        assert s.meta["rv"][0] == 0.0 and s.meta["vhelio"][0] > 13
        assert abs(_ccf_lag(s, wave, template, velocities)) <= 1.0
    for name in ("apVisit-r13-5095-55844-128.fits", "apVisit-r13-9518-57729-104.fits"):
        s = sio.read(SHARED / name)
        assert abs(_ccf_lag(DopplerShift().transform(s), wave, template, velocities)) <= 2.0


@pytest.mark.realdata
@pytest.mark.skipif(not SHARED.exists(), reason="shared sample files not present")
def test_real_aspcapstar_is_at_rest_like_its_model():
    """The observed aspcapStar spectrum lines up with ASPCAP's best-fit model (HDU 3, at
    rest) within a pixel, so rv is 0; the old rv = VHELIO (35.6 km/s) shifted it 8.6
    pixels (4.14 km/s per pixel)."""
    from starlearn.preprocess import DopplerShift, Pipeline, Resample

    to_rest = Pipeline(steps=[DopplerShift(), Resample(grid="apogee")])
    name = SHARED / "aspcapStar-r6-l30e.2-2M03122509+0021585.fits"
    observed, model = sio.read(name), sio.read(name, spectrum="model")

    def lag(spectra):
        good, a, b = ~spectra.mask[0], spectra.flux[0] - 1.0, model.flux[0] - 1.0
        lags = np.arange(-15, 16)
        scores = []
        for k in lags:
            both = good & np.roll(good, k)
            bk = np.roll(b, k)
            scores.append(np.sum(a[both] * bk[both]) / np.sqrt(np.sum(a[both] ** 2)
                                                               * np.sum(bk[both] ** 2)))
        return lags[int(np.argmax(scores))]

    assert observed.meta["rv"][0] == 0.0 and observed.meta["vhelio"][0] > 35
    assert abs(lag(to_rest.fit_transform(observed))) <= 1
    old = observed.replace(meta=observed.meta.copy())
    old.meta["rv"] = old.meta["vhelio"]
    assert lag(to_rest.fit_transform(old)) <= -7
