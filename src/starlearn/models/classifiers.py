"""Spectrum classifiers: the VGG-like 1-D network of the emission-line-star work.

Podsztavek et al. (Ondřejov H-alpha spectra, applied to LAMOST) used a VGG-style network on
140-pixel windows around H-alpha: blocks of 3-pixel convolutions with ReLU and max-pooling,
then two dense layers of 512 with dropout and a softmax over the classes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from starlearn.models.layers import activation as make_activation
from starlearn.models.registry import register_model

__all__ = ["VGG1D"]


class VGG1D(nn.Module):
    """VGG-like 1-D CNN: [conv-ReLU x n, max-pool 2] per block, then dense layers.

    ``forward`` returns class logits (batch, n_classes); the softmax is applied by the loss
    and by ``predict_proba``.

    Parameters
    ----------
    n_pix : int
        Input length (pixels); any length the pooling leaves at least 1 pixel of.
    n_classes : int
    blocks : sequence of sequences of int
        Filters of the convolutions in each block (default: (64, 64), (128, 128),
        (256, 256), i.e. conv3-64 x2, pool, conv3-128 x2, pool, conv3-256 x2, pool).
    kernel : int
        Odd kernel length in pixels ("same" zero padding).
    dense : sequence of int
        Widths of the dense layers (default 512, 512).
    dropout : float
        Dropout after each dense layer.
    in_channels : int
        1 (flux) or 2 (flux and mask).
    activation : str
        "relu" (the paper's), "elu", "leaky_relu" or "gelu".
    """

    def __init__(self, n_pix: int, n_classes: int, *,
                 blocks: Sequence[Sequence[int]] = ((64, 64), (128, 128), (256, 256)),
                 kernel: int = 3, dense: Sequence[int] = (512, 512), dropout: float = 0.5,
                 in_channels: int = 1, activation: str = "relu") -> None:
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError(f"VGG1D: kernel must be odd, got {kernel}")
        if n_classes < 2:
            raise ValueError(f"VGG1D: need at least 2 classes, got {n_classes}")
        layers: list[nn.Module] = []
        channels, length = in_channels, n_pix
        for block in blocks:
            for n_filters in block:
                layers += [nn.Conv1d(channels, int(n_filters), int(kernel),
                                     padding=int(kernel) // 2),
                           make_activation(activation, inplace=True)]
                channels = int(n_filters)
            layers.append(nn.MaxPool1d(2))
            length //= 2
        if length < 1:
            raise ValueError(f"VGG1D: {n_pix} pixels are too few for {len(blocks)} "
                             "pooling steps")
        self.features = nn.Sequential(*layers)
        body: list[nn.Module] = []
        width = channels * length
        for n_out in dense:
            body += [nn.Linear(width, int(n_out)), make_activation(activation, inplace=True)]
            if dropout > 0:
                body.append(nn.Dropout(dropout))
            width = int(n_out)
        self.body = nn.Sequential(*body)
        self.head = nn.Linear(width, n_classes)
        self.n_features = width

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer's activations (batch, width): the learned features."""
        return self.body(self.features(x).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


# emission-line stars (Podsztavek et al.): VGG-like 1-D CNN on H-alpha windows
register_model("vgg1d", VGG1D, task="classify", blocks=((64, 64), (128, 128), (256, 256)),
               kernel=3, dense=(512, 512), dropout=0.5)
