"""The StarNet architecture table on emulated APOGEE spectra, with The Cannon and astroNN.

Spectra come from the Payne emulator of El-Badry et al. (2018) in
``../shared/data/payne-emulator/`` (continuum-normalised APOGEE spectra, 7,214 pixels, from
Teff, log g, [Fe/H], [alpha/Fe], vmacro): labels are the realistic draws shipped with it,
noise follows the per-pixel error shape of a real APOGEE spectrum scaled to S/N drawn
log-uniformly in 20-200, and the real APOGEE pixel mask is applied.

Every starlearn model is trained through the CLI with its default settings
(``starlearn train --task regress --model NAME --data train.h5 --labels teff,logg,fe_h``)
except where ``--max-time`` caps the slowest networks, then evaluated with
``starlearn evaluate``; all in one run on the same files. When a venv with astroNN is
given (``--astronn-python``), astroNN's ``StarNet2017`` (TensorFlow) is trained and
evaluated on the same arrays.

Run: ``python benchmarks/regression.py [--n-train 8000 --n-test 2000]
[--models starnet,cannon,...] [--cap-seconds 1200] [--astronn-python PATH]``
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "payne-emulator"
LABELS = ["teff", "logg", "fe_h"]


def emulate(labels: np.ndarray) -> np.ndarray:
    """Normalised flux (n, 7214) from labels (n, 5): Teff, logg, [Fe/H], [a/Fe], vmacro."""
    nn = np.load(SHARED / "NN_normalized_spectra.npz")
    s = (labels - nn["x_min"]) / (nn["x_max"] - nn["x_min"]) - 0.5
    out = np.empty((len(labels), nn["b_array_1"].size))
    for start in range(0, len(labels), 500):
        block = s[start:start + 500]
        h = np.einsum("ijk,nk->nij", nn["w_array_0"], block) + nn["b_array_0"][None]
        h = 1.0 / (1.0 + np.exp(-h))
        out[start:start + 500] = np.einsum("ij,nij->ni", nn["w_array_1"], h) + nn["b_array_1"]
    return out


def make_sets(n_train: int, n_test: int, folder: Path, seed: int = 0) -> dict[str, Path]:
    from starlearn import SpectrumSet
    from starlearn.noise import draw_noise, draw_snr, noise_sigma

    rng = np.random.default_rng(seed)
    mock = np.load(SHARED / "labels_for_20000_mock_dwarf_dwarf_binaries.npz")["mock_labels"]
    rows = rng.permutation(len(mock))[:n_train + n_test]
    labels5 = mock[rows][:, [0, 1, 2, 3, 5]]
    wave = np.load(SHARED / "apogee_wavelength.npz")["wavelength"]
    bad = np.load(SHARED / "apogee_mask.npz")["apogee_mask"].astype(bool)
    err = np.load(SHARED / "spectrum_ap_id_2M13012770+5754582_.npz")["spec_err"]
    flux = emulate(labels5)
    snr = draw_snr((20.0, 200.0), rng, size=len(flux))
    # noise independent of the flux with the real per-pixel error shape (median 1 over the
    # good pixels): S/N = 1 / sigma in the median (starlearn.noise)
    sigma = noise_sigma(1.0, snr[:, None], noise_shape=err, good=~bad)
    noisy, ivar = draw_noise(flux, sigma, rng)
    ivar = np.where(bad[None, :], 0.0, ivar)
    full = SpectrumSet(wave=wave, flux=noisy, ivar=ivar,
                       labels=labels5[:, :4], label_names=["teff", "logg", "fe_h", "alpha_fe"],
                       meta={"snr": snr})
    paths = {"train": folder / "train.h5", "test": folder / "test.h5"}
    full[:n_train].write(paths["train"], overwrite=True)
    full[n_train:].write(paths["test"], overwrite=True)
    np.savez(folder / "arrays.npz", train_x=noisy[:n_train], train_y=labels5[:n_train, :3],
             train_ivar=ivar[:n_train], test_x=noisy[n_train:], test_y=labels5[n_train:, :3],
             test_ivar=ivar[n_train:], test_snr=snr[n_train:])
    return paths


def run_starlearn(model: str, paths: dict[str, Path], folder: Path,
                  cap: float | None) -> dict:
    exe = [sys.executable, "-m", "starlearn.cli"]
    out = folder / f"model-{model}"
    cmd = [*exe, "train", "--task", "regress", "--model", model, "--data",
           str(paths["train"]), "--labels", ",".join(LABELS), "-o", str(out), "--quiet"]
    if cap is not None:
        cmd += ["--max-time", str(cap)]
    record = folder / "train_seconds.json"
    done = json.loads(record.read_text()) if record.exists() else {}
    if model in done and (out / "config.json").exists():
        train_seconds = done[model]  # trained earlier in this folder (--folder)
    else:
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        train_seconds = time.perf_counter() - t0
        record.write_text(json.dumps({**done, model: train_seconds}))
    t0 = time.perf_counter()
    metrics_file = folder / f"metrics-{model}.json"
    subprocess.run([*exe, "evaluate", str(out), str(paths["test"]), "--json",
                    str(metrics_file)], check=True, capture_output=True, text=True)
    evaluate_seconds = time.perf_counter() - t0
    result = json.loads(metrics_file.read_text())
    result.update(train_seconds=train_seconds, evaluate_seconds=evaluate_seconds,
                  command=" ".join(cmd[2:]))
    result.update(predict_in_process(out, paths["test"]))
    return result


SNR_EDGES = (20, 30, 50, 80, 120, 200)


def predict_in_process(model_dir: Path, test_path: Path) -> dict:
    """Prediction speed inside a running process (model loaded, data in memory, default
    engine) with the model's default calibrated errors (no noise draws), and with 16
    noise draws as the old default did; best of two runs each. Also the z spread of the
    default errors in S/N bins of the held-out test set."""
    import starlearn as sl
    from starlearn.evaluate.metrics import z_spread

    model = sl.load(model_dir)
    model.progress = False
    test = sl.SpectrumSet.read(test_path)
    speeds: dict = {}
    default_k = getattr(model, "mc_samples", 0)
    for key, k in (("predict_per_second_no_mc", default_k), ("predict_per_second_mc16", 16)):
        if not hasattr(model, "mc_samples"):
            continue
        model.mc_samples = k
        best = np.inf
        for _ in range(2):
            t0 = time.perf_counter()
            table = model.predict(test)
            best = min(best, time.perf_counter() - t0)
        speeds[key] = len(test) / best
        if k == default_k:
            snr = np.asarray(test.meta["snr"])
            bins = {}
            for lo, hi in itertools.pairwise(SNR_EDGES):
                sel = (snr >= lo) & (snr < hi)
                bins[f"{lo}-{hi}"] = {"n": int(sel.sum()), **{
                    n: z_spread((np.asarray(table[n])[sel] - test.label(n)[sel])
                                / np.asarray(table[f"{n}_err"])[sel]) for n in LABELS}}
            speeds["z_spread_by_snr"] = bins
    if hasattr(model, "mc_samples"):
        model.mc_samples = default_k
    speeds["engine"] = getattr(getattr(model, "engine_", None), "name", "numpy")
    return speeds


ASTRONN_DRIVER = r"""
import json, sys, time
import numpy as np
import keras, tensorflow as tf
tf.keras.__version__ = keras.__version__  # astroNN 1.1 reads it; TF 2.15 lacks it
from astroNN.models import StarNet2017
d = np.load(sys.argv[1])


