"""Nested pseudo-tasks, the pseudo-task harness and the post-hoc selection study (#15).

The pseudo-tasks must never hold a curated test row and must hold out the
largest-scale training runs; the study's rules are checked on a hand-made
record where each rule has one right answer; the harness runs end to end on
a SYNTHETIC task (data generated in the test from a planted law) with a
"trap" law that fits the training range about as well but bends away beyond it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from sld.discovery.search.probes import probe_rows
from sld.discovery.benchmarks.pseudo import (format_summary, r2_per_scale_point, read_records, run_benchmark,
                                             run_pseudo_campaign, spearman, summarize)
from sld.discovery.benchmarks.pseudo_tasks import min_runs_per_group, plan_pseudo_tasks, pseudo_tasks, single_curves
from sld.discovery.benchmarks.selection_study import (
    RULES, Rule, ensemble_r2, loto, pick_consensus, pick_current_recomputed, pick_full_mean, pick_full_worst,
    pick_plausible_top, pick_pysr, pick_stable_score, pick_stable_tie, pick_top_search, study,
)
from sld.discovery.search.settings import CampaignSettings
from sld.evaluators.evaluate import evaluate_on_test
from sld.evaluators.fitting import LawFitter
from sld.evaluators.formula import parse_law
from sld.evaluators.metrics import score
from sld.tasks import curated_names, load_task, load_task_file, scale_point_labels
from sld.tasks.rows import scale_rank


def _row_set(rows) -> set[tuple]:
    return {(str(g), *x.tolist(), *y.tolist()) for x, y, g in zip(rows.X, rows.y, rows.groups)}


@pytest.fixture(scope="module")
def curated():
    return {name: load_task(name) for name in curated_names()}


def test_pseudo_tasks_never_hold_a_curated_test_row(curated):
    for name, task in curated.items():
        test_rows = _row_set(task.test)
        for pseudo in pseudo_tasks(task.training_view()):
            assert not (_row_set(pseudo.train) & test_rows), pseudo.name
            assert not (_row_set(pseudo.test) & test_rows), pseudo.name
            assert _row_set(pseudo.train) | _row_set(pseudo.test) <= _row_set(task.train)
            assert len(pseudo.train) + len(pseudo.test) + pseudo.dropped == len(task.train)


def test_the_pseudo_test_rows_are_each_groups_largest_scale_training_rows(curated):
    for name, task in curated.items():
        spec = task.spec
        made = pseudo_tasks(task.training_view())
        if not spec.scale:
            assert [p.axis for p in made] == ["random"]
            continue
        columns = spec.scale_indices
        expected = ["joint"] + (list(spec.scale) if len(columns) > 1 else [])
        assert [p.axis for p in made] == expected[:len(made)], name
        for pseudo in made:
            axis = columns if pseudo.axis == "joint" else [spec.feature_columns.index(pseudo.axis)]
            for group in pseudo.test.group_names:
                kept = pseudo.train.X[pseudo.train.groups == group]
                cut = pseudo.test.X[pseudo.test.groups == group]
                # ranks over the group's pseudo-train and pseudo-test rows together
                rank = scale_rank(np.vstack([kept, cut]), axis)
                assert rank[len(kept):].min() > rank[:len(kept)].max(), (pseudo.name, group)
                assert 0.1 <= len(cut) / (len(kept) + len(cut)) <= 0.5, (pseudo.name, group)


def test_every_cut_leaves_enough_runs_and_levels_and_a_thin_one_is_skipped(curated):
    for name, task in curated.items():
        made, skipped = plan_pseudo_tasks(task.training_view())
        needed = min_runs_per_group(task)
        for pseudo in made:
            assert min(len(r) for r in pseudo.train.by_group().values()) >= needed, pseudo.name
            for column in task.spec.scale:
                j = task.spec.feature_columns.index(column)
                assert len(np.unique(pseudo.train.X[:, j])) >= 3, pseudo.name
        if name == "parallel_scaling_law":  # three parallel sizes: a cut leaves two
            assert not made and "parallel_size" in skipped[0]
        else:
            assert made, (name, skipped)


def test_single_curves_are_each_group_s_training_runs_alone_without_a_budget(curated):
    task = curated["sft_scaling_law"]
    curves = single_curves(task.training_view(), every=5)
    groups = task.train.group_names
    assert [c.name for c in curves] == [f"sft_scaling_law#{g}" for g in groups[::5]]
    test_rows = _row_set(task.test)
    for curve, group in zip(curves, groups[::5]):
        assert curve.train.group_names == (group,) and curve.spec.param_budget is None
        assert _row_set(curve.train) == _row_set(task.train.select(task.train.groups == group))
        assert not _row_set(curve.train) & test_rows
        [pseudo] = pseudo_tasks(curve)  # one curve of 12 runs: the largest 2 by data size are cut
        assert (len(pseudo.train), len(pseudo.test)) == (10, 2)
        assert pseudo.test.X[:, 0].min() > pseudo.train.X[:, 0].max()
    assert task.spec.param_budget is not None  # the curated task itself keeps its budget


def test_pseudo_test_leaves_out_diverged_runs_only_where_there_are_any(curated):
    counts = {p.name: p.dropped for t in curated.values() for p in pseudo_tasks(t.training_view())}
    assert all(n == 0 for name, n in counts.items() if not name.startswith("lr_bsz"))
    assert any(n > 0 for name, n in counts.items() if name.startswith("lr_bsz"))


# -- the study on a hand-made record --------------------------------------------
def _law(rank, complexity, search, mean, worst, probes, tests, r2):
    return {"rank": rank, "formula": f"L{rank}", "key": f"k{rank}", "complexity": complexity, "n_params": 2,
            "search": {"score": search, "nmse": search, "folds": [search]},
            "full": {"status": "ok", "reason": "", "nmse": mean, "worst": worst, "folds": [mean, worst]},
            "pseudo_test": {"r2": r2, "r2_clipped": r2, "nmse": 1 - r2, "failed": False, "reason": ""},
            "test_predictions": [[v] for v in tests], "probe_predictions": [[v] for v in probes]}


def _record(task="t", r2=(0.1, 0.2, 0.3, 0.4, 0.5)):
    y = [1.0, 2.0, 3.0, 4.0]
    laws = [
        # rank, complexity, search, full mean, full worst, probe predictions, test predictions
        _law(0, 20, 0.10, 0.30, 0.50, [1.0, 2.0], [1.0, 2.0, 3.0, 5.0], r2[0]),   # best search score
        _law(1, 10, 0.12, 0.20, 0.60, [1.1, 2.1], [1.0, 2.0, 3.0, 4.5], r2[1]),   # best full mean
        _law(2, 30, 0.15, 0.25, 0.30, [5.0, 9.0], [1.5, 2.0, 3.0, 4.0], r2[2]),   # best worst fold
        _law(3, 5, 0.20, 0.50, 0.90, [1.05, 2.05], [0.0, 2.0, 3.0, 4.0], r2[3]),  # the others' median at probes
        _law(4, 8, 0.25, 0.22, 0.70, [0.0, -3.0], [1.0, 2.5, 3.0, 4.0], r2[4]),   # steepest front step
    ]
    return {"task": task, "pseudo_task": f"{task}/pseudo-joint", "axis": "joint", "seed": 0,
            "settings": {"finalists": 5, "final_folds": "worst", "simpler_tolerance": 0.1, "simpler_ratio": 0.7},
            "targets": {"y": [[v] for v in y], "groups": ["all"] * 4}, "train_target_std": [1.0],
            "current_choice": {"index": 2, "formula": "L2", "pseudo_test_r2": r2[2]}, "laws": laws}


def test_each_rule_picks_the_expected_law_of_a_hand_made_record():
    record = _record()
    assert pick_top_search(record) == 0
    assert pick_full_mean(record) == 1
    assert pick_full_worst(record) == 2
    assert pick_consensus(record, pool=5) == 3
    # front by complexity: L3 (0.50), L4 (0.22), L1 (0.20); within 1.5× of 0.20: L4 and L1;
    # L4 drops log-loss by log(0.50/0.22)/3 per node, L1 by log(0.22/0.20)/2
    assert pick_pysr(record, tolerance=1.5) == 4
    assert pick_pysr(record, tolerance=1.05) == 1  # only L1 is eligible
    # worst-fold scores with the size penalty: L2 0.30 × 1.12 is best, nothing much simpler within 10%
    assert pick_current_recomputed(record) == 2
    median = np.median([law["test_predictions"] for law in record["laws"]], axis=0)
    assert ensemble_r2(record, 5) == pytest.approx(score(np.array(record["targets"]["y"]), median).clipped_r2)
    result = study([record])
    figures = {rule.name: rule.per_task["t"] for rule in result.rules}
    assert figures["a current"] == figures["a' current (recomputed)"] == 0.3
    assert figures["b top search"] == 0.1 and figures["c full worst fold"] == 0.3
    assert figures["d full mean fold"] == 0.2 and figures["f pysr best (1.5×)"] == 0.5
    assert result.best["t"] == 0.5 and result.median["t"] == 0.3
    assert (result.rules[1].wins, result.rules[1].losses) == (0, 0)  # a and a' agree
    assert (result.rules[2].wins, result.rules[2].losses) == (0, 1)  # top search: 0.1 against 0.3


def test_a_failed_law_counts_as_minus_one_and_is_not_rescored_into_a_pick():
    record = _record()
    record["laws"][2]["full"] = {"status": "failed", "reason": "x", "nmse": None, "worst": None, "folds": []}
    record["laws"][0]["pseudo_test"].update(failed=True, r2=None, r2_clipped=None)
    assert pick_full_worst(record) == 0  # L2 no longer competes; L0's worst fold (0.50) is next
    assert study([record]).rules[2].per_task["t"] == -1.0  # top search picks the failed L0


def test_free_constants_are_chosen_leave_one_task_out():
    # task A is scored 1 with p=0 and 0 with p=1; tasks B, C and D the reverse
    value = {(t, p): float((p == 1) != (t == "A")) for t in "ABCD" for p in (0, 1)}
    rule = Rule("r", lambda record, p: value[(record["task"], p)], ({"p": 0}, {"p": 1}))
    scores, chosen = loto({t: [{"task": t}] for t in "ABCD"}, rule)
    assert chosen == {t: {"p": 1} for t in "ABCD"}  # A's own preference never counts for A
    assert scores == {"A": 0.0, "B": 1.0, "C": 1.0, "D": 1.0}
    # a tie over the other tasks goes to the grid's earlier value
    scores, chosen = loto({t: [{"task": t}] for t in "AB"}, rule)
    assert chosen == {"A": {"p": 1}, "B": {"p": 0}}
    assert {r.name for r in RULES if len(r.grid) > 1} == {"e consensus (pool LOTO)", "f' pysr best (tol LOTO)",
                                                          "h stable score (weight LOTO)",
                                                          "i stable tie-break (tol LOTO)"}


def test_the_stable_rules_weigh_the_recorded_bootstrap_spread():
    record = _record()
    for law, spread in zip(record["laws"], (2.0, 0.5, 0.1, 0.0, None)):  # L4 has no spread recorded
        law["spread"] = spread
    # tie-break: within 1.2× of 0.10 are L0 (0.10) and L1 (0.12): L1 spreads less
    assert pick_stable_tie(record, tolerance=0.2) == 1
    assert pick_stable_tie(record, tolerance=0.6) == 2  # L2 (0.15) joins and spreads less still
    assert pick_stable_tie(record, tolerance=0.0) == 0
    # score × (1 + w × spread): w=0.5 gives L0 0.2, L1 0.15, L2 0.1575, L3 0.20
    assert pick_stable_score(record, weight=0.5) == 1
    assert pick_stable_score(record, weight=8.0) == 3  # L3 0.20 × 1 beats L2 0.15 × 1.8 = 0.27



def test_the_plausible_rule_passes_over_top_laws_whose_refit_left_the_band():
    record = _record()
    assert pick_plausible_top(record) == 0  # records from before the verdict count as plausible
    record["laws"][0]["implausible"] = "predicts -317 beyond the runs"
    record["laws"][1]["implausible"] = "its refit failed: singular"
    assert pick_plausible_top(record) == 2
    for law in record["laws"]:
        law["implausible"] = "predicts 1e9 beyond the runs"
    assert pick_plausible_top(record) == 0  # none plausible: the top law, as the campaign keeps it


def test_spearman_matches_a_hand_computed_case():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(spearman([1, 2], [1, 2]))


# -- the harness end to end on a SYNTHETIC task -----------------------------------
PLANTED = "E + A*N**(-alpha)"
TRAP = "c0 + c1*log(N) + c2*log(N)**2"  # fits a power law over the training decades, bends up beyond
TASK_TOML = """
name = "synthetic_trap"
description = "SYNTHETIC runs generated from a planted power law with noise (test data)."
csv = "runs.csv"
scale = ["n"]
param_budget = 3
test_fraction = 0.2

