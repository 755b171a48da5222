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


# --- units at the door, the Python ecosystem (specutils, astropy Table, notebooks) ---------


def test_quantity_wavelengths_in_nm_and_um_are_converted_to_angstrom():
    import astropy.units as u

    nm = SpectrumSet(wave=[500.0, 500.5, 501.0] * u.nm, flux=np.ones(3))
    assert nm.wave.dtype == np.float64
    assert_array_equal(nm.wave, [5000.0, 5005.0, 5010.0])
    um = SpectrumSet(wave=np.array([[1.5, 1.6], [1.7, 1.8]]) * u.um, flux=np.ones((2, 2)))
    assert_array_equal(um.wave, [[15000.0, 16000.0], [17000.0, 18000.0]])
    aa = SpectrumSet(wave=[5000.0, 5001.0] * u.AA, flux=np.ones(2))
    assert_array_equal(aa.wave, [5000.0, 5001.0])
    # a plain array is Angstrom whatever its numbers: no unit is guessed from magnitudes
    assert_array_equal(SpectrumSet(wave=[1.5, 1.6], flux=np.ones(2)).wave, [1.5, 1.6])


@pytest.mark.parametrize(("unit", "kind"), [("km / s", "velocity"), ("Hz", "frequency"),
                                            ("keV", "energy")])
def test_a_wave_quantity_that_is_not_a_length_is_refused(unit, kind):
    import astropy.units as u

    from starlearn.units import UnitProblem

    with pytest.raises(UnitProblem, match=f"SpectrumSet: 'wave' is in .*{kind}.*not a "
                                          "wavelength"):
        SpectrumSet(wave=[1.0, 2.0] * u.Unit(unit), flux=np.ones(2))


def test_quantity_flux_and_ivar_give_or_convert_to_the_flux_unit():
    import astropy.units as u

    s = SpectrumSet(wave=[5000.0, 5001.0], flux=[[1.0, 2.0]] * u.Jy, ivar=[[4.0, 0.0]])
    assert s.flux_unit == u.Jy and s.mask.tolist() == [[False, True]]
    plain = SpectrumSet(wave=[5000.0, 5001.0], flux=[[1.0, 2.0]])
    assert plain.flux_unit == u.dimensionless_unscaled
    mjy = SpectrumSet(wave=[5000.0, 5001.0], flux=[[1.0, 2.0]] * u.Jy, ivar=[[4.0, 1.0]],
                      flux_unit="mJy")
    assert mjy.flux_unit == u.mJy
    assert_allclose(mjy.flux, [[1000.0, 2000.0]])
    assert_allclose(mjy.ivar, [[4e-6, 1e-6]], rtol=1e-6)  # a plain ivar goes with the flux
    q_ivar = SpectrumSet(wave=[5000.0, 5001.0], flux=[[1.0, 2.0]], flux_unit=u.Jy,
                         ivar=[[1.0, 4.0]] / u.mJy**2)
    assert_allclose(q_ivar.ivar, [[1e6, 4e6]], rtol=1e-6)
    # per frequency -> per wavelength at each pixel, and back
    flam = u.erg / u.s / u.cm**2 / u.AA
    f = SpectrumSet(wave=[5000.0, 6000.0], flux=[[1.0, 1.0]] * u.Jy, flux_unit=flam)
    expected = (1 * u.Jy).to_value(flam, u.spectral_density([5000.0, 6000.0] * u.AA))
    assert_allclose(f.flux[0], expected, rtol=1e-6)
    assert_allclose(f.to_flux_unit("Jy").flux, [[1.0, 1.0]], rtol=1e-6)
    with pytest.raises(u.UnitConversionError, match="'ivar' is in .*does not convert"):
        SpectrumSet(wave=[1.0, 2.0], flux=[[1.0, 1.0]], ivar=[[1.0, 1.0]] / u.Jy**2)
    with pytest.raises(u.UnitConversionError, match="dimensionless"):
        plain.to_flux_unit("Jy")


def test_flux_unit_is_carried_through_slicing_replace_split_and_concat():
    import astropy.units as u

    s = make_set().replace(flux_unit="erg / (s cm2 Angstrom)")
    unit = u.erg / (u.s * u.cm**2 * u.AA)
    assert s.flux_unit == unit
    assert s[1:3].flux_unit == unit and s[0].flux_unit == unit
    assert s.replace(ivar=s.ivar * 2).flux_unit == unit
    assert all(part.flux_unit == unit for part in s.split((0.5, 0.5)))
    assert SpectrumSet.concat([s[:2], s[2:]]).flux_unit == unit
    assert s.replace(flux=s.flux * u.Jy).flux_unit == u.Jy  # a Quantity brings its unit
    assert "flux_unit='erg / (Angstrom s cm2)'" in repr(s)


