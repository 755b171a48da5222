"""Emission-line stars across instruments: vgg1d trained on Ondřejov-like, tested on LAMOST-like.

Synthetic H-alpha spectra of the same stars observed through the ``ondrejov-halpha`` preset
(R 13,000, 6,250-6,770 Å) and the ``lamost`` preset (R 1,800, log-uniform 69 km/s pixels),
imbalanced 45/45/10 per cent (absorption / emission / double-peak). Every model reads the
default 140-pixel window around H-alpha on the LAMOST sampling (``LineWindow``) and uses the
``vgg1d`` defaults. Configurations, all in one run:

* in-domain: trained on Ondřejov, tested on Ondřejov spectra of the test stars;
* no adaptation: the same model on the LAMOST spectra of the test stars;
* blur: trained on Ondřejov spectra degraded to R 1,800, resampled to the LAMOST grid and
  given the LAMOST noise level (``DomainAdapter``; the target S/N is measured on an
  unlabelled pool of other LAMOST stars);
* blur + SMOTE; blur + adversarial (domain confusion against the unlabelled pool).

Then inference throughput on 140-pixel windows (torch eager and ONNX Runtime), and a 2-D
embedding plot of the learned features of source and target before and after adaptation.

Run: ``python benchmarks/classification.py [--n-train 4000 --n-test 2000 --n-pool 2000]
[--plot docs/images/domain_embedding.png] [--out F.json]``
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=4000)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--n-pool", type=int, default=2000,
                        help="unlabelled LAMOST-like spectra of other stars")
    parser.add_argument("--epochs", type=int, default=None,
                        help="override the default epochs (trial runs only)")
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from starlearn.estimators import Classifier
    from starlearn.evaluate.classification import evaluate_classifier, plot_domains
    from starlearn.noise import measure_snr
    from starlearn.preprocess import DomainAdapter, LineWindow
    from starlearn.synth import draw_labels, render

    fractions = (0.45, 0.45, 0.10)
    t0 = time.perf_counter()
    stars = draw_labels("ondrejov-halpha", args.n_train + args.n_test, seed=21,
                        class_fractions=fractions)
    train = render("ondrejov-halpha", stars[:args.n_train], seed=21, n_jobs=2)
    test_source = render("ondrejov-halpha", stars[args.n_train:], seed=22, n_jobs=2)
    test_target = render("lamost", stars[args.n_train:], seed=23, n_jobs=2)
    pool = render("lamost", draw_labels("ondrejov-halpha", args.n_pool, seed=24,
                                        class_fractions=fractions), seed=24, n_jobs=2)
    print(f"synthetic spectra in {time.perf_counter() - t0:.0f} s: train {len(train)} "
          f"({np.bincount(train.classes).tolist()}), test {len(test_source)}, "
          f"unlabelled pool {len(pool)}", flush=True)

    window = LineWindow()
    grid = window.grid
    near = pool.replace(mask=pool.mask | ((pool.wave < grid.start) | (pool.wave > grid.stop)))
    snr = measure_snr(near)
    blur = DomainAdapter(r_source=13_000, r_target=1_800, target_grid="lamost",
                         target_snr=snr[snr > 0])
    extra = {} if args.epochs is None else {"epochs": args.epochs}
    configs = {
        "no adaptation": {},
        "blur": {"adapter": blur},
        "blur + SMOTE": {"adapter": blur, "balance": "smote"},
        "blur + adversarial": {"adapter": blur, "adversarial": True},
    }
    results: dict = {"n_train": len(train), "n_test": len(test_source),
                     "class_fractions": fractions, "models": {}}
    fitted = {}
    for name, kwargs in configs.items():
        t0 = time.perf_counter()
        model = Classifier(preprocess=LineWindow(), progress=False, **kwargs, **extra)
        model.fit(train, target=pool if kwargs.get("adversarial") else None)
        seconds = time.perf_counter() - t0
        fitted[name] = model
        row = {"train_seconds": seconds, "epochs": len(model.history_)}
        cases = [("LAMOST", test_target)] + ([("in-domain", test_source)]
                                             if name == "no adaptation" else [])
        for case, test in cases:
            m = evaluate_classifier(model, test)
            row[case] = {"macro_f1": m["macro_f1"], "accuracy": m["accuracy"],
                         "double_peak_recall": m["per_class"]["double-peak"]["recall"],
                         "ece": m["ece"], "confusion": m["confusion"]}
        results["models"][name] = row
        print(f"{name}: {seconds:.0f} s, {row['epochs']} epochs; "
              + "; ".join(f"{case} macro-F1 {row[case]['macro_f1']:.4f}, double-peak recall "
                          f"{row[case]['double_peak_recall']:.3f}" for case, _ in cases),
              flush=True)

    # throughput on 140-pixel windows: the network alone, in a running process
    model = fitted["blur"]
    windows = LineWindow().transform(test_target)
    x = model.network_input(windows, prepared=True)
    x = np.concatenate([x] * max(1, 20_000 // len(x)))
    speed = {}
    import torch

    from starlearn.estimators.classifier import _Probabilities
    from starlearn.infer import make_engine

    example = torch.as_tensor(x[:4])
    for kind in ("torch", "onnx"):
        engine = make_engine(_Probabilities(model.module_), kind, example=example)
        engine.run(x[:512])
        t0 = time.perf_counter()
        engine.run(x)
        speed[kind] = len(x) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    model.predict(test_target)
    speed["predict (window extraction + onnx)"] = len(test_target) / (time.perf_counter() - t0)
    results["windows_per_second"] = speed
    print("throughput (140-pixel windows/s): " + ", ".join(f"{k} {v:,.0f}"
                                                           for k, v in speed.items()))

    if args.plot:
        sample = slice(0, min(600, len(test_target)))
        panels = {}
        for title, name in (("no adaptation", "no adaptation"),
                            ("blur + adversarial", "blur + adversarial")):
            m = fitted[name]
            panels[title] = (m.features(test_source[sample]), m.features(test_target[sample]))
        plot_domains(panels, args.plot)
        print(f"embedding plot written to {args.plot}")

    print()
    in_domain = results["models"]["no adaptation"]["in-domain"]["macro_f1"]
    print(f"{'configuration':24s}{'test set':>12s}{'macro-F1':>10s}{'dp recall':>11s}"
          f"{'vs in-domain':>14s}{'train s':>9s}")
    for name, row in results["models"].items():
        for case in ("in-domain", "LAMOST"):
            if case in row:
                print(f"{name:24s}{case:>12s}{row[case]['macro_f1']:10.4f}"
                      f"{row[case]['double_peak_recall']:11.3f}"
                      f"{row[case]['macro_f1'] - in_domain:+14.4f}{row['train_seconds']:9.0f}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
