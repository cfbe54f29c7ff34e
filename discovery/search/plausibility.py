"""Plausible extrapolation: a law whose refit explodes just beyond the runs is not a forecast.

A law can validate well and still leave the data's range one step past the
largest run: a term like ``B/N**alpha`` fitted to ``B = -8e-114, alpha = -11.4``
is invisible on every training run and predicts a loss of −317 at twice the
largest model.  The rolling-origin folds cannot see this (each fold's own fit
behaves); only the refit on every training run does.

The check reads training rows only.  The law is refitted on every training run
(the options the campaign's final refit uses, so it is the very fit a user
gets) and evaluated at the probe points beyond each group's largest runs
(``search.probes``: ×2 and ×4 along each scale axis).  Every prediction there
must be finite and inside a generous band around the fitted targets: for
positive targets, within the targets' own ratio (max / min) ** width beyond
either end, i.e. the data's spread again on each side in log space; otherwise
width × (max − min) beyond either end.  A power law continued a factor 4
stays far inside; a term that explodes or changes sign leaves it.  The width
is fixed a priori (1: the data's own spread once more), not tuned on any
task's figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sld.discovery.search.probes import probe_rows
from sld.evaluators.fitting import FitOptions, LawFitter
from sld.evaluators.formula import Law
from sld.tasks import Rows, TaskSpec

DEFAULT_WIDTH = 1.0


@dataclass(frozen=True)
class PlausibleBand:
    """Per target column, the lowest and highest prediction believable beyond the runs."""

    low: np.ndarray
    high: np.ndarray

    @classmethod
    def around(cls, y: np.ndarray, width: float = DEFAULT_WIDTH) -> "PlausibleBand":
        """The band around targets ``y`` (runs × target columns), ``width`` spreads beyond either end."""
        y = np.asarray(y, dtype=float).reshape(len(y), -1)
        lowest, highest = np.nanmin(y, axis=0), np.nanmax(y, axis=0)
        positive = lowest > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(positive, (highest / np.where(positive, lowest, 1.0)) ** width, 1.0)
        span = width * (highest - lowest)
        return cls(low=np.where(positive, lowest / ratio, lowest - span),
                   high=np.where(positive, highest * ratio, highest + span))

    def problem(self, predictions: np.ndarray) -> str | None:
        """None if every prediction (points × target columns) lies in the band, else what is wrong."""
        predictions = np.asarray(predictions, dtype=float).reshape(len(predictions), -1)
        finite = np.isfinite(predictions)
        if not finite.all():
            return f"predicts no finite value at {int((~finite.all(axis=1)).sum())} of {len(predictions)} " \
                   "probe points beyond the runs"
        outside = (predictions < self.low) | (predictions > self.high)
        if not outside.any():
            return None
        point, column = np.argwhere(outside)[0]
        return (f"predicts {predictions[point, column]:.4g} beyond the runs ({int(outside.any(axis=1).sum())} of "
                f"{len(predictions)} probe points outside the plausible {self.low[column]:.4g} to "
                f"{self.high[column]:.4g})")


@dataclass(frozen=True)
class ProbeForecast:
    """A law refitted on every training run, read at the probe points: its predictions and verdict."""

    predictions: np.ndarray | None  # probe points × target columns; None when the refit failed
    problem: str | None  # None: plausible (``fitted_problem``)
    fitter: LawFitter | None = None  # the refit itself, when it worked: the campaign's final refit reuses it


def probe_forecast(law: Law, spec: TaskSpec, train: Rows, options: FitOptions,
                   width: float = DEFAULT_WIDTH) -> ProbeForecast:
    """Refit ``law`` on ``train`` and read it at ``probe_rows``: what the final choice weighs beyond the runs."""
    try:
        fitter = LawFitter(law, options).fit(train)
        at_probes = fitter.predict(probe_rows(spec, train))
    except Exception as err:  # a refit that crashes is a law with no forecast, not a crashed campaign
        return ProbeForecast(None, f"its refit on every training run failed: {type(err).__name__}: {err}"[:300])
    problem = fitted_problem(fitter, train, at_probes, width)
    if fitter.failed_:
        return ProbeForecast(None, problem)
    return ProbeForecast(at_probes, problem, fitter)


def fitted_problem(fitter: LawFitter, train: Rows, at_probes: np.ndarray, width: float = DEFAULT_WIDTH) -> str | None:
    """The verdict on a law already fitted on ``train``, from its predictions ``at_probes``."""
    if fitter.failed_:
        return f"its refit on every training run failed: {fitter.failure_reason_}"[:300]
    return PlausibleBand.around(train.y[fitter.fitted_mask_], width).problem(at_probes)
