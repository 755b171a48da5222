"""starlearn.synth: the built-in synthetic survey generator (no download needed).

Physically motivated, fast spectra on the exact grids of the survey presets
(``apogee``, ``lamost``, ``segue``, ``pfs-mr``, ``ondrejov-halpha``): Saha-Boltzmann line
strengths in a one-layer model atmosphere with H- / hydrogen / electron-scattering
continuum opacity, molecular equilibrium for CO, CN, OH, CH and MgH, Voigt-like metal
lines with pressure-broadened wings, Stark-broadened hydrogen lines, rotation,
macroturbulence, the instrument's Gaussian LSF, radial velocity, Be-star H-alpha emission,
flux-conserving rebinning and photon noise.

>>> from starlearn.synth import generate, label_names
>>> s = generate("lamost", 2, seed=0, snr=50)
>>> len(s), s.label_names == label_names("lamost")
(2, True)

See :func:`generate`, :func:`draw_labels`, :func:`render` (the same stars through
another preset), :class:`LabelPrior` and ``labels_from`` (stars from part of the population
or from a catalogue of real labels: :mod:`starlearn.synth.priors`) and
:func:`write_lamost_files` (spectra as LAMOST-layout FITS files).
"""

from starlearn.synth.files import write_lamost_files
from starlearn.synth.generator import generate, render
from starlearn.synth.labels import CLASS_NAMES, SURVEYS, draw_labels, label_names
from starlearn.synth.priors import LabelPrior

__all__ = ["CLASS_NAMES", "SURVEYS", "LabelPrior", "draw_labels", "generate", "label_names",
           "render", "write_lamost_files"]
