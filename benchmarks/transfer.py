"""From synthetic spectra to "observed" stars: domain adaptation and few-shot fine-tuning.

Source: starlearn's own synthetic APOGEE spectra (``starlearn.synth.generate("apogee", n,
prior=...)``, a prior box covering the target stars). Target: APOGEE-grid spectra of the
Payne emulator (El-Badry et al. 2018, ``../shared/data/payne-emulator/``; the emulator is
``benchmarks/regression.py``'s) for the realistic mock labels shipped with it, put on the
8,575-pixel apStar grid with the DR10-12 chip gaps and the real APOGEE pixel mask masked,
and noise with the per-pixel error shape of a real APOGEE spectrum at S/N drawn
log-uniformly in 20-200. Target labels only score, except for the 100 few-shot stars.

Measured in one run: the target-test accuracy (sigma, robust sigma of Teff, log g, [Fe/H];
z spread of the errors; flagged fraction) of a Regressor with defaults trained on the
synthetic set without adaptation (the baseline) and with each ``adapt`` method against
1,500 unlabelled target spectra; then 100 labelled target stars: the default-adapted model
fine-tuned on them (``Regressor.fine_tune``), a starnet trained on the 100 alone, and The
Cannon on the 100. Figures: feature maps before/after, bias against label, mean residual
spectrum (target minus a Cannon trained on the synthetic set) per Teff bin.

Run: ``python benchmarks/transfer.py [--n-source 3000 --n-target 1500 --n-test 500
--cap-seconds 75 --methods none,match,coral,...] --folder WORK --figures docs/figures``
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from regression import SHARED, emulate  # the Payne emulator, one copy

LABELS = ["teff", "logg", "fe_h"]
PRIOR = {"teff": (4200.0, 7000.0), "logg": (3.9, 5.0), "fe_h": (-0.9, 0.5)}
"""Synthetic prior box (K, dex, dex), covering the Payne emulator's dwarfs."""
METHODS = "none,match,coral,mmd,adversarial,cycle,match+coral"


def payne_target(n: int, seed: int = 1):
    """``n`` emulated APOGEE stars on the apStar grid, survey-like (mask, error shape)."""
    from starlearn import SpectrumSet
    from starlearn.grid import get_grid
    from starlearn.noise import draw_noise, draw_snr, noise_sigma

    rng = np.random.default_rng(seed)
    mock = np.load(SHARED / "labels_for_20000_mock_dwarf_dwarf_binaries.npz")["mock_labels"]
    labels5 = mock[:, [0, 1, 2, 3, 5]]
    inside = np.all([(labels5[:, j] >= lo) & (labels5[:, j] <= hi)
                     for j, (lo, hi) in enumerate(PRIOR.values())], axis=0)
    rows = rng.permutation(np.flatnonzero(inside))[:n]
    labels5 = labels5[rows]
    wave7214 = np.load(SHARED / "apogee_wavelength.npz")["wavelength"]
    bad7214 = np.load(SHARED / "apogee_mask.npz")["apogee_mask"].astype(bool)
    err = np.load(SHARED / "spectrum_ap_id_2M13012770+5754582_.npz")["spec_err"]
    grid = get_grid("apogee")
    cols = np.searchsorted(grid.wave, wave7214)
    cols = np.clip(cols, 0, grid.n_pix - 1)
    near = np.abs(grid.wave[cols] - wave7214) > np.abs(grid.wave[cols - 1] - wave7214)
    cols = np.where(near, cols - 1, cols)
    assert np.allclose(grid.wave[cols], wave7214, rtol=1e-6), "Payne grid is not apStar's"
    flux7214 = emulate(labels5)
    snr = draw_snr((20.0, 200.0), rng, size=n)
    sigma = noise_sigma(1.0, snr[:, None], noise_shape=err, good=~bad7214)
    noisy, ivar = draw_noise(flux7214, sigma, rng)
    flux = np.ones((n, grid.n_pix))
    full_ivar = np.zeros((n, grid.n_pix))
    flux[:, cols] = noisy
    full_ivar[:, cols] = np.where(bad7214[None], 0.0, ivar)
    mask = full_ivar <= 0
    return SpectrumSet(wave=grid.wave, flux=flux, ivar=full_ivar, mask=mask,
                       labels=labels5[:, :3], label_names=LABELS, meta={"snr": snr},
                       ids=[f"payne-{i:05d}" for i in range(n)])


