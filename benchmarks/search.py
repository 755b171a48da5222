"""TPE against random search with the same budget of trials on a regression task.

Synthetic LAMOST-like spectra (labels Teff, log g, [Fe/H]); each trial trains a network of
the regression search space (starlearn.jobs.search) for at most ``--max-epochs`` epochs
and returns its best validation score (mean squared error of the standardised label means).
Both samplers use the median pruner. The best score so far after each trial is averaged
over ``--seeds`` independent studies per sampler, all in one run.

Run: ``python benchmarks/search.py [--trials 20 --seeds 3 --n 1200 --max-epochs 5]
[--out F.json]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--n", type=int, default=1200)
    parser.add_argument("--max-epochs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    import optuna
    from optuna.trial import TrialState

    from starlearn.jobs.search import run_search
    from starlearn.synth import generate

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folder = Path(tempfile.mkdtemp())
    spectra = generate("lamost", args.n, seed=31, snr=(20, 150), n_jobs=2)
    spectra.write(folder / "train.h5")
    base = {"labels": ["teff", "logg", "fe_h"], "epochs": args.max_epochs, "progress": False,
            "mc_samples": 0}
    curves: dict[str, list[np.ndarray]] = {"tpe": [], "random": []}
    seconds: dict[str, float] = {"tpe": 0.0, "random": 0.0}
    for seed in range(args.seeds):
        for sampler in ("tpe", "random"):
            t0 = time.perf_counter()
            st = run_search("regress", str(folder / "train.h5"), storage=f"sqlite:///"
                            f"{folder / f'{sampler}-{seed}.db'}", study="bench",
                            trials=args.trials, base={**base, "seed": seed}, seed=seed,
                            sampler=sampler)
            seconds[sampler] += time.perf_counter() - t0
            values = [t.value if t.state == TrialState.COMPLETE else np.inf
                      for t in sorted(st.get_trials(deepcopy=False), key=lambda t: t.number)
                      if t.state in (TrialState.COMPLETE, TrialState.PRUNED)][:args.trials]
            curve = np.minimum.accumulate(np.asarray(values, dtype=float))
            curves[sampler].append(curve)
            print(f"seed {seed} {sampler}: best {curve[-1]:.5f} after {len(curve)} trials, "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
    mean = {k: np.mean(np.vstack(v), axis=0) for k, v in curves.items()}
    print(f"\nbest validation score so far (mean of {args.seeds} studies)")
    print(f"{'trial':>6}{'TPE':>12}{'random':>12}{'TPE/random':>12}")
    for i in range(args.trials):
        if i in (0, 4, 9, 14, 19) or i == args.trials - 1:
            print(f"{i + 1:6d}{mean['tpe'][i]:12.5f}{mean['random'][i]:12.5f}"
                  f"{mean['tpe'][i] / mean['random'][i]:12.3f}")
    print(f"time: TPE {seconds['tpe']:.0f} s, random {seconds['random']:.0f} s")
    if args.out:
        args.out.write_text(json.dumps({"args": vars(args) | {"out": str(args.out)},
                                        "mean_best": {k: v.tolist() for k, v in mean.items()},
                                        "seconds": seconds}, indent=1))


if __name__ == "__main__":
    main()
