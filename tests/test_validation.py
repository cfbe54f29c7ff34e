"""The validation split: which training rows selection fits on and scores on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sld.evaluators.validation import ValidationError, ValidationSplit
from sld.tasks import Rows, TaskSpec, TrainingTask


def synthetic_task(runs_per_group: int, n_groups: int = 3, scale: bool = True,
                   budget: int | None = None, outlier: bool = False) -> TrainingTask:
    """Synthetic runs (a planted power law); run i of every group has size 10**(i+1)."""
    sizes = np.tile(10.0 ** np.arange(1, runs_per_group + 1), n_groups)
    loss = 2 + 5 / sizes**0.3
    if outlier:
        loss[runs_per_group - 1] = 50.0  # group 0's largest run "diverged"
    groups = np.repeat([f"g{i}" for i in range(n_groups)], runs_per_group).astype(object)
    spec = TaskSpec(
        name="synthetic_split", description="synthetic planted law",
        features=[{"column": "size", "symbol": "N", "meaning": "size"}],
        targets=[{"column": "loss", "meaning": "loss"}], group_column="group", split_column="split",
        scale=("size",) if scale else (), param_budget=budget,
    )
    return TrainingTask(spec=spec, train=Rows(sizes[:, None], loss[:, None], groups), data_path=Path("s.csv"))


def _sizes(rows: Rows) -> set[float]:
    return set(rows.X[:, 0].tolist())


def test_rolling_origin_folds_hold_out_the_largest_runs_then_the_next():
    task = synthetic_task(runs_per_group=10)
    (fit0, held0), (fit1, held1) = ValidationSplit(fraction=0.2, folds=2).fold_pairs(task)
    assert _sizes(held0) == {1e9, 1e10} and max(_sizes(fit0)) == 1e8
    assert _sizes(held1) == {1e7, 1e8} and max(_sizes(fit1)) == 1e6
    assert len(held0) == len(held1) == 6  # two runs from each of the three groups


def test_each_of_several_scale_features_gets_its_own_extrapolation_fold():
    # A 10 x 10 grid of (N, D) runs: the next run may be larger in N or in D.
    n, d = np.meshgrid(10.0 ** np.arange(1, 11), 10.0 ** np.arange(1, 11), indexing="ij")
    X = np.column_stack([n.ravel(), d.ravel()])
    y = (2 + 5 / X[:, 0] ** 0.3 + 3 / X[:, 1] ** 0.2)[:, None]
    spec = TaskSpec(
        name="synthetic_grid", description="synthetic planted law on an N x D grid",
        features=[{"column": "n", "symbol": "N", "meaning": "size"},
                  {"column": "d", "symbol": "D", "meaning": "data"}],
        targets=[{"column": "loss", "meaning": "loss"}], split_column="split", scale=("n", "d"),
    )
    task = TrainingTask(spec=spec, train=Rows(X, y, np.full(len(X), "all", dtype=object)), data_path=Path("g.csv"))
    (fit_j, held_j), (fit_n, held_n), (fit_d, held_d) = ValidationSplit(fraction=0.2, folds=1).fold_pairs(task)
    # on this grid the joint (mean-rank) scale orders runs as N·D does; ties stay together
    assert 20 <= len(held_j) < 30 and min(held_j.X.prod(axis=1)) > max(fit_j.X.prod(axis=1))
    assert set(held_n.X[:, 0]) == {1e9, 1e10} and set(held_n.X[:, 1]) == set(10.0 ** np.arange(1, 11))
    assert max(fit_n.X[:, 0]) == 1e8
    assert set(held_d.X[:, 1]) == {1e9, 1e10} and max(fit_d.X[:, 1]) == 1e8
    # folds beyond one per axis cut deeper along each axis in turn
    pairs = ValidationSplit(fraction=0.2, folds=6).fold_pairs(task)
    assert len(pairs) == 6
    assert [sorted(set(v.X[:, axis])) for (_, v), axis in zip(pairs[4:], [0, 1])] == [[1e7, 1e8], [1e7, 1e8]]


def test_a_later_fold_is_left_out_when_groups_keep_too_few_runs_for_the_budget():
    # 10 runs per group: fold 2 fits on 6 runs; a 4-parameter budget needs 8.
    assert len(ValidationSplit(folds=2).fold_pairs(synthetic_task(10, budget=4))) == 1
    assert len(ValidationSplit(folds=2).fold_pairs(synthetic_task(10, budget=3))) == 2
    assert len(ValidationSplit(folds=2).fold_pairs(synthetic_task(10, budget=None))) == 2


def test_tasks_without_a_scale_get_disjoint_random_folds():
    task = synthetic_task(runs_per_group=10, scale=False)
    pairs = ValidationSplit(fraction=0.2, folds=2).fold_pairs(task)
    assert len(pairs) == 2
    held = [set(zip(v.groups.tolist(), v.X[:, 0].tolist())) for _, v in pairs]
    assert not held[0] & held[1]
    assert all(len(v) == 6 for _, v in pairs)  # 2 of each group's 10 runs

    every = ValidationSplit(folds=2, all_random_folds=True, outlier_fence=None).fold_pairs(task)
    assert len(every) == 5
    covered = set().union(*(set(zip(v.groups.tolist(), v.X[:, 0].tolist())) for _, v in every))
    assert len(covered) == 30  # every training run is scored exactly once
    for fit, held_rows in every:
        assert len(fit) + len(held_rows) == 30


def test_random_folds_depend_on_the_seed():
    task = synthetic_task(runs_per_group=10, scale=False)
    first = ValidationSplit(seed=0).fold_pairs(task)[0][1]
    again = ValidationSplit(seed=0).fold_pairs(task)[0][1]
    other = ValidationSplit(seed=1).fold_pairs(task)[0][1]
    assert np.array_equal(first.X, again.X)
    assert not np.array_equal(first.X, other.X)


def test_extreme_held_out_targets_are_not_scored_unless_the_fence_is_off():
    task = synthetic_task(runs_per_group=10, outlier=True)
    fenced_fit, fenced = ValidationSplit(folds=1).fold_pairs(task)[0]
    assert 50.0 not in fenced.y and len(fenced) == 5
    assert 50.0 not in fenced_fit.y  # the diverged run is a held-out row, never fitted either
    _, unfenced = ValidationSplit(folds=1, outlier_fence=None).fold_pairs(task)[0]
    assert 50.0 in unfenced.y and len(unfenced) == 6


def test_screening_split_fits_a_seeded_subset_of_large_groups_and_scores_every_held_out_run():
    task = synthetic_task(runs_per_group=40, n_groups=2)
    full = ValidationSplit(fraction=0.2, folds=1).fold_pairs(task)
    screening = ValidationSplit(fraction=0.2, folds=1, max_fit_runs=10).fold_pairs(task)
    again = ValidationSplit(fraction=0.2, folds=1, max_fit_runs=10).fold_pairs(task)
    other_seed = ValidationSplit(fraction=0.2, folds=1, max_fit_runs=10, seed=1).fold_pairs(task)
    (fit, held), (fit_all, held_all) = screening[0], full[0]
    assert len(fit_all) == 64 and len(fit) == 20  # 32 fit runs per group, cut to 10 each
    assert {g: int((fit.groups == g).sum()) for g in ("g0", "g1")} == {"g0": 10, "g1": 10}
    assert _sizes(fit) <= _sizes(fit_all) and np.array_equal(held.y, held_all.y)
    assert np.array_equal(fit.X, again[0][0].X) and not np.array_equal(fit.X, other_seed[0][0].X)
    # a group already under the limit is fitted whole, and thorough() fits every run again
    assert len(ValidationSplit(fraction=0.2, folds=1, max_fit_runs=32).fold_pairs(task)[0][0]) == 64
    thorough = ValidationSplit(fraction=0.2, folds=1, max_fit_runs=10).thorough()
    assert thorough.max_fit_runs is None and len(thorough.fold_pairs(task)[0][0]) == 64


def test_a_task_whose_groups_are_too_small_to_cut_fails_in_one_line():
    """Groups of two training runs keep both to fit on: nothing is left to validate on."""
    with pytest.raises(ValidationError, match=r"each of its 3 group\(s\) has at most 2 training run\(s\)"):
        ValidationSplit().check(synthetic_task(2))
    ValidationSplit().check(synthetic_task(3))  # three runs: the largest is held out


def test_a_constant_target_fails_in_one_line():
    task = synthetic_task(6)
    flat = TrainingTask(spec=task.spec, train=Rows(task.train.X, np.full_like(task.train.y, 3.0), task.train.groups),
                        data_path=task.data_path)
    with pytest.raises(ValidationError, match="target column 'loss' of synthetic_split takes one value"):
        ValidationSplit().check(flat)


def _sweep_task() -> TrainingTask:
    """SYNTHETIC: 6 model sizes, each swept over 5 learning rates; loss is a valley in log lr."""
    N, lr = np.meshgrid(10.0 ** np.arange(6, 12), np.logspace(-4, -2, 5), indexing="ij")
    loss = 2 + 500 / N**0.3 + 0.005 * (np.log(lr) - np.log(1e-3)) ** 2
    spec = TaskSpec(
        name="synthetic_sweep", description="synthetic planted valley",
        features=[{"column": "n", "symbol": "N", "meaning": "size"},
                  {"column": "lr", "symbol": "lr", "meaning": "learning rate"}],
        targets=[{"column": "loss", "meaning": "loss"}], group_column="group", split_column="split",
        scale=("n",),
    )
    rows = Rows(np.column_stack([N.ravel(), lr.ravel()]), loss.ravel()[:, None], np.full(N.size, "all", dtype=object))
    return TrainingTask(spec=spec, train=rows, data_path=Path("s.csv"))


def test_per_scale_point_scoring_asks_a_law_for_the_sweep_at_each_held_out_size():
    from sld.evaluators.evaluate import evaluate_on_validation
    from sld.evaluators.formula import parse_law

    task = _sweep_task()
    pooled, per_point = ValidationSplit(folds=1), ValidationSplit(folds=1, per_scale_point=True)
    assert pooled.scale_points(task, task.train) is None
    [(_, held)] = per_point.fold_pairs(task)
    labels = per_point.scale_points(task, held)
    assert len(set(labels.tolist())) == len(set(held.X[:, 0].tolist()))  # one label per held-out size
    no_valley = parse_law("E + A/N**a", task.spec)
    valley = parse_law("E + A/N**a + C*(log(lr) - x0)**2", task.spec)
    # pooled, the sizes' levels carry most of the spread and a law without the valley still scores well
    assert evaluate_on_validation(no_valley, task, pooled).held_out.nmse < 0.3
    assert evaluate_on_validation(no_valley, task, per_point).held_out.nmse > 0.9
    assert evaluate_on_validation(valley, task, per_point).held_out.nmse < 1e-6
