"""Small building blocks shared by the networks."""

from __future__ import annotations

from torch import nn

__all__ = ["ACTIVATIONS", "activation"]

ACTIVATIONS = ("relu", "elu", "leaky_relu", "gelu")
"""Activation functions a network config may name (all monotonic non-decreasing except gelu,
so max-pooling commutes with the first three)."""


def activation(name: str = "relu", inplace: bool = False) -> nn.Module:
    """The activation layer called ``name`` (see :data:`ACTIVATIONS`)."""
    if name == "relu":
        return nn.ReLU(inplace=inplace)
    if name == "elu":
        return nn.ELU(inplace=inplace)
    if name == "leaky_relu":
        return nn.LeakyReLU(0.01, inplace=inplace)
    if name == "gelu":
        return nn.GELU()
    raise ValueError(f"unknown activation {name!r}; known: {ACTIVATIONS}")
