"""Paper figures: every plot returns a Figure, writes a file only when given a path, labels
its axes with physical names and units, and never touches the matplotlib backend."""

import json
import os
import subprocess
import sys
from itertools import combinations

import matplotlib
import numpy as np
import pytest
from astropy.table import Table
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from starlearn.evaluate import plots
from starlearn.evaluate.autoencoder import evaluate_autoencoder, plot_reconstruction_cases
from starlearn.evaluate.classification import plot_confusion, plot_domains
from starlearn.evaluate.regression import evaluate_regressor
from starlearn.spectra import SpectrumSet

CA_K = 3934.777  # Ca II K, vacuum Angstrom
H_ALPHA = 6564.614


def stars(n=120, seed=0):
    rng = np.random.default_rng(seed)
    teff = rng.uniform(4200, 6400, n)
    logg = np.clip(4.6 - (6400 - teff) / 900 + rng.normal(0, 0.4, n), 0.8, 4.9)
    feh = rng.normal(-0.2, 0.3, n)
    true = np.c_[teff, logg, feh]
    pred = true + rng.normal(0, [50, 0.08, 0.04], true.shape)
    return true, pred, ["teff", "logg", "fe_h"]


def spectra(n=4, seed=1):
    rng = np.random.default_rng(seed)
    wave = np.linspace(6500.0, 6630.0, 260)
    model = 1 - 0.6 * np.exp(-0.5 * ((wave - H_ALPHA) / 1.5) ** 2)
    flux = model + rng.normal(0, 0.01, (n, wave.size))
    true, _, names = stars(n)
    return (SpectrumSet(wave=wave, flux=flux, ivar=np.full(flux.shape, 1e4),
                        labels=true, label_names=names),
            np.tile(model, (n, 1)))


def confusion():
    return {"confusion": [[5, 1, 0], [2, 7, 1], [0, 0, 3]], "classes": ["MS", "giant", "Be"],
            "macro_f1": 0.8, "accuracy": 0.79}


class FakeAutoencoder:
    model, latent, denoise, snr = "dense-ae", 4, False, None

    def __init__(self, model_flux):
        self.model_flux = model_flux

    def prepare_inputs(self, s):
        return s

    def reconstruct(self, s):
        return s.replace(flux=self.model_flux[:len(s)], ivar=np.full(s.flux.shape, 1e5))

    def score(self, s):
        resid = (s.flux - self.model_flux[:len(s)]) ** 2 * s.ivar
        return Table({"chi2": resid.mean(axis=1), "odd": np.zeros(len(s), bool)})


class FakeRegressor:
    model = "starnet"

    def __init__(self, pred):
        self.pred = pred
        self.label_names_ = ["teff", "logg", "fe_h"]

    def predict(self, s):
        table = {n: self.pred[:, j] for j, n in enumerate(self.label_names_)}
        table.update({f"{n}_err": np.ones(len(s)) for n in self.label_names_})
        table["flags"] = np.zeros(len(s), int)
        return table


def _every_plot():
    true, pred, names = stars()
    obs, model = spectra()
    rng = np.random.default_rng(2)
    wave = np.linspace(3900.0, 4000.0, 500)
    sal = np.abs(rng.normal(0, 0.05, (2, wave.size)))
    return {
        "spectra": lambda p: plots.plot_spectra(obs, [0, 1], offset=0.5, path=p),
        "spectrum_panels": lambda p: plots.plot_spectrum_panels({"a": obs, "b": obs}, p),
        "spectrum_model": lambda p: plots.plot_spectrum_model(obs, model, 1, p,
                                                              model_label="The Cannon"),
        "reconstruction": lambda p: plots.plot_reconstruction(
            obs, obs.replace(flux=model), [0, 2], p),
        "reconstruction_cases": lambda p: plot_reconstruction_cases(
            obs, obs.replace(flux=model), np.arange(len(obs), dtype=float), p),
        "residuals": lambda p: plots.plot_residuals(true, pred, names, p, title="test"),
        "kiel": lambda p: plots.plot_kiel(pred, p, names=names, reference=true),
        "saliency": lambda p: plots.plot_saliency(wave, sal, ["teff", "fe_h"], p,
                                                  mean_spectrum=1 - sal[0]),
        "embedding": lambda p: plots.plot_embedding(rng.normal(size=(40, 2)),
                                                    rng.normal(size=40), p, label="teff",
                                                    method="pca"),
        "confusion": lambda p: plot_confusion(confusion(), p),
        "domains": lambda p: plot_domains({"before": (rng.normal(size=(20, 3)),
                                                      rng.normal(size=(20, 3)) + 2)},
                                          p, method="pca"),
    }


