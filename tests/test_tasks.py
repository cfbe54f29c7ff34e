"""Loading curated and user tasks, and the split helpers in ``tasks.rows``.

User tasks here are synthetic: small CSVs written to ``tmp_path`` by the tests.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from sld.evaluators.formula import parse_law
from sld.tasks import (
    Rows,
    SLDError,
    Task,
    TaskError,
    TrainingTask,
    curated_names,
    largest_scale_mask,
    load_task,
    load_task_file,
    random_fold_labels,
    resolve_task,
    typical_mask,
)

# (train rows, test rows, parameter budget) per curated task; sft leaves out
# its 'not_in_sldbench' rows.
CURATED = {
    "parallel_scaling_law": (36, 12, 4),
    "vocab_scaling_law": (1080, 120, 7),
    "sft_scaling_law": (504, 42, 4),
    "domain_mixture_scaling_law": (80, 24, 35),
    "moe_scaling_law": (193, 28, 6),
    "data_constrained_scaling_law": (161, 21, 7),
    "lr_bsz_scaling_law": (1911, 117, None),
    "easy_question_scaling_law": (389, 127, 6),
    "chinchilla_epoch_replication": (196, 49, None),
}


@pytest.fixture(scope="module")
def curated_tasks() -> dict[str, Task]:
    return {name: load_task(name) for name in curated_names()}


# -- curated tasks ---------------------------------------------------------------

def test_exactly_the_nine_curated_tasks_are_listed():
    assert curated_names() == sorted(CURATED)


@pytest.mark.parametrize("name", sorted(CURATED))
def test_curated_task_row_counts_and_budget(curated_tasks, name):
    task = curated_tasks[name]
    n_train, n_test, budget = CURATED[name]
    assert task.name == name
    assert task.spec.kind == "curated"
    assert (len(task.train), len(task.test)) == (n_train, n_test)
    assert task.spec.param_budget == budget
    for rows in (task.train, task.test):
        assert rows.X.shape == (len(rows), len(task.spec.features))
        assert rows.y.shape == (len(rows), len(task.spec.targets))
        assert np.isfinite(rows.X).all() and np.isfinite(rows.y).all()
    assert task.data_path.is_file()


def test_sft_leaves_out_rows_outside_train_and_test(curated_tasks):
    task = curated_tasks["sft_scaling_law"]
    lines = task.data_path.read_text(encoding="utf-8").splitlines()
    outside = sum("not_in_sldbench" in line for line in lines[1:])
    assert outside > 0
    assert len(task.train) + len(task.test) == len(lines) - 1 - outside


@pytest.mark.parametrize("name", sorted(CURATED))
def test_every_human_law_parses_within_budget(curated_tasks, name):
    spec = curated_tasks[name].spec
    assert spec.human_laws, f"{name} has no human law"
    for human in spec.human_laws:
        law = parse_law(human.formula, spec)
        assert len(law.outputs) == len(spec.targets)
        if spec.param_budget is not None:
            assert law.n_params <= spec.param_budget


@pytest.mark.parametrize("name", sorted(CURATED))
def test_every_task_has_a_human_law_that_never_saw_its_test_rows(curated_tasks, name):
    spec = curated_tasks[name].spec
    assert spec.extrapolating_human_laws, f"{name}: no human law can be the bar"
    for human in spec.human_laws:
        if human.fitted_on_test_rows:  # only fixed constants can have seen the test rows
            assert parse_law(human.formula, spec).n_params == 0, human.name


def test_laws_fitted_on_the_test_rows_are_never_starting_points(curated_tasks):
    spec = curated_tasks["chinchilla_epoch_replication"].spec
    leaked = [h.formula for h in spec.human_laws if h.fitted_on_test_rows]
    assert "1.817 + 482.01/N**0.348 + 2085.43/D**0.366" in leaked  # Epoch AI's refit on all 240 points
    assert spec.starting_formulas == ("E + A/N**alpha + B/D**beta",)  # two fits of one form, started once


def test_domain_mixture_human_law_uses_the_whole_budget(curated_tasks):
    spec = curated_tasks["domain_mixture_scaling_law"].spec
    assert parse_law(spec.human_laws[0].formula, spec).n_params == 35


def test_training_view_has_no_test_rows(curated_tasks):
    task = curated_tasks["parallel_scaling_law"]
    view = task.training_view()
    assert isinstance(view, TrainingTask)
    assert not hasattr(view, "test")
    assert "test" not in {f.name for f in dataclasses.fields(view)}
    assert view.train is task.train and view.spec is task.spec and view.name == task.name
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.test = task.test  # type: ignore[misc]


def test_rows_are_read_only(curated_tasks):
    rows = curated_tasks["parallel_scaling_law"].train
    with pytest.raises(ValueError):
        rows.X[0, 0] = 1.0


# -- user task files -------------------------------------------------------------

GOOD_TOML = """\
name = "planted"
description = "synthetic runs with a planted power law"
csv = "runs.csv"
group_column = "family"
scale = ["params"]
param_budget = 3

