"""Plot synthetic spectra of every survey preset of starlearn.synth.

Writes ``docs/images/synth_presets.png``: one panel per preset (two for APOGEE), a few
representative stars each (a red giant, a dwarf, a metal-poor giant, a hot star; the three
H-alpha classes for Ondřejov), zoomed on the features the surveys use.

Usage::

    python scripts/plot_presets.py [--out docs/images/synth_presets.png] [--snr 150]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from astropy.table import Table

from starlearn.grid import air_to_vacuum
from starlearn.synth import CLASS_NAMES, render

STARS = Table(rows=[
    # teff, logg, fe_h, vsini, label
    (4550.0, 2.4, 0.0, 4.0, "red giant 4550 K / 2.4 / [Fe/H] 0.0"),
    (5700.0, 4.4, 0.1, 3.0, "dwarf 5700 K / 4.4 / +0.1"),
    (4850.0, 1.9, -1.8, 5.0, "metal-poor giant 4850 K / 1.9 / -1.8"),
    (3800.0, 1.0, 0.0, 4.0, "cool giant 3800 K / 1.0 / 0.0"),
    (9200.0, 4.0, 0.0, 60.0, "A star 9200 K / 4.0"),
], names=("teff", "logg", "fe_h", "vsini", "label"))
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"]


def _mark(ax, lines: dict[str, float], air: bool = True) -> None:
    """Dotted lines and labels (at the top of the axes) at air wavelengths -> vacuum."""
    for name, wave in lines.items():
        w = float(air_to_vacuum(wave)) if air else wave
        ax.axvline(w, color="0.7", lw=0.6, ls=":", zorder=0)
        ax.text(w, 0.98, name.strip(), rotation=90, fontsize=6.5, ha="right", va="top",
                color="0.3", transform=ax.get_xaxis_transform())


def _panel(ax, survey: str, rows: list[int], lo: float, hi: float, *, snr, offset: float,
           title: str, seed: int = 0) -> None:
    stars = STARS[rows]
    s = render(survey, stars, seed=seed, snr=snr)
    sel = (s.wave >= lo) & (s.wave <= hi)
    for k, i in enumerate(rows):
        f = s.flux[k].astype(float)
        f[s.mask[k]] = np.nan
        ax.plot(s.wave[sel], f[sel] + k * offset, lw=0.6, color=COLOURS[i],
                label=STARS["label"][i])
    ax.set_xlim(lo, hi)
    ax.set_title(title, fontsize=9, loc="left")
    ax.set_xlabel("vacuum wavelength (Å)", fontsize=8)
    ax.tick_params(labelsize=7)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/images/synth_presets.png")
    parser.add_argument("--snr", type=float, default=150.0)
    args = parser.parse_args()
    snr = args.snr

    fig, axes = plt.subplots(4, 2, figsize=(15, 15.5))
    ax = axes[0, 0]
    _panel(ax, "apogee", [0, 1, 2, 3], 15150, 16950, snr=snr, offset=0.8,
           title="apogee (R 22,500, normalised; chip gaps masked)")
    ax.set_ylabel("normalised flux + offset", fontsize=8)
    ax.legend(fontsize=6.5, loc="lower right", ncol=2)

    ax = axes[0, 1]
    _panel(ax, "apogee", [0, 1, 2, 3], 16120, 16240, snr=snr, offset=0.6,
           title="apogee zoom: Ca I, Fe I, Si I, CO 6-3 band head, OH and CN lines")
    _mark(ax, {"Ca I": 16150.76, "Ca I ": 16155.24, " Ca I": 16157.36, "Fe I": 16165.03,
               "Ca I  ": 16197.08, "Si I": 16215.69, "Fe I ": 16231.65})
    _mark(ax, {"CO 6-3 head": 16195.6}, air=False)

    ax = axes[1, 0]
    _panel(ax, "lamost", [0, 1, 2, 4], 3700, 9100, snr=snr, offset=0.0,
           title="lamost (R 1,800, relative flux: Planck continuum, median 1)")
    ax.set_ylabel("relative flux", fontsize=8)
    ax.legend(fontsize=6.5, loc="upper right")
    _mark(ax, {"Ca II K,H": 3950.0, "G band": 4305.0, "Hβ": 4861.3, "Mg b": 5175.0,
               "Na D": 5892.0, "Hα": 6562.8, "Ca II triplet": 8542.0})

    ax = axes[1, 1]
    _panel(ax, "segue", [0, 1, 2, 4], 3850, 4450, snr=snr, offset=0.0,
           title="segue zoom: Ca II H&K, CN 4216, Ca I 4227, G band, Hδ, Hγ")
    _mark(ax, {"Ca II K": 3933.66, "Ca II H": 3968.47, "Hδ": 4101.7, "CN": 4215.0,
               "Ca I": 4226.73, "CH G band": 4300.0, "Hγ": 4340.5})

    ax = axes[2, 0]
    _panel(ax, "lamost", [0, 1, 2, 4], 4800, 5400, snr=snr, offset=0.0,
           title="lamost zoom: Hβ, Mg b and MgH, Fe I 5270/5328")
    _mark(ax, {"Hβ": 4861.3, "Mg b": 5172.7, "Fe I": 5269.54, "Fe I ": 5328.04})

    ax = axes[2, 1]
    _panel(ax, "pfs-mr", [0, 1, 2, 4], 8450, 8720, snr=snr, offset=0.45,
           title="pfs-mr (R 5,000, normalised): Ca II triplet, Paschen lines, Mg I 8807 range")
    _mark(ax, {"Ca II": 8498.02, "Ca II ": 8542.09, "Ca II  ": 8662.14, "Fe I": 8688.62})

    ax = axes[3, 0]
    classes = Table({"teff": [16_000.0, 18_000.0, 14_000.0], "logg": [4.0, 3.8, 3.9],
                     "vsini": [120.0, 250.0, 220.0], "class": [0, 1, 2],
                     "em_amp": [0.0, 1.8, 1.1], "em_sep": [0.0, 0.0, 260.0],
                     "em_sigma": [0.0, 70.0, 50.0], "em_vr": [1.0, 1.0, 0.8],
                     "em_shift": [0.0, 0.0, 0.0]})
    s = render("ondrejov-halpha", classes, seed=1, snr=snr)
    sel = (s.wave > 6480) & (s.wave < 6700)
    for i in range(3):
        f = s.flux[i] / np.median(s.flux[i])
        ax.plot(s.wave[sel], f[sel] + 0.0 * i, lw=0.7, label=f"{CLASS_NAMES[i]}: "
                f"{classes['teff'][i]:.0f} K, vsini {classes['vsini'][i]:.0f} km/s")
    ax.set_title("ondrejov-halpha (R 13,000): the three H-alpha classes (Be-star emission)",
                 fontsize=9, loc="left")
    ax.set_xlabel("vacuum wavelength (Å)", fontsize=8)
    ax.set_ylabel("flux / median", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6.5, loc="upper right")
    _mark(ax, {"Hα": 6562.80, "He I": 6678.15, "C II": 6578.05})

    ax = axes[3, 1]
    cool = STARS[[1, 0]]
    s = render("ondrejov-halpha", cool, seed=2, snr=snr)
    sel = (s.wave > 6380) & (s.wave < 6520)
    for k, i in enumerate([1, 0]):
        f = s.flux[k] / np.median(s.flux[k])
        ax.plot(s.wave[sel], f[sel] + 0.5 * k, lw=0.6, color=COLOURS[i], label=STARS["label"][i])
    ax.set_title("ondrejov-halpha zoom, cool stars: Fe I, Fe II, Ca I, Ba II", fontsize=9,
                 loc="left")
    ax.set_xlabel("vacuum wavelength (Å)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6.5, loc="lower right")
    _mark(ax, {"Fe I": 6400.00, "Fe I ": 6430.85, "Ca I": 6439.08, "Fe II": 6456.38,
               "Ca I ": 6462.57, "Ba II": 6496.90})

    fig.suptitle("starlearn.synth: built-in synthetic survey spectra "
                 f"(S/N {snr:.0f}, one random draw of the noise)", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
