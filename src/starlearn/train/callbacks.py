"""Training callbacks: hooks that see every epoch of a network's training.

Give them to an estimator's ``fit`` (``est.fit(train, callbacks=[...])``); they are not
parameters of the estimator (a clone carries none). A callback subclasses
:class:`Callback` and overrides what it needs:

- ``on_train_begin(trainer)`` once before the first epoch,
- ``on_epoch_end(epoch, row)`` after each epoch with its history row (``epoch``,
  ``train_loss``, ``valid_loss``, [``valid_score``,] ``lr``, ``seconds``); returning True
  stops the training there (the best epoch's weights are kept); an exception stops it and
  propagates (a hyper-parameter search prunes a trial that way),
- ``on_train_end(history)`` once after the last epoch.

>>> from starlearn.train.callbacks import Callback, StopAtLoss
>>> class Printer(Callback):
...     def on_epoch_end(self, epoch, row):
...         print(epoch, round(row["valid_loss"], 2))
>>> StopAtLoss(0.5).on_epoch_end(3, {"valid_loss": 0.4})
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["Callback", "EpochFunction", "StopAtLoss", "as_callbacks"]


class Callback:
    """Base class of the training hooks (every method does nothing by default)."""

    def on_train_begin(self, trainer: Any) -> None:
        """Called once, before the first epoch (or the first resumed one)."""

    def on_epoch_end(self, epoch: int, row: dict[str, float]) -> bool | None:
        """Called after every epoch; True stops the training after this epoch."""
        return None

    def on_train_end(self, history: list[dict[str, float]]) -> None:
        """Called once after the training, with the whole history."""


class EpochFunction(Callback):
    """A plain function ``fn(epoch, row)`` as a callback (its return value as
    :meth:`Callback.on_epoch_end`'s)."""

    def __init__(self, fn: Callable[[int, dict[str, float]], bool | None]) -> None:
        self.fn = fn

    def on_epoch_end(self, epoch: int, row: dict[str, float]) -> bool | None:
        return self.fn(epoch, row)


class StopAtLoss(Callback):
    """Stop once the validation loss (or ``key``) falls to ``target`` or below."""

    def __init__(self, target: float, key: str = "valid_loss") -> None:
        self.target = float(target)
        self.key = key

    def on_epoch_end(self, epoch: int, row: dict[str, float]) -> bool:
        return row[self.key] <= self.target


def as_callbacks(callbacks: Callback | Callable[..., Any] | Iterable[Any] | None
                 ) -> list[Callback]:
    """A list of :class:`Callback` from None, one callback, a function or a list of
    either (functions become :class:`EpochFunction`)."""
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback) or callable(callbacks):
        callbacks = [callbacks]
    out = []
    for item in callbacks:
        if isinstance(item, Callback):
            out.append(item)
        elif callable(item):
            out.append(EpochFunction(item))
        else:
            raise TypeError(f"callbacks: {item!r} is neither a Callback nor a function")
    return out
