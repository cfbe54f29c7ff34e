"""Probe points: where a law is asked to extrapolate, built from the training rows alone.

Selection compares laws that validate alike by what they say *beyond* the
runs (``evaluators.bootstrap.prediction_spread``: how loosely the runs pin
that down), and the pseudo-task harness records every law's predictions
there.  The points step each group's largest runs further out along each
scale axis, as far as a next, larger run would go (×2 and ×4).
"""

from __future__ import annotations

import numpy as np

from sld.tasks import Rows, TaskSpec
from sld.tasks.rows import scale_rank

PROBE_STEPS = (1, 2)  # ×2 and ×4 along a positive feature spanning a factor 2 or more; else +10%, +20% of its range
PROBE_RUNS_PER_GROUP = 8  # at most this many of a group's largest runs seed probes
MIXTURE_PROBES_PER_GROUP = 16


def probe_rows(spec: TaskSpec, rows: Rows) -> Rows:
    """Points beyond each group's largest runs in ``rows`` (training rows; their targets are not read).

    Along each axis (the joint scale, i.e. every scale feature at once, when
    there are several, then each scale feature alone) the axis's features are
    set to the group's largest value times 2 and times 4, the
    other features kept at their values in the group's largest runs by the
    joint scale (at most ``PROBE_RUNS_PER_GROUP`` of them; duplicates dropped).
    A feature that is not positive or spans under a factor 2 (``log_flops``)
    steps by 10% and 20% of its range instead.  A task without
    a scale feature gets midpoints of seeded random pairs of each group's runs.
    """
    columns = spec.scale_indices
    X, groups = [], []
    if not columns:
        rng = np.random.default_rng(0)
        for group in rows.group_names:
            index = np.flatnonzero(rows.groups == group)
            pairs = rng.choice(index, size=(MIXTURE_PROBES_PER_GROUP, 2))
            X.append((rows.X[pairs[:, 0]] + rows.X[pairs[:, 1]]) / 2)
            groups += [group] * MIXTURE_PROBES_PER_GROUP
        return _rows(np.vstack(X), groups, rows.y.shape[1])
    axes = ([columns] if len(columns) > 1 else []) + [[c] for c in columns]
    for group in rows.group_names:
        index = np.flatnonzero(rows.groups == group)
        rank = scale_rank(rows.X[index], columns)
        top = index[np.argsort(-rank, kind="stable")[:PROBE_RUNS_PER_GROUP]]
        for axis in axes:
            for step in PROBE_STEPS:
                points = rows.X[top].copy()
                for c in axis:
                    points[:, c] = _step(rows.X[:, c], rows.X[index, c].max(), step)
                points = np.unique(points, axis=0)  # without other features the largest runs coincide
                X.append(points)
                groups += [group] * len(points)
    return _rows(np.vstack(X), groups, rows.y.shape[1])


def _step(values: np.ndarray, largest: float, step: int) -> float:
    low, high = float(values.min()), float(values.max())
    if low > 0 and high >= 2 * low:
        return largest * 2.0**step
    return largest + 0.1 * step * (high - low)


def _rows(X: np.ndarray, groups: list, n_targets: int) -> Rows:
    return Rows(X, np.zeros((len(X), n_targets)), np.array(groups, dtype=object))
