"""The validation split: which training rows selection scores a law on.

Selection must reward extrapolation without ever seeing the test rows, so it
holds out each group's largest-scale *training* runs (by the task's declared
scale features) and fits on the rest.  A task with no scale feature (e.g. a
mixture task) holds out a seeded random subset instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from tasks import Rows, TrainingTask, largest_scale_mask, random_mask


@dataclass(frozen=True)
class ValidationSplit:
    """How to cut a task's training rows into fit and validation rows."""

    fraction: float = 0.2
    seed: int = 0

    def apply(self, task: TrainingTask) -> tuple[Rows, Rows]:
        """(rows to fit on, validation rows), both taken from ``task.train`` only."""
        rows = task.train
        columns = [task.spec.feature_columns.index(c) for c in task.spec.scale]
        if columns:
            mask = largest_scale_mask(rows, columns, self.fraction, min_keep=2)
        else:
            mask = random_mask(rows, self.fraction, self.seed, min_keep=2)
        return rows.select(~mask), rows.select(mask)