[[features]]
column = "params"
symbol = "N"

[[features]]
column = "tokens"
symbol = "D"

[[targets]]
column = "loss"
"""


def planted_csv(n_per_group: int = 10, groups=("a", "b")) -> str:
    """A synthetic runs table: loss = 2 + 50/N**0.3 (a planted law), N distinct per group."""
    lines = ["family,params,tokens,loss"]
    for g in groups:
        for i in range(n_per_group):
            n = 1e6 * 2.0**i
            lines.append(f"{g},{n:g},{20 * n:g},{2 + 50 / n**0.3:.6f}")
    return "\n".join(lines) + "\n"


def write_task(tmp_path: Path, toml: str = GOOD_TOML, csv: str | None = None, name: str = "runs.csv") -> Path:
    (tmp_path / name).write_text(planted_csv() if csv is None else csv, encoding="utf-8")
    path = tmp_path / "task.toml"
    path.write_text(toml, encoding="utf-8")
    return path


def task_error(path: Path) -> str:
    with pytest.raises(TaskError) as info:
        load_task_file(path)
    message = str(info.value)
    assert "\n" not in message, "errors are printed as one line"
    return message


def test_good_user_task_loads(tmp_path):
    task = load_task_file(write_task(tmp_path))
    assert task.spec.kind == "user"
    assert task.spec.symbols == ("N", "D")
    assert task.train.group_names == ("a", "b")
    assert len(task.train) + len(task.test) == 20
    assert task.data_path == (tmp_path / "runs.csv").resolve()
    # the planted law fits the loaded numbers
    n, loss = task.train.X[:, 0], task.train.y[:, 0]
    np.testing.assert_allclose(loss, 2 + 50 / n**0.3, atol=1e-5)


def test_without_split_column_the_test_rows_are_each_groups_largest_scale(tmp_path):
    task = load_task_file(write_task(tmp_path))
    for group in ("a", "b"):
        train_n = task.train.X[task.train.groups == group, 0]
        test_n = task.test.X[task.test.groups == group, 0]
        assert len(test_n) == 2  # test_fraction 0.2 of 10 runs
        assert test_n.min() > train_n.max()


def test_split_column_decides_the_split(tmp_path):
    lines = ["params,tokens,loss,split"] + [
        f"{10 ** i},{10 ** (i + 1)},{1 + 1 / (i + 1)},{'test' if i in (0, 3) else 'train'}" for i in range(6)
    ] + ["7,8,9,holdout"]
    toml = GOOD_TOML.replace('group_column = "family"\nscale = ["params"]\n', 'split_column = "split"\n')
    task = load_task_file(write_task(tmp_path, toml, "\n".join(lines) + "\n"))
    assert sorted(task.test.X[:, 0]) == [1, 1000]
    assert len(task.train) == 4  # the 'holdout' row is in neither split
    assert task.train.group_names == ("all",)


def test_byte_order_mark_is_ignored(tmp_path):
    path = write_task(tmp_path, csv="\ufeff" + planted_csv())
    assert len(load_task_file(path).train) > 0


def test_resolve_task_prefers_the_task_file(tmp_path):
    path = write_task(tmp_path)
    assert resolve_task("parallel_scaling_law", str(path)).name == "planted"
    assert resolve_task("parallel_scaling_law").name == "parallel_scaling_law"
    with pytest.raises(TaskError, match="name a task"):
        resolve_task(None, None)


def test_unknown_curated_task_name():
    with pytest.raises(TaskError) as info:
        load_task("chinchila")
    assert "unknown task 'chinchila'" in str(info.value)
    assert "sld tasks" in str(info.value)
    assert isinstance(info.value, SLDError)


def test_missing_task_file(tmp_path):
    assert "not found" in task_error(tmp_path / "nope.toml")


def test_invalid_toml(tmp_path):
    assert "not valid TOML" in task_error(write_task(tmp_path, GOOD_TOML + "this is = = not toml\n"))


def test_missing_csv(tmp_path):
    path = tmp_path / "task.toml"
    path.write_text(GOOD_TOML, encoding="utf-8")
    message = task_error(path)
    assert "runs.csv" in message and "not found" in message


@pytest.mark.parametrize(
    "header, missing",
    [("family,params,loss", "tokens"), ("family,tokens,lossy,params", "loss"), ("params,tokens", "loss, family")],
)
def test_missing_columns_are_named(tmp_path, header, missing):
    width = header.count(",") + 1
    csv = header + "\n" + "\n".join(",".join(["1"] * width) for _ in range(5)) + "\n"
    message = task_error(write_task(tmp_path, csv=csv))
    assert f"missing column(s) {missing}" in message
    assert header.replace(",", ", ") in message  # says which columns the file has


@pytest.mark.parametrize(
    "value, problem",
    [("nan", "nan"), ("inf", "inf"), ("", "empty"), ("abc", "non-numeric value 'abc'"), ("1e5x", "non-numeric")],
)
def test_bad_values_are_named(tmp_path, value, problem):
    lines = planted_csv().splitlines()
    fields = lines[3].split(",")
    fields[2] = value  # the tokens column
    lines[3] = ",".join(fields)
    message = task_error(write_task(tmp_path, csv="\n".join(lines) + "\n"))
    assert "'tokens'" in message and problem in message


def test_ragged_row_is_named(tmp_path):
    csv = planted_csv() + "a,1,2\n"
    assert "3 fields where the header has 4" in task_error(write_task(tmp_path, csv=csv))


@pytest.mark.parametrize("csv, problem", [("", "empty"), ("family,params,tokens,loss\n", "no data rows")])
def test_empty_csv(tmp_path, csv, problem):
    assert problem in task_error(write_task(tmp_path, csv=csv))


def test_csv_that_is_not_utf8(tmp_path):
    (tmp_path / "runs.csv").write_bytes(planted_csv().encode("utf-8") + b"a,1,2,\xff\xfe\n")
    path = tmp_path / "task.toml"
    path.write_text(GOOD_TOML, encoding="utf-8")
    assert "UTF-8" in task_error(path)


def test_csv_that_the_csv_module_cannot_read(tmp_path):
    huge_field = "1" * 200_000  # beyond the csv module's field size limit
    assert "not a readable CSV" in task_error(write_task(tmp_path, csv=planted_csv() + f"a,{huge_field},1,1\n"))


def test_duplicate_symbols(tmp_path):
    toml = GOOD_TOML.replace('symbol = "D"', 'symbol = "N"')
    message = task_error(write_task(tmp_path, toml))
    assert "distinct" in message and "'N'" in message


def test_scale_must_be_a_feature(tmp_path):
    toml = GOOD_TOML.replace('scale = ["params"]', 'scale = ["flops"]')
    message = task_error(write_task(tmp_path, toml))
    assert "scale feature 'flops'" in message and "params" in message


def test_no_split_column_and_no_scale(tmp_path):
    toml = GOOD_TOML.replace('scale = ["params"]\n', "")
    message = task_error(write_task(tmp_path, toml))
    assert "without a split column needs 'scale'" in message


@pytest.mark.parametrize(
    "old, new, problem",
    [
        ('symbol = "D"', 'symbol = "exp"', "features.1.symbol: Value error, symbol 'exp' is the name of a formula"),
        ('symbol = "D"', 'symbol = "_D"', "features.1.symbol: Value error, symbol '_D' must be a plain identifier"),
        ("param_budget = 3", "param_budget = 0", "param_budget: Input should be greater than or equal to 1"),
        ("param_budget = 3", 'colour = "red"', "colour: Extra inputs are not permitted"),
        ('name = "planted"\n', "", "name: Field required"),
    ],
)
def test_other_spec_problems_are_named(tmp_path, old, new, problem):
    message = task_error(write_task(tmp_path, GOOD_TOML.replace(old, new)))
    assert problem in message and message.startswith("task file ")


def test_split_that_leaves_no_test_rows(tmp_path):
    # two runs per group: min_keep=2 leaves nothing to hold out
    message = task_error(write_task(tmp_path, csv=planted_csv(n_per_group=2)))
    assert "0 test rows" in message


# -- split helpers ---------------------------------------------------------------

def make_rows(scales: list[float], groups: list[str] | None = None) -> Rows:
    n = len(scales)
    X = np.column_stack([np.asarray(scales, dtype=float), np.arange(n, dtype=float)])
    return Rows(X, np.zeros((n, 1)), np.array(groups or ["g"] * n, dtype=object))


def test_largest_scale_mask_takes_the_largest_rows_per_group():
    rows = make_rows([1, 2, 3, 4, 5, 10, 20, 30, 40, 50], ["a"] * 5 + ["b"] * 5)
    mask = largest_scale_mask(rows, [0], fraction=0.4)
    assert rows.X[mask, 0].tolist() == [4, 5, 40, 50]


def test_largest_scale_mask_keeps_ties_together():
    rows = make_rows([1, 2, 3, 3, 3, 4, 4, 4])
    mask = largest_scale_mask(rows, [0], fraction=0.2)  # wants 2 rows; the top tie has 3
    assert rows.X[mask, 0].tolist() == [4, 4, 4]
    mask = largest_scale_mask(rows, [0], fraction=0.5)  # wants 4: 4,4,4 then the whole 3-tie
    assert rows.X[mask, 0].tolist() == [3, 3, 3, 4, 4, 4]


def test_largest_scale_mask_leaves_rows_for_fitting():
    rows = make_rows([1, 2, 2, 2, 2])
    # the top tie (4 rows) would leave fewer than min_keep=2 rows: none is taken
    assert not largest_scale_mask(rows, [0], fraction=0.5, min_keep=2).any()
    assert largest_scale_mask(rows, [0], fraction=0.99, min_keep=1).sum() == 4
    tiny = make_rows([1, 2], ["a", "a"])
    assert not largest_scale_mask(tiny, [0], fraction=0.5, min_keep=2).any()


def test_largest_scale_mask_with_two_scale_features_uses_both():
    X = np.array([[1, 1], [1, 9], [9, 1], [5, 5], [8, 8]], dtype=float)
    rows = Rows(X, np.zeros((5, 1)), np.array(["g"] * 5, dtype=object))
    mask = largest_scale_mask(rows, [0, 1], fraction=0.2)
    assert mask.tolist() == [False, False, False, False, True]


def test_random_fold_labels_are_seeded_disjoint_and_balanced_per_group():
    rows = make_rows(list(range(30)), ["a"] * 20 + ["b"] * 10)
    first = random_fold_labels(rows, n_folds=5, seed=7)
    assert np.array_equal(first, random_fold_labels(rows, n_folds=5, seed=7))
    assert not np.array_equal(first, random_fold_labels(rows, n_folds=5, seed=8))
    # every row in exactly one fold; each fold takes 4 of a's 20 rows and 2 of b's 10
    assert sorted(np.bincount(first[:20]).tolist()) == [4] * 5
    assert sorted(np.bincount(first[20:]).tolist()) == [2] * 5
    small = make_rows([1, 2], ["a", "a"])
    assert sorted(random_fold_labels(small, n_folds=5, seed=0, min_keep=1).tolist()) == [0, 1]
    assert random_fold_labels(small, n_folds=5, seed=0, min_keep=2).tolist() == [-1, -1]


def test_typical_mask_fences_far_targets_per_output_and_never_a_constant_one():
    losses = np.array([2.4, 2.5, 2.45, 2.55, 2.5, 11.0, 2.42, 2.48])
    assert typical_mask(losses, 8.0).tolist() == [True] * 5 + [False] + [True] * 2
    assert typical_mask(losses, None).all()
    two_outputs = np.column_stack([losses, np.linspace(0, 1, 8)])
    assert typical_mask(two_outputs, 8.0).tolist() == typical_mask(losses, 8.0).tolist()
    saturated = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.2, 1.0, 1.0])  # quartiles coincide: no spread
    assert typical_mask(saturated, 3.0).all()


def test_rows_by_group_and_select():
    rows = make_rows([1, 2, 3, 4], ["x", "y", "x", "y"])
    parts = rows.by_group()
    assert list(parts) == ["x", "y"]
    assert parts["x"].X[:, 0].tolist() == [1, 3]
    with pytest.raises(ValueError):
        Rows(np.zeros((2, 1)), np.zeros((3, 1)), np.array(["a", "b"], dtype=object))
