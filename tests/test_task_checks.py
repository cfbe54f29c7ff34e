"""What a task's training rows cannot support is said when it loads (``tasks.checks``), and a
law that is not finite on some runs names one of them.  Data here is SYNTHETIC."""

from __future__ import annotations

import numpy as np

from sld.evaluators.fitting import LawFitter
from sld.evaluators.formula import parse_law
from sld.tasks import Rows, load_task
from sld.tasks.checks import data_warnings


def rows(X, groups):
    X = np.asarray(X, dtype=float)
    return Rows(X, np.ones((len(X), 1)), np.array(groups, dtype=object))


def test_a_feature_constant_within_every_group_is_named(make_spec):
    spec = make_spec(symbols=("N", "D"))
    train = rows([[1, 10], [1, 20], [1, 40], [1, 80], [2, 10], [2, 20], [2, 40], [2, 80]], ["a"] * 4 + ["b"] * 4)
    (warning,) = data_warnings(spec, train)
    assert warning.startswith("feature N (n_col) is constant within every group")


def test_a_scale_feature_with_few_levels_is_named(make_spec):
    spec = make_spec(symbols=("N", "D"))
    train = rows([[n, d] for n in (1, 2, 4) for d in (10, 20, 40, 80)], ["a"] * 12)
    (warning,) = data_warnings(spec, train)
    assert "feature N (n_col) has only 3 distinct value(s)" in warning


def test_well_spread_rows_raise_no_warning(make_spec):
    spec = make_spec(symbols=("N", "D"))
    train = rows([[n, d] for n in (1, 2, 4, 8) for d in (10, 20, 40, 80)], ["a"] * 16)
    assert data_warnings(spec, train) == ()


def test_curated_parallel_task_warns_about_its_three_parallel_sizes():
    task = load_task("parallel_scaling_law")
    assert any("feature P (parallel_size) has only 3 distinct value(s)" in w for w in task.warnings)
    assert task.training_view().warnings == task.warnings
    assert load_task("vocab_scaling_law").warnings == ()


def test_a_law_not_finite_on_some_runs_names_one_of_them(make_spec):
    spec = make_spec(symbols=("x",))
    X = np.array([[0.0], [1.0], [2.0], [3.0], [4.0]])
    train = Rows(X, (1 + X).reshape(-1, 1), np.array(["g"] * 5, dtype=object))
    fitter = LawFitter(parse_law("A*log(x) + E", spec)).fit(train)
    assert fitter.failed_
    assert "not finite on 1 of 5 runs, e.g. x=0" in fitter.failure_reason_