def make_data(folder: Path, n_source: int, n_target: int, n_test: int, n_few: int):
    from starlearn import SpectrumSet, synth

    paths = {k: folder / f"{k}.h5" for k in ("source", "target", "test", "few")}
    if all(p.exists() for p in paths.values()):
        return {k: SpectrumSet.read(p) for k, p in paths.items()}
    t0 = time.perf_counter()
    source = synth.generate("apogee", n_source, seed=1, prior=PRIOR)
    source = source.replace(labels=source.labels[:, [source.label_names.index(n)
                                                     for n in LABELS]], label_names=LABELS)
    print(f"synthesised {n_source} spectra in {time.perf_counter() - t0:.0f} s", flush=True)
    payne = payne_target(n_target + n_test + n_few)
    sets = {"source": source, "target": payne[:n_target],
            "test": payne[n_target:n_target + n_test], "few": payne[n_target + n_test:]}
    for k, s in sets.items():
        s.write(paths[k], overwrite=True)
    return sets


def score(model, test) -> dict:
    from starlearn.evaluate.transfer import transfer_scores

    table = model.predict(test)
    pred = np.c_[[np.asarray(table[n], np.float64) for n in LABELS]].T
    err = np.c_[[np.asarray(table[f"{n}_err"], np.float64) for n in LABELS]].T
    out = transfer_scores(test.labels, pred, err, LABELS, snr=test.meta["snr"],
                          snr_edges=(20, 50, 100, 200.1))
    out["flagged_far"] = float(np.mean((np.asarray(table["flags"]) & 2) > 0))
    out["pred"] = pred
    return out


def features(model, spectra) -> np.ndarray:
    prepared = model.prepare_inputs(spectra)
    return model._predict_arrays(prepared, mc=False)["features"]


