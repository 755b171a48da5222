"""Tests of starlearn.noise: the S/N convention, noise draws, augmentation, S/N measurement."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from starlearn import SpectrumSet
from starlearn import noise as sn
from starlearn.preprocess import AddNoise, median_snr

N_PIX = 2000


def lined_flux(n: int, seed: int = 0) -> np.ndarray:
    """Continuum-normalised flux (n, N_PIX) with a few absorption lines of random depth."""
    rng = np.random.default_rng(seed)
    x = np.arange(N_PIX)
    flux = np.ones((n, N_PIX))
    for centre in np.linspace(100, N_PIX - 100, 12):
        depth = rng.uniform(0.1, 0.6, (n, 1))
        flux -= depth * np.exp(-0.5 * ((x - centre) / 4.0) ** 2)
    return flux


# ------------------------------------------------------------------------ the convention
@pytest.mark.parametrize("snr", [10.0, 50.0, 200.0])
def test_drawn_spectra_have_the_asked_snr_within_sampling_error(snr: float) -> None:
    """Noise at S/N ``snr`` (flux-independent, level = median |flux|) measures as ``snr``:
    over 400 spectra the mean measured S/N agrees within 4 standard errors."""
    n = 400
    flux = np.ones((n, N_PIX))
    level = sn.signal_level(flux)
    sigma = sn.noise_sigma(level[:, None], snr)
    noisy, ivar = sn.draw_noise(flux, sigma, np.random.default_rng(1))
    ratio = sn.measure_snr(noisy, ivar) / snr
    # the median of |1 + z/snr| over N_PIX pixels: spread ~ 1.25 / (snr sqrt(N_PIX))
    expected_spread = 1.2533 / (snr * np.sqrt(N_PIX))
    assert abs(ratio.mean() - 1.0) < 4 * expected_spread / np.sqrt(n) + 1e-4
    assert_allclose(ratio.std(), expected_spread, rtol=0.25)


def test_photon_noise_with_an_snr_curve_has_median_snr_exactly() -> None:
    """sigma_j = flux_j / snr_j, snr_j ~ sqrt(flux_j): median over good pixels of
    flux / sigma is the asked S/N (the generator's convention); bad pixels do not count."""
    flux = lined_flux(5)
    good = np.ones(N_PIX, dtype=bool)
    good[:300] = False
    snr = np.array([20.0, 40.0, 60.0, 80.0, 100.0])
    sigma = sn.noise_sigma(flux, snr[:, None], snr_curve=np.sqrt(flux), good=good)
    assert_allclose(np.median((flux / sigma)[:, good], axis=1), snr, rtol=1e-12)
    # photon noise: the variance goes as the flux
    ratio = sigma**2 / flux
    assert_allclose(ratio, np.broadcast_to(ratio[:, :1], ratio.shape), rtol=1e-10)


def test_noise_shape_and_snr_curve_normalise_to_median_one() -> None:
    shape = np.exp(np.sin(np.linspace(0, 7, N_PIX)))
    sigma = sn.noise_sigma(2.0, 40.0, noise_shape=shape)
    assert_allclose(np.median(sigma), 2.0 / 40.0, rtol=1e-12)  # the shape's median is 1
    assert_allclose(np.median(2.0 / sigma), 40.0, rtol=1e-6)  # (exact for odd n_pix)
    assert_allclose(sigma / sigma[0], shape / shape[0], rtol=1e-12)
    curve = 1.0 / shape
    sigma_c = sn.noise_sigma(2.0, 40.0, snr_curve=curve)
    assert_allclose(np.median(2.0 / sigma_c), 40.0, rtol=1e-12)
    # pixels where a curve is 0 or not finite have no noise level
    curve[:10], shape[:10] = 0.0, np.inf
    assert np.all(sn.noise_sigma(1.0, 40.0, snr_curve=curve)[:10] == 0)
    assert np.all(sn.noise_sigma(1.0, 40.0, noise_shape=shape)[:10] == 0)


def test_snr_ranges_are_drawn_log_uniformly() -> None:
    rng = np.random.default_rng(3)
    s = sn.draw_snr((10.0, 1000.0), rng, size=20000)
    assert s.min() >= 10.0 and s.max() <= 1000.0
    # log10 uniform in [1, 3]: mean 2, sd 2 / sqrt(12)
    assert abs(np.log10(s).mean() - 2.0) < 4 * (2 / np.sqrt(12)) / np.sqrt(s.size)
    assert_allclose(np.log10(s).std(), 2 / np.sqrt(12), rtol=0.03)
    assert sn.draw_snr(25.0, rng) == 25.0
    assert_array_equal(sn.draw_snr(25.0, rng, size=3), [25.0, 25.0, 25.0])
    # the same mapping from uniform deviates
    u = np.random.default_rng(4).random(5)
    assert_array_equal(sn.snr_from_unit((10.0, 1000.0), u),
                       sn.draw_snr((10.0, 1000.0), np.random.default_rng(4), size=5))


# ------------------------------------------------------------------------ draws
def test_drawn_noise_matches_its_ivar() -> None:
    """Pulls (noisy - flux) * sqrt(ivar) are unit normal; sigma 0 gives no noise, ivar 0."""
    flux = lined_flux(50)
    sigma = sn.noise_sigma(flux, 30.0)
    sigma[:, :5] = 0.0
    noisy, ivar = sn.draw_noise(flux, sigma, np.random.default_rng(5))
    pulls = ((noisy - flux) * np.sqrt(ivar))[:, 5:]
    assert abs(pulls.mean()) < 0.01
    assert_allclose(pulls.std(), 1.0, rtol=0.01)
    assert_array_equal(noisy[:, :5], flux[:, :5])
    assert np.all(ivar[:, :5] == 0)


def test_quadrature_noise_reaches_the_target_snr() -> None:
    """Spectra at S/N ~200 brought to 40 measure 40 and their new ivar matches their
    scatter about the truth; a spectrum already below the target is left alone."""
    n = 200
    truth = np.ones((n, N_PIX))
    noisy, ivar = sn.draw_noise(truth, sn.noise_sigma(1.0, 200.0), np.random.default_rng(6))
    want = np.full(n, 40.0)
    want[0] = 500.0  # above its S/N: unchanged
    out, out_ivar, reached = sn.add_noise_to_snr(noisy, ivar, want,
                                                 np.random.default_rng(7))
    measured = sn.measure_snr(out, out_ivar)
    assert_allclose(measured[1:].mean(), 40.0, rtol=0.005)
    assert_allclose(reached[1:], 40.0)
    assert_array_equal(out[0], noisy[0])
    assert_allclose(reached[0], sn.measure_snr(noisy[:1], ivar[:1])[0])
    pulls = (out[1:] - truth[1:]) * np.sqrt(out_ivar[1:])
    assert_allclose(pulls.std(), 1.0, rtol=0.01)


def test_redraw_scatter_equals_the_error_spectrum() -> None:
    """Over many realisations the scatter of each pixel is 1/sqrt(ivar); ivar halves."""
    rng = np.random.default_rng(8)
    flux = lined_flux(1)
    ivar = rng.uniform(100.0, 10_000.0, (1, N_PIX))
    ivar[0, :20] = 0.0
    draws, draws_ivar = sn.redraw_noise(flux, ivar, np.random.default_rng(9), n_draws=4000)
    assert draws.shape == (4000, 1, N_PIX)
    scatter = draws[:, 0].std(axis=0)
    good = ivar[0] > 0
    assert_allclose(np.median(scatter[good] * np.sqrt(ivar[0, good])), 1.0, rtol=0.01)
    assert_allclose(scatter[good] * np.sqrt(ivar[0, good]), 1.0, atol=0.08)
    assert np.all(scatter[~good] == 0)
    assert_allclose(draws_ivar[0], ivar / 2)
    one, one_ivar = sn.redraw_noise(flux, ivar, np.random.default_rng(9))
    assert_array_equal(one, draws[0])  # the first of the n_draws realisations
    assert_allclose(one_ivar, ivar / 2)


def test_redraw_with_a_fraction_changes_only_the_picked_spectra() -> None:
    flux = lined_flux(2000)
    ivar = np.full(flux.shape, 1e4)
    out, out_ivar = sn.redraw_noise(flux, ivar, np.random.default_rng(10), fraction=0.3)
    changed = np.any(out != flux, axis=1)
    assert abs(changed.mean() - 0.3) < 4 * np.sqrt(0.3 * 0.7 / len(flux))
    assert_array_equal(out_ivar[changed], ivar[changed] / 2)
    assert_array_equal(out_ivar[~changed], ivar[~changed])
    unchanged, _ = sn.redraw_noise(flux, ivar, np.random.default_rng(10), fraction=0.0)
    assert_array_equal(unchanged, flux)


def test_signal_level_and_sigma_from_ivar() -> None:
    flux = np.array([[1.0, -3.0, 2.0, 100.0], [5.0, 5.0, 5.0, 5.0]])
    good = np.array([[True, True, True, False], [False] * 4])
    assert_allclose(sn.signal_level(flux, good, empty=1.0), [2.0, 1.0])
    ivar = np.array([[4.0, 0.0, 1.0, 100.0]], dtype=np.float32)
    sigma = sn.sigma_from_ivar(ivar, mask=np.array([[False, False, False, True]]))
    assert sigma.dtype == np.float32
    assert_allclose(sigma, [[0.5, 0.0, 1.0, 0.0]])
    assert_allclose(sn.ivar_from_sigma([0.5, 0.0, np.inf]), [4.0, 0.0, 0.0])


# ------------------------------------------------------------------------ seeds
def test_seeds_are_reproducible() -> None:
    flux = lined_flux(4)
    sigma = sn.noise_sigma(flux, 50.0)
    a = sn.draw_noise(flux, sigma, np.random.default_rng(11))[0]
    b = sn.draw_noise(flux, sigma, np.random.default_rng(11))[0]
    c = sn.draw_noise(flux, sigma, np.random.default_rng(12))[0]
    assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # one generator per spectrum: a spectrum's noise does not depend on the others
    per_row = sn.draw_noise(flux, sigma, [np.random.default_rng([1, i]) for i in range(4)])[0]
    alone = sn.draw_noise(flux[2:3], sigma[2:3], [np.random.default_rng([1, 2])])[0]
    assert_array_equal(per_row[2:3], alone)
    ivar = np.full(flux.shape, 1e4)
    assert_array_equal(sn.redraw_noise(flux, ivar, np.random.default_rng(13), fraction=0.5)[0],
                       sn.redraw_noise(flux, ivar, np.random.default_rng(13), fraction=0.5)[0])


def test_add_noise_transform_is_these_draws() -> None:
    """AddNoise draws nothing of its own: spectrum i is draw_noise with (seed, i)."""
    flux = lined_flux(3)
    spectra = SpectrumSet(wave=np.linspace(5000.0, 5200.0, N_PIX), flux=flux)
    out = AddNoise(snr=30.0, seed=4).transform(spectra)
    level = sn.signal_level(spectra.flux.astype(np.float64))
    for i in range(3):
        want, want_ivar = sn.draw_noise(spectra.flux[i].astype(np.float64),
                                        sn.noise_sigma(level[i], 30.0),
                                        np.random.default_rng([4, i]))
        assert_array_equal(out.flux[i], want.astype(np.float32))
        assert_array_equal(out.ivar[i], want_ivar.astype(np.float32))


# ------------------------------------------------------------------------ measurement
def test_measure_snr_is_the_public_median_snr() -> None:
    rng = np.random.default_rng(14)
    flux = lined_flux(6)
    ivar = rng.uniform(100, 1e4, flux.shape)
    mask = rng.random(flux.shape) < 0.1
    mask[5] = True  # no good pixels: S/N 0
    spectra = SpectrumSet(wave=np.linspace(5000.0, 5200.0, N_PIX), flux=flux, ivar=ivar,
                          mask=mask)
    for step in (1, 4):
        assert_array_equal(sn.measure_snr(spectra, step=step), median_snr(spectra, step=step))
    assert sn.measure_snr(spectra)[5] == 0.0
    good = ~spectra.mask
    expected = [np.median(np.abs(f[g]) * np.sqrt(v[g]))
                for f, v, g in zip(spectra.flux[:5], spectra.ivar[:5], good[:5], strict=True)]
    assert_allclose(sn.measure_snr(spectra.flux, spectra.ivar, spectra.mask)[:5], expected)


# ------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("bad", [0.0, -5.0, np.nan, np.inf, (10.0, -1.0), (50.0, 10.0),
                                 (1.0, 2.0, 3.0), "high"])
