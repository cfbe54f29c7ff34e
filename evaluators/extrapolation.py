"""Where a point lies against the training runs, and why a law is not finite there.

A prediction far beyond the largest training run is an extrapolation the runs
do not vouch for; ``outside_training_range`` says, per feature, by what factor
a point lies beyond the largest (or below the smallest) training value of its
group, so a command can flag it ("×40 beyond the largest training N").

A law that takes a log or a fractional power of a feature is not finite at a
non-positive value of it.  Rather than parse the formula for such operations,
``culprit_feature`` finds out by evaluating: it moves one feature at a time to
a training value and reports the one whose move makes the prediction finite.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OutsideRange:
    """A point's value of one feature beyond its group's training range."""

    feature: str
    value: float
    bound: float  # the largest (side "above") or smallest (side "below") training value
    side: str  # "above" or "below"
    factor: float | None  # value / bound (or its inverse below); None where a ratio means nothing

    def text(self) -> str:
        where = "beyond the largest" if self.side == "above" else "below the smallest"
        how_far = f"×{self.factor:.3g} " if self.factor is not None else ""
        return f"{how_far}{where} training {self.feature} ({self.bound:.3g})"

    def to_dict(self) -> dict:
        return {"feature": self.feature, "value": self.value, "bound": self.bound, "side": self.side,
                "factor": self.factor}


def outside_training_range(train_X: np.ndarray, point: np.ndarray, symbols: Sequence[str]) -> list[OutsideRange]:
    """Each feature of ``point`` that lies outside the range of ``train_X`` (one group's runs)."""
    flags = []
    for j, symbol in enumerate(symbols):
        low, high, value = float(np.min(train_X[:, j])), float(np.max(train_X[:, j])), float(point[j])
        if value > high:
            factor = value / high if high > 0 else None
            flags.append(OutsideRange(symbol, value, high, "above", factor))
        elif value < low:
            factor = low / value if value > 0 else None
            flags.append(OutsideRange(symbol, value, low, "below", factor))
    return flags


def culprit_feature(predict: Callable[[np.ndarray], np.ndarray], point: np.ndarray, reference: np.ndarray,
                    symbols: Sequence[str]) -> str | None:
    """The feature whose value makes ``predict`` not finite at ``point``, or None if no single one does.

    ``predict`` maps an (n × features) matrix to predictions (n × outputs);
    ``reference`` is a training run of the same group, where the law is finite.
    """
    probes = np.repeat(point[None, :], len(symbols), axis=0)
    probes[np.arange(len(symbols)), np.arange(len(symbols))] = reference
    finite = np.isfinite(predict(probes)).all(axis=1)
    culprits = [symbols[j] for j in np.flatnonzero(finite)]
    return culprits[0] if len(culprits) == 1 else None
