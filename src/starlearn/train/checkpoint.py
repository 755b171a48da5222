"""Training checkpoints: a killed training resumes where it stopped, exactly.

After every epoch the :class:`~starlearn.train.trainer.Trainer` writes one safetensors file
(temporary name, then rename, so a kill leaves the previous epoch's file whole) holding the
network's weights, the best weights so far, the optimiser's tensors and torch's random
state; the rest (epoch, history, early-stopping counters, optimiser settings, learning-rate
schedule, the numpy random generators that draw batches and noise) is JSON in the file's
metadata. No pickle. Resuming restores all of it, so the resumed training takes the same
steps as one that was never interrupted (on the same device and library versions; CUDA's
random state is saved when a GPU is present).

A checkpoint carries a *key* that identifies the training (the estimator's settings and the
data's size and grid); resuming with another key is refused, so a checkpoint is never
continued with other data or settings.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from starlearn._atomic import atomic_write

__all__ = ["CHECKPOINT_VERSION", "Checkpoint", "TrainingState"]

CHECKPOINT_VERSION = 1


@dataclass
class TrainingState:
    """What the Trainer needs to continue: the next epoch and its bookkeeping."""

    epoch: int
    best: float
    since_best: int
    history: list[dict[str, float]]
    elapsed: float
    best_state: dict[str, torch.Tensor] | None


@dataclass
class Checkpoint:
    """Where and what to checkpoint.

    Parameters
    ----------
    path : the checkpoint file (safetensors).
    key : identifies the training; a file with another key is refused on resume.
    rngs : numpy generators whose state is saved and restored with the training (the
        estimator's batch and noise generators).

    A training given a checkpoint whose file exists continues from it (whether to allow
    that is the caller's decision: ``starlearn train`` asks for ``--resume``).
    """

    path: Path
    key: str
    rngs: Sequence[np.random.Generator] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    # ------------------------------------------------------------------ writing
    def save(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
             scheduler: Any, state: TrainingState) -> None:
        """Write the state after an epoch (atomically)."""
        from safetensors.torch import save_file

        tensors: dict[str, torch.Tensor] = {}
        for name, value in model.state_dict().items():
            tensors[f"model/{name}"] = value.detach().cpu().contiguous()
        for name, value in (state.best_state or {}).items():
            tensors[f"best/{name}"] = value.detach().cpu().contiguous()
        opt = optimizer.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for index, values in opt["state"].items():
            for name, value in values.items():
                if torch.is_tensor(value):
                    tensors[f"optimizer/{index}/{name}"] = value.detach().cpu().contiguous()
                else:
                    scalars.setdefault(str(index), {})[name] = value
        tensors["rng/torch"] = torch.get_rng_state()
        if torch.cuda.is_available():
            for i, cuda_state in enumerate(torch.cuda.get_rng_state_all()):
                tensors[f"rng/cuda/{i}"] = cuda_state
        meta = {
            "version": CHECKPOINT_VERSION, "key": self.key, "epoch": state.epoch,
            "best": state.best, "since_best": state.since_best, "history": state.history,
            "elapsed": state.elapsed, "has_best": state.best_state is not None,
            "optimizer_groups": opt["param_groups"], "optimizer_scalars": scalars,
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "numpy_rngs": [g.bit_generator.state for g in self.rngs],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, lambda tmp: save_file(
            tensors, str(tmp), metadata={"starlearn_checkpoint": json.dumps(meta)}))

    def remove(self) -> None:
        """Delete the file (the training finished and its result was saved)."""
        self.path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ reading
    def restore(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                scheduler: Any) -> TrainingState | None:
        """Load the saved state into ``model``, ``optimizer``, ``scheduler``, torch's and the
        generators' random state; returns where to continue, or None when there is nothing
        to resume."""
        from safetensors import safe_open

        if not self.path.exists():
            return None
        try:
            with safe_open(str(self.path), framework="pt") as f:
                raw = (f.metadata() or {}).get("starlearn_checkpoint")
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as err:
            raise ValueError(f"{self.path}: not a readable training checkpoint ({err})") \
                from None
        if raw is None:
            raise ValueError(f"{self.path}: not a starlearn training checkpoint")
        meta = json.loads(raw)
        if meta.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"{self.path}: checkpoint version {meta.get('version')}, this "
                             f"starlearn reads version {CHECKPOINT_VERSION}")
        if meta["key"] != self.key:
            raise ValueError(f"{self.path}: the checkpoint is of another training (other "
                             "data or settings); remove it to start this one")
        if len(meta["numpy_rngs"]) != len(self.rngs):
            raise ValueError(f"{self.path}: checkpoint has {len(meta['numpy_rngs'])} random "
                             f"generators, this training {len(self.rngs)}")
        model.load_state_dict(_strip(tensors, "model/"))
        state: dict[int, dict[str, Any]] = {}
        for name, value in tensors.items():
            if name.startswith("optimizer/"):
                _, index, key = name.split("/", 2)
                state.setdefault(int(index), {})[key] = value
        for index, values in meta["optimizer_scalars"].items():
            state.setdefault(int(index), {}).update(values)
        optimizer.load_state_dict({"state": state, "param_groups": meta["optimizer_groups"]})
        if scheduler is not None and meta["scheduler"] is not None:
            scheduler.load_state_dict(meta["scheduler"])
        torch.set_rng_state(tensors["rng/torch"])
        cuda_states = [tensors[f"rng/cuda/{i}"] for i in range(len(tensors))
                       if f"rng/cuda/{i}" in tensors]
        if cuda_states and torch.cuda.is_available() \
                and len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
        for generator, saved in zip(self.rngs, meta["numpy_rngs"], strict=True):
            generator.bit_generator.state = saved
        return TrainingState(epoch=int(meta["epoch"]), best=float(meta["best"]),
                             since_best=int(meta["since_best"]), history=meta["history"],
                             elapsed=float(meta["elapsed"]),
                             best_state=_strip(tensors, "best/") if meta["has_best"] else None)


def _strip(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
