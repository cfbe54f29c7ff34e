"""Nested pseudo-tasks: the largest-scale *training* runs, cut off as a stand-in test split.

A rule that chooses between laws (the campaign's final choice) must be designed
and tuned without the test rows: tuned on them, its test figure is no longer an
extrapolation.  A pseudo-task repeats the curated task one level down.  Its
``train`` is the task's training rows minus each group's largest-scale ~20%
(by the task's declared scale features, the same ``largest_scale_mask`` that
makes a user task's test split and the validation folds), and its ``test`` is
those cut rows.  A ``PseudoTask`` is a ``Task``, so a campaign runs on its
``training_view()`` and ``evaluate_on_test`` scores on its cut rows unchanged,
and the curated test rows are not in it at all.

With several scale features the next run may be larger in all of them or in
one, so there is one pseudo-task per axis: the joint scale (mean percentile
rank, ``pseudo-joint``), then each scale feature alone (``pseudo-<column>``).
A task without a scale feature (a mixture task) gets one seeded random 20%
per group (``pseudo-random``).

A cut is skipped (and ``plan_pseudo_tasks`` says why) when it leaves some group
too few runs to fit a law of the task's budget (fewer than two target values
per budgeted parameter, as the validation folds count them, or fewer than 6
runs without a budget), or leaves some scale feature under 3 distinct levels:
the pseudo-task's own validation would then fit on a single level of it.
Cut runs that diverged (a target beyond 8 IQRs of the pseudo-training
targets' quartiles, the campaign's fit fence; only lr_bsz has any) are left
out of the pseudo-test: a scaling law is not meant to predict them, and they
would set every law's pseudo-test R² alike.

``single_curves`` makes short real tables from a task with several groups:
each group's training runs alone, as a user with one curve of ten runs would
declare it (no parameter budget), to be cut into pseudo-tasks in turn.  A
campaign on one curve validates on folds of one to three runs, so these are
where rules for small tables are designed (docs/selection_protocol.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sld.tasks import Rows, Task, TrainingTask, largest_scale_mask
from sld.tasks.checks import data_warnings

PSEUDO_FRACTION = 0.2
MIN_RUNS_WITHOUT_BUDGET = 6
MIN_SCALE_LEVELS = 3
# Cut runs whose target lies beyond this many IQRs of the pseudo-training targets' quartiles
# (the campaign's fit fence) are diverged runs, left out of the pseudo-test: on lr_bsz's cuts
# 8 to 46 runs with losses up to 11 among losses near 2.4 would set every law's R² alike.
DIVERGED_FENCE = 8.0
RANDOM_SEED = 20240915  # the random holdout of tasks without a scale (fixed: not a tuning knob)


@dataclass(frozen=True, eq=False)
class PseudoTask(Task):
    """A ``Task`` cut from another task's training rows: ``test`` is their largest-scale part.

    ``parent`` is the curated task's name, ``axis`` the cut (``joint``, a scale
    column, or ``random``); ``name`` (the spec's) is ``parent/pseudo-axis``.
    """

    parent: str = ""
    axis: str = ""
    dropped: int = 0  # cut runs left out of ``test`` as diverged (see ``DIVERGED_FENCE``)


def plan_pseudo_tasks(task: TrainingTask | Task, fraction: float = PSEUDO_FRACTION
                      ) -> tuple[list[PseudoTask], list[str]]:
    """The pseudo-tasks of ``task`` and one line per cut skipped (with why).

    Only ``task.train`` is read; a ``Task``'s test rows are never looked at.
    """
    spec, rows = task.spec, task.train
    columns = spec.scale_indices
    if not columns:
        cuts = [("random", _random_mask(rows, fraction))]
    else:
        cuts = [("joint", largest_scale_mask(rows, columns, fraction, min_keep=2))]
        if len(columns) > 1:
            cuts += [(spec.feature_columns[c], largest_scale_mask(rows, [c], fraction, min_keep=2))
                     for c in columns]
    made, skipped = [], []
    for axis, held in cuts:
        name = f"{task.name}/pseudo-{axis}"
        problem = _too_thin(rows, held, spec, columns)
        if problem:
            skipped.append(f"{name}: skipped, {problem}")
            continue
        train = rows.select(~held)
        diverged = held & ~_inside(rows.y, train.y, DIVERGED_FENCE)
        made.append(PseudoTask(
            spec=spec.model_copy(update={"name": name}), train=train, test=rows.select(held & ~diverged),
            data_path=task.data_path, warnings=data_warnings(spec, train), parent=task.name, axis=axis,
            dropped=int(diverged.sum())))
    return made, skipped


def single_curves(task: TrainingTask | Task, every: int = 1) -> list[TrainingTask]:
    """Every ``every``-th group of ``task``'s training rows as a task of its own, named ``NAME#GROUP``.

    No parameter budget and no human laws (a user's one-curve table declares
    neither); the spec is otherwise the task's.  Only ``task.train`` is read.
    """
    rows = task.train
    curves = []
    for group in rows.group_names[::every]:
        spec = task.spec.model_copy(update={"name": f"{task.name}#{group}", "param_budget": None,
                                            "human_laws": ()})
        single = rows.select(rows.groups == group)
        curves.append(TrainingTask(spec=spec, train=single, data_path=task.data_path,
                                   warnings=data_warnings(spec, single)))
    return curves


def pseudo_tasks(task: TrainingTask | Task, fraction: float = PSEUDO_FRACTION) -> list[PseudoTask]:
    """The pseudo-tasks of ``task`` (joint scale first, then each scale feature; or one random cut)."""
    return plan_pseudo_tasks(task, fraction)[0]


def min_runs_per_group(task: TrainingTask | Task) -> int:
    """Fewest runs a group may keep: two target values per budgeted parameter, or 6 without a budget.

    Target values, as the validation folds count them: a mixture task's 5
    targets give 5 values per run, so its 35-parameter budget needs 14 runs.
    """
    return min_runs_per_group_of(task.spec)


def min_runs_per_group_of(spec) -> int:
    if spec.param_budget is None:
        return MIN_RUNS_WITHOUT_BUDGET
    return -(-2 * spec.param_budget // len(spec.targets))  # ceil


def _random_mask(rows: Rows, fraction: float) -> np.ndarray:
    """A seeded random ``fraction`` of each group (at least one run, and at least two kept)."""
    rng = np.random.default_rng(RANDOM_SEED)
    mask = np.zeros(len(rows), dtype=bool)
    for group in rows.group_names:
        index = np.flatnonzero(rows.groups == group)
        if len(index) <= 2:
            continue
        take = min(max(1, int(round(fraction * len(index)))), len(index) - 2)
        mask[rng.choice(index, size=take, replace=False)] = True
    return mask


def _inside(y: np.ndarray, reference: np.ndarray, fence: float) -> np.ndarray:
    """Rows of ``y`` whose every target lies within ``fence`` IQRs of ``reference``'s quartiles."""
    q1, q3 = np.percentile(reference, [25, 75], axis=0)
    spread = np.where(q3 > q1, fence * (q3 - q1), np.inf)
    return np.all((y >= q1 - spread) & (y <= q3 + spread), axis=1)


def _too_thin(rows: Rows, held: np.ndarray, spec, columns: list[int]) -> str:
    """Why the cut ``held`` leaves too little to fit on ('' if it does not)."""
    if not held.any():
        return "nothing to cut"
    needed = min_runs_per_group_of(spec)
    for group in rows.group_names:
        kept = int(np.count_nonzero(~held & (rows.groups == group)))
        if kept < needed:
            return f"group {group!r} would keep {kept} runs (needs {needed})"
    for c in columns:
        levels = len(np.unique(rows.X[~held, c]))
        if levels < MIN_SCALE_LEVELS:
            return (f"{spec.feature_columns[c]} would keep {levels} distinct level(s) "
                    f"(its own validation would fit on {max(levels - 1, 0)}; needs {MIN_SCALE_LEVELS})")
    return ""
