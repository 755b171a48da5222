"""Write the small schema-version-1 model folder kept in tests/data/ (run once per schema).

The test suite loads it to check that models saved by this schema version keep loading.
"""

from pathlib import Path

import numpy as np

from starlearn import SpectrumSet
from starlearn.estimators import Regressor

rng = np.random.default_rng(0)
wave = np.linspace(6000.0, 6016.0, 16)
label = rng.uniform(0, 1, 200)
flux = 1 - 0.5 * label[:, None] * np.exp(-0.5 * ((wave - 6008) / 2.0) ** 2)
flux = flux + rng.normal(0, 0.01, flux.shape)
spectra = SpectrumSet(wave=wave, flux=flux, ivar=np.full(flux.shape, 1e4),
                      labels=label[:, None], label_names=["depth"], ids=np.arange(200))
model = Regressor("shallow-nn", model_config={"hidden": [8]}, epochs=30, mc_samples=2,
                  progress=False).fit(spectra)
out = Path(__file__).resolve().parents[1] / "tests" / "data" / "artifact-v1"
model.save(out)
spectra[:5].write(out.parent / "artifact-v1-input.h5", overwrite=True)
model.predict(spectra[:5]).write(out.parent / "artifact-v1-expected.ecsv", overwrite=True)
print(f"wrote {out}")