def test_bad_snr_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="snr"):
        sn.check_snr(bad)
    with pytest.raises(ValueError, match="snr"):
        sn.draw_snr(bad, np.random.default_rng(0))


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan])
def test_bad_target_snr_is_refused(bad: float) -> None:
    flux, ivar = np.ones((2, 10)), np.ones((2, 10))
    with pytest.raises(ValueError, match="'snr' must be finite and > 0"):
        sn.noise_sigma(1.0, bad)
    with pytest.raises(ValueError, match="'snr' must be finite and > 0"):
        sn.add_noise_to_snr(flux, ivar, bad, np.random.default_rng(0))


@pytest.mark.parametrize("call", [
    lambda iv: sn.measure_snr(np.ones((2, 10)), iv),
    lambda iv: sn.redraw_noise(np.ones((2, 10)), iv, np.random.default_rng(0)),
    lambda iv: sn.sigma_from_ivar(iv),
    lambda iv: sn.add_noise_to_snr(np.ones((2, 10)), iv, 5.0, np.random.default_rng(0)),
], ids=["measure_snr", "redraw_noise", "sigma_from_ivar", "add_noise_to_snr"])
@pytest.mark.parametrize("value", [-1.0, np.nan, np.inf])
def test_negative_or_non_finite_ivar_is_refused(call, value: float) -> None:
    ivar = np.ones((2, 10))
    ivar[1, 3] = value
    with pytest.raises(ValueError, match="'ivar' must be finite and >= 0"):
        call(ivar)


