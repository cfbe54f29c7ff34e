"""The ensemble forecast: the median prediction of a campaign's best laws, beside its one chosen law.

A user who wants the best forecast rather than one formula can take the
elementwise median of the predictions of the ``size`` best laws by validation
score (each refitted on all training rows), with the spread between them
(lowest and highest) as a warning of where they disagree.  The median is
robust to one law that alone explodes or flattens beyond the data, which is
the failure a single choice risks.  Which laws enter uses training rows only;
test rows, when a report scores the ensemble, are only predicted.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from sld.evaluators.fitting import FitOptions, LawFitter
from sld.evaluators.formula import parse_law
from sld.evaluators import metrics
from sld.tasks import Rows, TaskSpec

DEFAULT_SIZE = 5


@dataclass(frozen=True)
class EnsembleForecast:
    """Median and range of several fitted laws' predictions on some rows (n × targets each)."""

    median: np.ndarray
    low: np.ndarray
    high: np.ndarray


class Ensemble:
    """Several laws, each fitted per group on the same rows; predicts their median.

    scikit-learn style: construct with the formulas, ``fit(rows)``, then
    ``predict(rows)``.  A law that fails to fit, or predicts NaN on a row, is
    left out of that row's median (a row no law predicts stays NaN).
    """

    def __init__(self, formulas: Sequence[str], spec: TaskSpec, options: FitOptions | None = None) -> None:
        self.formulas = tuple(formulas)
        self.spec = spec
        self.options = options or FitOptions()

    def fit(self, rows: Rows, fitted: Mapping[str, LawFitter] | None = None) -> "Ensemble":
        """Fit every law on ``rows``; ``fitted``: laws already fitted on them with ``options``, by law key."""
        fitted = fitted or {}
        laws = [parse_law(f, self.spec) for f in self.formulas]
        self.fitters_ = [fitted[law.key] if law.key in fitted else LawFitter(law, self.options).fit(rows)
                         for law in laws]
        return self

    def forecast(self, rows: Rows) -> EnsembleForecast:
        stacked = np.stack([fitter.predict(rows) for fitter in self.fitters_])  # (laws, n, targets)
        stacked = np.where(np.isfinite(stacked), stacked, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a row no law predicts stays NaN
            return EnsembleForecast(np.nanmedian(stacked, axis=0), np.nanmin(stacked, axis=0),
                                    np.nanmax(stacked, axis=0))

    def predict(self, rows: Rows) -> np.ndarray:
        return self.forecast(rows).median

    def score(self, rows: Rows) -> metrics.Metrics:
        """SLDBench metrics of the median prediction on ``rows``."""
        return metrics.score(rows.y, self.predict(rows), rows.groups)
