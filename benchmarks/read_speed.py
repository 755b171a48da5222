"""Reading speed: files per second for every product, against a bare astropy read.

Part 1, the real products (``../shared/data/fits-samples``, one folder per product and
release): per format, the files of that format read over and over for at least
``--seconds``, by a bare astropy loop (``fits.open`` and every HDU's header and data, or
``Table.read`` for CSV/ECSV; no identification, no checks) and by ``sl.read`` (format
identified from the content, wavelengths, units and medium resolved, checks), in one
run, alternating. Ratios are ours over the bare loop.

Part 2, generated archives:  ``--n`` LAMOST LRS files (5 x 3,909 primary image) and ``--n`` APOGEE
aspcapStar files (three 8,575-pixel images + ASPCAP table) in a temporary folder, then
measures, in one run on the same files:

* ``astropy loop``: the baseline, a bare ``astropy.io.fits`` loop that opens each file
  and reads its data arrays and header (no identification, no checks, no output);
* ``sl.read loop``: ``starlearn.io.read`` with auto-identification, one process;
* ``read_many``: the archive runner's batch reader (one meta table per batch, fitsio for
  LAMOST images);
* ``ingest --workers 1`` and ``--workers 2``: the whole ``starlearn ingest`` (identify,
  read, check, write the HDF5 data set).

Ratios are against the astropy loop. Run: ``python benchmarks/read_speed.py [--n 500]
[--samples PATH] [--seconds 1.0]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits

import starlearn.io as sio
from starlearn.jobs.ingest import ingest


def write_lamost(folder: Path, n: int) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        data = np.zeros((5, 3909))
        data[0] = rng.normal(100, 5, 3909)
        data[1] = 0.04
        data[2] = 10 ** (3.5682 + 1e-4 * np.arange(3909))
        hdu = fits.PrimaryHDU(data)
        hdu.header.update({"TELESCOP": "LAMOST", "COEFF0": 3.5682, "COEFF1": 1e-4,
                           "CLASS": "STAR", "SUBCLASS": "G5", "Z": 1e-4, "SN_G": 30.0,
                           "OBSID": i, "VACUUM": True})
        path = folder / f"spec-{i:06d}.fits"
        hdu.writeto(path)
        paths.append(path)
    return paths


def write_aspcapstar(folder: Path, n: int) -> list[Path]:
    rng = np.random.default_rng(1)
    paths = []
    for i in range(n):
        images = [fits.ImageHDU(rng.normal(1, 0.01, 8575).astype("f4")),
                  fits.ImageHDU(np.full(8575, 0.01, "f4")), fits.ImageHDU(np.ones(8575, "f4"))]
        for hdu in images:
            hdu.header.update({"CRVAL1": 4.179, "CDELT1": 6e-6, "CRPIX1": 1})
        table = fits.BinTableHDU.from_columns([
            fits.Column(name="APOGEE_ID", format="18A", array=[f"2M{i:016d}"]),
            fits.Column(name="PARAM", format="9E", array=rng.normal(size=(1, 9))),
            fits.Column(name="FPARAM", format="9E", array=rng.normal(size=(1, 9))),
            fits.Column(name="X_H", format="26E", array=rng.normal(size=(1, 26))),
            fits.Column(name="SNR", format="E", array=[100.0])])
        path = folder / f"aspcapStar-{i:06d}.fits"
        fits.HDUList([fits.PrimaryHDU(), *images, table]).writeto(path)
        paths.append(path)
    return paths


def astropy_loop(paths: list[Path]) -> None:
    for p in paths:
        with fits.open(p, memmap=False) as hdul:
            _ = hdul[0].header
            for hdu in hdul:
                _ = hdu.data


def starlearn_loop(paths: list[Path]) -> None:
    for p in paths:
        sio.read(p)


def timed(func) -> float:
    t0 = time.perf_counter()
    func()
    return time.perf_counter() - t0


def bare_read(path: Path) -> None:
    """What any reader must at least do: open the file and touch every header and array."""
    if path.suffix in (".csv", ".ecsv"):
        from astropy.table import Table

        Table.read(path, format="ascii.ecsv" if path.suffix == ".ecsv" else "ascii.csv")
        return
    with fits.open(path, memmap=False) as hdul:
        for hdu in hdul:
            _ = hdu.header, hdu.data


def rate(func, paths: list[Path], seconds: float) -> float:
    """Files per second of ``func`` over ``paths``, repeated for at least ``seconds``."""
    n, t0 = 0, time.perf_counter()
    while True:
        for p in paths:
            func(p)
        n += len(paths)
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return n / elapsed


def by_format(folder: Path) -> dict[str, list[Path]]:
    groups: dict[str, list[Path]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            fmt = sio.identify_format(path)[0]
            sio.read(path)  # skip what holds no spectrum (pfsConfig, placeholders)
        except (IndexError, sio.ReadError):
            continue
        groups.setdefault(fmt, []).append(path)
    return groups


def real_products(folder: Path, seconds: float) -> None:
    groups = by_format(folder)
    print(f"real products in {folder}: files per second, best of 2 (ratio sl.read / bare)")
    print(f"{'format':<20} {'files':>5} {'bare astropy':>13} {'sl.read':>10} {'ratio':>7}")
    for fmt, paths in groups.items():
        for p in paths:  # warm caches and lazy imports (GaiaXPy ...)
            bare_read(p)
            sio.read(p)
        bare, ours = 0.0, 0.0
        for _ in range(2):
            bare = max(bare, rate(bare_read, paths, seconds))
            ours = max(ours, rate(sio.read, paths, seconds))
        print(f"{fmt:<20} {len(paths):>5} {bare:>13.1f} {ours:>10.1f} {ours / bare:>6.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="files per layout")
    parser.add_argument("--samples", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared" / "data"
                        / "fits-samples", help="folder of real product files")
    parser.add_argument("--seconds", type=float, default=1.0,
                        help="minimum timing per format and reader")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if args.samples.exists():
        real_products(args.samples, args.seconds)
        print()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        layouts = {"lamost-lrs": write_lamost(folder, args.n),
                   "apogee-aspcapstar": write_aspcapstar(folder, args.n)}
        print(f"{args.n} files per layout; files per second (ratio to the astropy loop)")
        print(f"{'layout':<18} {'astropy loop':>13} {'sl.read loop':>18} {'read_many':>18} "
              f"{'ingest -w 1':>18} {'ingest -w 2':>18}")
        for name, paths in layouts.items():
            astropy_loop(paths[:20])  # warm the page cache and imports
            base = timed(lambda p=paths: astropy_loop(p))
            ours = timed(lambda p=paths: starlearn_loop(p))
            many = timed(lambda p=paths: sio.read_many(p))
            rates = [args.n / base, args.n / ours, args.n / many]
            for workers in (1, 2):
                out = folder / f"{name}-{workers}.h5"
                t = timed(lambda p=paths, o=out, w=workers: ingest(p, o, workers=w,
                                                                   progress=False))
                rates.append(args.n / t)
            cells = [f"{rates[0]:>13.0f}"] + [f"{r:>9.0f} ({r / rates[0]:.2f}x)"
                                              for r in rates[1:]]
            print(f"{name:<18} " + " ".join(f"{c:>18}" if i else c
                                            for i, c in enumerate(cells)))


if __name__ == "__main__":
    main()