@pytest.mark.parametrize("call", [
    lambda: sn.measure_snr(np.ones((2, 10)), np.ones((2, 9))),
    lambda: sn.measure_snr(np.ones((2, 10)), np.ones((2, 10)), np.zeros((3, 10), bool)),
    lambda: sn.redraw_noise(np.ones((2, 10)), np.ones((3, 10)), np.random.default_rng(0)),
    lambda: sn.draw_noise(np.ones((2, 10)), np.ones((2, 11)), np.random.default_rng(0)),
    lambda: sn.draw_noise(np.ones(10), np.ones((2, 10)), np.random.default_rng(0)),
    lambda: sn.add_noise_to_snr(np.ones((2, 10)), np.ones((2, 8)), 5.0,
                                np.random.default_rng(0)),
    lambda: sn.sigma_from_ivar(np.ones((2, 10)), mask=np.zeros(5, bool)),
], ids=["measure-ivar", "measure-mask", "redraw", "draw", "draw-broadcast", "quadrature",
        "sigma-mask"])
def test_shape_mismatch_is_refused(call) -> None:
    with pytest.raises(ValueError, match="shape"):
        call()


def test_other_bad_input_is_refused() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="'sigma' must be >= 0"):
        sn.gaussian_noise(np.array([1.0, -1.0]), rng)
    with pytest.raises(ValueError, match="'fraction' must lie in"):
        sn.redraw_noise(np.ones((2, 3)), np.ones((2, 3)), rng, fraction=1.5)
    with pytest.raises(ValueError, match="one generator per spectrum"):
        sn.draw_noise(np.ones((3, 4)), np.ones((3, 4)), [rng, rng])
    with pytest.raises(ValueError, match="'snr_curve' must be >= 0"):
        sn.noise_sigma(1.0, 10.0, snr_curve=[1.0, -1.0, 2.0])
    with pytest.raises(ValueError, match="positive median"):
        sn.noise_sigma(1.0, 10.0, noise_shape=[0.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="at most one"):
        sn.noise_sigma(1.0, 10.0, snr_curve=[1.0], noise_shape=[1.0])
    with pytest.raises(ValueError, match="needs ivar"):
        sn.measure_snr(np.ones((2, 3)))


# ------------------------------------------------------------------------ layering
def test_noise_module_stays_on_floor_one() -> None:
    """starlearn.noise imports only the standard library, numpy, astropy and
    starlearn.spectra (DESIGN.md, Layers)."""
    import starlearn.noise

    tree = ast.parse(Path(starlearn.noise.__file__).read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    allowed = {"__future__", "collections.abc", "typing", "numpy", "starlearn.spectra"}
    assert names <= allowed | {n for n in names if n.startswith("astropy")}, names