def row(name: str, res: dict) -> str:
    m, c = res["all"]["metrics"], res["all"].get("calibration", {})
    cells = [f"{m['teff']['sigma']:.0f} / {m['teff']['robust_sigma']:.0f}",
             f"{m['logg']['sigma']:.3f} / {m['logg']['robust_sigma']:.3f}",
             f"{m['fe_h']['sigma']:.3f} / {m['fe_h']['robust_sigma']:.3f}"]
    z = " / ".join(f"{c[n]['z_spread']:.2f}" for n in LABELS) if c else "-"
    dom = res.get("domain")
    d = f"{dom['mmd']:.3f} / {dom['auc']:.2f}" if dom else "-"
    return (f"| {name} | " + " | ".join(cells) + f" | {z} | {res.get('flagged_far', 0):.2f} "
            f"| {d} | {res.get('seconds', 0):.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-source", type=int, default=3000)
    parser.add_argument("--n-target", type=int, default=1500)
    parser.add_argument("--n-test", type=int, default=500)
    parser.add_argument("--n-few", type=int, default=100)
    parser.add_argument("--cap-seconds", type=float, default=75.0)
    parser.add_argument("--methods", default=METHODS)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/transfer-bench"))
    parser.add_argument("--figures", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from starlearn.estimators import Cannon, Regressor
    from starlearn.evaluate.transfer import (
        plot_bias_vs_label,
        plot_feature_maps,
        plot_residual_spectra,
        residual_spectra,
    )

    start = time.perf_counter()
    args.folder.mkdir(parents=True, exist_ok=True)
    data = make_data(args.folder, args.n_source, args.n_target, args.n_test, args.n_few)
    source, target, test, few = data["source"], data["target"], data["test"], data["few"]
    results: dict = {}
    models: dict = {}
    for method in [m for m in args.methods.split(",") if m]:
        t0 = time.perf_counter()
        model = Regressor("starnet", LABELS, adapt=method, max_time=args.cap_seconds,
                          progress=False)
        model.fit(source, target=target)
        res = score(model, test)
        res["seconds"] = time.perf_counter() - t0
        res["domain"] = model.valid_metrics_.get("domain")
        res["epochs"] = len(model.history_)
        results[method], models[method] = res, model
        print(row(method, res), flush=True)

    base = results["none"]["all"]["metrics"]
    ranked = sorted((m for m in results if m != "none"),
                    key=lambda m: np.mean([results[m]["all"]["metrics"][n]["sigma"]
                                           / base[n]["sigma"] for n in LABELS]))
    best = ranked[0] if ranked else "none"
    print(f"best adaptation by mean sigma ratio to the baseline: {best}", flush=True)

    # few-shot: 100 labelled target stars
    t0 = time.perf_counter()
    pretrained = models[best]
    folder = args.folder / f"pretrained-{best.replace('+', '-')}"
    shutil.rmtree(folder, ignore_errors=True)
    pretrained.save(folder)
    tuned = Regressor.load(folder)
    tuned.progress = False
    tuned.fine_tune(few)
    res = score(tuned, test)
    res["seconds"] = time.perf_counter() - t0
    res["held_out"] = tuned.valid_metrics_["metrics"]
    results[f"{best} + fine-tune on {len(few)}"] = res
    print(row(f"{best} + fine-tune", res), flush=True)
    if best != "none":
        t0 = time.perf_counter()
        base_tuned = models["none"]
        base_tuned.fine_tune(few)
        res = score(base_tuned, test)
        res["seconds"] = time.perf_counter() - t0
        results[f"none + fine-tune on {len(few)}"] = res
        print(row("none + fine-tune", res), flush=True)
    t0 = time.perf_counter()
    alone = Regressor("starnet", LABELS, max_time=args.cap_seconds, progress=False).fit(few)
    res = score(alone, test)
    res["seconds"] = time.perf_counter() - t0
    results[f"starnet on the {len(few)} alone"] = res
    print(row("starnet alone", res), flush=True)
    t0 = time.perf_counter()
    cannon = Cannon(LABELS, progress=False).fit(few)
    res = score(cannon, test)
    res["seconds"] = time.perf_counter() - t0
    results[f"Cannon on the {len(few)}"] = res
    print(row("Cannon alone", res), flush=True)

    if args.figures is not None:
        args.figures.mkdir(parents=True, exist_ok=True)
        maps = {}
        for name in ("none", best):
            maps[f"{name}"] = {"synthetic (source)": features(models[name], source[:800]),
                               "Payne (target)": features(models[name], test)}
        plot_feature_maps(maps, args.figures / "transfer_features.png", method="pca")
        plot_bias_vs_label(test.labels, {"none": results["none"]["pred"],
                                         best: results[best]["pred"],
                                         f"{best} + fine-tune":
                                             results[f"{best} + fine-tune on {len(few)}"]["pred"]},
                           LABELS, args.figures / "transfer_bias.png")
        synth_cannon = Cannon(LABELS, progress=False).fit(source[:1500])
        model_flux = synth_cannon.model_flux(test.labels)
        good = ~test.mask & (test.ivar > 0)
        edges = (4200, 5000, 5600, 6200, 7000)
        resid, counts = residual_spectra(test.flux, good, model_flux, test.labels[:, 0], edges)
        plot_residual_spectra(test.wave, resid, counts, edges, "teff",
                              args.figures / "transfer_residuals.png")
        print(f"figures in {args.figures}", flush=True)

    header = ("| model | Teff σ / robust σ [K] | log g σ / rσ | [Fe/H] σ / rσ | z spread "
              "Teff / logg / FeH | flagged far | feature MMD / domain AUC | s |")
    print()
    print(header)
    print("|---|---|---|---|---|---|---|---|")
    for name, res in results.items():
        print(row(name, res))
    for name, res in results.items():
        bins = res["snr_bins"]
        print(f"{name}: by S/N " + "; ".join(
            f"{b['lo']:.0f}-{b['hi']:.0f} (n={b['n']}): "
            + ", ".join(f"{n} {b['metrics'][n]['sigma']:.3g}" for n in LABELS)
            + " z " + "/".join(f"{b['calibration'][n]['z_spread']:.2f}" for n in LABELS)
            for b in bins))
    print(f"machine: {platform.machine()} {platform.processor() or ''}, "
          f"python {platform.python_version()}; total {time.perf_counter() - start:.0f} s")
    if args.out:
        for res in results.values():
            res.pop("pred", None)
        args.out.write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
