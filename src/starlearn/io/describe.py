"""A short human-readable description of a data set or a spectrum file (``starlearn info``)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from starlearn.io.registry import is_hdf5, read

__all__ = ["describe"]


def describe(path: str | os.PathLike) -> str:
    """What is in ``path``: for a starlearn data set (HDF5) its summary; for a spectrum file
    of any registered format the format, spectra, wavelength range (vacuum Angstrom), the
    medium and unit of the file's wavelengths and what said so, the labels and ids.

    Raises
    ------
    ReadError
        When the file cannot be read (the reason names the file).
    """
    path = os.fspath(path)
    if is_hdf5(path):
        from starlearn.io.dataset import open_dataset

        with open_dataset(path) as store:
            return store.summary()
    spectra = read(path)
    meta = spectra.meta
    first = {c: meta[c][0] for c in meta.colnames}
    wave = spectra.wave
    lines = [f"{path}",
             f"  format: {first.get('format', '?')}",
             f"  spectra: {len(spectra)} x {spectra.n_pix} pixels"
             + (" (one wavelength grid)" if wave.ndim == 1 else " (own wavelengths each)"),
             f"  wavelength: {float(np.min(wave)):.2f} - {float(np.max(wave)):.2f} Angstrom "
             "(vacuum)"]
    if "medium_in_file" in first:
        lines.append(f"  in the file: {first['wave_unit_in_file']} ({first['wave_unit_from']}), "
                     f"{first['medium_in_file']} ({first['medium_from']})")
    lines.append(f"  masked pixels: {100 * float(np.mean(spectra.mask)):.1f} %")
    if spectra.label_names:
        shown = ", ".join(f"{n}={_value(v)}" for n, v in zip(spectra.label_names,
                                                             spectra.labels[0], strict=True))
        lines.append(f"  labels (first spectrum): {shown}")
    ids = [str(i) for i in spectra.ids[:5]]
    lines.append(f"  ids: {', '.join(ids)}{' ...' if len(spectra) > 5 else ''}")
    skip = {"format", "file", "medium_in_file", "medium_from", "wave_unit_in_file",
            "wave_unit_from"}
    shown = [f"{c}={_value(first[c])}" for c in meta.colnames if c not in skip]
    if shown:
        lines.append("  meta (first spectrum): " + ", ".join(shown))
    return "\n".join(lines)


def _value(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    return str(value)
