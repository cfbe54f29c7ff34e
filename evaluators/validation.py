"""The validation split: which training rows selection scores a law on.

Selection must reward extrapolation without ever seeing the test rows, so it
holds out each group's largest-scale *training* runs (by the task's declared
scale features) and fits on the smaller ones.  One such cut is noisy when the
search compares thousands of laws, so there are ``folds`` rolling-origin cuts:
fold 1 fits on the smallest 80% and scores the top 20%, fold 2 fits on the
smallest 60% and scores the next 20%, and so on.  With several scale features
the next run may be larger in all of them (more compute) or in just one (more
tokens for the same model), so the cuts rotate over the joint scale (mean
percentile rank) and each feature alone, and every one of these axes gets a
fold.  A task with no scale feature (e.g. a mixture task) is cut into
disjoint seeded random folds of ``fraction`` of each group (K-fold
cross-validation); ``folds`` of them are scored, or all of them with
``all_random_folds`` (the campaign's final choice among its best laws uses
every fold).

A later fold is also left out when it would leave some group fewer than two
target values per parameter of the task's budget (e.g. 7 runs for a
4-parameter law per group): the final fit will see all of them, and a flexible
law judged on so few would be penalised for the fold, not for its form.

Held-out runs whose target lies far outside the bulk of the training targets
(beyond 3 interquartile ranges of the quartiles, e.g. diverged runs with a
loss of 11 among losses near 2.5) are not scored: they would dominate the
error whatever the law, and a scaling law is not meant to predict them.  The
fence depends on the targets only, never on a law.

With ``max_fit_runs`` set, a group with more fit runs than that is fitted on a
seeded random subset of them (every held-out run is still scored).  A sweep of
thousands of runs (a learning-rate × batch-size grid) pins a law of a dozen
parameters down long before its last run, and a fit costs time in proportion
to its runs: the search uses such a *screening* split, and the final choice and
refit use every run (``thorough``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np

from sld.tasks import (
    Rows, SLDError, TaskSpec, TrainingTask, largest_scale_mask, random_fold_labels, scale_point_labels,
    typical_mask,
)


# The search's screening limit (``CampaignSettings.search_fit_runs``; measured in docs/campaigns.md).
DEFAULT_SEARCH_FIT_RUNS = 256


class ValidationError(SLDError):
    """A task whose training runs leave nothing to validate a law on: the CLI prints it as one line."""


@dataclass(frozen=True)
class ValidationSplit:
    """How to cut a task's training rows into (fit, validation) pairs."""

    fraction: float = 0.2
    seed: int = 0
    folds: int = 2
    outlier_fence: float | None = 3.0  # in interquartile ranges; None scores every held-out row
    all_random_folds: bool = False  # tasks without a scale: score every fold, not just ``folds``
    max_fit_runs: int | None = None  # per group and fold; None fits every run
    per_scale_point: bool = False  # score held-out runs at each scale point they cover (metrics.scale_point_nmse)

    def thorough(self) -> "ValidationSplit":
        """The same cuts with every fold scored and every run fitted: the final choice's split."""
        return replace(self, all_random_folds=True, max_fit_runs=None)

    def fold_pairs(self, task: TrainingTask) -> list[tuple[Rows, Rows]]:
        """Every fold's (fit rows, validation rows), all from ``task.train`` only.

        Cut once per (split, task) and process: a campaign scores every candidate on the
        same folds, and cutting a many-group task costs more than fitting a small law.
        """
        return list(_cached_fold_pairs(self, task))

    def scale_points(self, task: TrainingTask, rows: Rows) -> np.ndarray | None:
        """Each row's scale point (group and scale features) as an integer label, if scored per point.

        None unless ``per_scale_point`` is set and the task declares a scale:
        a task with no scale feature has one "point", which is no test split
        of the next scale.
        """
        columns = task.spec.scale_indices
        if not self.per_scale_point or not columns:
            return None
        return scale_point_labels(rows, columns)

    def check(self, task: TrainingTask) -> None:
        """Raise ``ValidationError`` if the target is constant, or no training run can be held out.

        Each group keeps at least two runs to fit on, so groups of one or two
        training runs are never validated; a task made only of those would
        fail every law it is given.
        """
        y = task.train.y
        flat = np.flatnonzero(np.ptp(y, axis=0) == 0) if len(y) else []
        if len(flat):
            column = task.spec.targets[flat[0]].column
            raise ValidationError(
                f"target column '{column}' of {task.name} takes one value ({y[0, flat[0]]:g}) on every "
                "training run: there is no trend to fit or score; check the column, or leave it out")
        if any(len(held) for _, held in self.fold_pairs(task)):
            return
        largest = max(len(group) for group in task.train.by_group().values()) if len(task.train) else 0
        raise ValidationError(
            f"no training run of {task.name} can be held out to validate a law on: each of its "
            f"{len(task.train.group_names)} group(s) has at most {largest} training run(s), and validation "
            "keeps 2 per group to fit on; give the groups more runs, or pool them (no group column)")

    def _cut(self, task: TrainingTask) -> list[tuple[Rows, Rows]]:
        pairs = self._cut_all(task)
        if self.max_fit_runs is None:
            return pairs
        rng = np.random.default_rng(self.seed)
        return [(_thinned(fit, self.max_fit_runs, rng), held) for fit, held in pairs]

    def _cut_all(self, task: TrainingTask) -> list[tuple[Rows, Rows]]:
        rows = task.train
        columns = task.spec.scale_indices
        typical = typical_mask(rows.y, self.outlier_fence)
        if not columns:
            return self._random_pairs(rows, typical)
        # the joint scale, then each feature alone; fold k cuts along axis k mod A, k // A cuts deep
        axes = ([columns] + [[c] for c in columns]) if len(columns) > 1 else [columns]
        pairs = []
        for fold in range(max(self.folds, len(axes))):
            axis, depth = axes[fold % len(axes)], fold // len(axes)
            inner = largest_scale_mask(rows, axis, self.fraction * depth, min_keep=2) \
                if depth else np.zeros(len(rows), dtype=bool)
            outer = largest_scale_mask(rows, axis, self.fraction * (depth + 1), min_keep=2)
            held, fit = outer & ~inner, ~outer
            if fold and (not held.any() or _too_few_levels(rows.X[fit], columns)
                         or _too_few_runs(rows, fit, held, task.spec)
                         or _same_as_earlier(held, pairs, rows)):
                continue  # a later fold that cannot teach anything new is left out
            scored = held & typical
            pairs.append((rows.select(fit), rows.select(scored if scored.any() else held)))
        return pairs

    def _random_pairs(self, rows: Rows, typical: np.ndarray) -> list[tuple[Rows, Rows]]:
        """Disjoint random folds, for tasks with no scale feature to extrapolate along."""
        n_folds = max(2, round(1 / self.fraction))
        labels = random_fold_labels(rows, n_folds, self.seed, min_keep=2)
        scored = n_folds if self.all_random_folds else min(self.folds, n_folds)
        pairs = []
        for fold in range(scored):
            held = labels == fold
            if fold and not held.any():
                continue
            kept = held & typical
            pairs.append((rows.select(~held), rows.select(kept if kept.any() else held)))
        return pairs


