"""The training loop shared by all estimators: Adam, a learning-rate schedule, early stopping.

The estimator supplies the network, a function that turns a batch into a loss, and
callables that yield training and validation batches; the Trainer runs epochs, keeps the
best weights (lowest validation score: the loss, or a separate ``score_fn`` such as the
mean squared error of the label means), and records the history.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from starlearn.train.callbacks import Callback
from starlearn.train.checkpoint import Checkpoint, TrainingState

__all__ = ["OPTIMIZERS", "Trainer", "TrainerConfig", "make_optimizer", "resolve_device"]


OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")


def make_optimizer(name: str, params: Iterable[Any], lr: float,
                   weight_decay: float) -> torch.optim.Optimizer:
    """The optimiser called ``name`` (see :data:`OPTIMIZERS`)."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=0.9,
                               nesterov=True)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` gives CUDA when available, else the CPU; any torch device string works."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclass
class TrainerConfig:
    """Optimisation settings (all plain values, saved with the model).

    epochs : maximum number of passes over the training data.
    lr, weight_decay : learning rate and L2 weight decay (decoupled for AdamW).
    optimizer : "adam", "adamw", "rmsprop" or "sgd" (Nesterov momentum 0.9).
    scheduler : "plateau" (halve the rate after ``patience // 2`` epochs without
        improvement), "cosine" (cosine decay to lr/100 over ``epochs``) or "none".
    patience : stop after this many epochs without a better validation loss.
    max_time : stop after this many seconds (None = no limit).
    progress : show a progress bar.
    """

    epochs: int = 100
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"
    scheduler: str = "plateau"
    patience: int = 10
    max_time: float | None = None
    progress: bool = True


class Trainer:
    """Run the optimisation of ``model`` (see module docstring)."""

    def __init__(self, model: nn.Module, config: TrainerConfig, device: torch.device) -> None:
        self.model = model
        self.config = config
        self.device = device

    def fit(self, train_batches: Callable[[int], Iterable[Any]],
            valid_batches: Callable[[], Iterable[Any]],
            loss_fn: Callable[[nn.Module, Any], torch.Tensor],
            n_train_batches: int | None = None,
            score_fn: Callable[[nn.Module, Any], torch.Tensor] | None = None,
            valid_fn: Callable[[nn.Module, Any], tuple[torch.Tensor, torch.Tensor]]
            | None = None,
            callbacks: Sequence[Callback] | None = None,
            checkpoint: Checkpoint | None = None,
            ) -> list[dict[str, float]]:
        """Train; returns the history (one dict per epoch: epoch, train_loss, valid_loss,
        [valid_score,] lr, seconds). The model ends with the weights of the best validation
        epoch, judged by ``score_fn`` averaged over the validation batches when given (lower
        is better; it also drives the plateau schedule), else by the validation loss.
        ``valid_fn(module, batch) -> (loss, score)`` computes both from one forward pass
        (it replaces ``loss_fn`` and ``score_fn`` on the validation batches).
        ``callbacks`` (:mod:`starlearn.train.callbacks`) see the start, every epoch's
        history row and the end: one that returns True from ``on_epoch_end`` stops the
        training after that epoch; an exception one raises (a hyper-parameter search's
        pruner) stops it and propagates. With a ``checkpoint`` the state is saved after every
        epoch, and a training whose checkpoint exists continues from it (see
        :mod:`starlearn.train.checkpoint`)."""
        cfg = self.config
        if cfg.scheduler not in ("plateau", "cosine", "none"):
            raise ValueError(f"scheduler must be 'plateau', 'cosine' or 'none', "
                             f"got {cfg.scheduler!r}")
        model = self.model.to(self.device)
        opt = make_optimizer(cfg.optimizer, model.parameters(), cfg.lr, cfg.weight_decay)
        if cfg.scheduler == "plateau":
            sched: Any = torch.optim.lr_scheduler.ReduceLROnPlateau(
                opt, factor=0.5, patience=max(1, cfg.patience // 3))
        elif cfg.scheduler == "cosine":
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.epochs),
                                                               eta_min=cfg.lr / 100)
        else:
            sched = None
        best, best_state, since_best = math.inf, None, 0
        history: list[dict[str, float]] = []
        first, before = 0, 0.0
        saved = checkpoint.restore(model, opt, sched) if checkpoint is not None else None
        if saved is not None:
            first, best, since_best = saved.epoch, saved.best, saved.since_best
            history, before, best_state = saved.history, saved.elapsed, saved.best_state
            if since_best >= cfg.patience or (cfg.max_time is not None
                                              and before > cfg.max_time):
                first = cfg.epochs  # it had stopped; only the saving was left
        start = time.perf_counter() - before
        hooks = list(callbacks or ())
        for hook in hooks:
            hook.on_train_begin(self)
        bar = tqdm(total=cfg.epochs, initial=min(first, cfg.epochs), disable=not cfg.progress,
                   unit="epoch", desc="train")
        for epoch in range(first, cfg.epochs):
            model.train()
            total, count = 0.0, 0
            for batch in train_batches(epoch):
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model, batch)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"training loss became {loss.item()} at epoch "
                                             f"{epoch}; lower the learning rate")
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 10.0)
                opt.step()
                total += float(loss.detach())
                count += 1
            if valid_fn is not None:
                valid, score = self.evaluate(valid_batches, valid_fn)
            else:
                valid = score = self.evaluate(valid_batches, loss_fn)
                if score_fn is not None:
                    score = self.evaluate(valid_batches, score_fn)
            row = {"epoch": epoch, "train_loss": total / max(count, 1), "valid_loss": valid}
            if score_fn is not None or valid_fn is not None:
                row["valid_score"] = score
            lr = opt.param_groups[0]["lr"]
            if sched is not None:
                sched.step(score) if cfg.scheduler == "plateau" else sched.step()
            elapsed = time.perf_counter() - start
            history.append({**row, "lr": lr, "seconds": elapsed})
            stop = [hook.on_epoch_end(epoch, history[-1]) for hook in hooks]
            bar.update(1)
            bar.set_postfix(train=f"{row['train_loss']:.3f}", valid=f"{valid:.3f}")
            # an improvement: 0.1 % of a score (MSE-like, > 0), 1e-4 of a loss (NLL, any sign)
            margin = 1e-3 * abs(best) if "valid_score" in row else 1e-4
            if not math.isfinite(best) or score < best - margin:
                best, since_best = score, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                since_best += 1
            if checkpoint is not None:
                checkpoint.save(model, opt, sched, TrainingState(
                    epoch + 1, best, since_best, history, elapsed, best_state))
            if since_best >= cfg.patience or any(stop):
                break
            if cfg.max_time is not None and elapsed > cfg.max_time:
                break
        bar.close()
        if best_state is not None:
            model.load_state_dict(best_state)
        model.eval()
        for hook in hooks:
            hook.on_train_end(history)
        return history

    @torch.no_grad()
    def evaluate(self, batches: Callable[[], Iterable[Any]],
                 loss_fn: Callable[[nn.Module, Any], Any]) -> Any:
        """Mean of ``loss_fn`` over the batches, in evaluation mode (a float, or a tuple of
        floats when ``loss_fn`` returns a tuple)."""
        self.model.eval()
        totals: list[float] = []
        count = 0
        for batch in batches():
            out = loss_fn(self.model, batch)
            values = [float(v) for v in (out if isinstance(out, tuple) else (out,))]
            totals = values if not totals else [a + b for a, b in zip(totals, values,
                                                                      strict=True)]
            count += 1
        means = [t / max(count, 1) for t in totals] or [0.0]
        return tuple(means) if len(means) > 1 else means[0]
