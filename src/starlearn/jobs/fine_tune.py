"""The few-shot job: load a pretrained Regressor, fine-tune it on a few labelled spectra
of the target survey and save the result as a new model folder — what ``starlearn train
--init PRETRAINED --data few.h5`` does::

    from starlearn.jobs.fine_tune import fine_tune_model

    model = fine_tune_model("synthetic-model", "few.h5", "tuned-model")

The policy (freezing, learning rates, held-out calibration) is
:meth:`starlearn.estimators.Regressor.fine_tune`'s.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

from starlearn._atomic import check_writable
from starlearn._lock import output_lock

__all__ = ["fine_tune_model"]


def fine_tune_model(pretrained: str | PathLike, data: Any, output: str | PathLike, *,
                    overwrite: bool = False, **options: Any) -> Any:
    """Fine-tune the model folder ``pretrained`` on ``data`` (labelled spectra: a
    SpectrumSet or a data-set path) and write the model folder ``output`` (the pretrained
    folder is left as it is); ``options`` go to
    :meth:`~starlearn.estimators.Regressor.fine_tune` (``epochs``, ``freeze_epochs``,
    ``lr``, ``batch_size``, ``progress`` ...). Returns the fine-tuned estimator.

    Raises
    ------
    ValueError
        ``pretrained`` is not a network Regressor, or the spectra are on another grid or
        lack its labels.
    FileExistsError
        ``output`` exists and ``overwrite`` is False.
    """
    from starlearn.estimators import Regressor, load
    from starlearn.jobs.training import save_model

    output = Path(output)
    if output.exists() and not overwrite:
        raise FileExistsError(f"{output} exists; pass --overwrite (overwrite=True) to replace "
                              "it")
    if Path(pretrained).resolve() == output.resolve():
        raise ValueError("fine-tuning writes a new model folder: give an output other than "
                         f"the pretrained model {pretrained}")
    model = load(pretrained)
    if not isinstance(model, Regressor):
        raise ValueError(f"{pretrained}: fine-tuning needs a network Regressor, not a "
                         f"{type(model).__name__}")
    check_writable(output)
    with output_lock(output):
        model.fine_tune(data, **options)
        save_model(model, output)
    return model
