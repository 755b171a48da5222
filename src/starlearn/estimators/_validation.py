"""Declarative parameter checks for the estimators (the shape of scikit-learn's
``_parameter_constraints``): each estimator class lists, per constructor parameter, what a
valid value is; ``fit`` checks them all before any work and names the first bad one.

>>> from starlearn.estimators._validation import Integer, OneOf, check_params
>>> check_params("Net", {"epochs": 0}, {"epochs": [Integer(1)]})
Traceback (most recent call last):
...
ValueError: Net: epochs must be an integer >= 1, got 0
>>> check_params("Net", {"optimizer": "adam"}, {"optimizer": [OneOf(("adam", "sgd"))]})
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Boolean", "Constraint", "Integer", "OneOf", "Real", "check_params"]


class Constraint:
    """One kind of valid value: ``accepts(value)`` and a phrase for the error message."""

    def accepts(self, value: Any) -> bool:  # pragma: no cover - subclasses
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - subclasses
        raise NotImplementedError


@dataclass(frozen=True)
class Integer(Constraint):
    """An integer (not a bool) in ``[low, high]`` (``high`` None: no upper bound)."""

    low: int
    high: int | None = None

    def accepts(self, value: Any) -> bool:
        return (isinstance(value, (int, np.integer)) and not isinstance(value, bool)
                and value >= self.low and (self.high is None or value <= self.high))

    def describe(self) -> str:
        upper = f" and <= {self.high}" if self.high is not None else ""
        return f"an integer >= {self.low}{upper}"


@dataclass(frozen=True)
class Real(Constraint):
    """A finite real number between ``low`` and ``high``; ``closed`` says which ends
    belong: "both", "left" ([low, high)), "right" ((low, high]) or "neither"."""

    low: float = -np.inf
    high: float = np.inf
    closed: str = "both"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            return False
        value = float(value)
        if not np.isfinite(value):
            return False
        left = value >= self.low if self.closed in ("both", "left") else value > self.low
        right = value <= self.high if self.closed in ("both", "right") else value < self.high
        return left and right

    def describe(self) -> str:
        if np.isinf(self.high):
            return f"a number {'>=' if self.closed in ('both', 'left') else '>'} {self.low:g}"
        lo = "[" if self.closed in ("both", "left") else "("
        hi = "]" if self.closed in ("both", "right") else ")"
        return f"in {lo}{self.low:g}, {self.high:g}{hi}"


@dataclass(frozen=True)
class OneOf(Constraint):
    """One of a set of values; ``values`` may be a callable giving them (e.g. the model
    names registered for a task, looked up when the check runs)."""

    values: Sequence[Any] | Callable[[], Iterable[Any]]

    def options(self) -> list[Any]:
        return list(self.values() if callable(self.values) else self.values)

    def accepts(self, value: Any) -> bool:
        try:
            return value in self.options()
        except TypeError:  # an unhashable value compared with strings
            return False

    def describe(self) -> str:
        return f"one of {self.options()}"


@dataclass(frozen=True)
class Boolean(Constraint):
    """True or False (numpy booleans included)."""

    def accepts(self, value: Any) -> bool:
        return isinstance(value, (bool, np.bool_))

    def describe(self) -> str:
        return "True or False"


def check_params(owner: str, params: Mapping[str, Any],
                 constraints: Mapping[str, Sequence[Constraint | type | None]]) -> None:
    """Raise ``ValueError("<owner>: <name> must be <...>, got <value>")`` for the first
    parameter whose value none of its constraints accepts. A constraint is a
    :class:`Constraint`, ``None`` (the value None is valid) or a type (any instance is
    valid, e.g. ``dict``)."""
    for name, allowed in constraints.items():
        if name not in params:
            continue
        value = params[name]
        ok = False
        for rule in allowed:
            if rule is None:
                ok = value is None
            elif isinstance(rule, type):
                ok = isinstance(value, rule)
            else:
                ok = rule.accepts(value)
            if ok:
                break
        if not ok:
            phrases = [("None" if rule is None else rule.__name__ if isinstance(rule, type)
                        else rule.describe()) for rule in allowed]
            raise ValueError(f"{owner}: {name} must be {' or '.join(phrases)}, got {value!r}")
