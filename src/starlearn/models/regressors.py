"""Regression networks of the StarNet architecture table (Fabbro et al. 2018, MNRAS 475, 2978).

Every network maps a batch of spectra ``x`` of shape (batch, channels, n_pixels) (channel 0
the standardised flux, optional channel 1 the bad-pixel mask) to a Gaussian per label: a
mean and a log-variance, each (batch, n_labels), in standardised label units.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from starlearn.models.layers import activation as make_activation
from starlearn.models.registry import register_model

__all__ = ["ConvRegressor", "DenseRegressor", "GaussianHead"]

_LOG_VAR_MIN, _LOG_VAR_MAX = -14.0, 8.0


class GaussianHead(nn.Module):
    """Linear layer to a mean and a log-variance per label (log-variance soft-clamped)."""

    def __init__(self, n_in: int, n_labels: int) -> None:
        super().__init__()
        self.n_labels = n_labels
        self.linear = nn.Linear(n_in, 2 * n_labels)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.linear(h)
        mean, raw = out[:, : self.n_labels], out[:, self.n_labels:]
        span = _LOG_VAR_MAX - _LOG_VAR_MIN
        log_var = _LOG_VAR_MIN + span * torch.sigmoid(raw / span * 4 + 1.0)
        return mean, log_var


def _same_padding(kernel: int) -> nn.ConstantPad1d:
    """Zero padding that keeps the length, as TensorFlow's "same" (extra pixel on the right)."""
    return nn.ConstantPad1d(((kernel - 1) // 2, kernel // 2), 0.0)


def _dense_stack(n_in: int, widths: Sequence[int], dropout: float,
                 act: str = "relu") -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Linear(n_in, int(width)), make_activation(act)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        n_in = int(width)
    return nn.Sequential(*layers), n_in


class DenseRegressor(nn.Module):
    """Fully connected network: flatten -> [Linear -> ReLU] x len(hidden) -> Gaussian head.

    Parameters
    ----------
    n_pix : int
        Input length (pixels).
    n_labels : int
    hidden : sequence of int
        Widths of the hidden layers (``shallow-nn``: 512, 128; ``deep-nn``: 2048, 1024,
        512, 256, 128, 32).
    in_channels : int
        1 (flux) or 2 (flux and mask).
    dropout : float
        Dropout after each hidden layer (0 = none, as in the paper).
    activation : str
        "relu" (the paper's), "elu", "leaky_relu" or "gelu".
    """

    def __init__(self, n_pix: int, n_labels: int, *, hidden: Sequence[int] = (512, 128),
                 in_channels: int = 1, dropout: float = 0.0, activation: str = "relu") -> None:
        super().__init__()
        act = activation
        self.body, width = _dense_stack(n_pix * in_channels, hidden, dropout, act)
        self.head = GaussianHead(width, n_labels)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer's activations (batch, width)."""
        return self.body(x.flatten(1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.embed(x))


class ConvRegressor(nn.Module):
    """1-D convolutional network: [Conv1d -> ReLU] blocks with max-pooling, then dense.

    Parameters
    ----------
    n_pix : int
        Input length (pixels); any length works (the flattened size is computed).
    n_labels : int
    filters : sequence of int
        Filters of each convolution (StarNet: 4, 16).
    kernel : int
        Kernel length in pixels (StarNet: 8); zero "same" padding keeps the length.
    pool : int
        Max-pooling window and stride (StarNet: 4).
    pool_after : sequence of int
        Indices of the convolutions followed by pooling (StarNet: after the last).
    dense : sequence of int
        Widths of the dense layers (StarNet: 256, 128).
    in_channels : int
        1 (flux) or 2 (flux and mask).
    dropout : float
        Dropout after each dense layer.
    activation : str
        "relu" (the paper's), "elu" or "leaky_relu" (monotonic, so pooling before the
        activation is exact), or "gelu".
    """

    def __init__(self, n_pix: int, n_labels: int, *, filters: Sequence[int] = (4, 16),
                 kernel: int = 8, pool: int = 4, pool_after: Sequence[int] | None = None,
                 dense: Sequence[int] = (256, 128), in_channels: int = 1,
                 dropout: float = 0.0, activation: str = "relu") -> None:
        super().__init__()
        act = activation
        pool_after = (len(filters) - 1,) if pool_after is None else tuple(pool_after)
        layers: list[nn.Module] = []
        channels, length = in_channels, n_pix
        for i, n_filters in enumerate(filters):
            layers += [_same_padding(int(kernel)),
                       nn.Conv1d(channels, int(n_filters), int(kernel))]
            channels = int(n_filters)
            if i in pool_after and pool > 1:
                # max-pooling commutes with ReLU; pooling first applies ReLU to 1/pool of
                # the values (same numbers, same parameter names)
                layers.append(nn.MaxPool1d(int(pool)))
                length //= int(pool)
            layers.append(make_activation(act, inplace=True))
        if length < 1:
            raise ValueError(f"ConvRegressor: {n_pix} pixels are too few for the pooling "
                             f"(pool={pool} after convolutions {list(pool_after)})")
        self.features = nn.Sequential(*layers)
        self.body, width = _dense_stack(channels * length, dense, dropout, act)
        self.head = GaussianHead(width, n_labels)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer's activations (batch, width)."""
        return self.body(self.features(x).flatten(1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.embed(x))


# the StarNet architecture table (Fabbro et al. 2018)
register_model("shallow-nn", DenseRegressor, task="regress", hidden=(512, 128))
register_model("deep-nn", DenseRegressor, task="regress",
               hidden=(2048, 1024, 512, 256, 128, 32))
register_model("shallow-cnn", ConvRegressor, task="regress", filters=(16,), kernel=8, pool=4,
               dense=(128,))
register_model("starnet", ConvRegressor, task="regress", filters=(4, 16), kernel=8, pool=4,
               dense=(256, 128))
register_model("deep-cnn", ConvRegressor, task="regress", filters=(16, 32, 32, 64, 64),
               kernel=8, pool=4, pool_after=(1, 3, 4), dense=(1024, 512, 256))