def test_concat_converts_flux_units_and_refuses_units_that_do_not_convert():
    import astropy.units as u

    a = SpectrumSet(wave=[1.0, 2.0], flux=[[1.0, 2.0]] * u.Jy, ivar=[[1.0, 1.0]])
    b = SpectrumSet(wave=[1.0, 2.0], flux=[[1000.0, 3000.0]] * u.mJy, ivar=[[1e-6, 1e-6]])
    both = SpectrumSet.concat([a, b])
    assert both.flux_unit == u.Jy
    assert_allclose(both.flux, [[1.0, 2.0], [1.0, 3.0]])
    assert_allclose(both.ivar, [[1.0, 1.0], [1.0, 1.0]], rtol=1e-5)
    with pytest.raises(u.UnitConversionError, match="concat: .*do not convert"):
        SpectrumSet.concat([a, SpectrumSet(wave=[1.0, 2.0], flux=[[1.0, 1.0]])])


def _assert_same(a: SpectrumSet, b: SpectrumSet) -> None:
    assert_array_equal(a.wave, b.wave)
    for name in ("flux", "ivar", "mask", "labels", "ids", "classes"):
        assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.flux_unit == b.flux_unit
    assert a.label_names == b.label_names and a.class_names == b.class_names
    assert a.meta.colnames == b.meta.colnames
    for col in a.meta.colnames:
        assert_array_equal(np.asarray(a.meta[col]), np.asarray(b.meta[col]))
        assert a.meta[col].unit == b.meta[col].unit


def test_specutils_round_trip_is_exact():
    import astropy.units as u
    from astropy.nddata import InverseVariance
    from specutils import Spectrum

    s = make_set(n=5)
    s.flux[1, 3] = np.nan
    s.meta["rv"] = np.linspace(-20, 20, 5)
    s.meta["rv"].unit = u.km / u.s
    s = s.replace(flux=s.flux * u.Jy)
    spec = s.to_specutils()
    assert isinstance(spec, Spectrum) and spec.flux.shape == (5, 40)
    assert spec.flux.unit == u.Jy and spec.spectral_axis.unit == u.AA
    assert isinstance(spec.uncertainty, InverseVariance)
    assert spec.uncertainty.unit == u.Jy**-2
    assert spec.mask.dtype == bool and spec.mask[1, 3]
    assert_array_equal(spec.spectral_axis.value, s.wave)
    assert_array_equal(spec.flux.value, s.flux)
    assert_array_equal(spec.uncertainty.array, s.ivar)
    back = SpectrumSet.from_specutils(spec)
    _assert_same(s, back)
    # the Spectrum is a copy: changing it leaves the set as it was
    spec.flux.value[0, 0] = -1.0
    assert s.flux[0, 0] != -1.0
    # one spectrum: 1-D flux
    one = s[2].to_specutils()
    assert one.flux.shape == (40,)
    _assert_same(s[2], SpectrumSet.from_specutils(one))


def test_specutils_list_round_trip_with_per_spectrum_wavelengths():
    from specutils import SpectrumList

    s = make_set(n=4)
    per = SpectrumSet.concat([s[:2], s[2:].replace(wave=s.wave + 0.5)])
    with pytest.raises(ValueError, match="as_list=True"):
        per.to_specutils()
    spectra = per.to_specutils(as_list=True)
    assert isinstance(spectra, SpectrumList) and len(spectra) == 4
    assert_array_equal(spectra[3].spectral_axis.value, s.wave + 0.5)
    _assert_same(per, SpectrumSet.from_specutils(spectra))
    _assert_same(per, SpectrumSet.from_specutils(list(spectra)))


