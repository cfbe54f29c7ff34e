"""Extrapolation metrics, exactly as SLDBench computes them.

The rows of all groups are pooled.  Per output dimension, NMSE = MSE divided
by the (population) variance of the true targets and NMAE = MAE divided by
their mean absolute deviation; both are averaged over outputs, and
R² = 1 − NMSE.  A law whose predictions are not all finite has failed: its
R² is undefined and counts as −1 once clipped to [−1, 1] for averages.

Where the scored targets of an output have no spread (one held-out run, or a
target saturated at one value), NMSE and NMAE are undefined; with
``reference`` given (validation passes the training targets), that output is
normalised by the reference's spread instead, so that a fold of one run still
ranks laws by their error.  Test metrics are never given one.

``scale_point_nmse`` scores held-out runs at each scale point they cover, as a
test split of one scale point (the next model, swept over its learning rate or
its experts) is scored: there R² is relative to the spread *at* that scale, so
a law that gets the level right but not how the other settings move it scores
near zero, however well it would rank across scales.  Validation may use it
(``ValidationSplit.per_scale_point``); test metrics never do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

FAILED_R2 = -1.0


@dataclass(frozen=True)
class Metrics:
    """Scores of predictions against true targets on one set of rows."""

    r2: float
    nmse: float
    nmae: float
    mse: float
    mae: float
    n: int
    failed: bool = False
    reason: str = ""
    per_group: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def clipped_r2(self) -> float:
        """R² clipped to [−1, 1], with a failure counted as −1 (SLDBench's averaging rule)."""
        if self.failed or not math.isfinite(self.r2):
            return FAILED_R2
        return float(min(1.0, max(FAILED_R2, self.r2)))

    def to_dict(self, with_groups: bool = True) -> dict:
        out = {
            "r2": self.r2, "r2_clipped": self.clipped_r2, "nmse": self.nmse, "nmae": self.nmae,
            "mse": self.mse, "mae": self.mae, "n": self.n, "failed": self.failed,
        }
        if self.reason:
            out["reason"] = self.reason
        if with_groups and self.per_group:
            out["per_group"] = self.per_group
        return out

    @classmethod
    def failure(cls, n: int, reason: str) -> "Metrics":
        nan = float("nan")
        return cls(r2=nan, nmse=nan, nmae=nan, mse=nan, mae=nan, n=n, failed=True, reason=reason)


def score(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray | None = None,
          reference: np.ndarray | None = None) -> Metrics:
    """SLDBench metrics of ``y_pred`` against ``y_true`` (both n × outputs, or n).

    ``reference``: targets (m × outputs) whose spread normalises an output that
    has none in ``y_true`` (see the module docstring).
    """
    y_true, y_pred = _as_matrix(y_true), _as_matrix(y_pred)
    n = len(y_true)
    if y_pred.shape != y_true.shape:
        return Metrics.failure(n, f"predictions have shape {y_pred.shape}, targets {y_true.shape}")
    if n == 0:
        return Metrics.failure(0, "no rows to score")
    if not np.all(np.isfinite(y_pred)):
        bad = int(np.sum(~np.all(np.isfinite(y_pred), axis=1)))
        return Metrics.failure(n, f"the law predicts NaN or inf on {bad} of {n} rows")
    with np.errstate(all="ignore"):  # a wild law overflows to inf, which the caller sees as a poor score
        return _finite_scores(y_true, y_pred, groups, None if reference is None else _as_matrix(reference))


def _spread(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per output: the population variance and the mean absolute deviation."""
    return np.var(y, axis=0), np.mean(np.abs(y - y.mean(axis=0)), axis=0)


def _finite_scores(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray | None,
                   reference: np.ndarray | None) -> Metrics:
    n = len(y_true)
    error = y_pred - y_true
    mse = np.mean(error**2, axis=0)
    mae = np.mean(np.abs(error), axis=0)
    variance, mad = _spread(y_true)
    if reference is not None and len(reference) and np.any(variance == 0):
        flat = variance == 0
        reference_variance, reference_mad = _spread(reference)
        variance, mad = np.where(flat, reference_variance, variance), np.where(flat, reference_mad, mad)
    nmse = float(np.mean(mse / variance))
    nmae = float(np.mean(mae / mad))
    per_group = {}
    if groups is not None:
        for group in dict.fromkeys(np.asarray(groups).tolist()):
            rows = np.asarray(groups) == group
            per_group[str(group)] = {
                "n": int(rows.sum()),
                "mse": float(np.mean(error[rows] ** 2)),
                "mae": float(np.mean(np.abs(error[rows]))),
            }
    return Metrics(
        r2=1.0 - nmse, nmse=nmse, nmae=nmae, mse=float(np.mean(mse)), mae=float(np.mean(mae)),
        n=n, per_group=per_group,
    )


MIN_SCALE_POINT_RUNS = 4  # fewer held-out runs at one scale point give no spread worth normalising by


def scale_point_nmse(y_true: np.ndarray, y_pred: np.ndarray, points: np.ndarray,
                     reference: np.ndarray | None = None, min_runs: int = MIN_SCALE_POINT_RUNS) -> float:
    """NMSE with each scale point of at least ``min_runs`` runs normalised by its own spread.

    ``points`` labels each row's scale point (its group and scale features).
    A point with ``min_runs`` runs or more whose targets vary is scored as its
    own test split (its MSE over its variance, per output); the other rows are
    pooled and scored as ``score`` would.  The result is the row-weighted mean,
    so a task whose runs each sit at their own scale point scores as before.
    Predictions must be finite (``score`` reports the failure otherwise).
    """
    y_true, y_pred = _as_matrix(y_true), _as_matrix(y_pred)
    points = np.asarray(points)
    labels, counts = np.unique(points, return_counts=True)
    own = np.zeros(len(points), dtype=bool)
    total = 0.0
    for label, count in zip(labels, counts):
        rows = points == label
        variance = np.var(y_true[rows], axis=0)
        if count >= min_runs and np.all(variance > 0):
            own |= rows
            total += count * float(np.mean(np.mean((y_pred[rows] - y_true[rows]) ** 2, axis=0) / variance))
    if own.any() and not own.all():
        total += (~own).sum() * score(y_true[~own], y_pred[~own], reference=reference).nmse
    elif not own.any():
        return score(y_true, y_pred, reference=reference).nmse
    return total / len(points)


def _as_matrix(values: np.ndarray) -> np.ndarray:
    """n × outputs (a plain vector is one output); also for n = 0, where reshape(0, -1) fails."""
    values = np.asarray(values, dtype=float)
    return values[:, None] if values.ndim == 1 else values
