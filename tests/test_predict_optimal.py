"""``sld predict``, ``sld optimal`` and ``sld eval --ci`` end to end.

The planted-law data are SYNTHETIC (generated here from a known Chinchilla-form
law with seeded noise).  The curated task is used as it ships; its coverage
fraction is printed, never asserted to be high (the interval is for the law's
value, and test runs carry noise and lie beyond the training runs).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from sld.archive import Archive
from sld.archive.records import NewEntry
from sld.discovery.cli import main
from sld.evaluators.formula import parse_law
from sld.tasks import load_task

CHINCHILLA_FORM = "E + A/N**alpha + B/D**beta"
PLANTED = {"E": 1.7, "A": 400.0, "B": 2000.0, "alpha": 0.34, "beta": 0.28}

TASK_TOML = """
name = "synthetic_chinchilla"
description = "SYNTHETIC runs from a planted Chinchilla-form law with noise (test data)."
csv = "runs.csv"
scale = ["n", "d"]
compute = "6*N*D"

[[features]]
column = "n"
symbol = "N"

[[features]]
column = "d"
symbol = "D"

[[targets]]
column = "loss"
"""


def _planted(n, d):
    p = PLANTED
    return p["E"] + p["A"] / n ** p["alpha"] + p["B"] / d ** p["beta"]


@pytest.fixture(scope="module")
def synthetic_task(tmp_path_factory):
    """SYNTHETIC: a 7 × 7 grid of (N, D) runs of the planted law with 0.2% noise."""
    folder = tmp_path_factory.mktemp("synthetic_chinchilla")
    rng = np.random.default_rng(3)
    n, d = np.meshgrid(np.logspace(7, 10, 7), np.logspace(9, 12, 7))
    n, d = n.ravel(), d.ravel()
    loss = _planted(n, d) * (1 + rng.normal(0, 0.002, n.size))
    lines = [f"{a!r},{b!r},{c!r}" for a, b, c in zip(n.tolist(), d.tolist(), loss.tolist())]
    (folder / "runs.csv").write_text("n,d,loss\n" + "\n".join(lines) + "\n")
    (folder / "task.toml").write_text(TASK_TOML)
    return folder / "task.toml"


def _json(capsys, argv):
    status = main(argv)
    out = capsys.readouterr().out
    return status, json.loads(out)


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines()
           if not line.startswith("sld: warning:")]  # the task's data warnings come first
    assert len(err) == 1 and err[0].startswith("sld: error: "), err
    return err[0]


def test_optimal_recovers_the_analytic_optimum_of_a_planted_chinchilla_law(synthetic_task, capsys):
    status, doc = _json(capsys, ["optimal", "--task-file", str(synthetic_task), CHINCHILLA_FORM, "--compute",
                                 "1e22", "--compute", "1e24", "--resamples", "30", "--json"])
    assert status == 0
    group = doc["groups"]["all"]
    # the optimum of the law as fitted: analytic for this form, N* = G·(C/6)^(β/(α+β))
    _, fitted = _json(capsys, ["eval", "--task-file", str(synthetic_task), CHINCHILLA_FORM, "--json"])
    p = fitted["params"]["all"]
    a = p["beta"] / (p["alpha"] + p["beta"])
    G = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1 / (p["alpha"] + p["beta"]))
    for entry in group["budgets"]:
        C = entry["compute"]
        n_star = G * (C / 6) ** a
        assert entry["optimum"]["N"]["value"] == pytest.approx(n_star, rel=1e-6)
        assert entry["optimum"]["D"]["value"] == pytest.approx(C / (6 * n_star), rel=1e-6)
        assert entry["optimum"]["N"]["lower"] <= entry["optimum"]["N"]["value"] <= entry["optimum"]["N"]["upper"]
    assert group["exponents"]["N"]["value"] == pytest.approx(a, abs=1e-6)
    assert group["exponents"]["D"]["value"] == pytest.approx(1 - a, abs=1e-6)
    # ... and the planted law's, within what 0.2% noise allows
    planted_a = PLANTED["beta"] / (PLANTED["alpha"] + PLANTED["beta"])
    assert group["exponents"]["N"]["value"] == pytest.approx(planted_a, abs=0.05)
    lower, upper = group["exponents"]["N"]["lower"], group["exponents"]["N"]["upper"]
    assert lower <= group["exponents"]["N"]["value"] <= upper


def test_optimal_needs_a_compute_formula(capsys):
    line = _error(capsys, ["optimal", "parallel_scaling_law", "(A/(N*(k*log(P) + 1)))**alpha + E",
                           "--compute", "1e20", "--resamples", "2"])
    assert "declares no training compute" in line and "compute =" in line


@pytest.mark.parametrize("flag", ["abc", "-1e20", "inf"])
def test_optimal_refuses_a_bad_budget(synthetic_task, capsys, flag):
    line = _error(capsys, ["optimal", "--task-file", str(synthetic_task), CHINCHILLA_FORM, f"--compute={flag}",
                           "--resamples", "2"])
    assert "--compute" in line


def test_predict_interval_on_a_curated_task_and_its_test_runs(tmp_path, capsys):
    task = load_task("parallel_scaling_law")
    law = task.spec.human_laws[0].formula
    symbols, columns = task.spec.symbols, task.spec.feature_columns
    rows = [",".join([*columns, task.spec.group_column])]
    rows += [",".join([*(repr(v) for v in x), g]) for x, g in zip(task.test.X.tolist(), task.test.groups)]
    (tmp_path / "test_points.csv").write_text("\n".join(rows) + "\n")
    status, doc = _json(capsys, ["predict", "parallel_scaling_law", law, "--points", str(tmp_path / "test_points.csv"),
                                 "--resamples", "100", "--json"])
    assert status == 0
    assert len(doc["predictions"]) == len(task.test)  # each row predicted for its own group only
    observed = task.test.y[:, 0]
    lower = np.array([r["lower"] for r in doc["predictions"]])
    upper = np.array([r["upper"] for r in doc["predictions"]])
    assert np.all(lower <= upper)
    run_lower = np.array([r["run_lower"] for r in doc["predictions"]])
    run_upper = np.array([r["run_upper"] for r in doc["predictions"]])
    assert np.all(run_lower <= lower) and np.all(upper <= run_upper)
    covered = float(np.mean((run_lower <= observed) & (observed <= run_upper)))
    print(f"parallel_scaling_law: the 90% new-run interval covers {covered:.0%} of {len(observed)} test runs")
    # test runs lie beyond the largest training N: each is flagged
    assert all(any(f["feature"] in symbols and f["side"] == "above" for f in r["outside_training_range"])
               for r in doc["predictions"])


def test_predict_at_points_for_every_group_flags_extrapolation(capsys):
    status = main(["predict", "parallel_scaling_law", "(A/(N*(k*log(P) + 1)))**alpha + E",
                   "--at", "N=1e11", "P=2", "--at", "num_params=1e9", "parallel_size=4", "--resamples", "20"])
    out = capsys.readouterr().out
    assert status == 0
    assert "stack" in out and "pile" in out
    assert "beyond the largest training N" in out


@pytest.mark.parametrize("at, expected", [
    (["N=1e9"], "missing P"),
    (["N=1e9", "P=2", "Q=1"], "'Q' is not a feature"),
    (["N1e9", "P=2"], "is not NAME=number"),
    (["N=x", "P=2"], "'x' is not a number"),
    (["N=nan", "P=2"], "finite"),
    (["N=1e9", "P=-2"], "not finite at P=-2"),
])
def test_predict_refuses_bad_points_in_one_line(capsys, at, expected):
    line = _error(capsys, ["predict", "parallel_scaling_law", "(A/(N*(k*log(P) + 1)))**alpha + E", "--at", *at,
                           "--resamples", "3"])
    assert expected in line, line


def test_predict_refuses_an_unknown_group_and_an_unknown_law_id(tmp_path, capsys):
    law = "(A/(N*(k*log(P) + 1)))**alpha + E"
    line = _error(capsys, ["predict", "parallel_scaling_law", law, "--at", "N=1e9", "P=2", "--group", "nope"])
    assert "unknown group 'nope'" in line and "stack" in line
    path = tmp_path / "a.sqlite"
    with Archive(path) as archive:
        archive.create_campaign("parallel_scaling_law", {}, 0)
    line = _error(capsys, ["predict", "parallel_scaling_law", "--law-id", "7", "--archive", str(path),
                           "--at", "N=1e9", "P=2"])
    assert "no law 7" in line


def test_predict_refits_an_archived_law_with_its_campaign_options(tmp_path, capsys):
    task = load_task("parallel_scaling_law")
    formula = "(A/(N*(k*log(P) + 1)))**alpha + E"
    law = parse_law(formula, task.spec)
    path = tmp_path / "a.sqlite"
    with Archive(path) as archive:
        campaign = archive.create_campaign("parallel_scaling_law", {"seed": 0}, 0)
        law_id = archive.record(campaign, NewEntry(
            formula=formula, key=law.key, srepr=None, complexity=law.complexity, n_params=law.n_params,
            proposer="offline", operator="library", generation=0, island=0, parent_ids=(), rationale="",
            status="ok", reason="", params={}, train={}, validation={}, score=0.1, diagnostics={}, seconds=0.0))
    status, doc = _json(capsys, ["predict", "--law-id", str(law_id), "--archive", str(path), "--at", "N=1e9",
                                 "P=2", "--resamples", "10", "--json"])
    assert status == 0 and doc["law_id"] == law_id and doc["formula"] == formula
    assert doc["fit_options"]["outlier_fence"] == 8.0  # the campaign's fence, not sld eval's default


def test_eval_ci_adds_parameter_intervals(capsys):
    status, doc = _json(capsys, ["eval", "parallel_scaling_law", "(A/(N*(k*log(P) + 1)))**alpha + E", "--ci",
                                 "--resamples", "30", "--json"])
    assert status == 0
    intervals = doc["bootstrap"]["param_intervals"]
    for group, params in doc["params"].items():
        for name, value in params.items():
            low, high = intervals[group][name]
            assert low <= high
    assert doc["bootstrap"]["resamples"] == 30
