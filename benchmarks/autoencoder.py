"""Denoising benchmark: autoencoders against PCA and Savitzky-Golay on PFS-like spectra.

Synthetic ``pfs-mr`` spectra (4,096 pixels, R ~ 5,000, 7,100-8,850 Å) get noise whose
per-pixel shape follows the S/N curve of the PFS exposure-time calculator (medium-resolution
red arm, ``../shared/data/pfs-etc/pfs_redMR.dat``, arm 3: sky lines make some pixels up to
10x noisier), scaled to a median S/N per pixel of 5, 10, 20 and 50.

Models, all trained by the CLI with default settings apart from ``--latent``/``--denoise``
(and ``--snr 5:50``, which says the training spectra are clean):

* ``dense-ae`` and ``conv-ae`` trained on clean spectra (noise added on the fly);
* the same two trained on noisy spectra alone (noise2self; each training spectrum at one
  S/N drawn log-uniformly in 5-50 with the ETC shape, as a survey would have);
* baselines in the same run: PCA reconstruction with the dense-ae's latent size (32
  components) and with the best number of components per S/N, fitted on the same training
  spectra; Savitzky-Golay smoothing (cubic) with the best window per S/N.

Observed frame: the test stars rendered again with radial velocities uniform in +-150 km/s
(``--rv``) and denoised at S/N 10 by the same models (trained at rest), against PCA fitted at
rest and PCA fitted on the training stars shifted likewise: what a survey gets when it
denoises before measuring velocities, and what the conv-ae's shift-equivariance is for.

Denoising gain = RMS(noisy - truth) / RMS(denoised - truth) over good pixels. Downstream: a
``starnet`` trained on clean spectra predicts Teff, log g, [Fe/H] of the test stars at S/N 10
from noisy and from denoised spectra.

Run: ``python benchmarks/autoencoder.py [--n-train 8000 --n-test 1000] [--out F.json]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ETC = Path(__file__).resolve().parents[2] / "shared" / "data" / "pfs-etc" / "pfs_redMR.dat"
SNRS = (5.0, 10.0, 20.0, 50.0)
LABELS = ["teff", "logg", "fe_h"]


def etc_noise_shape(wave: np.ndarray) -> np.ndarray:
    """Relative noise per pixel (median 1) from the PFS ETC S/N of arm 3 on ``wave`` (Å)."""
    table = np.loadtxt(ETC, comments="#")
    arm = table[table[:, 0] == 3]
    snr = np.interp(wave, arm[:, 2] * 10.0, arm[:, 3])  # nm -> Å
    shape = np.median(snr) / snr
    return shape / np.median(shape)


MAX_TIME: list[str] = []


def cli(*args: str) -> float:
    t0 = time.perf_counter()
    if args[0] == "train":
        args = (*args, *MAX_TIME)
    subprocess.run([sys.executable, "-m", "starlearn.cli", *args], check=True,
                   capture_output=True, text=True)
    return time.perf_counter() - t0


def rms(a: np.ndarray, b: np.ndarray, good: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b)[good] ** 2)))


def savgol_best(noisy, clean, good, windows=range(5, 42, 4)):
    from scipy.signal import savgol_filter

    # the window is chosen on the first 200 test spectra (a generous baseline)
    n = min(200, len(noisy))
    errors = {w: rms(savgol_filter(noisy[:n], w, 3, axis=1), clean[:n], good[:n])
              for w in windows}
    best = min(errors, key=errors.get)
    return savgol_filter(noisy, best, 3, axis=1), best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=8000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--models", default="dense-ae,conv-ae")
    parser.add_argument("--skip", default="",
                        help="runs to leave out, e.g. conv-ae:noisy (kinds: clean = clean "
                             "targets, noisy = noisy spectra only)")
    parser.add_argument("--max-time", default=None,
                        help="cap each training (seconds; for quick trial runs only, the "
                             "recorded results use the defaults)")
    parser.add_argument("--rv", type=float, default=150.0,
                        help="observed-frame test: radial velocities uniform in +-RV km/s")
    parser.add_argument("--out", type=Path, default=None, help="write results JSON here")
    parser.add_argument("--folder", type=Path, default=None,
                        help="work folder; models already trained in it (with their recorded "
                             "training time) are reused, to finish an interrupted run")
    args = parser.parse_args()
    if args.max_time:
        MAX_TIME.extend(["--max-time", str(args.max_time)])

    from sklearn.decomposition import PCA

    import starlearn as sl
    from starlearn.evaluate.autoencoder import add_noise
    from starlearn.evaluate.metrics import robust_sigma
    from starlearn.noise import draw_snr
    from starlearn.synth import generate

    folder = args.folder or Path(tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)
    record = folder / "train_seconds.json"
    done = json.loads(record.read_text()) if record.exists() else {}

    def train_once(name: str, out: Path, *cmd: str) -> float:
        if name in done and (out / "config.json").exists():
            return float(done[name])  # trained earlier in this folder
        # --resume: a training this benchmark started and that was killed continues from
        # its checkpoint; its time is then the training's own clock (history.csv), which
        # the resumed training carries on
        seconds = cli(*cmd, "--resume")
        history = np.genfromtxt(out / "history.csv", delimiter=",", names=True)
        seconds = max(seconds, float(np.atleast_1d(history["seconds"])[-1]))
        done[name] = seconds
        record.write_text(json.dumps(done))
        return seconds

    t0 = time.perf_counter()
    spectra = generate("pfs-mr", args.n_train + args.n_test, seed=3, snr=None, n_jobs=2)
    train, test = spectra[:args.n_train], spectra[args.n_train:]
    shape = etc_noise_shape(train.wave)
    rng = np.random.default_rng(7)
    train_snr = draw_snr((5.0, 50.0), rng, size=len(train))  # log-uniform
    noisy_train = add_noise(train, train_snr, seed=11, shape=shape)
    paths = {"clean": folder / "train-clean.h5", "noisy": folder / "train-noisy.h5"}
    for kind, spectra_set in (("clean", train), ("noisy", noisy_train)):
        if not paths[kind].exists():  # an earlier run in --folder wrote the same data
            spectra_set.write(paths[kind])
    print(f"{len(spectra)} pfs-mr spectra in {time.perf_counter() - t0:.0f} s; ETC noise "
          f"shape: 5-95% range {np.percentile(shape, 5):.2f}-{np.percentile(shape, 95):.2f},"
          f" max {shape.max():.1f}", flush=True)

    results: dict = {"n_train": len(train), "n_test": len(test), "train_seconds": {},
                     "gain": {}, "settings": {}}
    runs = {}
    for model in args.models.split(","):
        latent = "32" if model == "dense-ae" else "16"
        for kind in ("clean", "noisy"):
            if f"{model}:{kind}" in args.skip.split(","):
                continue
            name = f"{model} ({'clean targets' if kind == 'clean' else 'noisy only'})"
            out = folder / f"{model}-{kind}"
            extra = ["--snr", "5:50"] if kind == "clean" else []
            cmd = ["train", "--task", "autoencode", "--model", model, "--latent", latent,
                   "--denoise", *extra, "--data", str(paths[kind]), "-o", str(out), "--quiet"]
            results["train_seconds"][name] = train_once(name, out, *cmd)
            results["settings"][name] = "starlearn " + " ".join(cmd[:-5])
            runs[name] = out
            print(f"{name}: trained in {results['train_seconds'][name]:.0f} s", flush=True)
    starnet_dir = folder / "starnet"
    results["train_seconds"]["starnet (clean)"] = train_once(
        "starnet (clean)", starnet_dir, "train", "--task", "regress", "--model", "starnet",
        "--data", str(paths["clean"]),
        "--labels", ",".join(LABELS), "-o", str(starnet_dir), "--quiet")
    print(f"starnet on clean spectra: {results['train_seconds']['starnet (clean)']:.0f} s",
          flush=True)

    models = {name: sl.load(path) for name, path in runs.items()}
    pca_clean = PCA(128, random_state=0).fit(train.flux)
    pca_noisy = PCA(128, random_state=0).fit(noisy_train.flux)

    def pca_denoise(pca, flux, k):
        z = (flux - pca.mean_) @ pca.components_[:k].T
        return z @ pca.components_[:k] + pca.mean_

    def model_gains(noisy, truth):
        """Denoising gain of each autoencoder on ``noisy`` (truth: the clean spectra), and
        its denoised spectra."""
        good = ~noisy.mask
        base = rms(noisy.flux, truth.flux, good)
        gains, outputs = {}, {}
        for name, ae in models.items():
            outputs[name] = out = ae.denoise(noisy)
            gains[name] = base / rms(out.flux, truth.flux, good & ~out.mask)
        return good, base, gains, outputs

    denoised_at_10 = {}
    for i, snr in enumerate(SNRS):
        noisy = add_noise(test, snr, seed=100 + i, shape=shape)
        good, base, row, outputs = model_gains(noisy, test)
        if snr == 10.0:
            denoised_at_10.update(outputs)
        for label, pca in (("clean", pca_clean), ("noisy", pca_noisy)):
            row[f"PCA 32 ({label} training)"] = base / rms(
                pca_denoise(pca, noisy.flux, 32), test.flux, good)
            best = {k: base / rms(pca_denoise(pca, noisy.flux, k), test.flux, good)
                    for k in (4, 8, 16, 32, 64, 128)}
            k_best = max(best, key=best.get)
            row[f"PCA best k ({label} training)"] = best[k_best]
            row[f"PCA best k ({label} training) k"] = k_best
            if snr == 10.0 and label == "clean":
                denoised_at_10["PCA 32 (clean training)"] = noisy.replace(
                    flux=pca_denoise(pca, noisy.flux, 32))
        smooth, window = savgol_best(noisy.flux, test.flux, good)
        row["Savitzky-Golay"] = base / rms(smooth, test.flux, good)
        row["Savitzky-Golay window"] = window
        if snr == 10.0:
            denoised_at_10["noisy"] = noisy
            denoised_at_10["Savitzky-Golay"] = noisy.replace(flux=smooth)
        results["gain"][str(snr)] = row
        print(f"S/N {snr:>4.0f}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items()
                                             if not k.endswith(("k", "window"))), flush=True)

    # observed frame: the same test stars rendered with radial velocities of +-150 km/s (as a
    # survey delivers them before the velocity is measured), denoised by the models trained
    # at rest; PCA fitted at rest and PCA fitted on the training stars shifted likewise
    observed = generate("pfs-mr", args.n_train + args.n_test, seed=3, snr=None, n_jobs=2,
                        rv=(-args.rv, args.rv))
    obs_train, obs_test = observed[:args.n_train], observed[args.n_train:]
    noisy = add_noise(obs_test, 10.0, seed=110, shape=shape)
    good, base, row, _ = model_gains(noisy, obs_test)
    pca_observed = PCA(32, random_state=0).fit(obs_train.flux)
    row["PCA 32 (clean training at rest)"] = base / rms(
        pca_denoise(pca_clean, noisy.flux, 32), obs_test.flux, good)
    row["PCA 32 (clean training, shifted likewise)"] = base / rms(
        pca_denoise(pca_observed, noisy.flux, 32), obs_test.flux, good)
    row["Savitzky-Golay"] = base / rms(savgol_best(noisy.flux, obs_test.flux, good)[0],
                                       obs_test.flux, good)
    results["gain_observed_frame_snr10"] = {"rv_km_s": args.rv, **row}

    starnet = sl.load(starnet_dir)
    starnet.mc_samples = 0
    idx = [test.label_names.index(n) for n in LABELS]
    truth = test.labels[:, idx]
    downstream = {}
    for name, spectra_in in [("clean (no noise)", test), *denoised_at_10.items()]:
        table = starnet.predict(spectra_in)
        pred = np.column_stack([np.asarray(table[n]) for n in LABELS])
        resid = pred - truth
        downstream[name] = {n: {"sigma": float(np.std(resid[:, j])),
                                "robust_sigma": float(robust_sigma(resid[:, j]))}
                            for j, n in enumerate(LABELS)}
    results["downstream_snr10"] = downstream

    print("\ndenoising gain RMS(noisy - truth) / RMS(denoised - truth)")
    names = [k for k in results["gain"]["10.0"] if not k.endswith(("k", "window"))]
    print(f"{'method':44s}" + "".join(f"S/N {s:>4.0f}  " for s in SNRS))
    for name in names:
        print(f"{name:44s}" + "".join(f"{results['gain'][str(s)][name]:9.2f}  "
                                      for s in SNRS))
    print(f"\nobserved frame (RV uniform in +-{args.rv:.0f} km/s), S/N 10, models trained at "
          "rest")
    for name, gain in row.items():
        print(f"{name:44s}{gain:9.2f}")
    print("\nstarnet (trained on clean spectra) at S/N 10: sigma Teff [K], log g, [Fe/H] [dex]")
    for name, m in downstream.items():
        print(f"{name:44s}" + "".join(f"{m[n]['sigma']:10.4g}" for n in LABELS))
    for name, seconds in results["train_seconds"].items():
        print(f"train {name}: {seconds:.0f} s")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
