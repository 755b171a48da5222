"""Inference speed: engines against the compute limit, the archive runner against bare I/O.

All figures in one run on this machine:

1. engine throughput (spectra/s) of ``starnet`` on the 8,575-pixel APOGEE grid and of
   ``vgg1d`` on 140-pixel windows: torch eager, ONNX Runtime fp32 and int8 (vgg1d), with the
   network's FLOPs per spectrum and the compute limit = matrix-multiply GFLOP/s measured in
   the same run / FLOPs per spectrum;
2. end-to-end archive throughput of ``starlearn predict --workers 2`` on generated
   LAMOST-layout FITS files (a vgg1d emission-line classifier with the int8 and the default
   engine, and a starnet regressor with its default 16 noise draws for the errors), against
   a bare astropy loop that opens each file and reads its data on the same 2 worker
   processes (best of two runs each, after a 20-file run that warms the process up), the
   same ratio for the parts after each worker's first (which pays for the
   fork), and where the time goes (per file in one process: the bare loop, starlearn's
   read, and windowing + int8 network + catalogue rows);
3. packed HDF5 throughput of a vgg1d classifier on 140-pixel windows (fp32 and int8) through
   the runner, and the accuracy cost of int8 (macro-F1 on labelled windows).

Run: ``python benchmarks/inference.py [--n-files 3000] [--n-windows 200000] [--out F.json]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np


def flops_per_spectrum(module, n_pix: int, channels: int = 1) -> float:
    """Multiply-adds x 2 of the Conv1d and Linear layers for one input spectrum."""
    import torch
    from torch import nn

    total = 0.0

    def hook(layer, inputs, output):
        nonlocal total
        if isinstance(layer, nn.Conv1d):
            total += 2.0 * layer.in_channels * layer.out_channels * layer.kernel_size[0] \
                * output.shape[-1] / layer.groups
        elif isinstance(layer, nn.Linear):
            total += 2.0 * layer.in_features * layer.out_features

    handles = [m.register_forward_hook(hook) for m in module.modules()
               if isinstance(m, (nn.Conv1d, nn.Linear))]
    with torch.no_grad():
        module(torch.zeros(1, channels, n_pix))
    for h in handles:
        h.remove()
    return total


def matmul_gflops(seconds: float = 3.0) -> float:
    """float32 GFLOP/s of a large torch matrix multiply on all threads (best of repeats)."""
    import torch

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    best, t_end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        a @ b
        best = max(best, 2 * 2048**3 / (time.perf_counter() - t0) / 1e9)
    return best


def engine_speed(engine, x: np.ndarray, repeats: int = 3) -> float:
    engine.run(x[:256])
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        engine.run(x)
        best = min(best, time.perf_counter() - t0)
    return len(x) / best


def _bare_read(paths: list[str]) -> int:
    from astropy.io import fits

    for path in paths:
        with fits.open(path, memmap=False) as hdul:
            hdul[0].data.sum()
    return len(paths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-files", type=int, default=3000)
    parser.add_argument("--n-windows", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    import torch

    from starlearn.estimators import Classifier, Regressor
    from starlearn.evaluate.classification import classification_metrics
    from starlearn.infer import OnnxEngine, TorchEngine, export_onnx
    from starlearn.infer.quantize import quantize_int8
    from starlearn.jobs.archive import run_archive
    from starlearn.models import build_model
    from starlearn.preprocess import LineWindow, Resample
    from starlearn.synth import generate, write_lamost_files

    results: dict = {"threads": torch.get_num_threads()}
    gflops = matmul_gflops()
    results["matmul_gflops"] = gflops
    print(f"matrix multiply: {gflops:.0f} GFLOP/s on {torch.get_num_threads()} threads",
          flush=True)

    # 1. engines
    rng = np.random.default_rng(0)
    for name, n_pix, n_out, n in (("starnet", 8575, 3, 4096), ("vgg1d", 140, 3, 32768)):
        torch.manual_seed(0)
        net = build_model(name, n_pix=n_pix, n_labels=n_out).eval()
        x = rng.normal(size=(n, 1, n_pix)).astype(np.float32)
        flops = flops_per_spectrum(net, n_pix)
        data = export_onnx(net, torch.as_tensor(x[:4]))
        row = {"mflop_per_spectrum": flops / 1e6, "compute_limit": gflops * 1e9 / flops,
               "torch": engine_speed(TorchEngine(net), x),
               "onnx": engine_speed(OnnxEngine(data), x)}
        if name == "vgg1d":
            int8, _ = quantize_int8(data, x[:512])
            row["onnx-int8"] = engine_speed(OnnxEngine(int8), x)
        results[name] = row
        print(f"{name}: {flops / 1e6:.1f} MFLOP/spectrum, compute limit "
              f"{row['compute_limit']:,.0f}/s; " + ", ".join(
                  f"{k} {row[k]:,.0f}/s ({row[k] / row['compute_limit']:.0%})"
                  for k in ("torch", "onnx", "onnx-int8") if k in row)
              + f"; onnx / torch {row['onnx'] / row['torch']:.2f}x", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # a trained vgg1d classifier (H-alpha windows) and a trained starnet regressor
        stars_fracs = (0.45, 0.45, 0.10)
        labelled = generate("ondrejov-halpha", 3000, seed=7, snr=(20, 150), n_jobs=2,
                            class_fractions=stars_fracs)
        model = Classifier(preprocess=LineWindow(on_missing="mask"), progress=False).fit(
            labelled[:2000])
        model.save(folder / "clf")
        model.export_onnx(folder / "clf", int8_calibration=labelled[:512])
        train = generate("lamost", 1500, seed=6, snr=(10, 100), n_jobs=2)
        reg = Regressor("starnet", ["teff", "logg", "fe_h"], preprocess=Resample(grid="lamost"),
                        epochs=2, progress=False).fit(train)
        reg.save(folder / "reg")
        reg.export_onnx(folder / "reg")

        # 2. an archive of LAMOST-layout files: the runner against a bare astropy loop
        spectra = generate("lamost", args.n_files, seed=5, snr=(10, 100), n_jobs=2,
                           rv=(-100.0, 100.0))
        paths = [str(p) for p in write_lamost_files(spectra, folder / "files")]
        chunks = [paths[i::2] for i in range(2)]
        # a short run first (20 files, workers=2): the imports of this process warmed up as
        # they are for the bare loop; its time is that of a first run in a process
        t0 = time.perf_counter()
        run_archive(folder / "clf", paths[:20], folder / "cat-fixed.parquet", workers=2,
                    engine="onnx-int8", progress=False)
        fixed = time.perf_counter() - t0

        def bare_run() -> float:
            t0 = time.perf_counter()
            with ProcessPoolExecutor(2) as pool:
                sum(pool.map(_bare_read, chunks))
            return time.perf_counter() - t0

        t_bare = min(bare_run() for _ in range(2))  # best of two, as for the runner
        bare = len(paths) / t_bare
        archive = {"files": len(paths), "bare_astropy_2_workers": bare,
                   "fixed_seconds_20_files": fixed}
        print(f"archive of {len(paths)} LAMOST files: bare astropy loop {bare:,.0f} files/s "
              f"(best of 2); a first 20-file run of the runner {fixed:.2f} s", flush=True)
        for label, model_dir, engine in (
                ("vgg1d classifier, onnx-int8", "clf", "onnx-int8"),
                ("vgg1d classifier, default engine", "clf", "auto"),
                ("starnet regressor, default (16 noise draws)", "reg", "auto")):
            best = np.inf
            for attempt in range(2):  # best of two, default part size (500 files)
                out = folder / f"cat-{model_dir}-{engine}-{attempt}.parquet"
                t0 = time.perf_counter()
                summary = run_archive(folder / model_dir, [folder / "files"], out,
                                      workers=2, engine=engine, progress=False)
                best = min(best, time.perf_counter() - t0)
            ours = len(paths) / best
            archive[label] = {"files_per_second": ours, "ratio": ours / bare,
                              "rejected": summary.rejected, "spectra": summary.spectra}
            # steady state: a worker's later parts (its first pays for the fork: page
            # faults, first use of the reader and the ONNX Runtime session) against the
            # bare loop's time per file and worker
            records = [json.loads(line) for line in (
                out.with_name(out.name + ".parts") / "manifest.jsonl").read_text().splitlines()]
            later = sorted(records, key=lambda r: r["part"])[2:]
            if later:
                per_file = sum(r["seconds"] for r in later) / sum(r["inputs"] for r in later)
                archive[label]["steady_ratio"] = t_bare / len(chunks[0]) / per_file
            steady = archive[label].get("steady_ratio")
            print(f"  starlearn predict --workers 2, {label}: {ours:,.0f} files/s "
                  f"({ours / bare:.2f}x" + (f"; later parts {steady:.2f}x)" if steady else ")"),
                  flush=True)
        # where an archive run's time goes: per file in one process (500 files)
        from starlearn import load
        from starlearn.io import read_many

        few = paths[:500]

        def per_file(fn) -> float:  # best of three, seconds per file
            best = np.inf
            for _ in range(3):
                t0 = time.perf_counter()
                fn()
                best = min(best, time.perf_counter() - t0)
            return best / len(few)

        sets, _ = read_many(few)
        clf = load(folder / "clf")
        clf.engine = "onnx-int8"
        t_one = per_file(lambda: _bare_read(few))
        t_read = per_file(lambda: read_many(few))
        t_predict = per_file(lambda: clf.predict(sets[0]))
        archive["one_process_ms_per_file"] = {"bare_astropy": t_one * 1e3,
                                              "read_many": t_read * 1e3,
                                              "predict_int8": t_predict * 1e3}
        print(f"  one process, per file: bare astropy {t_one * 1e3:.3f} ms; starlearn "
              f"read_many {t_read * 1e3:.3f} ms + window, int8 network and catalogue "
              f"{t_predict * 1e3:.3f} ms", flush=True)
        results["archive"] = archive

        # 3. packed windows through the vgg1d: fp32 against int8
        test = labelled[2000:]
        windows = LineWindow().transform(test)
        true = np.array([model.classes_.index(test.class_names[c]) for c in test.classes])
        f1 = {}
        for engine in ("onnx", "onnx-int8"):
            model.engine = engine
            model.__dict__.pop("engine_", None)
            f1[engine] = classification_metrics(true, model.predict_proba(test),
                                                model.classes_)["macro_f1"]
        reps = max(1, args.n_windows // len(windows))
        packed = windows[np.tile(np.arange(len(windows)), reps)]
        packed = packed.replace(ids=[f"w{i:08d}" for i in range(len(packed))])
        packed.write(folder / "packed.h5")
        speed = {}
        for engine in ("onnx", "onnx-int8"):
            out = folder / f"packed-{engine}.parquet"
            t0 = time.perf_counter()
            run_archive(folder / "clf", [folder / "packed.h5"], out, engine=engine,
                        workers=1, rows_per_part=50_000, progress=False)
            speed[engine] = len(packed) / (time.perf_counter() - t0)
        results["packed_vgg1d"] = {"windows": len(packed), "windows_per_second": speed,
                                   "macro_f1": f1,
                                   "minutes_for_2.2M": {k: 2.2e6 / v / 60
                                                        for k, v in speed.items()}}
        print(f"packed {len(packed):,} windows: " + ", ".join(
            f"{k} {v:,.0f}/s (2.2 M in {2.2e6 / v / 60:.1f} min, macro-F1 {f1[k]:.4f})"
            for k, v in speed.items()), flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
