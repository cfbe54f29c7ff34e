"""The validation split: which training rows selection scores a law on.

Selection must reward extrapolation without ever seeing the test rows, so it
holds out each group's largest-scale *training* runs (by the task's declared
scale features) and fits on the smaller ones.  One such cut is noisy when the
search compares thousands of laws, so there are ``folds`` rolling-origin cuts:
fold 1 fits on the smallest 80% and scores the top 20%, fold 2 fits on the
smallest 60% and scores the next 20%, and so on.  A task with no scale
feature (e.g. a mixture task) uses seeded random held-out subsets instead.

Held-out runs whose target lies far outside the bulk of the training targets
(beyond 3 interquartile ranges of the quartiles, e.g. diverged runs with a
loss of 11 among losses near 2.5) are not scored: they would dominate the
error whatever the law, and a scaling law is not meant to predict them.  The
fence depends on the targets only, never on a law.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tasks import Rows, TrainingTask, largest_scale_mask, random_mask


@dataclass(frozen=True)
class ValidationSplit:
    """How to cut a task's training rows into (fit, validation) pairs."""

    fraction: float = 0.2
    seed: int = 0
    folds: int = 2
    outlier_fence: float | None = 3.0  # in interquartile ranges; None scores every held-out row

    def fold_pairs(self, task: TrainingTask) -> list[tuple[Rows, Rows]]:
        """Every fold's (fit rows, validation rows), all from ``task.train`` only."""
        rows = task.train
        columns = [task.spec.feature_columns.index(c) for c in task.spec.scale]
        typical = self._typical_targets(rows)
        pairs = []
        for fold in range(self.folds):
            if columns:
                inner = largest_scale_mask(rows, columns, self.fraction * fold, min_keep=2) \
                    if fold else np.zeros(len(rows), dtype=bool)
                outer = largest_scale_mask(rows, columns, self.fraction * (fold + 1), min_keep=2)
                held, fit = outer & ~inner, ~outer
            else:
                held = random_mask(rows, self.fraction, self.seed + fold, min_keep=2)
                fit = ~held
            if fold and (not held.any() or _too_few_levels(rows.X[fit], columns)
                         or _same_as_earlier(held, pairs, rows)):
                continue  # a later fold that cannot teach anything new is left out
            scored = held & typical
            pairs.append((rows.select(fit), rows.select(scored if scored.any() else held)))
        return pairs

    def _typical_targets(self, rows: Rows) -> np.ndarray:
        """Rows whose every target lies inside the interquartile fence."""
        if self.outlier_fence is None:
            return np.ones(len(rows), dtype=bool)
        q1, q3 = np.percentile(rows.y, [25, 75], axis=0)
        spread = self.outlier_fence * (q3 - q1)
        return np.all((rows.y >= q1 - spread) & (rows.y <= q3 + spread), axis=1)


def _too_few_levels(X: np.ndarray, columns: list[int], minimum: int = 3) -> bool:
    """Whether some scale feature has under ``minimum`` distinct values among the fit rows."""
    return any(len(np.unique(X[:, c])) < minimum for c in columns)


def _same_as_earlier(held: np.ndarray, pairs: list[tuple[Rows, Rows]], rows: Rows) -> bool:
    return any(len(v) == int(held.sum()) and np.array_equal(v.y, rows.y[held]) for _, v in pairs)
