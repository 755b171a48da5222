"""``starlearn demo``: the whole label-regression job on built-in synthetic APOGEE spectra.

Generates a synthetic APOGEE-like survey (no download), trains StarNet and The Cannon on
the same spectra, prints the comparison table and the error calibration, and writes the
data sets, the models, residual and saliency plots and a JSON of every number.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["run_demo"]

LABELS = ["teff", "logg", "fe_h"]


def run_demo(output: str | Path, *, quick: bool = False, seed: int = 0, progress: bool = True,
             echo: Callable[[str], Any] = print) -> dict[str, Any]:
    """Run the demonstration; returns the results written to ``output/results.json``.

    ``quick`` uses fewer spectra and a shorter training (about a minute on 2 cores);
    the full run takes a few minutes.
    """
    from starlearn import synth
    from starlearn.evaluate.plots import plot_saliency, plot_spectrum_panels
    from starlearn.evaluate.regression import evaluate_regressor, format_table
    from starlearn.evaluate.saliency import saliency
    from starlearn.jobs.training import label_estimator

    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    n_train, n_test = (800, 200) if quick else (3000, 600)
    train_time = 25.0 if quick else 150.0
    start = time.perf_counter()
    echo(f"1/4 generating {n_train + n_test} synthetic APOGEE spectra (S/N 30-200) ...")
    spectra = synth.generate("apogee", n_train + n_test, seed=seed, snr=(30.0, 200.0),
                             n_jobs=2, progress=progress)
    train, test = spectra[:n_train], spectra[n_train:]
    train.write(out / "train.h5", overwrite=True)
    test.write(out / "test.h5", overwrite=True)
    plot_spectrum_panels({"synthetic APOGEE spectra": spectra}, out / "spectra.png",
                         indices={"synthetic APOGEE spectra": [0, 1, 2]},
                         xlims={"synthetic APOGEE spectra": (15150.0, 15800.0)}, offset=0.6)
    generated = time.perf_counter() - start

    echo(f"2/4 training starnet ({n_train} spectra, up to {train_time:.0f} s) ...")
    results: dict[str, dict[str, Any]] = {}
    models: dict[str, Any] = {}
    for name, kwargs in (("starnet", {"max_time": train_time, "epochs": 200}),
                         ("cannon", {})):
        if name == "cannon":
            echo("3/4 training The Cannon (quadratic, same spectra) ...")
        t0 = time.perf_counter()
        estimator = label_estimator(name, LABELS, seed=seed, progress=progress, **kwargs)
        estimator.fit(train)
        seconds = time.perf_counter() - t0
        estimator.save(out / f"model-{name}")
        result = evaluate_regressor(estimator, test, output=out / f"eval-{name}")
        result["train_seconds"] = seconds
        results[name], models[name] = result, estimator

    echo("4/4 saliency and report ...")
    sal = saliency(models["starnet"], test[:200])
    plot_saliency(models["starnet"].wave_, sal, LABELS, out / "saliency.png",
                  mean_spectrum=test.mean_flux())
    summary = {"n_train": n_train, "n_test": n_test, "labels": LABELS,
               "seconds": {"generate": generated, "total": time.perf_counter() - start},
               "results": results}
    (out / "results.json").write_text(json.dumps(summary, indent=1))

    echo("")
    echo(f"Label regression on {n_test} held-out synthetic APOGEE spectra "
         f"(trained on {n_train}):")
    echo(format_table(results, LABELS))
    echo("")
    echo("Error calibration of starnet (a calibrated model has 68% of |z| < 1, z spread 1):")
    for name, c in results["starnet"]["calibration"].items():
        echo(f"  {name:>5}: |z|<1 {c['frac_within_1sigma']:.2f}, z spread {c['z_spread']:.2f}")
    gain = {n: 1 - results["starnet"]["metrics"][n]["sigma"]
            / results["cannon"]["metrics"][n]["sigma"] for n in LABELS}
    echo("starnet vs The Cannon, sigma reduction: "
         + ", ".join(f"{n} {100 * g:+.0f}%" for n, g in gain.items()))
    echo(f"\nwritten to {out}/: results.json, spectra.png, saliency.png, "
         "eval-*/residuals.png, model-*/ and the data sets (train.h5, test.h5); "
         f"{summary['seconds']['total']:.0f} s in all")
    return summary