@functools.lru_cache(maxsize=16)
def _cached_fold_pairs(split: ValidationSplit, task: TrainingTask) -> tuple[tuple[Rows, Rows], ...]:
    # TrainingTask hashes by identity (eq=False), so a task's folds are cut once per process
    return tuple(split._cut(task))


def _thinned(rows: Rows, most: int, rng: np.random.Generator) -> Rows:
    """``rows`` with each group of more than ``most`` runs cut to a random ``most`` of them, in order."""
    keep = np.ones(len(rows), dtype=bool)
    for group in rows.group_names:
        members = np.flatnonzero(rows.groups == group)
        if len(members) > most:
            keep[members] = False
            keep[np.sort(rng.choice(members, size=most, replace=False))] = True
    return rows if keep.all() else rows.select(keep)


def _too_few_levels(X: np.ndarray, columns: list[int], minimum: int = 3) -> bool:
    """Whether some scale feature has under ``minimum`` distinct values among the fit rows."""
    return any(len(np.unique(X[:, c])) < minimum for c in columns)


def _too_few_runs(rows: Rows, fit: np.ndarray, held: np.ndarray, spec: TaskSpec) -> bool:
    """Whether some group would be fitted on too few runs to pin down a law of the task's budget.

    A later fold fits each group on fewer runs than the final fit will; when
    that leaves under two target values per parameter the budget allows, a
    flexible law's extrapolation there says more about the fold than about
    the law, so the fold is left out.  Tasks without a budget are not limited.
    """
    if spec.param_budget is None:
        return False
    needed = 2 * spec.param_budget
    for group in np.unique(rows.groups[held]):
        if np.count_nonzero(fit & (rows.groups == group)) * rows.y.shape[1] < needed:
            return True
    return False


def _same_as_earlier(held: np.ndarray, pairs: list[tuple[Rows, Rows]], rows: Rows) -> bool:
    return any(len(v) == int(held.sum()) and np.array_equal(v.y, rows.y[held]) for _, v in pairs)
