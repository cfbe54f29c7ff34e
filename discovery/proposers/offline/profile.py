"""What the offline proposer knows about a task's features: sign, range and role.

Which building blocks make sense depends on each feature's values: ``x**-a``
and ``log(x)`` need ``x > 0``; a mixture proportion can be 0, so it gets
``exp(-b*x)`` or a shifted power; a log-compute feature can be negative, so
it gets polynomials and exponentials.  The kind comes from the training rows
when the caller has them (training rows only, never test rows) and otherwise
from the spec's words (unit "fraction", "log" in the unit or meaning).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import sympy

from sld.tasks import Rows, TaskSpec

FeatureKind = Literal["positive", "nonnegative", "real"]

_LOG_WORDS = ("log",)
_FRACTION_WORDS = ("fraction", "proportion", "share", "ratio", "probability")


@dataclass(frozen=True)
class FeatureInfo:
    """One feature as a law sees it: its symbol, value kind and whether it measures scale."""

    symbol: sympy.Symbol
    kind: FeatureKind
    is_scale: bool

    @property
    def name(self) -> str:
        return self.symbol.name


@dataclass(frozen=True)
class TaskProfile:
    """The spec-level facts the library and the mutations build on."""

    spec: TaskSpec
    features: tuple[FeatureInfo, ...]
    n_targets: int
    budget: int

    @property
    def scale_features(self) -> tuple[FeatureInfo, ...]:
        """Scale features, or every feature when the task names none (e.g. mixtures)."""
        scale = tuple(f for f in self.features if f.is_scale)
        return scale or self.features

    @property
    def other_features(self) -> tuple[FeatureInfo, ...]:
        """Features that are not scale features (hyperparameters, repetitions, ...)."""
        scale = {f.name for f in self.scale_features}
        return tuple(f for f in self.features if f.name not in scale)

    @property
    def positive_features(self) -> tuple[FeatureInfo, ...]:
        return tuple(f for f in self.features if f.kind == "positive")


def profile_task(spec: TaskSpec, train: Rows | None = None, max_params: int = 24) -> TaskProfile:
    """Profile ``spec``'s features, from ``train`` rows when given, else from the spec's words.

    ``max_params`` is the parameter limit used when the task sets no budget
    (the parser's default limit).
    """
    features = []
    for index, feature in enumerate(spec.features):
        if train is not None and len(train) > 0:
            kind = _kind_from_values(train.X[:, index])
        else:
            kind = _kind_from_words(f"{feature.column} {feature.unit} {feature.meaning}")
        features.append(FeatureInfo(
            symbol=sympy.Symbol(feature.symbol, real=True),
            kind=kind,
            is_scale=feature.column in spec.scale,
        ))
    budget = spec.param_budget if spec.param_budget is not None else max_params
    return TaskProfile(spec=spec, features=tuple(features), n_targets=len(spec.targets), budget=budget)


def _kind_from_values(values: np.ndarray) -> FeatureKind:
    low = float(np.min(values))
    if low > 0:
        return "positive"
    return "nonnegative" if low == 0 else "real"


def _kind_from_words(text: str) -> FeatureKind:
    lowered = text.lower()
    if any(word in lowered for word in _LOG_WORDS):
        return "real"
    if any(word in lowered for word in _FRACTION_WORDS):
        return "nonnegative"
    return "positive"