def clean(x, ivar):
    # the same bad pixels starlearn ignores (masked, or noise > 20x the spectrum's median),
    # set to the continuum (1) as astroNN's APOGEE tools do
    x = x.copy()
    typical = np.array([np.median(row[row > 0]) for row in ivar])
    x[(ivar == 0) | (ivar * 400 < typical[:, None])] = 1.0
    return x


x, y = clean(d["train_x"], d["train_ivar"]), d["train_y"]
net = StarNet2017()
t = time.perf_counter(); net.train(x, y); train_s = time.perf_counter() - t
xt = clean(d["test_x"], d["test_ivar"])
t = time.perf_counter(); out = net.test(xt); test_s = time.perf_counter() - t
pred = out[0] if isinstance(out, tuple) else out
print(json.dumps({"pred": pred.tolist(), "train_seconds": train_s, "predict_seconds": test_s,
                  "max_epochs": int(getattr(net, "max_epochs", -1))}))
"""


def run_astronn(python: str, folder: Path) -> dict:
    driver = folder / "astronn_driver.py"
    driver.write_text(ASTRONN_DRIVER)
    out = subprocess.run([python, str(driver), str(folder / "arrays.npz")], check=True,
                         capture_output=True, text=True, cwd=folder)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=8000)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--models", default="starnet,cannon,shallow-nn,deep-nn,shallow-cnn,"
                                            "deep-cnn")
    parser.add_argument("--cap-seconds", type=float, default=600.0,
                        help="--max-time for every network except starnet (which runs with "
                             "pure defaults)")
    parser.add_argument("--astronn-python", default=None)
    parser.add_argument("--out", type=Path, default=None, help="write results JSON here")
    parser.add_argument("--folder", type=Path, default=None,
                        help="work folder; an existing one is reused (its data and the models "
                             "whose training time it recorded), to finish an interrupted run")
    args = parser.parse_args()
    from starlearn.evaluate.metrics import regression_metrics
    from starlearn.evaluate.regression import format_table

    folder = args.folder or Path(tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if (folder / "arrays.npz").exists():
        paths = {"train": folder / "train.h5", "test": folder / "test.h5"}
        print(f"reusing the data and finished models in {folder}", flush=True)
    else:
        paths = make_sets(args.n_train, args.n_test, folder)
        print(f"emulated {args.n_train} + {args.n_test} spectra in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    results = {}
    for model in [m for m in args.models.split(",") if m and m != "none"]:
        cap = None if model in ("starnet", "cannon") else args.cap_seconds
        results[model] = run_starlearn(model, paths, folder, cap)
        m = results[model]["metrics"]
        print(f"{model}: train {results[model]['train_seconds']:.0f} s, sigma "
              + ", ".join(f"{n} {m[n]['sigma']:.4g}" for n in LABELS), flush=True)
    if args.astronn_python:
        arrays = np.load(folder / "arrays.npz")
        astro = run_astronn(args.astronn_python, folder)
        pred = np.asarray(astro["pred"])
        results["astroNN StarNet2017"] = {
            "metrics": regression_metrics(arrays["test_y"], pred, LABELS),
            "train_seconds": astro["train_seconds"],
            "evaluate_seconds": astro["predict_seconds"]}
    for res in results.values():
        # the in-process figure without error propagation is the like-for-like one
        res["predict_per_second"] = res.get("predict_per_second_no_mc",
                                            args.n_test / res["evaluate_seconds"])
    print()
    print(format_table(results, LABELS, timing=True))
    if "starnet" in results and "cannon" in results:
        for n in LABELS:
            gain = 1 - results["starnet"]["metrics"][n]["sigma"] / \
                results["cannon"]["metrics"][n]["sigma"]
            print(f"starnet vs cannon {n}: sigma {100 * gain:+.0f}%")
    for name, res in results.items():
        if "predict_per_second_mc16" in res:
            print(f"{name}: in-process prediction with its default errors "
                  f"{res['predict_per_second_no_mc']:.0f} spectra/s, "
                  f"{res['predict_per_second_mc16']:.0f} with 16 noise "
                  f"draws ({res['engine']} engine); whole evaluate command "
                  f"{res['evaluate_seconds']:.0f} s")
        if "z_spread_by_snr" in res:
            print(f"{name}: z spread of the default errors by S/N (held-out test set)")
            for key, row in res["z_spread_by_snr"].items():
                print(f"  S/N {key:>7} (n={row['n']:>4}): "
                      + "  ".join(f"{n} {row[n]:.2f}" for n in LABELS))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