@pytest.mark.parametrize("name", list(_every_plot()))
def test_every_plot_returns_a_figure_and_writes_a_png_only_when_asked(name, tmp_path,
                                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)
    make = _every_plot()[name]
    assert isinstance(make(None), Figure)
    assert list(tmp_path.iterdir()) == []
    fig = make(tmp_path / f"{name}.png")
    assert isinstance(fig, Figure)
    data = (tmp_path / f"{name}.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    assert fig._repr_png_()[:4] == b"\x89PNG"  # shows inline in Jupyter on any backend


def test_axis_label_table():
    assert plots.axis_label("teff") == r"$T_\mathrm{eff}$ [K]"
    assert plots.axis_label("logg") == "log g [dex]"
    for name in ("fe_h", "feh", "m_h", "FE_H"):
        assert plots.axis_label(name) == "[Fe/H] [dex]"
    assert plots.axis_label("alpha_fe") == "[α/Fe] [dex]"
    assert plots.axis_label("x_fe") == "[X/Fe] [dex]"
    assert plots.axis_label("mg_fe") == "[Mg/Fe] [dex]"
    assert plots.axis_label("vmicro").endswith("[km/s]") and "micro" in plots.axis_label(
        "vmicro")
    assert plots.axis_label("vsini") == "v sin i [km/s]"
    assert plots.axis_label("depth_ratio") == "depth_ratio"


def test_axes_carry_physical_names_and_units():
    true, pred, names = stars()
    fig = plots.plot_residuals(true, pred, names)
    labels = [ax.get_xlabel() for ax in fig.axes] + [ax.get_ylabel() for ax in fig.axes]
    assert "predicted $T_\\mathrm{eff}$ [K]" in labels
    assert "true log g [dex]" in labels and "true [Fe/H] [dex]" in labels
    assert "pred − true [K]" in labels
    obs, model = spectra()
    for fig in (plots.plot_spectra(obs), plots.plot_spectrum_model(obs, model)):
        xlabels = [ax.get_xlabel() for ax in fig.axes if ax.get_xlabel()]
        assert xlabels == ["Wavelength [Å] (vacuum)"]
        assert fig.axes[0].get_ylabel() == "normalised flux"
    kiel = plots.plot_kiel(pred, names=names)
    assert kiel.axes[0].get_xlabel() == r"$T_\mathrm{eff}$ [K]"
    assert kiel.axes[0].get_ylabel() == "log g [dex]"


def test_importing_and_plotting_leave_the_backend_alone(tmp_path):
    """In a fresh process whose default backend is not Agg (svg from a matplotlibrc),
    with MPLBACKEND unset and matplotlib.use made to fail."""
    (tmp_path / "matplotlibrc").write_text("backend: svg\n")
    script = """
import json, sys
import matplotlib
before = matplotlib.get_backend()
def refuse(*args, **kwargs):
    raise AssertionError("matplotlib.use was called")
matplotlib.use = refuse
import numpy as np
import starlearn.evaluate.plots as plots
from starlearn.evaluate import autoencoder, classification, regression
plots.plot_residuals(np.ones((5, 1)), np.ones((5, 1)), ["teff"], "residuals.png")
classification.plot_confusion({"confusion": [[2, 0], [1, 3]], "classes": ["a", "b"],
                               "macro_f1": 0.8}, "confusion.png")
print(json.dumps({"before": before, "after": matplotlib.get_backend(),
                  "pyplot": "matplotlib.pyplot" in sys.modules}))
"""
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["MATPLOTLIBRC"] = str(tmp_path / "matplotlibrc")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"before": "svg", "after": "svg", "pyplot": False}
    assert (tmp_path / "residuals.png").stat().st_size > 1000
    assert (tmp_path / "confusion.png").stat().st_size > 1000


def test_no_plot_calls_matplotlib_use(monkeypatch, tmp_path):
    def refuse(*args, **kwargs):
        raise AssertionError("matplotlib.use was called")

    monkeypatch.setattr(matplotlib, "use", refuse)
    for name, make in _every_plot().items():
        make(tmp_path / f"{name}.png")


def test_robust_limits_ignore_a_single_extreme_outlier():
    true, pred, names = stars(200)
    pred[7, 0] = 1e6
    pred[9, 1] = -40.0
    fig = plots.plot_residuals(true, pred, names)
    top, bottom = fig.axes[0], fig.axes[1]  # teff
    lo, hi = top.get_ylim()
    assert 3500 < lo < 4300 and 6300 < hi < 7200
    assert top.get_xlim() == top.get_ylim()
    r_lo, r_hi = bottom.get_ylim()
    assert r_lo == -r_hi and 100 < r_hi < 400
    assert fig.axes[2].get_ylim()[0] > 0  # logg panel: -40 is not shown to scale
    # the outlier sits on the top edge as an open triangle, and the panel says so
    edge = [c.get_offsets() for c in top.collections if len(c.get_offsets()) == 1]
    assert any(np.isclose(o[0, 1], hi) for o in edge)
    assert any("1 off-scale" in t.get_text() for t in top.texts)
    text = " ".join(t.get_text() for t in top.texts)
    assert "bias" in text and "robust σ" in text and "K" in text
    x = np.r_[np.random.default_rng(0).normal(0, 1, 50), 1e9]
    lo, hi = plots.robust_limits(x)
    assert -4 < lo < -1 and 1 < hi < 4


