"""Continuum normalisation bias against the known continuum of synthetic G and K dwarfs.

For every survey preset, 12 G dwarfs (Teff 5,300-6,000 K) and 12 K dwarfs (4,300-5,200 K),
log g 4.3-4.7, [Fe/H] -0.5 to +0.3, are rendered by ``starlearn.synth`` at S/N 30, 100 and
300 per pixel. Their true continuum is known: 1 for the normalised presets (apogee,
pfs-mr), the Planck curve of Teff (median 1) the generator multiplies in for the others.
Each continuum method is applied with its default settings (and FitContinuum also without
its neighbour test, ``neighbours=0``: the plain noise clipping it used before); the bias of
one spectrum is the median over its good pixels of ``fitted continuum / true continuum -
1``, and the table gives the median over the 12 stars (in per cent; the target is |bias| <
0.3 % at S/N >= 30) and the time per spectrum of the continuum fit (ms).

Run: ``python benchmarks/continuum.py [--presets apogee,lamost,...] [--n 12]``
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from astropy.table import Table

from starlearn.preprocess import FitContinuum, RunningPercentileContinuum
from starlearn.synth import render
from starlearn.synth.generator import _model, _planck

TYPES = {"G dwarf": (5300.0, 6000.0), "K dwarf": (4300.0, 5200.0)}
SNRS = (30.0, 100.0, 300.0)
METHODS = {"FitContinuum": FitContinuum,
           "FitContinuum(neighbours=0)": functools.partial(FitContinuum, neighbours=0),
           "RunningPercentileContinuum": RunningPercentileContinuum}


def stars(kind: str, n: int, seed: int) -> Table:
    rng = np.random.default_rng(seed)
    lo, hi = TYPES[kind]
    return Table({"teff": rng.uniform(lo, hi, n), "logg": rng.uniform(4.3, 4.7, n),
                  "fe_h": rng.uniform(-0.5, 0.3, n),
                  "id": [f"{kind[0]}{i:03d}" for i in range(n)]})


def bias(survey: str, kind: str, snr: float, n: int,
         method: Callable[[], Any]) -> tuple[float, float]:
    """Median bias (per cent) and time per spectrum (ms) of ``method()`` on one cell."""
    table = stars(kind, n, seed=1)
    spectra = render(survey, table, seed=2, snr=snr)
    mod = _model(survey)
    true = (np.ones(spectra.flux.shape) if mod.normalised
            else _planck(spectra.wave, np.asarray(table["teff"])))
    t0 = time.perf_counter()
    fitted = method().continuum(spectra)
    ms = 1e3 * (time.perf_counter() - t0) / len(spectra)
    out = []
    for i in range(len(spectra)):
        good = ~spectra.mask[i] & np.isfinite(fitted[i])
        out.append(np.median(fitted[i, good] / true[i, good]) - 1)
    return 100 * float(np.median(out)), ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="apogee,lamost,segue,pfs-mr,ondrejov-halpha")
    parser.add_argument("--n", type=int, default=12, help="stars per type")
    args = parser.parse_args()
    t0 = time.perf_counter()
    print("median bias of the fitted continuum, per cent (fitted / true - 1)")
    header = f"{'preset':<16} {'stars':<8} {'method':<27}" + "".join(
        f"{'S/N ' + str(int(s)):>10}" for s in SNRS) + f"{'ms/spec':>9}"
    print(header)
    worst = 0.0
    for survey in args.presets.split(","):
        for kind in TYPES:
            for name, method in METHODS.items():
                runs = [bias(survey, kind, snr, args.n, method) for snr in SNRS]
                values = [v for v, _ in runs]
                if name == "FitContinuum":
                    worst = max(worst, *map(abs, values))
                print(f"{survey:<16} {kind:<8} {name:<27}"
                      + "".join(f"{v:>+10.2f}" for v in values)
                      + f"{np.mean([t for _, t in runs]):>9.1f}", flush=True)
    print(f"largest |bias| of FitContinuum: {worst:.2f} % ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
