"""High-level estimators: fit on a SpectrumSet, predict tables, save and load artifacts."""

from starlearn.estimators.regressor import Regressor

__all__ = ["Regressor"]
