"""Jobs: what trains or runs estimators, above them — the training job, the search, the
archive run, the comparison table, the evaluation of a saved model and the demo. The
command line (:mod:`starlearn.cli`) calls these and prints; Python users call them alike."""

from starlearn.jobs.archive import ArchiveSummary, read_catalogue, run_archive
from starlearn.jobs.compare import compare_models
from starlearn.jobs.evaluate import evaluate
from starlearn.jobs.training import build_estimator, save_model, train_and_save

__all__ = ["ArchiveSummary", "build_estimator", "compare_models", "evaluate", "read_catalogue",
           "run_archive", "save_model", "train_and_save"]
