"""Evaluation: metrics, plots and reports.

Modules: :mod:`~starlearn.evaluate.metrics` (pure numpy), :mod:`~starlearn.evaluate.plots`
(paper figures, each function returns a :class:`matplotlib.figure.Figure` and writes a file
only when given a path; no backend is selected), :mod:`~starlearn.evaluate.regression`,
:mod:`~starlearn.evaluate.classification` and :mod:`~starlearn.evaluate.autoencoder` (task
evaluations with their plots), :mod:`~starlearn.evaluate.saliency` and
:mod:`~starlearn.evaluate.embedding`. Nothing is imported here, so importing a metric does
not import matplotlib.
"""
