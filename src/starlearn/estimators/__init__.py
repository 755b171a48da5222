"""High-level estimators: fit on a SpectrumSet, predict tables, save and load artifacts."""

from starlearn.estimators.autoencoder import Autoencoder
from starlearn.estimators.classifier import Classifier
from starlearn.estimators.loading import load
from starlearn.estimators.regressor import Regressor

__all__ = ["Autoencoder", "Classifier", "Regressor", "load"]
