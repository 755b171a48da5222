"""High-level estimators: fit on a SpectrumSet, predict tables, save and load model folders.

Every estimator derives from :class:`~starlearn.estimators.base.ArtifactEstimator`; the
network ones from :class:`~starlearn.estimators.base.NetworkEstimator` (see
CONTRIBUTING.md for adding one).
"""

from starlearn.estimators.autoencoder import Autoencoder
from starlearn.estimators.cannon import Cannon
from starlearn.estimators.classifier import Classifier
from starlearn.estimators.loading import load
from starlearn.estimators.regressor import Regressor

__all__ = ["Autoencoder", "Cannon", "Classifier", "Regressor", "load"]