def test_from_specutils_reads_any_spectrum():
    import astropy.units as u
    from astropy.nddata import StdDevUncertainty
    from specutils import Spectrum

    spec = Spectrum(flux=[1.0, 2.0, 3.0] * u.mJy, spectral_axis=[1.5, 1.6, 1.7] * u.um,
                    uncertainty=StdDevUncertainty([0.5, 0.0, 1.0] * u.mJy),
                    mask=np.array([0, 0, 4]))
    s = SpectrumSet.from_specutils(spec)
    assert_array_equal(s.wave, [15000.0, 16000.0, 17000.0])
    assert s.flux_unit == u.mJy and list(s.ids) == ["0"]
    assert_allclose(s.ivar, [[4.0, 0.0, 0.0]])  # sigma 0: no information; bit 4: bad
    assert s.mask.tolist() == [[False, True, True]]
    plain = SpectrumSet.from_specutils(Spectrum(flux=np.ones((2, 4)) * u.Jy,
                                                spectral_axis=[1.0, 2.0, 3.0, 4.0] * u.nm))
    assert len(plain) == 2 and np.all(plain.ivar == 1) and not plain.mask.any()
    with pytest.raises(ValueError, match="not a wavelength"):
        SpectrumSet.from_specutils(Spectrum(flux=np.ones(3) * u.Jy,
                                            spectral_axis=[1.0, 2.0, 3.0] * u.GHz))
    with pytest.raises(ValueError, match="expected a specutils Spectrum"):
        SpectrumSet.from_specutils(np.ones(3))


def test_sl_read_accepts_a_spectrum_and_a_spectrum_list():
    import starlearn as sl

    s = make_set(n=3)
    _assert_same(s, sl.read(s.to_specutils()))
    _assert_same(s, sl.read(s.to_specutils(as_list=True)))
    _assert_same(s, SpectrumSet.read(s.to_specutils()))
    with pytest.raises(TypeError, match="format='lamost-lrs'"):
        sl.read(s.to_specutils(), format="lamost-lrs")
    from specutils import SpectrumList

    with pytest.raises(sl.ReadError, match="<specutils SpectrumList>.*empty"):
        sl.read(SpectrumList([]))


def test_to_table_has_one_row_per_spectrum_with_units():
    import astropy.units as u

    s = make_set(n=4)
    s.meta["rv"] = np.arange(4.0)
    s.meta["rv"].unit = u.km / u.s
    s = s.replace(classes=np.array([0, 1, -1, 0]), flux_unit="Jy")
    t = s.to_table()
    assert t.colnames == ["id", "teff", "logg", "class", "snr", "survey", "rv", "flux",
                          "ivar", "mask"]
    assert len(t) == 4 and list(t["id"]) == list(s.ids)
    assert t["teff"].unit == u.K and t["logg"].unit == u.dex and t["rv"].unit == u.km / u.s
    assert t["flux"].unit == u.Jy and t["ivar"].unit == u.Jy**-2
    assert list(t["class"]) == ["absorption", "emission", "", "absorption"]
    assert t["flux"].shape == (4, 40) and t["mask"].dtype == bool
    assert_array_equal(t["flux"], s.flux)
    assert_array_equal(t["ivar"], s.ivar)
    assert_array_equal(t["teff"], s.label("teff"))
    assert t.meta["wave"].unit == u.AA and t.meta["medium"] == "vacuum"
    assert_array_equal(t.meta["wave"].value, s.wave)
    assert t.meta["flux_unit"] == "Jy" and t.meta["label_names"] == ["teff", "logg"]
    # per-spectrum wavelengths become a column; a meta name taken by a column is prefixed
    per = SpectrumSet.concat([s[:2], s[2:].replace(wave=s.wave + 1.0)])
    per.meta["flux"] = np.zeros(4)
    t = per.to_table()
    assert "wave" not in t.meta and t["wave"].unit == u.AA and t["wave"].shape == (4, 40)
    assert "meta_flux" in t.colnames


def test_repr_html_shows_size_grid_labels_and_class_counts():
    s = make_set(n=6).replace(classes=np.array([0, 0, 0, 1, -1, 0]))
    html = s._repr_html_()
    assert "6 spectra" in html and "40 pixels" in html
    assert "5000.00" in html and "5100.00" in html and "&#8491;" in html
    assert "<td>teff</td><td>K</td>" in html and "<td>logg</td><td>dex</td>" in html
    assert "<td>absorption</td><td>4</td>" in html and "<td>emission</td><td>1</td>" in html
    assert "<td><em>unknown</em></td><td>1</td>" in html
    assert "snr, survey" in html
    assert repr(s).startswith("SpectrumSet(n=6, n_pix=40, wave=5000.0-5100.0 A")
