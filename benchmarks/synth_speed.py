"""Speed of starlearn.synth on the APOGEE preset against a plain numpy/scipy generator.

Both generators use the same stars, line list, line strengths (the same one-layer physics)
and the same fine model grid (1 km/s). The baseline is what one would write without the
tricks of ``starlearn.synth``: per spectrum, a Python loop over the lines evaluating
``scipy.special.voigt_profile`` in a +-5 A window (+-100 A for hydrogen lines, Lorentz
width = Stark + self broadening), ``exp(-tau)``, rotation by ``np.convolve`` with the
rotation kernel, macroturbulence and the LSF by ``scipy.ndimage.gaussian_filter1d``, the
radial velocity and the survey grid by ``np.interp``. It produces noiseless normalised
spectra (noise costs little in either).

Usage::

    python benchmarks/synth_speed.py [--n 2000] [--n-baseline 40]

Prints a table of spectra per second and the speed-up, plus how closely the two agree.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.special import voigt_profile

from starlearn.grid import C_KMS
from starlearn.synth import draw_labels, render
from starlearn.synth import generator as gen
from starlearn.synth import physics as ph

SURVEY = "apogee"


def _parameters(mod, star) -> dict[str, np.ndarray]:
    """Line strengths and widths of one star (the same physics as starlearn.synth)."""
    p = gen._star_parameters(star)
    xfe = {x: p[f"{x}_fe"] for x in gen.lab.ALL_XFE}
    log_eps = gen._abundance_matrix(p["fe_h"], xfe)
    teff, logg, vmicro = p["teff"], p["logg"], p["vmicro"]
    atm = ph.atmosphere(teff, logg, log_eps)
    atm_m = ph.atmosphere(teff, logg, log_eps, tau=gen.TAU_MOLECULES)
    atm_h = ph.atmosphere(teff, logg, log_eps, tau=gen.TAU_HYDROGEN)
    s = 10.0 ** gen._line_strengths(mod.lines, mod.molecular, atm, atm_m, mod.kappa_wave,
                                    mod.kappa_w)[0]
    sig = ph.doppler_sigma(atm, mod.lines.mass, vmicro)[0]
    g_rad, g_stark, g_vdw = mod.line_gamma
    gamma = (g_rad + g_stark * 10.0 ** atm.log_n_e[0]
             + g_vdw * 10.0 ** atm.log_n_h0[0] * (atm.t[0] / 1e4) ** 0.3)
    c_g, sig_h, c_r, ws, c_l, gs = gen.hydrogen_profile_parameters(
        mod.hyd, atm_h, mod.hyd_kappa_w(ph.effective_log_kappa(atm_h, mod.kappa_wave)), vmicro)
    s_h = (c_g * sig_h * np.sqrt(2 * np.pi) + c_r * gen._HOLTS_NORM / ws**1.5
           + c_l * np.pi / gs)[0]
    gamma_h = (ws * (c_r * gen._HOLTS_NORM / ws**1.5) / np.maximum(s_h, 1e-300)
               + (c_l * np.pi / gs) / np.maximum(s_h, 1e-300) * gs)[0]
    return {"s": s, "sig": sig, "gamma": gamma, "s_h": s_h, "sig_h": np.full(s_h.size,
            sig_h[0, 0]), "gamma_h": gamma_h, "vsini": p["vsini"][0], "vmacro": p["vmacro"][0],
            "floor": gen._core_floor(teff)[0], "teff": teff,
            "s_h_core": (c_g * sig_h * np.sqrt(2 * np.pi))[0]}


def baseline_spectrum(mod, star, rv: float = 0.0) -> np.ndarray:
    """One normalised APOGEE spectrum, the straightforward way."""
    q = _parameters(mod, star)
    h = mod.h
    wave = mod.wave_fine
    tau = np.zeros(mod.n)
    centre = (np.log(mod.lines.wave) - mod.ln0) / (h / C_KMS)
    half = int(5.0 / 16_000.0 * C_KMS / h)               # +-5 A in pixels
    for x, s, sig, gam in zip(centre, q["s"], q["sig"], q["gamma"], strict=True):
        i0 = max(int(x) - half, 0)
        i1 = min(int(x) + half + 1, mod.n)
        v = (np.arange(i0, i1) - x) * h
        tau[i0:i1] += s * voigt_profile(v, sig, gam)
    centre_h = (np.log(mod.hyd.wave) - mod.ln0) / (h / C_KMS)
    half_h = int(100.0 / 16_000.0 * C_KMS / h)           # +-100 A
    eta, eta_core = np.zeros(mod.n), np.zeros(mod.n)
    for x, s, s_core, sig, gam in zip(centre_h, q["s_h"], q["s_h_core"], q["sig_h"],
                                      q["gamma_h"], strict=True):
        i0 = max(int(x) - half_h, 0)
        i1 = min(int(x) + half_h + 1, mod.n)
        if i1 <= i0:
            continue
        v = (np.arange(i0, i1) - x) * h
        eta[i0:i1] += s * voigt_profile(v, sig, gam)
        eta_core[i0:i1] += s_core * np.exp(-0.5 * (v / sig) ** 2) / (sig * np.sqrt(2 * np.pi))
    # hydrogen with its own saturation law, multiplied into the metal lines (as synth does)
    r_h = gen.hydrogen_residual(eta[None], eta_core[None], q["teff"], wave)[0]
    flux = (q["floor"] + (1.0 - q["floor"]) * np.exp(-tau)) * r_h
    if q["vsini"] > h:
        eps = gen.LIMB_DARKENING
        x = np.arange(-int(q["vsini"] / h), int(q["vsini"] / h) + 1) * h / q["vsini"]
        kern = (2 * (1 - eps) * np.sqrt(np.clip(1 - x**2, 0, None))
                + 0.5 * np.pi * eps * np.clip(1 - x**2, 0, None))
        flux = 1.0 - np.convolve(1.0 - flux, kern / kern.sum(), mode="same")
    sigma = np.hypot(mod.sigma_lsf, q["vmacro"] / 2.3548) / h
    flux = 1.0 - gaussian_filter1d(1.0 - flux, sigma, mode="constant")
    return np.interp(mod.grid.wave, wave * (1.0 + rv / C_KMS), flux)


def _time(fn, repeat: int = 1) -> float:
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="spectra for starlearn.synth")
    parser.add_argument("--n-baseline", type=int, default=40, help="spectra for the baseline")
    args = parser.parse_args()

    stars = draw_labels(SURVEY, max(args.n, args.n_baseline), seed=0)
    mod = gen._model(SURVEY)                          # build once (about 0.1 s)
    render(SURVEY, stars[:64], snr=100.0)             # warm up

    rows = []
    for n_jobs in (1, 2):
        dt = _time(lambda n_jobs=n_jobs: render(SURVEY, stars[: args.n], seed=0, snr=100.0,
                                                 n_jobs=n_jobs))
        rows.append((f"starlearn.synth n_jobs={n_jobs} (with noise)", args.n, dt))
    dt = _time(lambda: render(SURVEY, stars[: args.n], seed=0, snr=None))
    rows.append(("starlearn.synth n_jobs=1 (noiseless)", args.n, dt))
    nb = args.n_baseline
    t0 = time.perf_counter()
    base = np.array([baseline_spectrum(mod, stars[i:i + 1]) for i in range(nb)])
    rows.append(("baseline: voigt_profile per line + gaussian_filter1d + interp", nb,
                 time.perf_counter() - t0))

    print(f"\nstarlearn.synth speed, preset '{SURVEY}' ({mod.grid.n_pix} pixels, "
          f"{len(mod.lines)} metal/molecular lines + {len(mod.hyd)} H lines, model grid "
          f"{mod.n} px at {mod.h:.2f} km/s)")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"python {platform.python_version()}, numpy {np.__version__}\n")
    print(f"| {'generator':<62} | {'n':>5} | {'seconds':>8} | {'spectra/s':>9} | "
          f"{'ms/spectrum':>11} |")
    print(f"|{'-' * 64}|{'-' * 7}|{'-' * 10}|{'-' * 11}|{'-' * 13}|")
    for name, n, dt in rows:
        print(f"| {name:<62} | {n:>5} | {dt:>8.2f} | {n / dt:>9.1f} | {1e3 * dt / n:>11.2f} |")
    ours = rows[2][2] / rows[2][1]
    base_t = rows[3][2] / rows[3][1]
    print(f"\nspeed-up (noiseless, 1 process): {base_t / ours:.0f}x; "
          f"n_jobs=2 vs n_jobs=1: {rows[0][2] / rows[1][2]:.2f}x")
    fast = render(SURVEY, stars[:nb], seed=0, snr=None).flux
    good = ~mod.grid.gap_mask
    diff = np.abs(fast[:, good] - base[:, good])
    print(f"agreement with the baseline (normalised flux, {nb} spectra): median |diff| "
          f"{np.median(diff):.4f}, 99th percentile {np.percentile(diff, 99):.4f}, "
          f"max {diff.max():.3f}")


if __name__ == "__main__":
    main()
