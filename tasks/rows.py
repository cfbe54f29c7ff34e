"""Rows of a runs table as arrays, and how to split them.

``Rows`` is the value every fitter and metric works on: a feature matrix, a
target matrix and a group label per run.  The split helpers live here because
both the curated test split of a user task and discovery's validation split
are "the largest-scale runs of each group".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Rows:
    """A set of runs: ``X`` (n × features), ``y`` (n × targets), ``groups`` (n,)."""

    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray

    def __post_init__(self) -> None:
        if not (len(self.X) == len(self.y) == len(self.groups)):
            raise ValueError("X, y and groups must have the same number of rows")
        for array in (self.X, self.y, self.groups):
            array.setflags(write=False)

    def __len__(self) -> int:
        return len(self.y)

    @property
    def group_names(self) -> tuple[str, ...]:
        """Group labels in order of first appearance."""
        seen = dict.fromkeys(self.groups.tolist())
        return tuple(seen)

    def select(self, mask: np.ndarray) -> "Rows":
        return Rows(self.X[mask].copy(), self.y[mask].copy(), self.groups[mask].copy())

    def by_group(self) -> dict[str, "Rows"]:
        """Each group's rows, in their original order, groups in order of first appearance.

        One stable sort instead of one mask per group, so many small groups
        (a bootstrap's resamples, thousands of them) cost O(n log n), not O(groups × n).
        """
        names = self.group_names
        code = {g: i for i, g in enumerate(names)}
        codes = np.fromiter((code[g] for g in self.groups.tolist()), dtype=np.int64, count=len(self))
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
        return {g: Rows(self.X[order[a:b]], self.y[order[a:b]], self.groups[order[a:b]])
                for g, a, b in zip(names, bounds[:-1], bounds[1:])}


def scale_rank(X: np.ndarray, scale_columns: list[int]) -> np.ndarray:
    """Rank-based scale of each row: mean percentile rank over the scale features.

    Ranks (not raw products) so that features of any sign or unit combine, and
    so that "largest scale" means large in every scale feature at once.
    """
    if not scale_columns:
        raise ValueError("no scale feature declared")
    n = len(X)
    ranks = np.zeros(n)
    for column in scale_columns:
        values = X[:, column]
        # average rank for ties, so tied runs stay on the same side of a cut
        order = np.argsort(values, kind="stable")
        raw = np.empty(n)
        raw[order] = np.arange(n)
        for value in np.unique(values):
            tied = values == value
            raw[tied] = raw[tied].mean()
        ranks += raw
    return ranks / len(scale_columns)


def largest_scale_mask(
    rows: Rows, scale_columns: list[int], fraction: float, min_keep: int = 1
) -> np.ndarray:
    """Mask of each group's largest-scale rows: about ``fraction`` of them.

    Whole ties are kept together; at least one row is taken per group and at
    least ``min_keep`` rows are left outside the mask.
    """
    mask = np.zeros(len(rows), dtype=bool)
    for group in rows.group_names:
        index = np.flatnonzero(rows.groups == group)
        if len(index) <= min_keep:
            continue
        score = scale_rank(rows.X[index], scale_columns)
        levels = np.unique(score)[::-1]
        want = max(1, int(round(fraction * len(index))))
        chosen = np.zeros(len(index), dtype=bool)
        for level in levels:
            candidate = chosen | (score == level)
            if candidate.sum() > len(index) - min_keep:
                break
            chosen = candidate
            if chosen.sum() >= want:
                break
        mask[index[chosen]] = True
    return mask


def scale_point_labels(rows: Rows, scale_columns: list[int]) -> np.ndarray:
    """An integer per row naming its scale point: its group and its values of the scale features.

    Runs at one scale point differ only in settings that are not scale (a
    learning rate, a batch size, a number of experts): a test split of one
    larger model swept over those settings is one scale point.
    """
    keys = [(group, *x) for group, x in zip(rows.groups.tolist(), rows.X[:, scale_columns].tolist())]
    index: dict[tuple, int] = {}
    return np.array([index.setdefault(key, len(index)) for key in keys], dtype=int)


def typical_mask(y: np.ndarray, fence: float | None) -> np.ndarray:
    """Rows whose every target lies within ``fence`` interquartile ranges of the quartiles.

    Diverged runs (a loss of 11 among losses near 2.5) fall outside.  The
    quartiles pool all the given rows, so the mask depends on the targets
    alone, never on a law; ``None`` keeps every row.  A target whose quartiles
    coincide (half the runs share one value, e.g. a saturated accuracy) has
    no spread to measure distance by, so it fences nothing.
    """
    y = np.asarray(y, dtype=float)
    y = y[:, None] if y.ndim == 1 else y
    if fence is None or len(y) == 0:
        return np.ones(len(y), dtype=bool)
    q1, q3 = np.percentile(y, [25, 75], axis=0)
    spread = np.where(q3 > q1, fence * (q3 - q1), np.inf)
    return np.all((y >= q1 - spread) & (y <= q3 + spread), axis=1)


def random_fold_labels(rows: Rows, n_folds: int, seed: int, min_keep: int = 1) -> np.ndarray:
    """A seeded fold label (0 … n_folds−1) per row, balanced within each group.

    Each group's rows are shuffled and dealt to the folds in turn, so the folds
    are disjoint and together cover the group (K-fold cross-validation for
    tasks with no scale).  Rows of a group with at most ``min_keep`` rows get
    −1: holding any of them out would leave too few to fit.
    """
    rng = np.random.default_rng(seed)
    labels = np.full(len(rows), -1)
    for group in rows.group_names:
        index = np.flatnonzero(rows.groups == group)
        if len(index) <= min_keep:
            continue
        labels[rng.permutation(index)] = np.arange(len(index)) % n_folds
    return labels
