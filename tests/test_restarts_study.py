"""Pooled restarts replayed on synthetic pseudo-task records (planted forecasts, no campaign run)."""

from sld.discovery.benchmarks.restarts_study import format_pairs, pair_up, pooled_choice


def _law(key, score, forecast, r2, implausible=None):
    return {"key": key, "search": {"score": score}, "probe_predictions": [[v] for v in forecast],
            "pseudo_test": {"r2_clipped": r2, "failed": False}, "implausible": implausible}


def _record(seed, laws, chosen_r2=0.5, pseudo_task="t/pseudo-joint"):
    return {"task": "t", "pseudo_task": pseudo_task, "seed": seed, "train_target_std": [1.0],
            "laws": laws, "current_choice": {"pseudo_test_r2": chosen_r2}}


# a "trap" law with the best search score that alone explodes beyond the runs; three that agree
TRAP = _law("trap", 0.01, [1.0, 50.0], -1.0)
AGREE = [_law(f"a{i}", 0.02 + i / 100, [1.0, 2.0 + i / 10], 0.9 - i / 100) for i in range(3)]


def test_the_pool_keeps_the_law_nearest_the_others_median_across_members():
    members = [_record(0, [TRAP, AGREE[0]]), _record(1, [AGREE[1], AGREE[2]])]
    assert pooled_choice(members)["key"] == "a1"  # the middle of the three that agree


def test_a_law_found_by_several_members_counts_once():
    members = [_record(0, [TRAP, AGREE[0]]), _record(1, [TRAP, AGREE[0]]), _record(2, [TRAP, AGREE[1]])]
    # with the trap counted three times its forecast would be the median; once, it is the outlier
    assert pooled_choice(members)["key"] != "trap"


def test_an_implausible_choice_falls_through_in_search_order():
    flagged = _law("a1", 0.03, [1.0, 2.1], 0.89, implausible="predicts below zero")
    members = [_record(0, [TRAP, AGREE[0]]), _record(1, [flagged, AGREE[2]])]
    assert pooled_choice(members)["key"] == "trap"  # the first finalist by search score left unflagged


def test_pools_pair_with_the_mean_of_the_single_campaigns_over_the_same_seeds():
    single = [_record(s, [AGREE[0]], chosen_r2=r2) for s, r2 in enumerate([0.1, 0.3, 0.5, 0.7, 0.2])]
    members = [_record(s, [TRAP, AGREE[s % 3]]) for s in range(5)]
    pairs = pair_up(single, members, group=4)
    assert len(pairs) == 1  # seed 4 starts a group that is not complete
    assert pairs[0].seeds == (0, 1, 2, 3)
    assert abs(pairs[0].single - 0.4) < 1e-12 and abs(pairs[0].pooled - 0.89) < 1e-12
    assert "(+1/-0)" in format_pairs(pairs)


def test_a_missing_records_file_is_one_line_that_names_it(tmp_path, capsys):
    from sld.discovery.cli import main

    missing = tmp_path / "none.jsonl"
    assert main(["bench", "restarts", "--single", str(missing), "--members", str(missing)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("sld: error: cannot read records file") and str(missing) in error
    assert "\n" not in error


def test_a_pool_of_no_campaigns_is_refused_in_one_line(tmp_path, capsys):
    from sld.discovery.cli import main

    assert main(["bench", "restarts", "--single", "x", "--members", "x", "--group", "0"]) == 2
    assert "--group 0" in capsys.readouterr().err
