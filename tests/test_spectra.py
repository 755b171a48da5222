import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from starlearn import SpectrumSet


def make_set(n: int = 6, n_pix: int = 40, seed: int = 0) -> SpectrumSet:
    rng = np.random.default_rng(seed)
    labels = rng.normal(size=(n, 2)).astype(np.float32)
    labels[1, 0] = np.nan
    return SpectrumSet(
        wave=np.linspace(5000.0, 5100.0, n_pix),
        flux=rng.normal(1, 0.1, (n, n_pix)),
        ivar=rng.uniform(50, 100, (n, n_pix)),
        labels=labels, label_names=["teff", "logg"],
        classes=np.arange(n) % 2, class_names=["absorption", "emission"],
        ids=[f"star{i}" for i in range(n)],
        meta={"snr": rng.uniform(10, 100, n), "survey": ["apogee"] * n},
    )


def test_non_finite_flux_is_masked_with_zero_ivar():
    flux = np.ones((2, 5))
    flux[0, 1] = np.nan
    flux[1, 3] = np.inf
    ivar = np.ones((2, 5))
    ivar[0, 4] = -1.0
    s = SpectrumSet(wave=np.arange(5.0) + 1000, flux=flux, ivar=ivar)
    assert np.all(np.isfinite(s.flux))
    assert s.mask[0, 1] and s.mask[1, 3] and s.mask[0, 4]
    assert s.ivar[0, 1] == 0 and s.ivar[1, 3] == 0 and s.ivar[0, 4] == 0
    assert s.mask.sum() == 3


def test_mask_and_zero_ivar_agree():
    ivar = np.ones((1, 4))
    ivar[0, 0] = 0
    mask = np.zeros((1, 4), bool)
    mask[0, 2] = True
    s = SpectrumSet(wave=[1.0, 2.0, 3.0, 4.0], flux=np.ones((1, 4)), ivar=ivar, mask=mask)
    assert_array_equal(s.mask[0], [True, False, True, False])
    assert_array_equal(s.ivar[0] == 0, s.mask[0])


def test_input_arrays_are_not_modified():
    flux = np.array([[1.0, np.nan, 3.0]])
    SpectrumSet(wave=[1.0, 2.0, 3.0], flux=flux)
    assert np.isnan(flux[0, 1])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"wave": np.arange(4.0), "flux": np.ones((2, 5))}, "'wave' must have shape"),
        ({"wave": np.arange(5.0)[::-1], "flux": np.ones((2, 5))}, "strictly increasing"),
        ({"wave": np.arange(5.0), "flux": np.ones((2, 5)), "ivar": np.ones((2, 4))}, "'ivar'"),
        ({"wave": np.arange(5.0), "flux": np.ones((2, 5)), "labels": np.ones((3, 1)),
          "label_names": ["teff"]}, "'labels' has 3 rows"),
        ({"wave": np.arange(5.0), "flux": np.ones((2, 5)), "labels": np.ones((2, 2)),
          "label_names": ["teff"]}, "1 label_names for 2"),
        ({"wave": np.arange(5.0), "flux": np.ones((2, 5)), "classes": [0, 3],
          "class_names": ["a", "b"]}, "class index out of range"),
    ],
)
def test_bad_construction_raises_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SpectrumSet(**kwargs)


def test_slicing_keeps_every_field():
    s = make_set()
    sub = s[[4, 1]]
    assert len(sub) == 2
    assert_array_equal(sub.flux, s.flux[[4, 1]])
    assert_array_equal(sub.ids, ["star4", "star1"])
    assert np.isnan(sub.labels[1, 0])
    assert_array_equal(sub.classes, [0, 1])
    assert_allclose(sub.meta["snr"], s.meta["snr"][[4, 1]])
    assert len(s[2]) == 1 and s[2].ids[0] == "star2"
    assert len(s[s.classes == 1]) == 3
    assert_allclose(s.label("logg"), s.labels[:, 1])
    with pytest.raises(KeyError, match="no label 'vsini'"):
        s.label("vsini")


def test_split_is_disjoint_complete_and_seeded():
    s = make_set(n=50)
    a, b, c = s.split((0.6, 0.2, 0.2), seed=3)
    assert (len(a), len(b), len(c)) == (30, 10, 10)
    ids = np.concatenate([a.ids, b.ids, c.ids])
    assert sorted(ids) == sorted(s.ids)
    a2, _, _ = s.split((0.6, 0.2, 0.2), seed=3)
    assert_array_equal(a.ids, a2.ids)
    a3, _, _ = s.split((0.6, 0.2, 0.2), seed=4)
    assert not np.array_equal(a.ids, a3.ids)
    with pytest.raises(ValueError, match="sum to 1"):
        s.split((0.5, 0.2))


def test_concat_unions_labels_and_keeps_shared_grid():
    s = make_set(n=3)
    t = SpectrumSet(wave=s.wave, flux=np.ones((2, s.n_pix)), labels=[[1.0], [2.0]],
                    label_names=["fe_h"], ids=["x", "y"])
    u = SpectrumSet.concat([s[:], t.replace(classes=np.array([1, 0]),
                                            class_names=s.class_names)])
    assert len(u) == 5 and u.shared_wave
    assert u.label_names == ["teff", "logg", "fe_h"]
    assert np.all(np.isnan(u.labels[:3, 2])) and np.all(np.isnan(u.labels[3:, :2]))
    assert_allclose(u.labels[3:, 2], [1.0, 2.0])
    assert_array_equal(u.classes, [0, 1, 0, 1, 0])
    assert u.meta["survey"][0] == "apogee"


def test_concat_of_different_grids_gives_per_spectrum_wave():
    a = SpectrumSet(wave=np.arange(4.0) + 10, flux=np.ones((1, 4)))
    b = SpectrumSet(wave=np.arange(4.0) + 20, flux=np.ones((2, 4)))
    c = SpectrumSet.concat([a, b])
    assert c.wave.shape == (3, 4)
    assert_allclose(c.wave_of(2), np.arange(4.0) + 20)
    with pytest.raises(ValueError, match="different numbers of pixels"):
        SpectrumSet.concat([a, SpectrumSet(wave=np.arange(5.0), flux=np.ones(5))])
    with pytest.raises(ValueError, match="same class_names"):
        SpectrumSet.concat([a.replace(classes=np.array([0]), class_names=["p"]), b])


def test_sigma_is_infinite_where_ivar_zero():
    s = SpectrumSet(wave=[1.0, 2.0], flux=[[1.0, 1.0]], ivar=[[4.0, 0.0]])
    assert_allclose(s.sigma[0], [0.5, np.inf])


def test_mean_flux_uses_good_pixels_only():
    flux = np.array([[1.0, 2.0, 5.0], [3.0, np.nan, 7.0]])
    mask = np.array([[False, False, True], [False, False, True]])
    s = SpectrumSet(wave=[1.0, 2.0, 3.0], flux=flux, mask=mask)
    assert_allclose(s.mean_flux(), [2.0, 2.0, np.nan])
