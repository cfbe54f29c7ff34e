"""The validation split: which training rows selection scores a law on.

Selection must reward extrapolation without ever seeing the test rows, so it
holds out each group's largest-scale *training* runs (by the task's declared
scale features) and fits on the smaller ones.  One such cut is noisy when the
search compares thousands of laws, so there are ``folds`` rolling-origin cuts:
fold 1 fits on the smallest 80% and scores the top 20%, fold 2 fits on the
smallest 60% and scores the next 20%, and so on.  A task with no scale
feature (e.g. a mixture task) uses seeded random held-out subsets instead.
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

    def apply(self, task: TrainingTask) -> tuple[Rows, Rows]:
        """The first fold: (rows to fit on, the largest-scale validation rows)."""
        return self.fold_pairs(task)[0]

    def fold_pairs(self, task: TrainingTask) -> list[tuple[Rows, Rows]]:
        """Every fold's (fit rows, validation rows), all from ``task.train`` only."""
        rows = task.train
        columns = [task.spec.feature_columns.index(c) for c in task.spec.scale]
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
            pairs.append((rows.select(fit), rows.select(held)))
        return pairs


def _too_few_levels(X: np.ndarray, columns: list[int], minimum: int = 3) -> bool:
    """Whether some scale feature has under ``minimum`` distinct values among the fit rows."""
    return any(len(np.unique(X[:, c])) < minimum for c in columns)


def _same_as_earlier(held: np.ndarray, pairs: list[tuple[Rows, Rows]], rows: Rows) -> bool:
    return any(len(v) == int(held.sum()) and np.array_equal(v.y, rows.y[held]) for _, v in pairs)
