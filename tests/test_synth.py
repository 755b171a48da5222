"""Tests of starlearn.synth, the built-in synthetic survey generator (small n, noiseless
where physics is checked)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from starlearn.grid import PRESETS
from starlearn.synth import (
    CLASS_NAMES,
    SURVEYS,
    LabelPrior,
    draw_labels,
    generate,
    label_names,
    render,
)
from starlearn.synth.linelist import full_linelist

H_ALPHA = 6564.61  # vacuum Angstrom
STEP = {"teff": 100.0, "logg": 0.2, "fe_h": 0.1, "vmicro": 0.3, "vsini": 5.0}


def _stars(**columns) -> Table:
    n = max([len(v) for v in columns.values() if np.ndim(v)] + [1])
    return Table({k: np.broadcast_to(np.asarray(v, dtype=float), (n,)).copy()
                  for k, v in columns.items()})


def _row(names: list[str], **values: float) -> dict[str, float]:
    return {k: values.get(k, 0.0) for k in names}


# ----------------------------------------------------------------------------- API, grids
def test_public_api_and_label_names():
    assert SURVEYS == ("apogee", "lamost", "segue", "pfs-mr", "ondrejov-halpha")
    for survey in SURVEYS:
        names = label_names(survey)
        assert names[:2] == ["teff", "logg"]
        assert all(n == n.lower() for n in names)
        assert len(set(names)) == len(names)
    assert {"fe_h", "alpha_fe", "c_fe", "n_fe", "o_fe", "mg_fe", "si_fe", "ca_fe", "ti_fe",
            "ni_fe", "vmicro", "vsini"} <= set(label_names("apogee"))
    assert label_names("ondrejov-halpha") == ["teff", "logg", "fe_h", "vsini"]
    with pytest.raises(ValueError, match="unknown survey"):
        label_names("gaia")


@pytest.mark.parametrize("survey", SURVEYS)
def test_each_preset_yields_its_grid(survey):
    grid = PRESETS[survey]
    s = generate(survey, 3, seed=1, snr=80.0)
    assert s.flux.shape == (3, grid.n_pix)
    assert grid.matches(s.wave)
    step = s.wave[1] - s.wave[0]
    assert abs(s.wave[0] - grid.start) < step and abs(s.wave[-1] - grid.stop) < step
    assert np.all(np.isfinite(s.flux)) and np.all(np.isfinite(s.ivar))
    assert s.label_names == label_names(survey)
    assert np.all(np.isfinite(s.labels))
    assert list(s.ids) == [f"{survey}-s1-00000{i}" for i in (1, 2, 3)]
    assert {"survey", "snr", "rv"} <= set(s.meta.colnames)
    assert set(s.meta["survey"]) == {survey}
    gap = grid.gap_mask
    assert np.all(s.mask[:, gap]) and np.all(s.ivar[:, gap] == 0) and np.all(s.flux[:, gap] == 0)
    assert not s.mask[:, ~gap].any()
    assert np.all(s.ivar[:, ~gap] > 0)
    if survey == "apogee":
        assert gap.sum() > 1000      # the chip gaps and ends are masked
    if survey == "ondrejov-halpha":
        assert s.class_names == list(CLASS_NAMES) and s.classes.shape == (3,)
        assert "em_amp" in s.meta.colnames
    else:
        assert s.classes is None


@pytest.mark.parametrize("survey", ["apogee", "lamost"])
def test_ivar_consistent_with_snr(survey):
    s = generate(survey, 6, seed=3, snr=(20.0, 200.0))
    snr = np.asarray(s.meta["snr"])
    assert np.all((snr >= 20.0) & (snr <= 200.0)) and np.ptp(snr) > 0
    good = ~s.mask[0]
    measured = np.median(s.flux[:, good] * np.sqrt(s.ivar[:, good]), axis=1)
    np.testing.assert_allclose(measured, snr, rtol=0.05)
    # the scatter of flux around the noiseless model matches the error spectrum
    clean = generate(survey, 6, seed=3, snr=None)
    z = (s.flux[:, good] - clean.flux[:, good]) * np.sqrt(s.ivar[:, good])
    assert abs(np.std(z) - 1.0) < 0.05 and abs(np.mean(z)) < 0.05


def test_noiseless_has_unit_ivar():
    s = generate("pfs-mr", 2, seed=0, snr=None)
    assert np.all(s.ivar == 1.0) and np.all(np.isnan(s.meta["snr"]))


# ----------------------------------------------------------------------------- determinism
def test_seed_determinism():
    a = generate("lamost", 4, seed=7, snr=(30, 100), rv=(-100, 100))
    b = generate("lamost", 4, seed=7, snr=(30, 100), rv=(-100, 100))
    c = generate("lamost", 4, seed=8, snr=(30, 100), rv=(-100, 100))
    np.testing.assert_array_equal(a.flux, b.flux)
    np.testing.assert_array_equal(a.ivar, b.ivar)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.flux, c.flux)
    assert not np.array_equal(a.labels, c.labels)


def test_same_star_same_spectrum_in_any_batch():
    stars = draw_labels("apogee", 40, seed=2)
    whole = render("apogee", stars, seed=2, snr=(50, 100), rv=(-30, 30))
    part = render("apogee", stars[33:36], seed=2, snr=(50, 100), rv=(-30, 30))
    np.testing.assert_array_equal(whole.meta["snr"][33:36], part.meta["snr"])
    np.testing.assert_array_equal(whole.meta["rv"][33:36], part.meta["rv"])
    np.testing.assert_allclose(whole.flux[33:36], part.flux, rtol=0, atol=1e-4)


@pytest.mark.slow
def test_n_jobs_does_not_change_results():
    one = generate("apogee", 70, seed=5, snr=(40, 150), rv=(-50, 50), n_jobs=1)
    two = generate("apogee", 70, seed=5, snr=(40, 150), rv=(-50, 50), n_jobs=2)
    np.testing.assert_array_equal(one.flux, two.flux)
    np.testing.assert_array_equal(one.ivar, two.ivar)
    np.testing.assert_array_equal(one.meta["rv"], two.meta["rv"])


# ----------------------------------------------------------------------------- physics
def _fe_windows(wave: np.ndarray, lo: float, hi: float) -> np.ndarray:
    lines = full_linelist()
    fe = (lines.element == "Fe") & (lines.source == "csv") & (lines.wave > lo) & (lines.wave < hi)
    near = np.zeros(wave.size, dtype=bool)
    for w in lines.wave[fe]:
        near |= np.abs(wave - w) < 1.0
    return near


def test_iron_lines_deepen_with_metallicity():
    fe_h = [-2.0, -1.0, 0.0, 0.4]
    s = render("apogee", _stars(teff=4700.0, logg=2.5, fe_h=fe_h, vmicro=1.5, vsini=3.0),
               snr=None)
    near = _fe_windows(s.wave, 15100, 17000) & ~s.mask[0]
    assert near.sum() > 50
    ew = (1.0 - s.flux[:, near]).sum(axis=1)
    assert np.all(np.diff(ew) > 0), ew


@pytest.mark.parametrize("survey", SURVEYS)
def test_every_label_changes_the_spectrum(survey):
    names = label_names(survey)
    if survey == "ondrejov-halpha":
        bases = [dict(teff=9000.0, logg=4.0, vsini=40.0, vmicro=2.0),
                 dict(teff=7000.0, logg=4.0, vsini=20.0, vmicro=2.0)]
    else:
        bases = [dict(teff=4600.0, logg=2.5, vsini=6.0, vmicro=1.5),
                 dict(teff=5800.0, logg=4.3, vsini=4.0, vmicro=1.0)]
    response = {k: 0.0 for k in names}
    for base in bases:
        row = _row(names, **base)
        row.setdefault("vsini", base["vsini"])
        row.setdefault("vmicro", base["vmicro"])
        rows = [dict(row)]
        for k in names:
            r = dict(row)
            r[k] += STEP.get(k, 0.1)
            rows.append(r)
        s = render(survey, Table(rows=rows), snr=None)
        good = ~s.mask[0]
        for i, k in enumerate(names):
            response[k] = max(response[k],
                              float(np.abs(s.flux[i + 1, good] - s.flux[0, good]).max()))
    for k, r in response.items():
        # alpha_fe acts only through elements without their own label (S I lines), which
        # are weak in the optical
        threshold = 1e-4 if k == "alpha_fe" else 1e-3
        assert r > threshold, f"{survey}: label {k} changes the flux by only {r:.2g}"


@pytest.mark.parametrize("element", ["mg", "si", "ca", "ti", "al", "k", "mn", "ni"])
def test_element_label_acts_near_its_own_lines(element):
    lines = full_linelist()
    own = lines.wave[(lines.element == element.capitalize()) & (lines.wave > 15_000)]
    s = render("apogee", Table(rows=[dict(teff=4500.0, logg=2.3, fe_h=-0.2, vmicro=1.6),
                                     {"teff": 4500.0, "logg": 2.3, "fe_h": -0.2, "vmicro": 1.6,
                                      f"{element}_fe": 0.1}]), snr=None)
    near = np.zeros(s.n_pix, dtype=bool)
    for w in own:
        near |= np.abs(s.wave - w) < 0.7
    good = ~s.mask[0]
    d = np.abs(s.flux[1] - s.flux[0])
    assert (near & good).sum() > 5
    # Mg is the main electron donor of cool giants: it also changes the H- continuum
    # opacity, hence every line, a little (a real effect); the others act locally
    factor = {"mg": 1.5, "si": 3.0}.get(element, 4.0)
    assert d[near & good].mean() > factor * d[~near & good].mean()
    assert d[near & good].max() > d[~near & good].max()


def test_logg_changes_strong_line_wings():
    # Mg b wings (3-15 A from 5184 A) deepen with pressure (van der Waals, ~ N_H)
    s = render("lamost", _stars(teff=5000.0, logg=[4.6, 3.6], fe_h=0.0), snr=None)
    centre = 5184.6
    offset = np.abs(s.wave - centre)
    wing = (offset > 3.0) & (offset < 15.0)
    ref = (s.wave > 5400) & (s.wave < 5500)
    rel = [s.flux[i, wing].mean() / s.flux[i, ref].max() for i in range(2)]
    assert rel[0] < rel[1] - 0.02


def test_hydrogen_lines_peak_near_a_stars():
    # very metal-poor stars, so that H-gamma dominates its window at every Teff
    teff = [5000.0, 7000.0, 9500.0, 15000.0, 25000.0]
    s = render("lamost", _stars(teff=teff, logg=4.0, fe_h=-2.5), snr=None)
    offset = np.abs(s.wave - 4341.7)            # H-gamma
    win = offset < 40
    cont = (offset > 70) & (offset < 100)
    ew = [np.mean(1 - s.flux[i, win] / np.max(s.flux[i, cont])) for i in range(len(teff))]
    assert int(np.argmax(ew)) == 2, ew


def test_radial_velocity_shifts_lines():
    st = _stars(teff=4800.0, logg=2.5, fe_h=0.0)
    rest = render("apogee", st, snr=None)
    moved = render("apogee", st, snr=None, rv=150.0)
    good = ~rest.mask[0]
    a = 1 - rest.flux[0, good][:3000]
    b = 1 - moved.flux[0, good][:3000]
    lags = np.arange(-60, 61)
    cc = [np.dot(a[60:-60], b[60 + k:len(b) - 60 + k]) for k in lags]
    expected = 150.0 / PRESETS["apogee"].velocity_step
    assert abs(lags[int(np.argmax(cc))] - expected) <= 1
    assert moved.meta["rv"][0] == 150.0


def test_normalised_presets_stay_physical_for_hot_and_cool_stars():
    teff = [3600.0, 5000.0, 8000.0, 12_000.0, 20_000.0, 25_000.0]
    logg = [1.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    for survey in ("apogee", "pfs-mr"):
        s = render(survey, _stars(teff=teff, logg=logg, vsini=300.0), snr=None)
        good = ~s.mask
        assert s.flux[good].max() < 1.0 + 1e-3 and s.flux[good].min() > 0.0


# ----------------------------------------------------------------------------- H-alpha
def _halpha(s, i):
    w = s.wave
    cont = np.median(s.flux[i, (np.abs(w - H_ALPHA) > 60) & (np.abs(w - H_ALPHA) < 120)])
    win = np.abs(w - H_ALPHA) < 20
    return w[win], s.flux[i, win] / cont


def test_halpha_classes_look_as_expected():
    stars = Table({"teff": [12_000.0, 15_000.0, 15_000.0], "logg": [4.0, 3.8, 3.8],
                   "vsini": [150.0, 200.0, 200.0], "class": [0, 1, 2],
                   "em_amp": [0.0, 1.5, 1.2], "em_sep": [0.0, 0.0, 250.0],
                   "em_sigma": [0.0, 60.0, 45.0], "em_vr": [1.0, 1.0, 1.0],
                   "em_shift": [0.0, 0.0, 0.0]})
    stars.meta["class_names"] = list(CLASS_NAMES)
    s = render("ondrejov-halpha", stars, snr=None)
    assert list(s.classes) == [0, 1, 2]
    _, f0 = _halpha(s, 0)
    assert f0.max() < 1.01 and f0.min() < 0.8                 # absorption only
    _, f1 = _halpha(s, 1)
    assert f1.max() > 1.5                                     # emission above continuum
    w2, f2 = _halpha(s, 2)
    peaks = [j for j in range(1, f2.size - 1)
             if f2[j] > f2[j - 1] and f2[j] >= f2[j + 1] and f2[j] > 1.2]
    assert len(peaks) == 2
    sep = (w2[peaks[1]] - w2[peaks[0]]) / H_ALPHA * 299_792.458
    assert 180 < sep < 320


def test_class_fractions_control_imbalance():
    t = draw_labels("ondrejov-halpha", 200, seed=4, class_fractions=(0.7, 0.2, 0.1))
    assert np.bincount(t["class"], minlength=3).tolist() == [140, 40, 20]
    t = draw_labels("ondrejov-halpha", 50, seed=4, class_fractions={"double-peak": 1.0})
    assert set(t["class"]) == {2}
    assert np.all(t["em_sep"] >= 100) and np.all(t["em_sep"] <= 400)
    assert np.all(t["em_amp"] > 0)
    with pytest.raises(ValueError, match="class_fractions"):
        draw_labels("apogee", 5, seed=0, class_fractions=(1, 0, 0))
    with pytest.raises(ValueError, match="unknown classes"):
        draw_labels("ondrejov-halpha", 5, seed=0, class_fractions={"shell": 1.0})


def test_ondrejov_stars_through_lamost():
    stars = draw_labels("ondrejov-halpha", 6, seed=9, class_fractions=(0.0, 1.0, 0.0))
    s = render("lamost", stars, seed=9, snr=60.0)
    assert s.n_pix == PRESETS["lamost"].n_pix and np.all(np.isfinite(s.flux))
    assert list(s.ids) == list(stars["id"])
    assert s.class_names == list(CLASS_NAMES) and list(s.classes) == [1] * 6
    assert s.label_names == label_names("lamost")
    np.testing.assert_allclose(s.label("teff"), stars["teff"], rtol=1e-6)
    assert "vsini" in s.meta.colnames and "em_amp" in s.meta.colnames
    clean = render("lamost", stars, seed=9, snr=None)
    for i in range(6):           # the emission shows at LAMOST resolution too
        _, f = _halpha(clean, i)
        assert f.max() > 1.05


# ----------------------------------------------------------------------------- labels
def test_label_distributions():
    apo = draw_labels("apogee", 3000, seed=0)
    lam = draw_labels("lamost", 3000, seed=0)
    for t in (apo, lam):
        assert np.all((t["fe_h"] >= -2.5) & (t["fe_h"] <= 0.5))
        assert np.all((t["teff"] > 3500) & (t["teff"] < 10_000))
        assert np.all((t["logg"] > 0.5) & (t["logg"] < 5.0))
        assert np.all((t["vmicro"] > 0.4) & (t["vmicro"] < 3.1))
        assert np.corrcoef(t["fe_h"], t["alpha_fe"])[0, 1] < -0.5
        poor = t["fe_h"] < -1.2
        assert poor.sum() > 20 and np.mean(t["alpha_fe"][poor]) > 0.2
        assert abs(np.mean(t["alpha_fe"][t["fe_h"] > -0.1])) < 0.1
        np.testing.assert_allclose(np.mean(t["mg_fe"] - t["alpha_fe"]), 0.0, atol=0.01)
        assert np.std(t["mg_fe"] - t["alpha_fe"]) > 0.01
    assert np.mean(apo["logg"] < 3.8) > 0.6       # APOGEE: mostly giants
    assert np.mean(lam["logg"] > 3.8) > 0.6       # LAMOST: mostly dwarfs
    giants = apo["logg"] < 3.0                    # cooler at lower log g on the RGB
    assert np.corrcoef(apo["teff"][giants], apo["logg"][giants])[0, 1] > 0.5
    ond = draw_labels("ondrejov-halpha", 500, seed=0)
    assert np.all((ond["teff"] >= 4000) & (ond["teff"] <= 25_000))
    cool = ond["population"] == "fgk-star"  # a third of the absorption-line stars
    assert np.all(ond["class"][cool] == 0) and np.all(ond["teff"][cool] < 6500)
    assert 0.25 < cool.sum() / np.sum(ond["class"] == 0) < 0.42
    assert ond.meta["class_names"] == list(CLASS_NAMES)
    np.testing.assert_allclose(np.bincount(ond["class"]) / 500, [0.45, 0.45, 0.10])


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="unknown survey"):
        generate("gaia", 2)
    with pytest.raises(ValueError, match="snr"):
        generate("apogee", 2, snr=-5.0)
    with pytest.raises(ValueError, match="rv"):
        generate("apogee", 2, rv=5000.0)
    with pytest.raises(ValueError, match="teff"):
        render("apogee", Table({"logg": [2.0]}))


def test_lamost_files_round_trip_through_the_reader(tmp_path):
    import starlearn as sl
    from starlearn.synth import write_lamost_files

    spectra = generate("lamost", 3, seed=5, snr=50, rv=(-50, 50))
    paths = write_lamost_files(spectra, tmp_path)
    assert [p.name for p in paths] == ["spec-000000.fits", "spec-000001.fits",
                                       "spec-000002.fits"]
    for i, path in enumerate(paths):
        back = sl.read(path)
        assert np.allclose(back.wave, spectra.wave, rtol=1e-9)
        good = ~spectra.mask[i]
        assert np.allclose(back.flux[0][good], spectra.flux[i][good], rtol=1e-6)
        assert back.meta["rv"][0] == pytest.approx(spectra.meta["rv"][i], abs=1e-3)


def test_hydrogen_wavelengths_are_the_measured_ones():
    """H lines sit at the measured (fine-structure-weighted) wavelengths; the Bohr formula
    put H-alpha 0.082 A (3.7 km/s) too red."""
    from starlearn.synth.linelist import (
        MEASURED_HYDROGEN,
        hydrogen_level,
        hydrogen_lines,
        hydrogen_wavelength,
    )
    hyd = hydrogen_lines()
    halpha = hyd.wave[(hyd.lower == 2) & (hyd.upper == 3)][0]
    assert abs(halpha - 6564.614) < 1e-3
    # the level centroids used for the other lines reproduce every measured line
    for (lo, up), measured in MEASURED_HYDROGEN.items():
        centroid = 1e8 / (hydrogen_level(up) - hydrogen_level(lo))
        assert abs(centroid - measured) / measured * 299_792.458 < 0.7   # km/s
    # Brackett 11 (APOGEE) and the series limit ordering
    assert abs(hydrogen_wavelength(4, 11) - 16811.13) < 0.02
    assert np.all(np.diff(hyd.wave[hyd.lower == 4]) < 0)


def test_molecular_band_origins_are_the_measured_ones():
    """CO and OH vibrational levels from the full Dunham series: the CO 3-0 origin is the
    laboratory 6,350.44 cm^-1 and the OH fundamental 3,569.6 cm^-1 (without omega_e y_e
    they were 0.45 and 1.6 cm^-1 low, and the error grows as v^3 up the ladder)."""
    from starlearn.synth.linelist import _STATES
    co, oh = _STATES["CO X"], _STATES["OH X"]
    assert abs(co.g(3) - co.g(0) - 6350.436) < 0.02
    assert abs(co.g(1) - co.g(0) - 2143.271) < 0.02     # CO fundamental
    assert abs(oh.g(1) - oh.g(0) - 3569.64) < 0.1
    assert abs(co.b(0) - 1.92253) < 1e-4


def test_molecular_bands_fade_out_instead_of_ending_in_a_step():
    """Each band runs up in J until its lines are invisible (or the molecule dissociates):
    the 1 % highest-excitation lines of CO, OH, CN and CH have central optical depth < 0.1
    in cool giants and dwarfs (a fixed J cut left CO lines of optical depth 1 and the CH
    G band ending in a step at 4,420 A)."""
    from starlearn.synth import physics as ph
    from starlearn.synth.linelist import molecular_lines
    lines = molecular_lines()
    for teff, logg in ((3600.0, 0.8), (4000.0, 4.7), (4600.0, 2.0)):
        log_eps = ph.A_SUN[None, :] + 0.4
        log_eps[0, :2] = ph.A_SUN[:2]                      # H and He
        atm = ph.atmosphere(np.array([teff]), np.array([logg]), log_eps, tau=0.67)
        for mol in ("CO", "OH", "CN", "CH"):
            band = lines.select(lines.source == mol)
            top = band.select(band.chi > np.percentile(band.chi, 99))
            log_tau = ph.line_log_strength_single(atm, top, vmicro=1.0)
            assert log_tau.max() < -1.0, (mol, teff, logg, log_tau.max())


def test_molecular_equilibrium_conserves_atoms_and_forms_h2():
    """Every C, N, O and Mg nucleus is counted once (atoms, ions, molecules), and hydrogen
    goes into H2 in cool dense layers (at 3,000 K, log g 5: 93 %; the old trace-species
    treatment put 50 times more O in OH than there was O)."""
    from starlearn.synth import physics as ph
    teff, logg = np.array([3000.0, 4000.0, 5800.0]), np.array([5.0, 4.7, 4.4])
    log_eps = np.repeat(ph.A_SUN[None, :], 3, axis=0)
    atm = ph.atmosphere(teff, logg, log_eps, tau=0.67)
    idx, sp = ph.EL_INDEX, ph.SPECIES_INDEX

    def per_h(name: str) -> np.ndarray:    # number per H nucleus
        if name in ph.MOLECULES:
            return 10 ** (atm.log_species[:, sp[name]] + ph.log_molecule_partition(name, atm.t))
        el, stage = name.split()
        k = ("I", "II", "III").index(stage)
        return 10 ** (atm.log_species[:, sp[name]] + ph.LOGU[idx[el], k])

    h_total = per_h("H I") + per_h("H II") + 2 * per_h("H2")
    assert np.allclose(h_total, 1.0, rtol=1e-6)
    assert 2 * per_h("H2")[0] > 0.9 and 2 * per_h("H2")[2] < 0.01
    carbon = sum(per_h(f"C {s}") for s in ("I", "II", "III")) + per_h("CO") + per_h("CN") \
        + per_h("CH")
    assert np.allclose(carbon, 10 ** (ph.A_SUN[idx["C"]] - 12), rtol=1e-6)
    oxygen_in_oh = per_h("OH") / 10 ** (ph.A_SUN[idx["O"]] - 12)
    assert np.all(oxygen_in_oh < 0.1)
    # the solver itself: conservation sums to 1e-10 for a random hard case
    rng = np.random.default_rng(0)
    p_tot = 10 ** rng.uniform(-2, 2, (50, 4))
    ion = 10 ** rng.uniform(-6, 1, (50, 4))
    log_kp = {m: rng.uniform(-8, 4, 50) for m in ("CO", "CN", "CH", "OH", "MgH", "N2")}
    log_kp["H2O"] = rng.uniform(-4, 8, 50)
    p_free, p_mol = ph.molecular_equilibrium(p_tot, ion, 10 ** rng.uniform(2, 5, 50), log_kp)
    stoich = ph._NETWORK_MOLECULES
    for j, el in enumerate(ph.NETWORK):
        total = p_free[:, j] * (1 + ion[:, j]) + sum(n.get(el, 0) * p_mol[m]
                                                     for m, n in stoich.items())
        assert np.allclose(total, p_tot[:, j], rtol=1e-8)


def test_render_refuses_stars_cooler_than_its_physics():
    with pytest.raises(ValueError, match="cooler than the generator supports.*TiO"):
        render("lamost", _stars(teff=3000.0, logg=5.0, fe_h=0.0), snr=None)
    with pytest.raises(ValueError, match="row 1 .*teff 3400"):
        render("apogee", _stars(teff=[4000.0, 3400.0], logg=[1.0, 0.5], fe_h=0.0), snr=None)
    render("apogee", _stars(teff=3550.0, logg=0.6, fe_h=0.0), snr=None)   # a cool giant


def test_hydrogen_wings_follow_eddington_barbier_saturation():
    """Balmer wings saturate slowly (grey Eddington-Barbier): r = ((1 + 1/(1+eta))/2)^(x/4),
    so the wing limit is 0.5^(x/4) (0.64 for an A star at H-alpha), and only the Doppler
    core reaches the core floor."""
    from starlearn.synth.generator import _core_floor, hydrogen_residual
    eta = np.logspace(-3, 4, 200)[None, :]
    teff = np.array([9600.0])
    r = hydrogen_residual(eta, np.zeros_like(eta), teff, np.array([6564.61]))[0]
    assert np.all(np.diff(r) < 0) and r[0] > 0.999
    assert 0.62 < r[-1] < 0.66
    core = hydrogen_residual(np.array([[1e6]]), np.array([[1e6]]), teff, np.array([6564.61]))
    assert abs(core[0, 0] - _core_floor(teff)[0]) < 1e-6


# ----------------------------------------------------------------------------- label priors
def _catalog(n: int = 300, seed: int = 0, names: tuple[str, str, str] = ("TEFF", "LOGG", "FE_H"),
             **extra) -> Table:
    """A catalogue of giant-like labels, spelled as a survey would."""
    rng = np.random.default_rng(seed)
    teff, logg, feh = names
    t = Table({"APOGEE_ID": [f"2M{i:08d}" for i in range(n)],
               teff: rng.uniform(4000.0, 5200.0, n), logg: rng.uniform(1.0, 3.3, n),
               feh: rng.normal(-0.4, 0.3, n)})
    for name, value in extra.items():
        t[name] = value
    return t


def test_default_draw_is_unchanged():
    """The population without a prior is what it always was (values pinned before priors)."""
    t = draw_labels("apogee", 3, seed=1)
    np.testing.assert_allclose(t["teff"], [4769.592818558293, 4792.110446217726,
                                           4764.87158741044], rtol=0, atol=1e-9)
    np.testing.assert_allclose(t["logg"], [3.1292403909521815, 4.523703902534362,
                                           2.898622438831403], rtol=0, atol=1e-12)
    np.testing.assert_allclose(t["fe_h"], [-0.446570833242399, 0.3126396993272905,
                                           -0.13217250522064122], rtol=0, atol=1e-12)
    ond = draw_labels("ondrejov-halpha", 3, seed=1)
    np.testing.assert_allclose(ond["teff"], [9287.906698668612, 13648.210476411425,
                                             14614.474987004713], rtol=0, atol=1e-9)
    for empty in (None, {}, LabelPrior()):
        again = draw_labels("apogee", 40, seed=4, prior=empty)
        base = draw_labels("apogee", 40, seed=4)
        assert again.colnames == base.colnames and "prior" not in again.meta
        for c in base.colnames:
            np.testing.assert_array_equal(again[c], base[c])
    a = generate("lamost", 3, seed=2, snr=50, prior={})
    b = generate("lamost", 3, seed=2, snr=50)
    np.testing.assert_array_equal(a.flux, b.flux)


def test_prior_box_keeps_every_label_inside_and_the_population_relations():
    box = {"teff": (4000.0, 5500.0), "logg": (1.0, 3.5), "fe_h": (-1.0, 0.0),
           "alpha_fe": (0.0, 0.3)}
    t = draw_labels("apogee", 300, seed=1, prior=box)
    assert len(t) == 300 and t.meta["prior"] == {k: list(v) for k, v in box.items()}
    for name, (lo, hi) in box.items():
        v = np.asarray(t[name])
        assert np.all((v >= lo) & (v <= hi)), name
        assert np.std(v) > 0.1 * (hi - lo), name             # not degenerate
    assert np.ptp(t["teff"]) > 700 and np.ptp(t["fe_h"]) > 0.6
    giants = t["logg"] < 3.0                                   # the RGB sequence survives
    assert np.corrcoef(t["teff"][giants], t["logg"][giants])[0, 1] > 0.5
    assert np.corrcoef(t["fe_h"], t["alpha_fe"])[0, 1] < -0.3
    np.testing.assert_allclose(np.mean(t["mg_fe"] - t["alpha_fe"]), 0.0, atol=0.01)
    assert set(t["population"]) <= {"rgb", "rc", "subgiant"}
    assert [str(i) for i in t["id"][:2]] == ["apogee-s1-000001", "apogee-s1-000002"]


def test_prior_fixed_value_is_honoured_and_the_rest_follows():
    t = draw_labels("apogee", 200, seed=2, prior={"feh": -0.5, "teff": (4200, 5000)})
    assert set(t["fe_h"].tolist()) == {-0.5}
    assert np.all((t["teff"] >= 4200) & (t["teff"] <= 5000)) and np.std(t["teff"]) > 100
    assert np.std(t["alpha_fe"]) > 0.02                       # thin and thick disc stars
    np.testing.assert_allclose(np.mean(t["mg_fe"] - t["alpha_fe"]), 0.0, atol=0.01)
    alpha = draw_labels("lamost", 100, seed=2, prior=LabelPrior(alpha_fe=0.25))
    assert set(alpha["alpha_fe"].tolist()) == {0.25}
    # the alpha elements moved with [alpha/Fe]: their scatter about it is the population's
    assert np.std(alpha["mg_fe"] - 0.25) < 0.05 and abs(np.mean(alpha["mg_fe"]) - 0.25) < 0.01
    assert np.mean(alpha["fe_h"]) < -0.4                      # high alpha: thick disc, halo
    same = draw_labels("lamost", 100, seed=2, prior={"[alpha/Fe]": 0.25})
    np.testing.assert_array_equal(same["teff"], alpha["teff"])


def test_prior_draws_are_seeded():
    box = {"teff": (5000, 6000), "logg": (3.8, 4.6)}
    a = draw_labels("segue", 80, seed=7, prior=box)
    b = draw_labels("segue", 80, seed=7, prior=LabelPrior(box))
    c = draw_labels("segue", 80, seed=8, prior=box)
    for col in ("teff", "logg", "fe_h", "alpha_fe", "vmicro"):
        np.testing.assert_array_equal(a[col], b[col])
    assert not np.array_equal(a["teff"], c["teff"])
    s1 = generate("segue", 4, seed=7, snr=60, prior=box)
    s2 = generate("segue", 4, seed=7, snr=60, prior=box)
    np.testing.assert_array_equal(s1.flux, s2.flux)
    np.testing.assert_allclose(s1.labels[:, 0], a["teff"][:4], rtol=1e-6)


def test_prior_spectra_carry_the_box_labels():
    s = generate("pfs-mr", 12, seed=3, snr=None, prior={"teff": (4500, 5000), "logg": 2.5})
    teff = s.labels[:, s.label_names.index("teff")]
    assert np.all((teff >= 4500) & (teff <= 5000))
    assert np.all(s.labels[:, s.label_names.index("logg")] == 2.5)
    assert np.all(np.isfinite(s.flux))


def test_prior_keeps_exact_class_fractions_within_the_box():
    t = draw_labels("ondrejov-halpha", 60, seed=0, prior={"teff": (11_000, 16_000)},
                    class_fractions=[0.5, 0.3, 0.2])
    np.testing.assert_array_equal(np.bincount(t["class"]), [30, 18, 12])
    assert np.all((t["teff"] >= 11_000) & (t["teff"] <= 16_000))
    assert len(set(t["class"][:10].tolist())) > 1               # classes mixed, not in blocks
    with pytest.raises(ValueError, match=r"no 'emission' stars of the ondrejov-halpha"):
        draw_labels("ondrejov-halpha", 10, seed=0, prior={"teff": (6500, 9000)})
    cool = draw_labels("ondrejov-halpha", 10, seed=0, prior={"teff": (6500, 9000)},
                       class_fractions=[1, 0, 0])
    assert np.all(cool["class"] == 0)


def test_prior_errors_are_clear():
    with pytest.raises(ValueError, match=r"apogee preset has no label 'vmacro'.*teff, logg"):
        draw_labels("apogee", 5, prior={"vmacro": (3, 5)})
    with pytest.raises(ValueError, match=r"ondrejov-halpha preset has no label 'alpha_fe'"):
        generate("ondrejov-halpha", 2, prior={"alpha_fe": 0.1})
    with pytest.raises(ValueError, match=r"no stars of the apogee population.*teff 3,\d+ to 7,"):
        draw_labels("apogee", 5, prior={"teff": (9000, 9500)})   # no hot stars in apogee
    with pytest.raises(ValueError, match="outside the generator's Teff limits"):
        draw_labels("lamost", 5, prior={"teff": (2500, 3200)})
    with pytest.raises(ValueError, match="outside the generator's Teff limits"):
        draw_labels("lamost", 5, prior={"teff": 3600, "logg": (4.2, 5.0)})   # an M dwarf
    with pytest.raises(ValueError, match="outside the generator's log g limits"):
        draw_labels("lamost", 5, prior={"logg": (7, 8)})
    with pytest.raises(ValueError, match=r"holds about .* more than 2,000,000"):
        draw_labels("apogee", 5000, prior={"teff": 4800, "logg": 2.5, "fe_h": 0.0,
                                           "alpha_fe": 0.0})
    with pytest.raises(ValueError, match="lo <= hi"):
        LabelPrior(teff=(5000, 4000))
    with pytest.raises(ValueError, match="both set fe_h"):
        LabelPrior({"feh": -0.5, "fe_h": (-1, 0)})
    with pytest.raises(TypeError, match="prior must be"):
        draw_labels("apogee", 5, prior=[4000, 5000])


def test_labels_from_reproduces_the_catalogue():
    cat = _catalog(400)
    t = draw_labels("apogee", 300, seed=3, labels_from=cat)
    ref = np.asarray(cat["TEFF"])
    assert abs(np.median(t["teff"]) / np.median(ref) - 1) < 0.03
    assert abs(np.median(t["logg"]) - np.median(cat["LOGG"])) < 0.15
    assert abs(np.median(t["fe_h"]) - np.median(cat["FE_H"])) < 0.06
    assert abs(np.std(t["fe_h"]) / np.std(cat["FE_H"]) - 1) < 0.15
    rows = np.asarray(t["catalog_row"])
    np.testing.assert_array_equal(t["teff"], ref[rows])          # the rows' own labels
    np.testing.assert_array_equal(t["fe_h"], np.asarray(cat["FE_H"])[rows])
    assert len(set(rows.tolist())) > 150                         # with replacement, spread
    # labels the catalogue lacks come from population stars like the row: the Galactic
    # [alpha/Fe]-[Fe/H] sequences, alpha elements following [alpha/Fe], vmicro from log g
    assert np.corrcoef(t["fe_h"], t["alpha_fe"])[0, 1] < -0.5
    np.testing.assert_allclose(np.mean(t["mg_fe"] - t["alpha_fe"]), 0.0, atol=0.01)
    assert np.corrcoef(t["logg"], t["vmicro"])[0, 1] < -0.8
    assert t.meta["labels_from"] == "the labels_from table"
    again = draw_labels("apogee", 300, seed=3, labels_from=cat)
    other = draw_labels("apogee", 300, seed=4, labels_from=cat)
    for col in ("teff", "alpha_fe", "mg_fe", "vsini"):
        np.testing.assert_array_equal(again[col], t[col])
    assert not np.array_equal(other["teff"], t["teff"])


@pytest.mark.parametrize("names", [("teff", "logg", "feh"), ("Teff", "log_g", "[Fe/H]"),
                                   ("TEFF", "LOGG", "M_H"), ("T_eff", "Log g", "Fe_H")])
def test_labels_from_matches_survey_spellings(names):
    cat = _catalog(50, names=names, ALPHA_FE=np.full(50, 0.123), MG_FE=np.full(50, 0.2))
    t = draw_labels("lamost", 40, seed=0, labels_from=cat)
    np.testing.assert_array_equal(t["teff"], np.asarray(cat[names[0]])[t["catalog_row"]])
    np.testing.assert_array_equal(t["fe_h"], np.asarray(cat[names[2]])[t["catalog_row"]])
    assert set(t["alpha_fe"].tolist()) == {0.123} and set(t["mg_fe"].tolist()) == {0.2}
    np.testing.assert_allclose(np.mean(t["si_fe"]), 0.123, atol=0.03)   # follows alpha_fe


def test_labels_from_prefers_fe_h_to_m_h_and_skips_missing_values():
    cat = _catalog(60, M_H=np.full(60, -2.0), ALPHA_FE=np.r_[np.full(30, np.nan),
                                                             np.full(30, 0.3)])
    cat["TEFF"][:10] = np.nan
    cat["LOGG"][10:15] = -9999.0
    t = draw_labels("apogee", 200, seed=1, labels_from=cat)
    rows = np.asarray(t["catalog_row"])
    assert rows.min() >= 15                                      # rows without Teff/log g
    np.testing.assert_array_equal(t["fe_h"], np.asarray(cat["FE_H"])[rows])   # not M_H
    has_alpha = rows >= 30
    assert np.all(t["alpha_fe"][has_alpha] == 0.3)
    assert np.all(t["alpha_fe"][~has_alpha] != 0.3)              # NaN: from the population


@pytest.mark.parametrize("suffix", [".fits", ".ecsv", ".csv"])
def test_labels_from_reads_catalogue_files(tmp_path, suffix):
    path = tmp_path / f"cat{suffix}"
    _catalog(100, names=("Teff", "logg", "[Fe/H]")).write(path)
    s = generate("apogee", 6, seed=2, snr=None, labels_from=path)
    assert len(s) == 6 and "catalog_row" in s.meta.colnames
    cat = Table.read(path)
    rows = np.asarray(s.meta["catalog_row"])
    np.testing.assert_allclose(s.labels[:, 0], np.asarray(cat["Teff"])[rows], rtol=1e-6)
    t = draw_labels("apogee", 6, seed=2, labels_from=str(path))
    assert t.meta["labels_from"] == str(path)
    np.testing.assert_array_equal(t["catalog_row"], rows)


def test_labels_from_with_a_box_drops_the_rows_outside_it():
    cat = _catalog(400)
    t = draw_labels("apogee", 150, seed=0, labels_from=cat,
                    prior={"teff": (4300, 4800), "logg": (1.5, 3.0), "alpha_fe": (0.1, 0.3)})
    assert np.all((t["teff"] >= 4300) & (t["teff"] <= 4800))
    assert np.all((t["logg"] >= 1.5) & (t["logg"] <= 3.0))
    assert np.all((t["alpha_fe"] >= 0.1) & (t["alpha_fe"] <= 0.3))  # donors in the box too
    inside = ((cat["TEFF"] >= 4300) & (cat["TEFF"] <= 4800) & (cat["LOGG"] >= 1.5)
              & (cat["LOGG"] <= 3.0))
    assert set(t["catalog_row"].tolist()) <= set(np.nonzero(inside)[0].tolist())
    fixed = draw_labels("apogee", 30, seed=0, labels_from=cat, prior={"feh": -0.4})
    assert set(fixed["fe_h"].tolist()) == {-0.4}


def test_labels_from_errors_name_the_file(tmp_path):
    path = tmp_path / "nologg.csv"
    Table({"TEFF": [4500.0, 4800.0], "FE_H": [0.0, -0.3]}).write(path)
    with pytest.raises(ValueError, match=r"nologg\.csv: no log g column.*its columns are TEFF"):
        draw_labels("apogee", 5, labels_from=path)
    empty = tmp_path / "empty.ecsv"
    _catalog(0).write(empty)
    with pytest.raises(ValueError, match=r"empty\.ecsv: no usable rows.*of 0 rows"):
        generate("lamost", 2, labels_from=empty)
    nan = tmp_path / "nan.fits"
    _catalog(5, FE_H=np.full(5, np.nan)).write(nan)
    with pytest.raises(ValueError, match=r"nan\.fits: no usable rows.*5 lack a finite"):
        draw_labels("apogee", 5, labels_from=nan)
    with pytest.raises(ValueError, match=r"no usable rows.*400 outside the box"):
        draw_labels("apogee", 5, labels_from=_catalog(400), prior={"teff": (6000, 7000)})
    with pytest.raises(FileNotFoundError, match="no such label catalogue"):
        draw_labels("apogee", 5, labels_from=tmp_path / "missing.fits")
    bad = tmp_path / "bad.fits"
    bad.write_text("not a table")
    with pytest.raises(ValueError, match=r"bad\.fits: cannot read it as a table"):
        draw_labels("apogee", 5, labels_from=bad)
    with pytest.raises(ValueError, match="class_fractions cannot be combined"):
        draw_labels("ondrejov-halpha", 5, labels_from=_catalog(10),
                    class_fractions=[1, 0, 0])
    cool = _catalog(20)
    cool["TEFF"][:5] = 3200.0                                   # M giants: no TiO physics
    with pytest.warns(UserWarning, match="5 of 20 rows are outside the generator's physics"):
        t = draw_labels("apogee", 30, seed=0, labels_from=cool)
    assert t["catalog_row"].min() >= 5
