"""Write synthetic spectra as survey files (so that readers and archive runs can be tried
end to end without a download)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from starlearn.grid import C_KMS
from starlearn.spectra import SpectrumSet

__all__ = ["write_lamost_files"]


def write_lamost_files(spectra: SpectrumSet, folder: str | os.PathLike, *,
                       prefix: str = "spec") -> list[Path]:
    """One LAMOST DR1-DR7 low-resolution file per spectrum: a 5 x N primary image (flux,
    ivar, wavelength, and/or masks) with COEFF0/COEFF1 (log10 Å), Z (= rv / c from the meta
    column ``rv``, 0 without it), OBSID and ``VACUUM = T``. Needs a shared log-uniform grid
    (e.g. the ``lamost`` preset). Returns the paths, ``<prefix>-NNNNNN.fits``."""
    from astropy.io import fits

    if not spectra.shared_wave:
        raise ValueError("write_lamost_files: the spectra must share one wavelength grid")
    loglam = np.log10(spectra.wave)
    step = np.diff(loglam)
    if not np.allclose(step, step[0], rtol=1e-6, atol=1e-12):
        raise ValueError("write_lamost_files: the grid must be log-uniform (LAMOST layout)")
    rv = (np.asarray(spectra.meta["rv"], dtype=float) if "rv" in spectra.meta.colnames
          else np.zeros(len(spectra)))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(len(spectra)):
        data = np.zeros((5, spectra.n_pix), dtype=np.float32)
        data[0], data[1], data[2] = spectra.flux[i], spectra.ivar[i], spectra.wave
        data[3] = np.where(spectra.mask[i], 1, 0)
        hdu = fits.PrimaryHDU(data)
        hdu.header.update({"TELESCOP": "LAMOST", "COEFF0": float(loglam[0]),
                           "COEFF1": float(step[0]), "CLASS": "STAR",
                           "Z": float(rv[i] / C_KMS), "OBSID": i + 1,
                           "DESIG": str(spectra.ids[i]), "VACUUM": True})
        path = folder / f"{prefix}-{i:06d}.fits"
        hdu.writeto(path, overwrite=True)
        paths.append(path)
    return paths