def test_kiel_axes_are_inverted_and_coloured_by_metallicity():
    true, pred, names = stars()
    fig = plots.plot_kiel({n: pred[:, j] for j, n in enumerate(names)})
    ax = fig.axes[0]
    assert ax.xaxis_inverted() and ax.yaxis_inverted()
    assert any(a.get_ylabel() == "[Fe/H] [dex]" for a in fig.axes[1:])  # the colour bar
    two = plots.plot_kiel(pred, names=names, reference=true)
    assert [a.get_title() for a in two.axes[:2]] == ["true", "predicted"]
    assert all(a.xaxis_inverted() and a.yaxis_inverted() for a in two.axes[:2])
    with pytest.raises(ValueError, match="logg"):
        plots.plot_kiel({"teff": pred[:, 0]})


def _line_ids(fig):
    return [[(t.get_position()[0], t.get_text()) for t in ax.texts
             if t.get_gid() == "line-id"] for ax in fig.axes]


def test_saliency_plot_identifies_a_known_strong_line():
    wave = np.linspace(3900.0, 4000.0, 1000)
    sal = np.full((1, wave.size), 0.01)
    sal[0, np.argmin(np.abs(wave - CA_K))] = 1.0
    ids = [i for i in _line_ids(plots.plot_saliency(wave, sal, ["fe_h"], n_lines=3)) if i]
    assert ids and ids[0][0][1] == "Ca II" and abs(ids[0][0][0] - CA_K) < 0.5
    assert len(ids[0]) <= 3
    wave = np.linspace(6500.0, 6630.0, 600)
    sal = np.full((1, wave.size), 0.01)
    sal[0, np.argmin(np.abs(wave - H_ALPHA))] = 1.0
    ids = [i for i in _line_ids(plots.plot_saliency(wave, sal, ["teff"])) if i]
    assert ("Hα" in {name for _, name in ids[0]})
    assert _line_ids(plots.plot_saliency(wave, sal, ["teff"], n_lines=0)) == [[]]


def test_line_labels_do_not_overlap():
    wave = np.linspace(3800.0, 9000.0, 4000)
    sal = np.abs(np.random.default_rng(3).normal(0, 1, (2, wave.size)))
    fig = plots.plot_saliency(wave, sal, ["teff", "logg"], n_lines=12)
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    for ax in fig.axes:
        boxes = [t.get_window_extent(renderer) for t in ax.texts if t.get_gid() == "line-id"]
        assert 0 < len(boxes) <= 12
        assert not any(a.overlaps(b) for a, b in combinations(boxes, 2))


def test_strong_lines_are_real_lines_strongest_first():
    lines = plots.strong_lines(3900.0, 4000.0)
    assert [name for _, name, _ in lines[:2]] == ["Ca II", "Ca II"]
    strengths = [s for _, _, s in lines]
    assert strengths == sorted(strengths, reverse=True)
    assert all(3900 <= w <= 4000 for w, _, _ in lines)


def test_confusion_matrix_counts_every_cell_and_normalises_rows():
    fig = plot_confusion(confusion())
    ax = fig.axes[0]
    counts = np.array(confusion()["confusion"])
    assert sorted(int(t.get_text()) for t in ax.texts) == sorted(counts.ravel().tolist())
    image = ax.get_images()[0].get_array()
    np.testing.assert_allclose(image.sum(axis=1), 1.0)
    assert ax.get_xlabel() == "predicted class"
    assert any("fraction of the true class" in a.get_ylabel() for a in fig.axes[1:])


def test_spectrum_model_keeps_real_lines_in_range_and_states_chi2():
    obs, model = spectra()
    flux = obs.flux.copy()
    flux[0, 10] = 8.0  # a cosmic ray
    fig = plots.plot_spectrum_model(obs.replace(flux=flux), model, 0)
    top, bottom = fig.axes[:2]
    lo, hi = top.get_ylim()
    assert lo < model[0].min() and 1.0 < hi < 1.2  # the line in, the cosmic ray out
    assert any("χ²/pixel" in t.get_text() for t in bottom.texts)
    with pytest.raises(ValueError, match="pixels"):
        plots.plot_spectrum_model(obs, np.ones(3))


def test_evaluations_write_their_figures(tmp_path):
    obs, model = spectra(6)
    evaluate_autoencoder(FakeAutoencoder(model), obs, plots=tmp_path / "ae")
    assert (tmp_path / "ae" / "reconstruction.png").stat().st_size > 2000
    evaluate_regressor(FakeRegressor(obs.labels + 1.0), obs, output=tmp_path / "reg")
    for name in ("residuals.png", "kiel.png", "metrics.json"):
        assert (tmp_path / "reg" / name).stat().st_size > 100
