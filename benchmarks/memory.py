"""Peak memory of one training epoch streamed from a data set larger than memory budgets.

Writes an HDF5 data set of about ``--gb`` GB on the APOGEE grid (8,575 pixels; flux, ivar
and mask are 9 bytes per pixel, so 10 GB is about 130,000 spectra: copies of a few
synthetic spectra with fresh noise), then, in a fresh child process, trains a Regressor
for exactly one epoch streaming from the file, and reports the child's peak resident
memory (ru_maxrss) next to the file size and the memory a fully loaded copy would need.

Run: ``python benchmarks/memory.py [--gb 10] [--model shallow-nn] [--keep PATH]``
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = r"""
import resource, sys, time
from starlearn.estimators import Regressor
t = time.perf_counter()
reg = Regressor(sys.argv[2], ["teff", "logg", "fe_h"], epochs=1, patience=1, mc_samples=0,
                progress=False).fit(sys.argv[1])
print(f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss} {time.perf_counter() - t:.1f}")
"""


def write_big(path: Path, gb: float, seed: int = 0) -> int:
    from starlearn import synth
    from starlearn.io.dataset import DatasetWriter
    from starlearn.noise import draw_noise, noise_sigma

    base = synth.generate("apogee", 256, seed=seed, snr=None)
    per_spectrum = base.n_pix * 9
    n_total = int(gb * 1e9 / per_spectrum)
    rng = np.random.default_rng(seed)
    with DatasetWriter(path, n_pix=base.n_pix, wave=base.wave, label_names=base.label_names,
                       overwrite=True) as writer:
        written = 0
        while written < n_total:
            k = min(len(base), n_total - written)
            snr = rng.uniform(30, 200, (k, 1))
            block = base[:k]
            noisy, ivar = draw_noise(block.flux, noise_sigma(1.0, snr), rng)
            writer.append(block.replace(flux=noisy, ivar=np.where(block.mask, 0, ivar),
                                        ids=[str(written + i) for i in range(k)], meta=None))
            written += k
    return n_total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=10.0)
    parser.add_argument("--model", default="shallow-nn")
    parser.add_argument("--keep", type=Path, default=None, help="reuse/keep the file here")
    args = parser.parse_args()
    folder = tempfile.mkdtemp()
    path = args.keep or Path(folder) / "big.h5"
    t0 = time.perf_counter()
    if not path.exists():
        n = write_big(path, args.gb)
        print(f"wrote {n} spectra, {path.stat().st_size / 1e9:.1f} GB in "
              f"{time.perf_counter() - t0:.0f} s")
    size = path.stat().st_size
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), args.model],
                         capture_output=True, text=True, check=True)
    peak_kb, seconds = out.stdout.split()[-2:]
    peak = int(peak_kb) * 1024
    print(f"one {args.model} epoch streamed from {size / 1e9:.1f} GB in {seconds} s: "
          f"peak RSS {peak / 1e9:.2f} GB ({peak / size:.3f} of the file size; "
          f"target < 3 GB)")
    print(f"(this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB)")
    if args.keep is None:
        os.remove(path)


if __name__ == "__main__":
    main()