[[features]]
column = "n"
symbol = "N"

[[targets]]
column = "loss"
"""


def _synthetic_task(tmp_path):
    rng = np.random.default_rng(3)
    n = np.logspace(6, 10, 30)
    loss = 1.8 + 60 * n**-0.3 + rng.normal(0, 0.002, n.size)
    (tmp_path / "runs.csv").write_text("n,loss\n" + "\n".join(f"{a!r},{b!r}" for a, b in zip(n.tolist(), loss.tolist())) + "\n")
    (tmp_path / "task.toml").write_text(TASK_TOML)
    return load_task_file(tmp_path / "task.toml")


def test_the_harness_records_planted_and_trap_laws_end_to_end(tmp_path):
    task = _synthetic_task(tmp_path)
    [pseudo] = pseudo_tasks(task.training_view())
    assert pseudo.name == "synthetic_trap/pseudo-joint"
    settings = CampaignSettings(budget=12, workers=0, seed=0, initial_population=10)
    record = run_pseudo_campaign(pseudo, settings, tmp_path / "a.sqlite", top_k=16, starting_laws=[PLANTED, TRAP])
    json.dumps(record, allow_nan=False)  # strict JSON
    keys = {law["key"]: law for law in record["laws"]}
    planted, trap = (keys[parse_law(f, task.spec).key] for f in (PLANTED, TRAP))
    # the trap fits the pseudo-training range about as well, and is far worse beyond it
    full = settings.full_fit()
    for law in (PLANTED, TRAP):
        fitter = LawFitter(parse_law(law, task.spec), full).fit(pseudo.train)
        assert score(pseudo.train.y, fitter.predict(pseudo.train)).r2 > 0.99, law
    assert planted["pseudo_test"]["r2"] > 0.99 > 0 > trap["pseudo_test"]["r2"]
    assert planted["full"]["worst"] < trap["full"]["worst"]  # the validation folds already see it bend
    assert record["laws"][record["current_choice"]["index"]]["key"] != trap["key"]
    assert record["current_choice"]["index"] is not None
    assert record["current_choice"]["pseudo_test_r2"] == record["laws"][record["current_choice"]["index"]][
        "pseudo_test"]["r2_clipped"]
    # the recorded figure is evaluate_on_test's on the pseudo-task, with the campaign's full-fit options
    again = evaluate_on_test(parse_law(PLANTED, task.spec), pseudo, settings.full_fit())
    assert planted["pseudo_test"]["r2"] == pytest.approx(again.held_out.r2, abs=1e-9)
    # each pseudo-test run sits at its own scale point, so scoring per point is the pooled figure
    assert planted["pseudo_test"]["r2_per_point"] == pytest.approx(planted["pseudo_test"]["r2"], abs=1e-12)
    assert len(planted["test_predictions"]) == len(pseudo.test)
    assert len(planted["probe_predictions"]) == record["probes"]["n"] == len(probe_rows(pseudo.spec, pseudo.train))
    # probes lie beyond the largest pseudo-training run, from the training rows alone
    assert probe_rows(pseudo.spec, pseudo.train).X[:, 0].min() > pseudo.train.X[:, 0].max()
    assert all(len(law["full"]["folds"]) >= 1 for law in record["laws"] if law["full"]["status"] == "ok")
    assert planted["implausible"] is None  # the planted power law continues inside the band
    result = study([record])
    assert {r.name for r in result.rules} == {r.name for r in RULES}


def _law_record(rank: int, r2: float, **pseudo_test) -> dict:
    return {"rank": rank, "search": {"score": 0.1 * (rank + 1)},
            "pseudo_test": {"r2": r2, "r2_clipped": r2, "failed": False, **pseudo_test}}


def test_the_summary_gives_the_choice_s_r2_per_scale_point_and_falls_back_for_older_records():
    laws = [_law_record(0, 0.9, r2_per_point=-3.0), _law_record(1, 0.8, r2_per_point=0.4)]
    record = {"pseudo_task": "t/pseudo-joint", "current_choice": {"index": 0, "pseudo_test_r2": 0.9}, "laws": laws}
    row = summarize(record)
    assert row["current"] == 0.9 and row["current_per_point"] == -1.0  # clipped, as the pooled figure is
    older = {**record, "laws": [_law_record(0, 0.9), _law_record(1, 0.8)]}  # written before r2_per_point
    assert summarize(older)["current_per_point"] == 0.9
    table = format_summary([record, older])
    assert "per pt" in table.splitlines()[0]
    assert table.splitlines()[1].split()[1:4] == ["2", "0.900", "-0.050"]  # seeds, current, per pt (means)


def test_run_benchmark_writes_one_json_line_per_campaign(tmp_path):
    task = _synthetic_task(tmp_path)
    settings = CampaignSettings(budget=6, workers=0, initial_population=6)
    output = tmp_path / "out" / "runs.jsonl"
    lines = []
    records = run_benchmark(["synthetic_trap"], [0], settings, output, top_k=4, log=lines.append,
                            load=lambda name: task)
    assert len(records) == 1 and read_records([output]) == records
    assert records[0]["pseudo_task"] == "synthetic_trap/pseudo-joint"
    assert len(records[0]["laws"]) <= settings.finalists  # top-K, but never fewer than the finalists
    assert records[0]["current_choice"]["index"] is not None
    assert "synthetic_trap/pseudo-joint seed 0" in lines[0]


def test_run_benchmark_runs_each_single_curve_s_pseudo_task(tmp_path):
    rng = np.random.default_rng(5)
    n = np.tile(np.logspace(6, 9, 10), 2)
    groups = np.repeat(["a", "b"], 10)
    loss = np.where(groups == "a", 1.8, 2.1) + 60 * n**-0.3 + rng.normal(0, 0.002, n.size)
    (tmp_path / "runs.csv").write_text("n,run,loss\n" + "\n".join(
        f"{a!r},{g},{b!r}" for a, g, b in zip(n.tolist(), groups.tolist(), loss.tolist())) + "\n")
    (tmp_path / "task.toml").write_text(TASK_TOML.replace('csv = "runs.csv"', 'csv = "runs.csv"\ngroup_column = "run"')
                                        .replace("test_fraction = 0.2", "test_fraction = 0.1"))
    task = load_task_file(tmp_path / "task.toml")
    settings = CampaignSettings(budget=4, workers=0, initial_population=4, finalists=2)
    lines = []
    records = run_benchmark(["synthetic_trap"], [0], settings, tmp_path / "runs.jsonl", top_k=2, log=lines.append,
                            load=lambda name: task, choice_only=True, curves_every=1)
    assert [r["pseudo_task"] for r in records] == ["synthetic_trap#a/pseudo-joint", "synthetic_trap#b/pseudo-joint"]
    assert all(set(r["targets"]["groups"]) == {g} for r, g in zip(records, "ab"))


def test_a_choice_only_record_keeps_the_choice_and_the_selection_study_refuses_it(tmp_path, capsys):
    from sld.discovery.cli import main

    task = _synthetic_task(tmp_path)
    [pseudo] = pseudo_tasks(task.training_view())
    settings = CampaignSettings(budget=12, workers=0, seed=0, initial_population=10)
    full = run_pseudo_campaign(pseudo, settings, tmp_path / "a.sqlite", top_k=8, starting_laws=[PLANTED, TRAP])
    quick = run_pseudo_campaign(pseudo, settings, tmp_path / "b.sqlite", top_k=8, starting_laws=[PLANTED, TRAP],
                                choice_only=True)
    assert quick["choice_only"] and not full["choice_only"]
    assert quick["current_choice"] == full["current_choice"]  # the campaign is the same; only the extras go
    assert [law["pseudo_test"] for law in quick["laws"]] == [law["pseudo_test"] for law in full["laws"]]
    assert all(law["full"]["status"] == "skipped" and law["spread"] is None for law in quick["laws"])
    path = tmp_path / "quick.jsonl"
    path.write_text(json.dumps(quick) + "\n")
    assert main(["bench", "selection", "--input", str(path)]) == 1
    assert "--choice-only" in capsys.readouterr().out


def test_sld_bench_selection_prints_the_rules_table(tmp_path, capsys):
    from sld.discovery.cli import main

    path = tmp_path / "runs.jsonl"
    path.write_text("\n".join(json.dumps(_record(task)) for task in ("t1", "t2")) + "\n")
    assert main(["bench", "selection", "--input", str(path)]) == 0
    out = capsys.readouterr().out
    assert "t1/pseudo-joint" in out and "g ensemble median top-5" in out
    assert "leave-one-task-out choice" in out


def test_r2_per_scale_point_scores_each_swept_point_and_pools_a_task_without_scale():
    [lr_cut] = [p for p in pseudo_tasks(load_task("lr_bsz_scaling_law").training_view()) if p.axis == "joint"]
    rows = lr_cut.test
    columns = lr_cut.spec.scale_indices
    labels = scale_point_labels(rows, columns)
    assert len(set(labels.tolist())) >= 2  # several models, each swept over lr and bsz
    # the mean at each point: right on the levels, and nothing of the sweep
    level_only = np.array([rows.y[labels == k].mean() for k in labels])[:, None]
    assert score(rows.y, level_only).r2 > 0.4  # pooled, the levels alone explain about half the spread
    assert r2_per_scale_point(lr_cut.spec, rows, level_only) == pytest.approx(0.0, abs=1e-9)
    mixture = pseudo_tasks(load_task("domain_mixture_scaling_law").training_view())[0]
    noisy = mixture.test.y + 0.01
    assert r2_per_scale_point(mixture.spec, mixture.test, noisy) == pytest.approx(score(mixture.test.y, noisy).r2)
